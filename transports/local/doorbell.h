// Wake-up primitives for the rings: futexes on shared 32-bit words,
// eventfds, spin policy, and the "running on another CPU" hint.
//
// Futexes here are NOT private (FUTEX_WAIT/FUTEX_WAKE without
// FUTEX_PRIVATE_FLAG), because the word lives in a MAP_SHARED mapping seen
// by two processes. Every wait takes a timeout.
//
// Thread safety: all functions are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_DOORBELL_H_
#define LPC_TRANSPORTS_LOCAL_DOORBELL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transports/local/unique_fd.h"

namespace lpc::local {

// Sleeps while *word == expected, at most `timeout`. Returns OK when woken
// or when the value differs, DEADLINE_EXCEEDED on timeout. (Spurious wake-
// ups are possible; callers re-check their condition.)
absl::Status FutexWait(uint32_t* word, uint32_t expected,
                       absl::Duration timeout);
// Wakes up to `count` waiters on `word`.
void FutexWake(uint32_t* word, int count);

// An eventfd (non-blocking, close-on-exec) used as a doorbell that epoll can
// watch.
absl::StatusOr<UniqueFd> CreateEventFd();
// Adds 1 to the counter. Errors are ignored: a full counter already wakes.
void SignalEventFd(int fd);
// Reads and clears the counter; true if it was non-zero.
bool DrainEventFd(int fd);

// Something that wakes the peer of an endpoint (the client's ring of the
// server's eventfd; see internal/client_doorbell.h).
class PeerDoorbell {
 public:
  virtual ~PeerDoorbell() = default;
  // Wakes the peer. Never blocks.
  virtual void Ring() = 0;
};

// The value a side stores in its RunningWord while it works: 1 + its CPU.
uint32_t RunningValueForThisCpu();
// Whether spinning for `peer_running` (a RunningWord value) makes sense:
// the peer is running and is on a different CPU than the caller.
bool PeerRunningElsewhere(uint32_t peer_running);

// sched_yield().
void YieldCpu();

// Moves the calling thread to another CPU it may run on, and leaves its
// affinity as it was: the affinity is narrowed to the allowed CPUs other
// than the current one (which makes the kernel migrate the thread now),
// then restored. False, and nothing changed, if the thread may run on this
// CPU only, or the CPU or the affinity cannot be read. Costs two syscalls
// and a migration: for rare use (see AfterCall in local_server.cc).
bool MoveOffThisCpu();

// Monotonic clock in ns (CLOCK_MONOTONIC), the clock of wire deadlines.
int64_t MonotonicNowNs();
// Converts an absl deadline into absolute CLOCK_MONOTONIC ns (0 = none).
int64_t ToMonotonicDeadlineNs(absl::Time deadline);
// The same, given both clocks read at (about) the same moment.
int64_t ToMonotonicDeadlineNs(absl::Time deadline, absl::Time now,
                              int64_t mono_now_ns);
// Converts a wire deadline back (0 = InfiniteFuture).
absl::Time FromMonotonicDeadlineNs(int64_t deadline_ns);
// The same with no clock read, given an anchor: the wall-clock time of
// monotonic instant 0 (WallClockAnchor), read at most a little while ago.
// Saturates (a peer may send any value): never overflows.
absl::Time FromMonotonicDeadlineNs(int64_t deadline_ns, absl::Time anchor);
// The wall-clock time of monotonic instant 0, from both clocks read at
// (about) the same moment. It moves only when the wall clock is set.
absl::Time WallClockAnchor(absl::Time wall_now, int64_t mono_now_ns);

// Spins up to `budget_ns` (INT64_MAX: until keep_spinning() says stop)
// calling `ready()`; returns true as soon as it does. Stops early (false)
// once `keep_spinning()` is false; that is asked every 64 polls (a few
// microseconds), so it may read a clock or make a rate-limited check.
template <typename Ready, typename KeepSpinning>
bool SpinUntil(int64_t budget_ns, Ready ready, KeepSpinning keep_spinning) {
  if (budget_ns <= 0) return ready();
  const int64_t now = MonotonicNowNs();
  const int64_t end =
      budget_ns > INT64_MAX - now ? INT64_MAX : now + budget_ns;  // Saturate.
  for (uint32_t i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63) {
      if (!keep_spinning() || MonotonicNowNs() >= end) return ready();
    }
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

// Polls `ready()` with a sched_yield() between polls, for at most
// `budget_ns`, while `keep_going()` holds; true as soon as `ready()` does.
// Gives up at the first yield that took longer than 20 us: another thread
// wanted this CPU, and a poller that yields loses it for a time slice.
// If `first_yield_ns` is given, it receives how long the first yield took
// when `ready()` held right after it, and -1 otherwise.
template <typename Ready, typename KeepGoing>
bool YieldSpinUntil(int64_t budget_ns, Ready ready, KeepGoing keep_going,
                    int64_t* first_yield_ns = nullptr) {
  constexpr int64_t kLongYieldNs = 20 * 1000;
  if (first_yield_ns != nullptr) *first_yield_ns = -1;
  int64_t now = MonotonicNowNs();
  const int64_t end = now + budget_ns;
  for (int yields = 0; now < end; ++yields) {
    if (ready()) return true;
    if (!keep_going()) return false;
    YieldCpu();
    const int64_t after = MonotonicNowNs();
    if (yields == 0 && first_yield_ns != nullptr && ready()) {
      *first_yield_ns = after - now;
      return true;
    }
    if (after - now > kLongYieldNs) return ready();
    now = after;
  }
  return ready();
}

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_DOORBELL_H_
