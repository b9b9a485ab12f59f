// CallContext and its shared cancellation state.
#include "runtime/call_context.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "runtime/handles.h"

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

absl::StatusOr<Buffer> CallContext::NewBuffer(size_t size) const {
  if (buffer_source_ != nullptr) return buffer_source_->NewBuffer(size);
  // Over gRPC a buffer travels as bytes: a memfd would only cost more.
  if (peer().transport == "grpc") return Buffer::Heap(size);
  absl::StatusOr<Buffer> b = Buffer::Shared(size);
  if (!b.ok()) return Buffer::Heap(size);
  return b;
}

namespace internal {

// One thread for the whole process, started when the first entry comes:
// it runs CancelState::Expire for the states whose deadline callbacks are
// due. Entries are ordered by time; a state has at most one, which it
// removes when its last deadline callback goes or it dies.
class DeadlineTimer {
 public:
  static DeadlineTimer& Get() {
    static DeadlineTimer* timer = new DeadlineTimer;  // Never destroyed.
    return *timer;
  }

  // Sets the entry of `state` to `when` (InfiniteFuture: removes it).
  void Set(CancelState* state, absl::Time when) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state->deadline_part_->timer_at != absl::InfiniteFuture()) {
        entries_.erase({state->deadline_part_->timer_at, state});
      }
      state->deadline_part_->timer_at = when;
      if (when == absl::InfiniteFuture()) return;
      auto it = entries_.emplace(when, state).first;
      wake = it == entries_.begin();
      if (!started_) {
        started_ = true;
        std::thread([this] { Loop(); }).detach();
      }
    }
    if (wake) cv_.notify_one();
  }

 private:
  DeadlineTimer() = default;

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<CancelState>> due;
    for (;;) {
      if (entries_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const absl::Time first = entries_.begin()->first;
      absl::Time now = absl::Now();
      if (first > now) {
        // Bounded: a deadline a peer sent may be centuries away, beyond
        // what the clocks' time points hold; the loop just waits again.
        cv_.wait_until(lock,
                       absl::ToChronoTime(std::min(first, now + absl::Hours(1))));
        continue;
      }
      while (!entries_.empty() && entries_.begin()->first <= now) {
        CancelState* state = entries_.begin()->second;
        entries_.erase(entries_.begin());
        state->deadline_part_->timer_at = absl::InfiniteFuture();
        // A state whose last owner is gone is in its destructor, waiting
        // for mu_ to remove this entry: it is skipped.
        if (std::shared_ptr<CancelState> s = state->weak_from_this().lock()) {
          due.push_back(std::move(s));
        }
      }
      lock.unlock();
      for (auto& s : due) s->Expire(now);
      due.clear();  // May destroy states: outside mu_.
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::pair<absl::Time, CancelState*>> entries_;  // mu_
  bool started_ = false;                                    // mu_
};

CancelState::~CancelState() {
  if (deadline_part_ != nullptr) {
    DeadlineTimer::Get().Set(this, absl::InfiniteFuture());
  }
}

void CancelState::UpdateTimerLocked() {
  const DeadlinePart& d = *deadline_part_;
  DeadlineTimer::Get().Set(this, d.callbacks > 0 && !cancelled()
                                     ? d.deadline
                                     : absl::InfiniteFuture());
}

void CancelState::Run(Callbacks& to_run, int slot) {
  // The last owner may drop this state from inside a callback (a callback
  // that completes a call whose caller then destroys its context).
  std::shared_ptr<CancelState> keep = shared_from_this();
  for (auto& entry : to_run) entry.second();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ &= static_cast<uint8_t>(~(1u << slot));
  }
  cv_.notify_all();  // RemoveCallback callers waiting for the run to end.
}

void CancelState::Cancel() {
  Callbacks to_run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return;
    cancelled_.store(true, std::memory_order_release);
    to_run.swap(callbacks_);
    if (deadline_part_ != nullptr && deadline_part_->callbacks > 0) {
      deadline_part_->callbacks = 0;
      UpdateTimerLocked();
    }
    if (!to_run.empty()) {
      running_ |= 1;
      runners_[0] = std::this_thread::get_id();
    }
  }
  cv_.notify_all();
  if (!to_run.empty()) Run(to_run, 0);
}

