// FairScheduler: which client's decoded call a worker of the local server
// runs next, as pure logic. No threads, no locks, no syscalls: time comes
// from the caller (`now_ns`) or from an injected Clock, so that tests can
// drive every rule with exact times.
//
// The rules (docs/local-transport.md, "Worker pool"):
//  - Turns: clients with calls waiting take turns round-robin, one call per
//    client per turn (TakeCall).
//  - Caps (CanStart): a client with no handler running may always start
//    one, up to max_workers in all, so a busy or hostile neighbour cannot
//    make it wait for a worker. Further handlers of one client need the
//    pool under its concurrency limit, the client under
//    max_handlers_per_connection, and, with several clients active, the
//    client under its even part of the limit.
//  - contended_cpu_share (Tick, Charge): every tick measures each client's
//    share of a CPU (the time workers spent on it, smoothed). A client is
//    "queued up" while two or more of its calls wait beyond those running
//    (this tick or the last), and "light" while active and not queued up.
//    While a light client is active, a queued-up client is "contended": its
//    time is charged to a token bucket kShareBurstNs deep, refilling at
//    max(contended_cpu_share, 1 - 4 x the light clients' share); when the
//    bucket is empty its calls wait (throttled, parked) until it is full
//    again. Queued-up clients with no light one active are not limited
//    against each other.
//
// Thread safety: none; the caller serialises every call (the worker pool
// holds its mutex). queued_calls(), next_resume_ns() and accounting() may
// also be read without that lock, as hints.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_FAIR_SCHEDULER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_FAIR_SCHEDULER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/types/span.h"

namespace lpc::local::internal {

// Monotonic nanoseconds; injected so that tests control time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() = 0;
};

class FairScheduler {
 public:
  // How long a client counts as active after its last call arrived.
  static constexpr int64_t kActiveWindowNs = 20 * 1000 * 1000;
  // The token bucket's depth, the most one call is charged (a handler that
  // blocks for long uses no CPU meanwhile; the handler caps bound those),
  // and the most debt a bucket runs up. The depth sets how often a
  // throttled client runs: each of its turns puts a worker (and wakes the
  // client) on a CPU where a neighbour may spin, and a neighbour's pair
  // needs a while to spin again after that. With 250 us turns (200 a second
  // at the 5% floor) the neighbour of a oneway flood kept 61-95% of its
  // throughput over 30 s, p99 x1.1-4.1; with 2 ms turns (25 a second)
  // 65-100%, p99 x0.95-1.95 (docs/reliability.md, item 10).
  static constexpr int64_t kShareBurstNs = 2000 * 1000;
  static constexpr int64_t kMaxChargeNs = 1000 * 1000;
  static constexpr int64_t kMaxShareDebtNs = 1000 * 1000;

  struct Options {
    int concurrency = 1;   // The initial limit on running handlers.
    int max_workers = 2;   // Handlers running at most, in all.
    int max_handlers_per_connection = 1;
    double contended_cpu_share = 0.05;  // In [0, 1]; 0 = off.
  };

  // One client's scheduling state. Owned by the caller (one per
  // connection); it must stay put, and be Remove()d before it dies if it
  // has calls waiting.
  class Client {
   public:
    size_t waiting() const { return waiting_; }
    int running() const { return running_; }
    bool active() const { return active_; }
    bool throttled() const { return throttled_; }
    bool parked() const { return parked_; }
    bool contended() const { return contended_; }
    int64_t tokens_ns() const { return tokens_ns_; }
    double share() const { return share_; }

   private:
    friend class FairScheduler;
    size_t waiting_ = 0;  // Calls queued (runnable or parked).
    int running_ = 0;     // Handlers running now.
    bool runnable_ = false;  // In runnable_ (calls waiting, not parked).
    bool parked_ = false;    // In parked_.
    bool active_ = false;    // Counted in active_clients_.
    int64_t last_active_ns_ = 0;
    bool contended_ = false;
    bool throttled_ = false;
    int64_t tokens_ns_ = kShareBurstNs;
    int64_t refilled_ns_ = 0;
    int64_t tick_busy_ns_ = 0;  // busy_ns at the last tick.
    double share_ = 0;          // Of one CPU, smoothed over ticks.
    bool backlogged_ = false;
    bool backlog_seen_ = false;
  };

