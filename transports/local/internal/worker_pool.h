// The local server's worker pool: one completion-port-style pool of
// threads for every connection.
//
// Workers take ready connections (whose rings the server drains, up to a
// batch per turn, round-robin) and decoded calls, which wait in a queue per
// connection and are taken in the order of the FairScheduler. One idle
// worker at a time is the doorbell poller: it waits in epoll on every
// client's eventfd (edge-triggered, never read) and serves what it finds
// itself, so a request that wakes the server costs one wake-up, not an
// I/O-thread hop. Before it runs a handler (which may block) it makes sure
// somebody else polls (BeforeCallLocked). Other idle workers wait LIFO on
// their own condition variable. The pool grows while handlers block (Tick)
// and shrinks after a burst of blocking.
//
// Thread safety: thread-safe. mu_ is a leaf: the pool never calls the
// delegate, or takes a connection's lock, while holding it.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_WORKER_POOL_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_WORKER_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "runtime/mutex.h"
#include "transports/local/internal/fair_scheduler.h"
#include "transports/local/internal/fifo_queue.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class WorkerPool {
 public:
  // What the workers run, provided by the server. Called without the
  // pool's lock.
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // Reads a batch of `c`'s ring records; its calls go to QueueCalls.
    virtual void Drain(const std::shared_ptr<Connection>& c) = 0;
    // Runs one call: its handler, its reply, and what follows (AfterCall).
    virtual void RunCall(WorkItem& item) = 0;
    // The open connection `id`, or null.
    virtual std::shared_ptr<Connection> Lookup(uint64_t id) = 0;
    // Schedules the clients that have a handler running and records
    // waiting (their doorbells are off while handlers run).
    virtual void ScanBusyConnections() = 0;
  };

  struct Options {
    int concurrency = 1;
    int max_workers = 2;
    int max_handlers_per_connection = 1;
    double contended_cpu_share = 0.05;
  };

  WorkerPool(const Options& options, Delegate* delegate);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Creates the doorbell epoll set and starts `concurrency` workers.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Tells the workers to exit and wakes the poller; Join() waits for them.
  // Between the two, nothing may call Tick (it may start a thread).
  void Stop();
  void Join() ABSL_LOCKS_EXCLUDED(mu_);

  // Watches client `c`'s eventfd doorbell, or stops watching it.
  void WatchDoorbell(const Connection& c);
  void UnwatchDoorbell(const Connection& c);

  // Queues `c` for a drain of its ring, unless it is queued or closed;
  // `wake` wakes a free worker for it.
  void Schedule(const std::shared_ptr<Connection>& c, bool wake)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Puts `c` (being drained) at the back of the ready list.
  void Requeue(const std::shared_ptr<Connection>& c) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues the calls a drain of `c` decoded (moved out of `items`); they
  // are dropped if `c` closed meanwhile.
  void QueueCalls(const std::shared_ptr<Connection>& c,
                  std::vector<WorkItem>& items) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes closed connection `c` out of the pool; returns its queued calls
  // for the caller to destroy without the lock.
  FifoQueue<WorkItem> Remove(Connection& c) ABSL_LOCKS_EXCLUDED(mu_);

  // Whether a worker may stay with one client (AfterCall's spins): no
  // queued call that may start waits. Takes the lock only when calls wait.
  bool NoCallMayStart() ABSL_LOCKS_EXCLUDED(mu_);
  // Calls waiting for a worker, read without the lock (a hint).
  size_t queued_calls_hint() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return sched_.queued_calls();  // An atomic of the scheduler's.
  }
  // At most one worker at a time polls, yielding, for a client it has just
  // woken (AfterCall); true if this one may.
  bool TryStartWakeSpin() {
    return !wake_spinner_.exchange(true, std::memory_order_acq_rel);
  }
  void EndWakeSpin() { wake_spinner_.store(false, std::memory_order_release); }

  // The I/O thread's tick (every 10 ms): the scheduler's shares and
  // buckets over `conns` (every open connection), and the pool's growth.
  void Tick(const std::vector<std::shared_ptr<Connection>>& conns,
            int64_t now_ns) ABSL_LOCKS_EXCLUDED(mu_);
  // True while a handler runs with nobody polling; the I/O thread then
  // calls PromoteLazyPoller every millisecond.
  bool unpolled() const { return unpolled_.load(std::memory_order_relaxed); }
  void PromoteLazyPoller() ABSL_LOCKS_EXCLUDED(mu_);

  // Calls queued, parked or running (shutdown waits for none).
  size_t Busy() ABSL_LOCKS_EXCLUDED(mu_);
  int Running() ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t throttle_pauses() const {
    return throttle_pauses_.load(std::memory_order_relaxed);
  }
  uint64_t threads_started() const {
    return threads_started_.load(std::memory_order_relaxed);
  }

 private:
  struct Worker {
    CondVar cv;
    bool signalled = false;  // Guarded by mu_.
  };
  class SystemClock : public Clock {
   public:
    int64_t NowNs() override;
  };

  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void PollDoorbells(int timeout_ms, bool busy) ABSL_LOCKS_EXCLUDED(mu_);
  void PromotePollerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeforeCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SpawnWorkerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeOneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the next call the scheduler allows into `item`.
  bool TakeCallLocked(WorkItem* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A connection's pool state; only under mu_.
  Connection::PoolEntry& EntryLocked(Connection& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return c.pool_entry;
  }
  // The scheduler's hints (atomics), read without the lock.
  int64_t next_resume_hint() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return sched_.next_resume_ns();
  }
  bool accounting_hint() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return sched_.accounting();
  }

  const Options options_;
  Delegate* const delegate_;
  SystemClock clock_;
  UniqueFd doorbell_epoll_fd_;  // Client eventfds (EPOLLET) + pool_eventfd_.
  UniqueFd pool_eventfd_;       // Pokes the doorbell poller.
  std::atomic<bool> stopping_{false};

  mutable Mutex mu_;
  FairScheduler sched_ ABSL_GUARDED_BY(mu_);
  // Connections whose rings need reading, each once (Connection::queued).
  std::deque<std::shared_ptr<Connection>> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<Worker*> idle_ ABSL_GUARDED_BY(mu_);  // LIFO.
  bool poller_active_ ABSL_GUARDED_BY(mu_) = false;
  // Workers signalled (taken off idle_) that have not run yet.
  int waking_ ABSL_GUARDED_BY(mu_) = 0;
  bool poller_long_wait_ ABSL_GUARDED_BY(mu_) = false;  // 100 ms, not 1.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> finished_ ABSL_GUARDED_BY(mu_);  // Left.
  int live_workers_ ABSL_GUARDED_BY(mu_) = 0;
  // A handler runs and nobody polls (BeforeCallLocked), since when.
  // `unpolled_` mirrors it for the I/O thread's timeout.
  int64_t unpolled_since_ns_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> unpolled_{false};
  uint64_t completions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_completions_ ABSL_GUARDED_BY(mu_) = 0;  // At the last tick.
  // A worker polls, yielding, for a sleeping client's next request
  // (AfterCall); at most one at a time.
  std::atomic<bool> wake_spinner_{false};
  std::atomic<int64_t> last_scan_ns_{0};  // ScanBusyConnections.
  std::atomic<int64_t> last_poll_ns_{0};  // Last look at the doorbells.
  std::atomic<uint64_t> throttle_pauses_{0}, threads_started_{0};
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_WORKER_POOL_H_
