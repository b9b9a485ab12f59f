// The honest neighbour and its helpers; see neighbour.h.
#include "tests/reliability/neighbour.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/frame.h"

namespace lpc::reliability {

Neighbour::Neighbour(std::shared_ptr<Channel> ch, absl::Duration gap)
    : ch_(std::move(ch)), gap_(gap) {}

bool Neighbour::CallOnce(int i, std::vector<double>* us) {
  const std::string p = absl::StrCat("n", i, std::string(i % 200, 'x'));
  const absl::Time t0 = absl::Now();
  absl::StatusOr<std::string> r = CallRel(*ch_, EchoMethod(), p);
  us->push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  if (!r.ok() && first_error_.ok()) first_error_ = r.status();
  if (gap_ > absl::ZeroDuration()) absl::SleepFor(gap_);
  return r.ok() && *r == p;
}

void Neighbour::MeasureBaseline(int n) {
  std::vector<double> warm;
  for (int i = 0; i < 100; ++i) CallOnce(i, &warm);
  for (int i = 0; i < n; ++i) baseline_failed_ += !CallOnce(i, &baseline_us_);
}

void Neighbour::Start() {
  stop_ = false;
  thread_ = std::thread([this] {
    for (int i = 0; !stop_.load(); ++i) failed_ += !CallOnce(i, &during_us_);
  });
}

void Neighbour::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

double Neighbour::baseline_p99_us() const { return Quantile(baseline_us_, 0.99); }
double Neighbour::p99_us() const { return Quantile(during_us_, 0.99); }
double Neighbour::max_us() const {
  return during_us_.empty()
             ? 0.0
             : *std::max_element(during_us_.begin(), during_us_.end());
}
double Neighbour::p99_us_from(int from) const {
  return Quantile(std::vector<double>(during_us_.begin() + from, during_us_.end()),
                  0.99);
}

std::string Neighbour::Summary() const {
  const double b = baseline_p99_us(), d = p99_us();
  return absl::StrFormat(
      "neighbour_calls=%d failed=%d p99_us=%.0f->%.0f (x%.2f)%s", calls(),
      failed(), b, d, b > 0 ? d / b : 0.0,
      first_error_.ok() ? "" : absl::StrCat(" first_error=", first_error_.ToString()));
}

absl::Duration BlockedBound() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return absl::Seconds(5);
#else
  return absl::Seconds(1);
#endif
}

double BlockedBoundMs() { return absl::ToDoubleMilliseconds(BlockedBound()); }

double LongestBlockedMs(const local::LocalServerStats& s) {
  return std::max({s.longest_io_turn_ns, s.longest_ring_read_ns,
                   s.longest_reply_send_ns}) /
         1e6;
}

std::string BlockedSummary(const local::LocalServerStats& s) {
  return absl::StrFormat("longest_blocked_ms=%.0f (io=%.0f ring=%.0f reply=%.0f)",
                         LongestBlockedMs(s), s.longest_io_turn_ns / 1e6,
                         s.longest_ring_read_ns / 1e6,
                         s.longest_reply_send_ns / 1e6);
}

absl::StatusOr<local::LocalServerStats> ChildBlockedStats(ChildProcess& server) {
  server.Signal(SIGUSR1);
  const std::string line = server.ReadLine(absl::Seconds(10));
  local::LocalServerStats s;
  long long io = 0, ring = 0, reply = 0;
  if (std::sscanf(line.c_str(), "BLOCKED %lld %lld %lld", &io, &ring, &reply) !=
      3) {
    return absl::InternalError(absl::StrCat("no BLOCKED line: '", line, "'"));
  }
  s.longest_io_turn_ns = io;
  s.longest_ring_read_ns = ring;
  s.longest_reply_send_ns = reply;
  return s;
}

int64_t CpuTimeNs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)),
                  std::istreambuf_iterator<char>());
  const size_t paren = all.rfind(')');
  if (paren == std::string::npos) return -1;
  // After "pid (comm)": field 3 is the state; utime and stime are 14, 15.
  std::istringstream rest(all.substr(paren + 2));
  std::string field;
  int64_t utime = -1, stime = -1;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  if (utime < 0 || stime < 0) return -1;
  return (utime + stime) * (1000000000 / ::sysconf(_SC_CLK_TCK));
}

absl::Status SendPayloadFdPacket(RawClient& c, uint32_t number,
                                 uint64_t length, int fd) {
  local::PayloadFdBody body{number, 0, length};
  const int fds[1] = {fd};
  return local::SendPacket(
      c.socket(),
      local::EncodeControl(local::ControlType::kPayloadFd, &body, sizeof(body)),
      fds);
}

void SendMemfdRecord(RawClient& c, uint64_t id, uint32_t slot,
                     uint32_t method, uint32_t number, uint32_t length,
                     absl::Duration deadline) {
  local::FrameHeader h = RequestHeader(id, slot, method, 0);
  h.record_size = local::kFrameHeaderSize;
  h.payload_mode = static_cast<uint8_t>(local::PayloadMode::kMemfd);
  h.payload_ref = number;
  h.payload_length = length;
  h.deadline_ns = local::MonotonicNowNs() + absl::ToInt64Nanoseconds(deadline);
  c.SendRaw(MakeRecord(h));
}

}  // namespace lpc::reliability