void CancelState::Expire(absl::Time now) {
  Callbacks to_run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed) ||
        deadline_part_ == nullptr || deadline_part_->callbacks == 0 ||
        deadline_part_->deadline > now) {
      return;
    }
    for (auto it = callbacks_.begin(); it != callbacks_.end();) {
      if ((it->first & 1) != 0) {
        to_run.push_back(std::move(*it));
        it = callbacks_.erase(it);
      } else {
        ++it;
      }
    }
    deadline_part_->callbacks = 0;
    running_ |= 2;
    runners_[1] = std::this_thread::get_id();
  }
  Run(to_run, 1);
}

void CancelState::ExpireNow() {
  Callbacks to_run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed) ||
        expired_.load(std::memory_order_relaxed)) {
      return;
    }
    expired_.store(true, std::memory_order_release);
    // Deadline callbacks that Expire is running already are not here.
    if (deadline_part_ != nullptr && deadline_part_->callbacks > 0) {
      for (auto it = callbacks_.begin(); it != callbacks_.end();) {
        if ((it->first & 1) != 0) {
          to_run.push_back(std::move(*it));
          it = callbacks_.erase(it);
        } else {
          ++it;
        }
      }
      deadline_part_->callbacks = 0;
      UpdateTimerLocked();
      running_ |= 2;
      runners_[1] = std::this_thread::get_id();
    }
  }
  cv_.notify_all();
  if (!to_run.empty()) Run(to_run, 1);
}

bool CancelState::WaitUntil(absl::Time until) const {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cancelled_.load(std::memory_order_relaxed) &&
         !expired_.load(std::memory_order_relaxed)) {
    if (until == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else if (cv_.wait_until(lock, absl::ToChronoTime(until)) ==
               std::cv_status::timeout) {
      break;
    }
  }
  return cancelled_.load(std::memory_order_relaxed);
}

uint64_t CancelState::AddCallback(std::function<void()> fn, bool on_deadline,
                                  absl::Time deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool expired =
        on_deadline && (expired_.load(std::memory_order_relaxed) ||
                        (deadline != absl::InfiniteFuture() &&
                         absl::Now() >= deadline));
    if (!cancelled_.load(std::memory_order_relaxed) && !expired) {
      // Never 0 ("no callback"); wraps after 2^31 callbacks on one call.
      next_handle_ += 2;
      if (next_handle_ == 0) next_handle_ = 2;
      const uint32_t handle = next_handle_ | (on_deadline ? 1u : 0u);
      callbacks_.emplace_back(handle, std::move(fn));
      if (on_deadline) {
        if (deadline_part_ == nullptr) {
          deadline_part_ = std::make_unique<DeadlinePart>();
        }
        deadline_part_->deadline = deadline;
        if (++deadline_part_->callbacks == 1) UpdateTimerLocked();
      }
      return handle;
    }
  }
  fn();
  return 0;
}

void CancelState::SetDeadline(absl::Time deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (deadline_part_ == nullptr || deadline_part_->deadline == deadline) return;
  deadline_part_->deadline = deadline;
  if (deadline_part_->callbacks > 0) UpdateTimerLocked();
}

void CancelState::RemoveCallback(uint64_t handle) {
  if (handle == 0) return;
  std::unique_lock<std::mutex> lock(mu_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->first == handle) {
      callbacks_.erase(it);
      if ((handle & 1) != 0 && --deadline_part_->callbacks == 0) {
        UpdateTimerLocked();
      }
      return;
    }
  }
  // Not registered: it ran, or a Cancel() or Expire() is running it now.
  // Wait for that run to end, unless this is the run's own thread.
  // Callbacks must not block, so the wait is short.
  for (int slot = 0; slot < 2; ++slot) {
    if ((running_ & (1u << slot)) != 0 &&
        runners_[slot] == std::this_thread::get_id()) {
      return;
    }
  }
  cv_.wait(lock, [this] { return running_ == 0; });
}

}  // namespace internal

