// lpc::Mutex: std::mutex behind abseil's thread-safety annotations.
//
// lpc's own locks are std::mutex and std::condition_variable, because Debian's
// prebuilt absl::Mutex is invisible to ThreadSanitizer. This wrapper only adds
// the ABSL_LOCKABLE / ABSL_GUARDED_BY documentation (checked by clang's
// -Wthread-safety; under g++ it documents intent).
#ifndef LPC_RUNTIME_MUTEX_H_
#define LPC_RUNTIME_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lpc {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable that works with lpc::Mutex. Waits always carry a
// deadline: lpc has no unbounded waits.
class CondVar {
 public:
  // Waits until notified or `deadline` passes; the caller holds `mu`.
  // Returns false on timeout. Spurious wake-ups are possible: loop on the
  // predicate.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu->native(), std::adopt_lock);
    bool notified = true;
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      notified = cv_.wait_until(lock, absl::ToChronoTime(deadline)) ==
                 std::cv_status::no_timeout;
    }
    lock.release();
    return notified;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace lpc

#endif  // LPC_RUNTIME_MUTEX_H_
