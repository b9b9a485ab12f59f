// Blocking forms of the byte-level stream operations (runtime/call.h) for
// tests and the test services, each bounded by a deadline, and a bounded
// wait for a condition. Header-only, no test framework: the test servers
// and the fuzz targets use it too.
//
// Thread safety: a CallbackResult is filled from any thread and read from
// one; the callback may run after Get gave up (it then only sets a value no
// one reads).
#ifndef LPC_TESTING_STREAM_WAITS_H_
#define LPC_TESTING_STREAM_WAITS_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/call.h"

namespace lpc::testing {

// How long a test waits for what should come at once. Default: 20 s.
inline constexpr absl::Duration kDefaultWait = absl::Seconds(20);

// One callback's result, waited for with a deadline. The callback shares
// the result's state, so it may outlive the CallbackResult.
template <typename T>
class CallbackResult {
 public:
  std::function<void(T)> Callback() {
    return [state = state_](T v) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->value.emplace(std::move(v));
      state->cv.notify_all();
    };
  }
  // The value, or std::nullopt if it did not come by `until`.
  std::optional<T> GetUntil(absl::Time until) {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait_until(lock, absl::ToChronoTime(until),
                          [this] { return state_->value.has_value(); });
    return state_->value;
  }
  std::optional<T> Get(absl::Duration timeout = kDefaultWait) {
    return GetUntil(absl::Now() + timeout);
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<T> value;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

using ReadResult = absl::StatusOr<std::optional<std::string>>;

// The default bound of the blocking operations below: kDefaultWait from
// now.
inline absl::Time DefaultUntil() { return absl::Now() + kDefaultWait; }

// Read, Write and Finish on a ClientStream or a ServerStream, waited for
// until `until`; DEADLINE_EXCEEDED (naming the operation) if the callback
// did not run by then.
template <typename Stream>
ReadResult ReadBlocking(Stream& s, absl::Time until = DefaultUntil()) {
  CallbackResult<ReadResult> r;
  s.Read(r.Callback());
  std::optional<ReadResult> v = r.GetUntil(until);
  if (!v.has_value()) {
    return absl::DeadlineExceededError("Read did not complete");
  }
  return *std::move(v);
}

template <typename Stream>
absl::Status WriteBlocking(Stream& s, std::string message,
                           absl::Time until = DefaultUntil()) {
  CallbackResult<absl::Status> r;
  s.Write(std::move(message), r.Callback());
  std::optional<absl::Status> v = r.GetUntil(until);
  if (!v.has_value()) {
    return absl::DeadlineExceededError("Write did not complete");
  }
  return *v;
}

inline absl::Status FinishBlocking(ClientStream& s,
                                   absl::Time until = DefaultUntil()) {
  CallbackResult<absl::Status> r;
  s.Finish(r.Callback());
  std::optional<absl::Status> v = r.GetUntil(until);
  if (!v.has_value()) {
    return absl::DeadlineExceededError("Finish did not complete");
  }
  return *v;
}

// Waits for `cond` (polled each millisecond) up to `timeout`; returns
// whether it held.
template <typename F>
bool WaitFor(F cond, absl::Duration timeout = kDefaultWait) {
  const absl::Time end = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace lpc::testing

#endif  // LPC_TESTING_STREAM_WAITS_H_
