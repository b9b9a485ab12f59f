// The local server's worker pool (worker_pool.h).
#include "transports/local/internal/worker_pool.h"

#include <sys/epoll.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "runtime/internal/serving_thread.h"
#include "transports/local/doorbell.h"

namespace lpc::local::internal {
namespace {

// While all workers are busy, how often one of them looks at the doorbells
// without waiting (see WorkerLoop).
constexpr int64_t kBusyPollNs = 50 * 1000;
// A lone client's handler that runs this long gets a poller beside it
// (see BeforeCallLocked).
constexpr int64_t kLazyPollerNs = 500 * 1000;
constexpr uint64_t kPokeTag = ~uint64_t{0} - 1;  // The pool's own eventfd.

FairScheduler::Options SchedulerOptions(const WorkerPool::Options& o) {
  FairScheduler::Options s;
  s.concurrency = o.concurrency;
  s.max_workers = o.max_workers;
  s.max_handlers_per_connection = o.max_handlers_per_connection;
  s.contended_cpu_share = o.contended_cpu_share;
  return s;
}

}  // namespace

int64_t WorkerPool::SystemClock::NowNs() { return MonotonicNowNs(); }

WorkerPool::WorkerPool(const Options& options, Delegate* delegate)
    : options_(options),
      delegate_(delegate),
      sched_(SchedulerOptions(options), &clock_) {}

WorkerPool::~WorkerPool() {
  Stop();
  Join();
}

absl::Status WorkerPool::Start() {
  doorbell_epoll_fd_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!doorbell_epoll_fd_) {
    return absl::ResourceExhaustedError("epoll_create1 failed");
  }
  absl::StatusOr<UniqueFd> poke = CreateEventFd();
  if (!poke.ok()) return poke.status();
  pool_eventfd_ = std::move(*poke);
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u64 = kPokeTag;
  ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_ADD, pool_eventfd_.get(), &ev);
  MutexLock lock(&mu_);
  for (int i = 0; i < options_.concurrency; ++i) SpawnWorkerLocked();
  return absl::OkStatus();
}

void WorkerPool::Stop() {
  stopping_.store(true);
  if (pool_eventfd_) SignalEventFd(pool_eventfd_.get());  // Poller returns.
}

void WorkerPool::Join() {
  std::vector<std::thread> threads;
  std::vector<FairScheduler::Client*> dropped;
  std::vector<WorkItem> calls;  // Destroyed without the lock.
  {
    MutexLock lock(&mu_);
    for (Worker* w : idle_) {
      w->signalled = true;
      w->cv.Signal();
    }
    threads.swap(threads_);
    dropped = sched_.Clear();
    for (FairScheduler::Client* c : dropped) {
      auto& entry = static_cast<Connection::PoolEntry&>(*c);
      for (; !entry.calls.empty(); entry.calls.pop_front()) {
        calls.push_back(std::move(entry.calls.front()));
      }
    }
    ready_.clear();
  }
  calls.clear();
  for (auto& t : threads) t.join();
}

void WorkerPool::WatchDoorbell(const Connection& c) {
  // Edge-triggered and never read: every write of the client is an edge,
  // and a counter the client saturates only stops its own doorbell (the
  // tick still finds its requests).
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = c.id;
  ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_ADD, c.eventfd.get(), &ev);
}

void WorkerPool::UnwatchDoorbell(const Connection& c) {
  ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_DEL, c.eventfd.get(),
              nullptr);
}

void WorkerPool::Schedule(const std::shared_ptr<Connection>& c, bool wake) {
  if (c->closed.load()) return;
  if (c->queued.exchange(true, std::memory_order_seq_cst)) return;
  MutexLock lock(&mu_);
  ready_.push_back(c);
  if (wake) WakeOneLocked();
}

void WorkerPool::Requeue(const std::shared_ptr<Connection>& c) {
  MutexLock lock(&mu_);
  ready_.push_back(c);
}

void WorkerPool::QueueCalls(const std::shared_ptr<Connection>& c,
                            std::vector<WorkItem>& items) {
  const int64_t now_ns = MonotonicNowNs();
  MutexLock lock(&mu_);
  if (c->closed.load()) return;  // Close cleared its calls; these go too.
  Connection::PoolEntry& e = EntryLocked(*c);
  for (WorkItem& item : items) e.calls.push_back(std::move(item));
  sched_.AddCalls(e, items.size(), now_ns);
}

FifoQueue<WorkItem> WorkerPool::Remove(Connection& c) {
  FifoQueue<WorkItem> dropped;
  MutexLock lock(&mu_);
  Connection::PoolEntry& e = EntryLocked(c);
  dropped.swap(e.calls);
  sched_.Remove(e);
  return dropped;
}

