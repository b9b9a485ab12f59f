// CallContext and its shared cancellation state.
#include "runtime/call_context.h"

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace lpc {

std::string PeerIdentity::ToString() const {
  std::string out = transport.empty() ? std::string("unknown") : transport;
  if (!address.empty()) absl::StrAppend(&out, " ", address);
  if (uid) absl::StrAppend(&out, " uid=", *uid);
  if (gid) absl::StrAppend(&out, " gid=", *gid);
  if (pid) absl::StrAppend(&out, " pid=", *pid);
  if (!tls_common_name.empty()) absl::StrAppend(&out, " tls_cn=", tls_common_name);
  if (!tls_alt_names.empty()) {
    absl::StrAppend(&out, " tls_san=", absl::StrJoin(tls_alt_names, ","));
  }
  return out;
}

namespace internal {

void CancelState::Cancel() {
  Callbacks to_run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return;
    cancelled_.store(true, std::memory_order_release);
    to_run.swap(callbacks_);
    running_callbacks_ = !to_run.empty();
    runner_ = std::this_thread::get_id();
  }
  cv_.notify_all();
  if (to_run.empty()) return;
  for (auto& [handle, fn] : to_run) fn();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_callbacks_ = false;
  }
  cv_.notify_all();  // RemoveCallback callers waiting for the run to end.
}

bool CancelState::WaitUntil(absl::Time until) const {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cancelled_.load(std::memory_order_relaxed)) {
    if (until == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else if (cv_.wait_until(lock, absl::ToChronoTime(until)) ==
               std::cv_status::timeout) {
      break;
    }
  }
  return cancelled_.load(std::memory_order_relaxed);
}

uint64_t CancelState::AddCallback(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled_.load(std::memory_order_relaxed)) {
      uint64_t handle = next_handle_++;
      callbacks_.emplace_back(handle, std::move(fn));
      return handle;
    }
  }
  fn();
  return 0;
}

void CancelState::RemoveCallback(uint64_t handle) {
  if (handle == 0) return;
  std::unique_lock<std::mutex> lock(mu_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->first == handle) {
      callbacks_.erase(it);
      return;
    }
  }
  // Not registered: it ran, or a Cancel() is running it now. Wait for that
  // run to end, unless this is the run's own thread. Callbacks must not
  // block, so the wait is short.
  if (runner_ == std::this_thread::get_id()) return;
  cv_.wait(lock, [this] { return !running_callbacks_; });
}

}  // namespace internal

CallContext::CallContext() = default;
CallContext::~CallContext() = default;

internal::CancelState* CallContext::EnsureCancelState() const {
  internal::CancelState* state = cancel_.load(std::memory_order_acquire);
  if (state != nullptr) return state;
  auto made = std::make_shared<internal::CancelState>();
  if (cancel_.compare_exchange_strong(state, made.get(),
                                      std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
    cancel_owner_ = std::move(made);
    return cancel_owner_.get();
  }
  return state;  // Another thread won; `made` is dropped.
}

std::shared_ptr<internal::CancelState> CallContext::cancel_state() const {
  return EnsureCancelState()->shared_from_this();
}

void CallContext::Cancel() { EnsureCancelState()->Cancel(); }

bool CallContext::IsCancelled() const {
  return WasCancelledExplicitly() ||
         (has_deadline() && absl::Now() >= deadline_);
}

bool CallContext::WasCancelledExplicitly() const {
  const internal::CancelState* state = cancel_.load(std::memory_order_acquire);
  return state != nullptr && state->cancelled();
}

bool CallContext::WaitForCancellation(absl::Time until) const {
  absl::Time limit = std::min(until, deadline_);
  EnsureCancelState()->WaitUntil(limit);
  return IsCancelled();
}

uint64_t CallContext::AddCancelCallback(std::function<void()> fn) {
  return EnsureCancelState()->AddCallback(std::move(fn));
}

void CallContext::RemoveCancelCallback(uint64_t handle) {
  if (handle == 0) return;
  EnsureCancelState()->RemoveCallback(handle);
}

}  // namespace lpc
