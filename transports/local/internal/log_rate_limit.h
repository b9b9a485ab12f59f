// LogRateLimit: at most `per_window` log lines per window (1 s by default),
// so that a peer that gets itself cut off in a loop cannot flood stderr.
// The first line admitted after some were left out learns how many, to say
// so. Pure logic: time comes from the caller.
//
// Thread safety: none; the caller serialises calls.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_LOG_RATE_LIMIT_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_LOG_RATE_LIMIT_H_

#include <cstdint>
#include <utility>

namespace lpc::local::internal {

class LogRateLimit {
 public:
  explicit LogRateLimit(int per_window = 10,
                        int64_t window_ns = 1000 * 1000 * 1000)
      : per_window_(per_window), window_ns_(window_ns) {}

  // Whether a line may be written at `now_ns` (monotonic). When it may,
  // `*left_out` is the number of lines left out since the last one written.
  bool Admit(int64_t now_ns, uint64_t* left_out) {
    if (!started_ || now_ns - window_start_ns_ >= window_ns_) {
      started_ = true;
      window_start_ns_ = now_ns;
      in_window_ = 0;
    }
    if (in_window_ >= per_window_) {
      ++left_out_;
      return false;
    }
    ++in_window_;
    *left_out = std::exchange(left_out_, 0);
    return true;
  }

 private:
  const int per_window_;
  const int64_t window_ns_;
  bool started_ = false;
  int64_t window_start_ns_ = 0;
  int in_window_ = 0;
  uint64_t left_out_ = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_LOG_RATE_LIMIT_H_