CallContext::CallContext() = default;

CallContext::CallContext(const CallContext* parent) { set_parent(parent); }

CallContext::~CallContext() { Unlink(); }

void CallContext::Unlink() {
  if (parent_cancel_ == nullptr) return;
  // Waits for a parent's Cancel() that is running the link right now.
  parent_cancel_->RemoveCallback(parent_handle_);
  parent_cancel_.reset();
  parent_handle_ = 0;
}

void CallContext::set_parent(const CallContext* parent) {
  Unlink();
  if (parent == nullptr) {
    parent_deadline_ = absl::InfiniteFuture();
    return;
  }
  parent_deadline_ = parent->deadline();
  set_deadline(deadline_);  // The earlier of the two.
  internal::CancelState* mine = EnsureCancelState();
  parent_cancel_ = parent->cancel_state();
  // A raw pointer (no heap for the std::function): Unlink removes the
  // callback, waiting for a run in progress, before this state can die.
  parent_handle_ = parent_cancel_->AddCallback([mine] { mine->Cancel(); });
}

void CallContext::DeadlineChanged() {
  cancel_.load(std::memory_order_acquire)->SetDeadline(deadline_);
}

internal::CancelState* CallContext::EnsureCancelState() const {
  internal::CancelState* state = cancel_.load(std::memory_order_acquire);
  if (state != nullptr) return state;
  auto made = std::make_shared<internal::CancelState>();
  if (cancel_.compare_exchange_strong(state, made.get(),
                                      std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
    cancel_owner_ = std::move(made);
    internal::CancelState* mine = cancel_owner_.get();
    if (lazy_parent_ != nullptr) {
      // Now that there is a state to cancel, link it as set_parent does (a
      // parent cancelled already cancels it at once).
      parent_cancel_ = lazy_parent_->cancel_state();
      parent_handle_ = parent_cancel_->AddCallback([mine] { mine->Cancel(); });
    }
    return mine;
  }
  return state;  // Another thread won; `made` is dropped.
}

std::shared_ptr<internal::CancelState> CallContext::cancel_state() const {
  return EnsureCancelState()->shared_from_this();
}

void CallContext::Cancel() { EnsureCancelState()->Cancel(); }

bool CallContext::IsCancelled() const {
  const internal::CancelState* state = cancel_.load(std::memory_order_acquire);
  if (state != nullptr && (state->cancelled() || state->expired())) return true;
  if (lazy_parent_ != nullptr && lazy_parent_->WasCancelledExplicitly()) {
    return true;
  }
  return has_deadline() && absl::Now() >= deadline_;
}

bool CallContext::WasCancelledExplicitly() const {
  const internal::CancelState* state = cancel_.load(std::memory_order_acquire);
  if (state != nullptr && state->cancelled()) return true;
  return lazy_parent_ != nullptr && lazy_parent_->WasCancelledExplicitly();
}

bool CallContext::WaitForCancellation(absl::Time until) const {
  absl::Time limit = std::min(until, deadline_);
  internal::CancelState* state = EnsureCancelState();
  state->WaitUntil(limit);
  const absl::Time now = absl::Now();
  if (has_deadline() && now >= deadline_) {
    // Woken by the deadline, perhaps before the timer thread ran the
    // deadline callbacks: run them here (at most once; a no-op if the timer
    // took them), so that they have run, or are running, when this returns,
    // even if the caller then returns and its context dies at once.
    state->Expire(now);
  }
  return IsCancelled();
}

uint64_t CallContext::AddCancelCallback(std::function<void()> fn) {
  return EnsureCancelState()->AddCallback(std::move(fn), /*on_deadline=*/true,
                                          deadline_);
}

uint64_t CallContext::AddTransportCancelCallback(std::function<void()> fn) {
  return EnsureCancelState()->AddCallback(std::move(fn));
}

void CallContext::RemoveCancelCallback(uint64_t handle) {
  if (handle == 0) return;
  EnsureCancelState()->RemoveCallback(handle);
}

}  // namespace lpc
