// The longest turn of a server thread that every client shares
// (LocalServerStats::longest_*_ns): a cheap clock and a running maximum.
//
// Thread safety: LongestTurn is updated and read from any thread.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_TURN_TIMER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_TURN_TIMER_H_

#include <time.h>

#include <atomic>
#include <cstdint>

namespace lpc::local::internal {

// CLOCK_MONOTONIC_COARSE in ns: a vDSO read of the last tick's time,
// cheaper than CLOCK_MONOTONIC, at the tick's resolution (1-4 ms).
inline int64_t CoarseNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The longest duration noted.
class LongestTurn {
 public:
  void Note(int64_t ns) {
    int64_t cur = ns_.load(std::memory_order_relaxed);
    while (ns > cur &&
           !ns_.compare_exchange_weak(cur, ns, std::memory_order_relaxed)) {
    }
  }
  int64_t ns() const { return ns_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> ns_{0};
};

// Notes the time from construction to destruction in `turn`.
class TimedTurn {
 public:
  explicit TimedTurn(LongestTurn* turn) : turn_(turn), start_(CoarseNowNs()) {}
  ~TimedTurn() { turn_->Note(CoarseNowNs() - start_); }
  TimedTurn(const TimedTurn&) = delete;
  TimedTurn& operator=(const TimedTurn&) = delete;

 private:
  LongestTurn* const turn_;
  const int64_t start_;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_TURN_TIMER_H_