  // What the tick measured of one client: the time workers spent on it so
  // far (a running total) and its calls queued or running.
  struct Sample {
    Client* client;
    int64_t busy_ns;
    uint32_t pending_calls;
  };

  FairScheduler(const Options& options, Clock* clock);
  FairScheduler(const FairScheduler&) = delete;
  FairScheduler& operator=(const FairScheduler&) = delete;

  // `n` calls of `c` were queued at `now_ns`; it becomes active and, unless
  // parked, takes its turn.
  void AddCalls(Client& c, size_t n, int64_t now_ns);
  // The client whose call starts next, or null if none may start now. Its
  // waiting() has dropped by one and running() grown by one; the caller
  // starts that client's oldest call. A throttled client met on the way is
  // parked (reads the clock).
  Client* TakeCall();
  // A call of `c` has finished.
  void CallDone(Client& c);
  // Charges `ns` of worker time to `c` at `now_ns`, if it is contended.
  // Returns true if that emptied its bucket (a pause begins).
  bool Charge(Client& c, int64_t ns, int64_t now_ns);
  // The tick: clients idle for kActiveWindowNs become inactive, shares and
  // contention are recomputed from `samples` (every connection), and
  // parked clients whose buckets are full are unparked.
  void Tick(absl::Span<const Sample> samples, int64_t now_ns);
  // Unparks the clients whose buckets are full at `now_ns`.
  void Unpark(int64_t now_ns);
  // Takes `c` out of the scheduler (its connection closed); its waiting
  // calls are dropped by the caller.
  void Remove(Client& c);
  // Drops every client with calls waiting (shutdown) and returns them, for
  // the caller to drop their calls.
  std::vector<Client*> Clear();

  bool CanStart(const Client& c) const;
  bool AnyCallMayStart() const;

  // Calls waiting in the round (parked ones excluded); readable without
  // the caller's lock as a hint.
  size_t queued_calls() const {
    return queued_calls_.load(std::memory_order_relaxed);
  }
  size_t parked_calls() const { return parked_calls_; }
  bool any_parked() const { return !parked_.empty(); }
  // When the first parked client's bucket is full (0: none parked); a hint
  // without the lock.
  int64_t next_resume_ns() const {
    return next_resume_ns_.load(std::memory_order_relaxed);
  }
  // Whether worker time is being charged (several clients active and a
  // floor set); a hint without the lock.
  bool accounting() const { return accounting_.load(std::memory_order_relaxed); }
  int running() const { return running_; }
  int limit() const { return limit_; }
  void set_limit(int limit) { limit_ = limit; }
  int max_workers() const { return options_.max_workers; }
  int active_clients() const { return active_clients_; }
  double refill_share() const { return refill_share_; }

 private:
  void SetActive(Client& c, bool active);
  void Refill(Client& c, int64_t now_ns);
  int64_t ResumeAt(const Client& c, int64_t now_ns) const;
  void Park(Client& c, int64_t now_ns);

  const Options options_;
  Clock* const clock_;
  std::deque<Client*> runnable_;  // Clients with calls waiting, each once.
  // Throttled clients with calls waiting, out of runnable_ until their
  // buckets are full again. Parked calls are not in queued_calls_: while a
  // flood waits for its bucket, its queued calls must cost the other
  // clients' calls nothing (no clock read, no turn, no busy doorbell poll,
  // no worker woken by the tick).
  std::vector<Client*> parked_;
  std::atomic<size_t> queued_calls_{0};
  size_t parked_calls_ = 0;
  std::atomic<int64_t> next_resume_ns_{0};
  std::atomic<bool> accounting_{false};
  int active_clients_ = 0;
  int running_ = 0;
  int limit_;
  double refill_share_ = 1;  // Of one CPU.
  int64_t last_tick_ns_ = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_FAIR_SCHEDULER_H_