size_t WorkerPool::Busy() {
  MutexLock lock(&mu_);
  return sched_.queued_calls() + sched_.parked_calls() +
         static_cast<size_t>(sched_.running());
}

int WorkerPool::Running() {
  MutexLock lock(&mu_);
  return sched_.running();
}

void WorkerPool::Tick(const std::vector<std::shared_ptr<Connection>>& conns,
                      int64_t now_ns) {
  std::vector<FairScheduler::Sample> samples;
  samples.reserve(conns.size());
  MutexLock lock(&mu_);
  for (const std::shared_ptr<Connection>& c : conns) {
    samples.push_back({&EntryLocked(*c),
                       c->busy_ns.load(std::memory_order_relaxed),
                       c->pending_calls.load(std::memory_order_relaxed)});
  }
  sched_.Tick(samples, now_ns);
  // Pool growth: work is waiting, nobody is idle and nothing completed
  // during the last tick, so the running handlers are blocked.
  const size_t queued = sched_.queued_calls();
  const int running = sched_.running();
  const int limit = sched_.limit();
  const bool waiting = queued > 0 || !ready_.empty();
  const bool runnable = !ready_.empty() || (queued > 0 && running < limit);
  const bool free_worker = !idle_.empty() || poller_active_;
  if (runnable && free_worker) {
    WakeOneLocked();  // A free worker helps (or the poller is poked).
  } else if (waiting && (running >= limit || !free_worker) &&
             completions_ == last_completions_ &&
             limit < options_.max_workers) {
    sched_.set_limit(limit + 1);
    if (live_workers_ < limit + 1) SpawnWorkerLocked();
    WakeOneLocked();
  } else if (!waiting && limit > options_.concurrency) {
    sched_.set_limit(limit - 1);  // An idle worker above the limit exits.
    WakeOneLocked();
  }
  last_completions_ = completions_;
}

