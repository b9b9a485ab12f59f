// HandlerPool: the threads that run handlers, shared by lpc's server
// transports (in-process, gRPC).
//
// A transport submits one task per call that needs a thread: a synchronous
// handler, or the start of a call through the call model (an asynchronous
// handler returns at once and holds no thread afterwards). The pool starts
// `min_workers` threads and more, up to `max_workers`, while every worker
// is busy; tasks beyond that wait in a FIFO queue of at most `max_queued`.
//
// Each task runs exactly once: `task(true)` on a worker, or `task(false)`
// when the pool is joined before a worker took it (the task then fails its
// call without blocking).
//
// Shutdown is the transport's, in three steps: Stop() refuses new tasks
// while workers go on with the queued ones; WaitIdle(deadline) waits for
// the queue to empty and the running tasks to return; Join() drops what is
// still queued and waits for the workers to exit, which they do as soon as
// their current task returns (the transport cancels those calls first).
//
// Thread safety: thread-safe. mu_ is a leaf lock: tasks run without it.
#ifndef LPC_RUNTIME_INTERNAL_HANDLER_POOL_H_
#define LPC_RUNTIME_INTERNAL_HANDLER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/mutex.h"

namespace lpc::internal {

class HandlerPool {
 public:
  struct Options {
    // Threads started by Start(), and the most the pool grows to.
    // Default: 2 and 32.
    int min_workers = 2;
    int max_workers = 32;
    // Tasks that may wait for a worker; Submit refuses more with
    // RESOURCE_EXHAUSTED. Default: unbounded.
    size_t max_queued = std::numeric_limits<size_t>::max();
  };

  // Runs once, with true on a worker or false when dropped at Join.
  using Task = std::function<void(bool run)>;

  explicit HandlerPool(Options options);
  ~HandlerPool();  // Stop() and Join().
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  // Starts min_workers threads. INVALID_ARGUMENT unless
  // 1 <= min_workers <= max_workers; FAILED_PRECONDITION if started before.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);

  // Queues `task`. UNAVAILABLE when the pool is not running (not started,
  // or stopped), RESOURCE_EXHAUSTED when max_queued tasks wait; `task` is
  // not run then (the caller still owns the call it stands for).
  absl::Status Submit(Task task) ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses further tasks; queued ones still run. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until no task is queued or running, or `deadline`; returns
  // whether the pool is idle.
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops, drops the queued tasks (task(false), on this thread), and waits
  // for the workers to finish their current tasks and exit. Idempotent;
  // must not be called from a task. (Workers run inside a
  // ServingThreadScope, so Server::Shutdown from a task hands the
  // transports' shutdown to a thread of the server's.)
  void Join() ABSL_LOCKS_EXCLUDED(mu_);

  // Tasks waiting for a worker, and tasks running.
  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_);
  int running() const ABSL_LOCKS_EXCLUDED(mu_);
  // Threads started so far.
  int threads() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class State { kNew, kRunning, kStopped, kJoined };

  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void StartWorkerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;

  mutable Mutex mu_;
  CondVar work_cv_;  // A task was queued, or the pool is joining.
  CondVar idle_cv_;  // A task returned, or the queue emptied.
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  int idle_workers_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lpc::internal

#endif  // LPC_RUNTIME_INTERNAL_HANDLER_POOL_H_
