// The hand-written service the reliability suite calls, over raw bytes:
//   1 Echo    returns the request
//   2 Hold    waits until cancelled or its deadline (at most 60 s); records
//             when it saw the cancellation (CLOCK_MONOTONIC ns) by request
//   3 Sleep   sleeps the decimal number of ms in the request; CANCELLED or
//             DEADLINE_EXCEEDED if the call ends first
//   4 Count   non-idempotent: appends "<request>\n" to the execution log (one
//             write(2) per execution, O_APPEND), then replies "ok"
//   5 Peer    replies with ctx.peer(): "uid=U gid=G pid=P transport=T"
//   6 Note    oneway: counts
// It counts handlers running and keeps weak references to every call's
// cancel state, so tests can prove no context outlives its call.
//
// Thread safety: handlers run concurrently; every accessor is thread-safe.
#ifndef LPC_TESTS_RELIABILITY_RELIABILITY_SERVICE_H_
#define LPC_TESTS_RELIABILITY_RELIABILITY_SERVICE_H_

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/service.h"

namespace lpc::reliability {

inline constexpr MethodDescriptor kRelMethods[] = {
    {"Echo", 1, false},  {"Hold", 2, false}, {"Sleep", 3, false},
    {"Count", 4, false}, {"Peer", 5, false}, {"Note", 6, true},
};

inline const InterfaceDescriptor& RelDescriptor() {
  static const InterfaceDescriptor d{"lpc.reliability.Rel",
                                     "5e1ab1e0-0000-4000-8000-00000000beef",
                                     {1, 0},
                                     kRelMethods};
  return d;
}
inline const MethodDescriptor& EchoMethod() { return kRelMethods[0]; }
inline const MethodDescriptor& HoldMethod() { return kRelMethods[1]; }
inline const MethodDescriptor& SleepMethod() { return kRelMethods[2]; }
inline const MethodDescriptor& CountMethod() { return kRelMethods[3]; }
inline const MethodDescriptor& PeerMethod() { return kRelMethods[4]; }
inline const MethodDescriptor& NoteMethod() { return kRelMethods[5]; }

class RelService final : public Service {
 public:
  // `count_log_fd`: where Count appends (not owned; -1 = nowhere).
  explicit RelService(int count_log_fd = -1) : log_fd_(count_log_fd) {}

  const InterfaceDescriptor& descriptor() const override {
    return RelDescriptor();
  }

  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    running_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      states_.push_back(lpc::internal::CallContextAccess::cancel_state(ctx));
      // Compacted once it doubles past what was alive last time: a
      // weak_ptr keeps its whole make_shared block allocated, so a fixed
      // threshold would make the server's RSS climb between compactions.
      if (states_.size() > compact_at_) Compact();
    }
    absl::Status s = Run(method_id, ctx, request, response);
    running_.fetch_sub(1);
    completed_.fetch_add(1);
    return s;
  }

  int running() const { return running_.load(); }
  int64_t completed() const { return completed_.load(); }
  int64_t notes() const { return notes_.load(); }
  int64_t holds_cancelled() const { return holds_cancelled_.load(); }

  // Cancel states still referenced by anyone (contexts alive).
  int LiveContexts() {
    std::lock_guard<std::mutex> lock(mu_);
    Compact();
    return static_cast<int>(states_.size());
  }

  // When Hold(`key`) saw its cancellation (monotonic ns), or 0.
  int64_t CancelSeenNs(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cancel_seen_.find(key);
    return it == cancel_seen_.end() ? 0 : it->second;
  }

 private:
  static int64_t Mono() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }

  void Compact() {
    std::vector<std::weak_ptr<internal::CancelState>> live;
    for (auto& w : states_) {
      if (!w.expired()) live.push_back(w);
    }
    states_.swap(live);
    compact_at_ = 2 * states_.size() + 1024;
  }

  absl::Status Run(uint32_t method_id, CallContext& ctx,
                   std::string_view request, std::string* response) {
    switch (method_id) {
      case 1:
        response->assign(request);
        return absl::OkStatus();
      case 2: {
        const bool cancelled = ctx.WaitForCancellation(
            std::min(ctx.deadline(), absl::Now() + absl::Seconds(60)));
        if (cancelled && ctx.WasCancelledExplicitly()) {
          const int64_t now = Mono();
          holds_cancelled_.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu_);
          cancel_seen_[std::string(request)] = now;
        }
        *response = cancelled ? "cancelled" : "timeout";
        return absl::OkStatus();
      }
      case 3: {
        const int64_t ms = std::atoll(std::string(request).c_str());
        if (ctx.WaitForCancellation(absl::Now() + absl::Milliseconds(ms))) {
          if (ctx.WasCancelledExplicitly()) {
            return absl::CancelledError("sleep cancelled");
          }
          return absl::DeadlineExceededError("sleep outlived its deadline");
        }
        *response = "slept";
        return absl::OkStatus();
      }
      case 4: {
        if (log_fd_ >= 0) {
          std::string line = std::string(request) + "\n";
          if (::write(log_fd_, line.data(), line.size()) !=
              static_cast<ssize_t>(line.size())) {
            return absl::InternalError("log write failed");
          }
        }
        *response = "ok";
        return absl::OkStatus();
      }
      case 5: {
        const PeerIdentity& p = ctx.peer();
        *response = absl::StrCat(
            "uid=", p.uid.has_value() ? static_cast<int64_t>(*p.uid) : -1,
            " gid=", p.gid.has_value() ? static_cast<int64_t>(*p.gid) : -1,
            " pid=", p.pid.has_value() ? static_cast<int64_t>(*p.pid) : -1,
            " transport=", p.transport);
        return absl::OkStatus();
      }
      case 6:
        notes_.fetch_add(1);
        return absl::OkStatus();
    }
    return absl::UnimplementedError("unknown method");
  }

  const int log_fd_;
  std::atomic<int> running_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> notes_{0};
  std::atomic<int64_t> holds_cancelled_{0};
  std::mutex mu_;
  std::vector<std::weak_ptr<internal::CancelState>> states_;  // mu_
  size_t compact_at_ = 1024;                                   // mu_
  std::map<std::string, int64_t> cancel_seen_;                 // mu_
};

}  // namespace lpc::reliability

#endif  // LPC_TESTS_RELIABILITY_RELIABILITY_SERVICE_H_
