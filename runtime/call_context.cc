// CallContext and its shared cancellation state.
#include "runtime/call_context.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lpc {

std::string PeerIdentity::ToString() const {
  std::string out = transport.empty() ? std::string("unknown") : transport;
  if (!address.empty()) absl::StrAppend(&out, " ", address);
  if (uid) absl::StrAppend(&out, " uid=", *uid);
  if (gid) absl::StrAppend(&out, " gid=", *gid);
  if (pid) absl::StrAppend(&out, " pid=", *pid);
  return out;
}

namespace internal {

struct CancelState::Impl {
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::atomic<bool> cancelled{false};
  uint64_t next_handle = 1;                                    // Guarded by mu.
  std::vector<std::pair<uint64_t, std::function<void()>>> callbacks;  // mu.
};

std::shared_ptr<CancelState::Impl> CancelState::MakeImpl() {
  return std::make_shared<Impl>();
}

void CancelState::Cancel() {
  std::vector<std::pair<uint64_t, std::function<void()>>> to_run;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->cancelled.load(std::memory_order_relaxed)) return;
    impl_->cancelled.store(true, std::memory_order_release);
    to_run.swap(impl_->callbacks);
  }
  impl_->cv.notify_all();
  for (auto& [handle, fn] : to_run) fn();
}

bool CancelState::cancelled() const {
  return impl_->cancelled.load(std::memory_order_acquire);
}

bool CancelState::WaitUntil(absl::Time until) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  while (!impl_->cancelled.load(std::memory_order_relaxed)) {
    if (until == absl::InfiniteFuture()) {
      impl_->cv.wait(lock);
    } else if (impl_->cv.wait_until(lock, absl::ToChronoTime(until)) ==
               std::cv_status::timeout) {
      break;
    }
  }
  return impl_->cancelled.load(std::memory_order_relaxed);
}

uint64_t CancelState::AddCallback(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->cancelled.load(std::memory_order_relaxed)) {
      uint64_t handle = impl_->next_handle++;
      impl_->callbacks.emplace_back(handle, std::move(fn));
      return handle;
    }
  }
  fn();
  return 0;
}

void CancelState::RemoveCallback(uint64_t handle) {
  if (handle == 0) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& cbs = impl_->callbacks;
  for (auto it = cbs.begin(); it != cbs.end(); ++it) {
    if (it->first == handle) {
      cbs.erase(it);
      return;
    }
  }
}

}  // namespace internal

CallContext::CallContext() : cancel_(std::make_shared<internal::CancelState>()) {}
CallContext::~CallContext() = default;

void CallContext::Cancel() { cancel_->Cancel(); }

bool CallContext::IsCancelled() const {
  return cancel_->cancelled() ||
         (has_deadline() && absl::Now() >= deadline_);
}

bool CallContext::WasCancelledExplicitly() const { return cancel_->cancelled(); }

bool CallContext::WaitForCancellation(absl::Time until) const {
  absl::Time limit = std::min(until, deadline_);
  cancel_->WaitUntil(limit);
  return IsCancelled();
}

uint64_t CallContext::AddCancelCallback(std::function<void()> fn) {
  return cancel_->AddCallback(std::move(fn));
}

void CallContext::RemoveCancelCallback(uint64_t handle) {
  cancel_->RemoveCallback(handle);
}

}  // namespace lpc
