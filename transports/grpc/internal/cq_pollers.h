// CqPollers: the threads that poll GrpcServerTransport's completion queue
// and run unary handlers where the call arrived, as gRPC's synchronous
// server does: no hand-off between the thread that took the call from gRPC
// and the one that runs its handler.
//
// Every event on the queue (a CqEvent) runs on the thread that took it.
// One that runs a handler is admitted first (Admit): it counts as busy
// while it runs, and whenever no other thread is left polling a spare
// thread is woken, or a new one starts, up to max_handlers busy threads
// plus one. So some thread always takes the events of the calls being
// handled (cancellations, completed replies) and blocking handlers never
// stall the queue. Handlers beyond max_handlers wait in a FIFO of at most
// max_queued, run by the next thread whose handler returns.
//
// At most min_threads threads poll at once, as in gRPC's synchronous
// server: a thread done with its event while that many others poll waits
// as a spare until Admit needs it. (When every thread polls, each call's
// events land on ever other threads: with one caller, 2.4 times the server
// CPU per call and less than half the calls/s, in docs/grpc-transport.md.)
//
// Shutdown, the transport's, in steps: StopIntake() refuses further
// handlers and drops the queued ones (before the transport cancels the
// running ones, so that no thread whose handler returns takes a queued
// call meanwhile); WaitIdle() waits for the running ones to return; after
// the completion queue was shut down, Join() waits for the threads to drain
// it and exit. Stop() is the first two.
//
// Thread safety: thread-safe. mu_ is a leaf lock: tasks run without it.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_CQ_POLLERS_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_CQ_POLLERS_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include <grpcpp/completion_queue.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/mutex.h"

namespace lpc::grpc_transport {

// A tag handed to gRPC for the completion queue: the thread that takes it
// from the queue calls OnEvent.
class CqEvent {
 public:
  virtual void OnEvent(bool ok) = 0;

 protected:
  ~CqEvent() = default;
};

// gRPC's completion queue orders whatever a thread did before handing a tag
// to gRPC before the event that returns the tag, but ThreadSanitizer cannot
// see that edge (Debian's gRPC is not built with it). Call this right
// before handing `tag` to gRPC; the pollers acquire the tag when they take
// it from the queue. Nothing outside TSan builds.
inline void HandToQueue(CqEvent* tag) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(tag);
#else
  (void)tag;
#endif
}

// A CqEvent that calls a member function of its owner.
template <typename T>
class CqMemberEvent final : public CqEvent {
 public:
  CqMemberEvent(T* owner, void (T::*fn)(bool)) : owner_(owner), fn_(fn) {}
  void OnEvent(bool ok) override { (owner_->*fn_)(ok); }

 private:
  T* const owner_;
  void (T::*const fn_)(bool);
};

// The requests for calls handed to gRPC for one completion queue, shut off
// before the queue shuts down: gRPC aborts on a request to a completion
// queue that is shut down, and a poller that takes a call asks for the next
// one.
class RequestGate {
 public:
  // Runs `request` (which asks gRPC for a call) unless Close() ran; whether
  // it ran. `request` must not block (it runs under the gate's lock).
  bool Run(absl::FunctionRef<void()> request) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (closed_) return false;
    request();
    return true;
  }
  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class CqPollers {
 public:
  struct Options {
    // Threads polling from the start; at most max_handlers + 1 in all.
    int min_threads = 2;
    int max_handlers = 64;
    // Handlers waiting for a thread; more are refused.
    size_t max_queued = 4096;
  };

  // Runs once: with true on a poller thread, or with false when dropped by
  // Stop() (it then fails its call without blocking).
  using Task = std::function<void(bool run)>;

  enum class Admission { kRunHere, kQueued };

  CqPollers(grpc::ServerCompletionQueue* cq, Options options);
  ~CqPollers();  // Stop() and Join(); the queue must be shut down first.
  CqPollers(const CqPollers&) = delete;
  CqPollers& operator=(const CqPollers&) = delete;

  // Starts min_threads threads.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);

  // From a CqEvent: admits a handler. kRunHere: the calling thread now
  // counts as busy and must call RunAdmitted(*task). kQueued: `*task` was
  // moved into the FIFO. UNAVAILABLE once stopped, RESOURCE_EXHAUSTED when
  // the FIFO is full; `*task` is left alone then.
  absl::StatusOr<Admission> Admit(Task* task) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs an admitted task, then queued ones while there are any, on the
  // calling thread.
  void RunAdmitted(Task task) ABSL_LOCKS_EXCLUDED(mu_);

  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_);

  struct ThreadCounts {
    int threads = 0;  // Started and not joined.
    int spares = 0;   // Waiting, and not yet told to poll.
    int polling = 0;  // In (or about to enter) the queue's Next.
  };
  ThreadCounts thread_counts() const ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses further tasks and runs the queued ones with false, on this
  // thread. A thread whose task returns afterwards takes no other.
  // Idempotent.
  void StopIntake() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits for the running tasks to return. Not from a task.
  void WaitIdle() ABSL_LOCKS_EXCLUDED(mu_);
  // StopIntake() and WaitIdle(). Idempotent; not from a task.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits for the threads to exit, which they do once the completion queue
  // is shut down and drained. Idempotent; not from a poller thread.
  void Join() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();
  void SpawnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns when the calling thread may poll: at once while fewer than
  // min_threads threads poll, else once Admit or Join wakes it.
  void WaitForTurn() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::ServerCompletionQueue* const cq_;
  const Options options_;
  // Threads inside cq_->Next() or about to call it; rises under mu_ only.
  std::atomic<int> polling_{0};

  mutable Mutex mu_;
  CondVar idle_cv_;  // running_ dropped to zero.
  CondVar spare_cv_;  // A spare may poll (wakeups_), or Join() started.
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool joining_ ABSL_GUARDED_BY(mu_) = false;
  int spares_ ABSL_GUARDED_BY(mu_) = 0;   // Threads in WaitForTurn's wait.
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;  // Spares told to poll, not gone.
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // Threads running tasks.
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_CQ_POLLERS_H_