void WorkerPool::SpawnWorkerLocked() {
  // Join the threads that left after a burst of blocking, so that a pool
  // that grows and shrinks all day keeps no dead threads (and stacks).
  for (const std::thread::id& id : finished_) {
    auto it = std::find_if(threads_.begin(), threads_.end(),
                           [&](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join();  // It has left WorkerLoop; it needs no lock to finish.
      threads_.erase(it);
    }
  }
  finished_.clear();
  ++live_workers_;
  threads_started_.fetch_add(1, std::memory_order_relaxed);
  threads_.emplace_back([this] { WorkerLoop(); });
}

void WorkerPool::WakeOneLocked() {
  if (!idle_.empty()) {
    Worker* w = idle_.back();  // LIFO: the most recently idle is warm.
    idle_.pop_back();
    ++waking_;
    w->signalled = true;
    w->cv.Signal();
  } else if (poller_active_) {
    SignalEventFd(pool_eventfd_.get());
  }
}

// Called before running a handler: if nobody polls the doorbells, an idle
// worker takes over (a handler may block for long).
void WorkerPool::PromotePollerLocked() {
  if (poller_active_) {
    if (poller_long_wait_) {  // Shorten its sleep to the 1 ms watch.
      poller_long_wait_ = false;
      SignalEventFd(pool_eventfd_.get());
    }
    return;
  }
  // A worker woken a moment ago is on its way (it polls unless it finds
  // work first, and then its own call promotes again). Waking or starting
  // another meanwhile is what grew the pool by a thread per call when
  // spinners held both CPUs and woken workers waited for one.
  if (waking_ > 0) return;
  if (!idle_.empty()) {
    WakeOneLocked();
  } else if (live_workers_ < options_.max_workers + 1) {
    // One thread beyond the handlers always stays free to poll doorbells
    // and drain rings, so CANCEL records and new clients are read even
    // while every handler blocks.
    SpawnWorkerLocked();
  }
}

// Before a handler runs, someone must poll the doorbells (the handler may
// block). With clients or calls waiting that may start now, an idle worker
// takes over at once. Otherwise none is woken: on a shared CPU that
// wake-up is two context switches per call, and most calls end within
// microseconds. Calls held back by their client's caps or bucket do not
// count: while a slow flood's calls waited behind its handler cap, every
// call of a neighbour woke a worker (12,000 context switches a second in
// the server, `perf stat`, 2026-11-22); they start when one of their
// client's handlers ends, on that worker, or through the lazy poller.
// (Until this was also done with other clients busy, a neighbour's every
// call that came in by doorbell woke a second worker while a flood's
// handlers slept; see docs/reliability.md, Known problems 4.) The worker
// that ran it polls again afterwards; if it is still running after
// kLazyPollerNs, the I/O thread (which then wakes every millisecond)
// promotes a poller (PromoteLazyPoller). So a request that arrives while a
// lone handler blocks waits at most about kLazyPollerNs plus a millisecond
// (a CANCEL comes on the control socket, which the I/O thread reads).
void WorkerPool::BeforeCallLocked() {
  if (poller_active_ || !ready_.empty() ||
      (sched_.queued_calls() > 0 && sched_.AnyCallMayStart())) {
    PromotePollerLocked();
    return;
  }
  if (unpolled_since_ns_ == 0) unpolled_since_ns_ = MonotonicNowNs();
  unpolled_.store(true, std::memory_order_relaxed);
}

void WorkerPool::PromoteLazyPoller() {
  MutexLock lock(&mu_);
  // Somebody polls, or the worker is back (it polls next).
  if (poller_active_ || unpolled_since_ns_ == 0 || sched_.running() == 0) {
    unpolled_since_ns_ = 0;
    unpolled_.store(false, std::memory_order_relaxed);
    return;
  }
  if (MonotonicNowNs() - unpolled_since_ns_ < kLazyPollerNs) return;
  unpolled_since_ns_ = 0;
  unpolled_.store(false, std::memory_order_relaxed);
  PromotePollerLocked();
}

bool WorkerPool::NoCallMayStart() {
  if (queued_calls_hint() == 0) return true;
  MutexLock lock(&mu_);
  return !sched_.AnyCallMayStart();
}

bool WorkerPool::TakeCallLocked(WorkItem* item) {
  FairScheduler::Client* c = sched_.TakeCall();
  if (c == nullptr) return false;
  auto& entry = static_cast<Connection::PoolEntry&>(*c);
  *item = std::move(entry.calls.front());
  entry.calls.pop_front();
  return true;
}

void WorkerPool::WorkerLoop() {
  ::lpc::internal::ServingThreadScope serving;  // Runs handlers.
  Worker self;
  bool idle_timed_out = false;  // The last idle wait ended with no signal.
  // contended_cpu_share charges a client for all of this worker's time on
  // it: at the end of each of its calls, the time since the worker's
  // previous charge (or since it began work after a wait), which includes
  // the ring read that queued the call. The pool's own cost between calls
  // (taking a call, the lock, freeing a call's buffers, the spin for the
  // client's next request) is then charged too, not only the handler: a
  // light client's worker spends most of its time on it spinning or
  // polling for the next request, and counting handlers alone made a
  // spinning neighbour look nearly idle, so a flood's bucket refilled far
  // above the floor (docs/reliability.md, Known problems 4). 0: not
  // accounting, or the worker has just waited.
  int64_t busy_since_ns = 0;
  auto start_work = [&] {
    if (busy_since_ns == 0 && accounting_hint()) {
      busy_since_ns = MonotonicNowNs();
    }
  };
  mu_.Lock();
  while (!stopping_.load()) {
    // While every worker has work, nobody sleeps in the doorbell poller: a
    // busy worker then looks at the doorbells itself (without waiting),
    // at most every kBusyPollNs, so a quiet client's request is seen while
    // another client keeps the pool busy.
    if (!poller_active_ && (sched_.queued_calls() > 0 || !ready_.empty()) &&
        MonotonicNowNs() - last_poll_ns_.load(std::memory_order_relaxed) >=
            kBusyPollNs) {
      poller_active_ = true;
      mu_.Unlock();
      PollDoorbells(0, /*busy=*/true);
      mu_.Lock();
      poller_active_ = false;
      continue;
    }
    // Rings first: reading a client's records is short, and only then can
    // its calls take their turn with other clients' (a busy client's queue
    // must not hide a quiet client's new request).
    if (!ready_.empty()) {
      idle_timed_out = false;
      std::shared_ptr<Connection> c = std::move(ready_.front());
      ready_.pop_front();
      mu_.Unlock();
      start_work();
      delegate_->Drain(c);
      // Not charged here: reading the ring rolls into the charge of this
      // worker's next call, nearly always one of this client's (the one
      // it has just read). One clock read per call, not two.
      mu_.Lock();
      continue;  // (A last reference to `c` may go under the lock: see
                 // below.)
    }
    if (sched_.queued_calls() > 0) {
      WorkItem item;
      if (TakeCallLocked(&item)) {
        idle_timed_out = false;
        BeforeCallLocked();
        mu_.Unlock();
        start_work();
        delegate_->RunCall(item);
        std::shared_ptr<Connection> conn = std::move(item.conn);
        item = WorkItem();  // Frees the call's buffers outside the lock.
        // The end of a call of `conn`: charges it the worker's time.
        int64_t ns = 0, now_ns = 0;
        if (!accounting_hint()) {
          busy_since_ns = 0;
        } else {
          now_ns = MonotonicNowNs();
          ns = busy_since_ns == 0
                   ? 0
                   : std::min(now_ns - busy_since_ns,
                              FairScheduler::kMaxChargeNs);
          busy_since_ns = now_ns;
          conn->busy_ns.fetch_add(ns, std::memory_order_relaxed);
        }
        mu_.Lock();
        Connection::PoolEntry& e = EntryLocked(*conn);
        if (ns > 0 && sched_.Charge(e, ns, now_ns)) {
          throttle_pauses_.fetch_add(1, std::memory_order_relaxed);
        }
        sched_.CallDone(e);
        ++completions_;
        continue;  // Perhaps the last reference to a closed connection
                   // goes under the lock: no member of it takes mu_.
      }
    }
    // Shrink after a burst of blocking, keeping two threads beyond the
    // running handlers (the poller, and one to take a call at once). Only
    // while another thread polls: the thread that would become the poller
    // stays, or the next call would start a new thread (churn). And only
    // after a whole idle wait without work: a thread that left as soon as
    // it was spare was replaced at the next handler's start, and under a
    // flood of blocking calls the pool started and ended about a thousand
    // threads a second.
    if (idle_timed_out && poller_active_ &&
        live_workers_ > std::max(sched_.limit(), sched_.running()) + 2) {
      break;
    }
    idle_timed_out = false;
    if (!poller_active_) {
      // While handlers run, the poller also watches their clients' rings
      // (every millisecond), since their doorbells are off.
      poller_active_ = true;
      unpolled_since_ns_ = 0;
      unpolled_.store(false, std::memory_order_relaxed);
      // Parked calls (their clients' buckets refilling) need a look when
      // the first bucket is full (PollDoorbells unparks them), not every
      // millisecond.
      int timeout_ms = 100;
      if (sched_.running() > 0 || sched_.queued_calls() > 0) {
        timeout_ms = 1;
      } else if (sched_.any_parked()) {
        const int64_t wait_ns = sched_.next_resume_ns() - MonotonicNowNs();
        timeout_ms = static_cast<int>(
            std::clamp<int64_t>((wait_ns + 999999) / 1000000, 1, 100));
      }
      poller_long_wait_ = timeout_ms > 1;
      mu_.Unlock();
      PollDoorbells(timeout_ms, /*busy=*/false);
      busy_since_ns = 0;  // It waited.
      mu_.Lock();
      poller_active_ = false;
      poller_long_wait_ = false;
      continue;
    }
    self.signalled = false;
    busy_since_ns = 0;
    idle_.push_back(&self);
    const absl::Time deadline = absl::Now() + absl::Milliseconds(100);
    while (!self.signalled && !stopping_.load()) {
      if (!self.cv.WaitWithDeadline(&mu_, deadline)) break;
    }
    idle_timed_out = !self.signalled && !stopping_.load();
    if (self.signalled) --waking_;  // The waker took it off idle_.
    auto it = std::find(idle_.begin(), idle_.end(), &self);
    if (it != idle_.end()) idle_.erase(it);
  }
  --live_workers_;
  finished_.push_back(std::this_thread::get_id());
  mu_.Unlock();
}

// The doorbell poller (no lock held): waits for client doorbells, at most
// `timeout_ms`, and queues the connections that rang; at most once per
// millisecond it also looks at the rings of clients whose handlers run.
void WorkerPool::PollDoorbells(int timeout_ms, bool busy) {
  struct epoll_event events[64];
  const int n = ::epoll_wait(doorbell_epoll_fd_.get(), events, 64, timeout_ms);
  const int64_t polled_ns = MonotonicNowNs();
  last_poll_ns_.store(polled_ns, std::memory_order_relaxed);
  const int64_t resume_ns = next_resume_hint();
  if (resume_ns != 0 && polled_ns >= resume_ns) {
    MutexLock lock(&mu_);
    sched_.Unpark(polled_ns);  // This worker takes their calls next.
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag == kPokeTag) {
      DrainEventFd(pool_eventfd_.get());
      continue;
    }
    std::shared_ptr<Connection> c = delegate_->Lookup(tag);
    if (c == nullptr) continue;
    c->doorbells.fetch_add(1, std::memory_order_relaxed);
    // The poller serves the first client itself; a busy worker has work
    // of its own, so every client it finds gets a free worker (which then
    // runs on another CPU while this one goes on).
    Schedule(c, /*wake=*/busy || i > 0);
  }
  const int64_t now = MonotonicNowNs();
  if (now - last_scan_ns_.load(std::memory_order_relaxed) >= 1000 * 1000) {
    last_scan_ns_.store(now, std::memory_order_relaxed);
    delegate_->ScanBusyConnections();
  }
}

}  // namespace lpc::local::internal
