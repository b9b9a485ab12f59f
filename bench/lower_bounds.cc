// Lower bounds for a local echo: minimal two-process ping-pong programs that
// show what this machine allows before any RPC framework adds its costs.
//
//   --mode=spin        both sides spin on a sequence word in shared memory;
//                      the header and a payload of up to 56 B share one
//                      cache line (the physical limit of a hand-off).
//   --mode=spin-yield  the same, but every failed check calls sched_yield(),
//                      which is what makes spinning bearable on one core.
//   --mode=futex       the same shared memory, but the waiter always sleeps
//                      in FUTEX_WAIT and the sender always calls FUTEX_WAKE
//                      (the blocking hand-off limit).
//   --mode=socketpair  a length-prefixed echo over an AF_UNIX stream pair.
//   --mode=memcpy      one process copying a buffer (bandwidth limit).
//
// Echo semantics, the same for every contender in bench/: the client writes
// the payload into the request, the server copies the request's payload into
// the reply, and the client copies the reply out into private memory and
// checks a stamp. Payloads over 56 B travel through a separate data area.
//
// Prints one JSON line per payload size (see bench_util.h).

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/bench_util.h"

ABSL_FLAG(std::string, mode, "spin",
          "spin, spin-yield, futex, socketpair or memcpy");

namespace lpc::bench {
namespace {

constexpr uint32_t kStop = 0xFFFFFFFFu;
constexpr size_t kInline = 56;
constexpr size_t kMaxPayload = 16 << 20;
// A call that takes longer than this means the peer is gone or stuck.
constexpr uint64_t kCallTimeoutNs = 5'000'000'000ull;
// The server gives up if no request comes for this long.
constexpr uint64_t kIdleTimeoutNs = 60'000'000'000ull;

enum class WaitKind { kSpin, kSpinYield, kFutex };

// One direction's control line: sequence word, length and an inline payload
// in a single cache line.
struct alignas(64) Line {
  std::atomic<uint32_t> seq;
  uint32_t len;
  char inline_data[kInline];
};
static_assert(sizeof(Line) == 64, "header and inline payload share a line");
static_assert(std::atomic<uint32_t>::is_always_lock_free);

struct SharedArea {
  Line req;
  Line resp;
};

struct Region {
  SharedArea* area = nullptr;
  char* req_data = nullptr;
  char* resp_data = nullptr;
};

Region MapRegion() {
  const size_t size = 4096 + 2 * kMaxPayload;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "mmap: %s\n", strerror(errno));
    exit(2);
  }
  Region r;
  r.area = new (p) SharedArea();
  r.area->req.seq.store(0);
  r.area->resp.seq.store(0);
  r.req_data = static_cast<char*>(p) + 4096;
  r.resp_data = r.req_data + kMaxPayload;
  return r;
}

long Futex(std::atomic<uint32_t>* word, int op, uint32_t val,
           const timespec* timeout) {
  // Not FUTEX_PRIVATE: the word is shared between two processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val,
                 timeout, nullptr, 0);
}

inline void CpuRelax() { __builtin_ia32_pause(); }

// Waits until `word` differs from `old`. Returns the new value, or `old` on
// timeout.
uint32_t WaitChange(std::atomic<uint32_t>& word, uint32_t old, WaitKind kind,
                    uint64_t timeout_ns) {
  const uint64_t deadline = NowNs() + timeout_ns;
  uint32_t v;
  for (uint64_t i = 0;; ++i) {
    v = word.load(std::memory_order_acquire);
    if (v != old) return v;
    switch (kind) {
      case WaitKind::kSpin:
        CpuRelax();
        if ((i & 1023) == 1023 && NowNs() > deadline) return old;
        break;
      case WaitKind::kSpinYield:
        sched_yield();
        if ((i & 63) == 63 && NowNs() > deadline) return old;
        break;
      case WaitKind::kFutex: {
        timespec ts{0, 100'000'000};
        Futex(&word, FUTEX_WAIT, old, &ts);
        if (NowNs() > deadline) {
          v = word.load(std::memory_order_acquire);
          return v;
        }
        break;
      }
    }
  }
}

void Publish(std::atomic<uint32_t>& word, uint32_t value, WaitKind kind) {
  word.store(value, std::memory_order_release);
  if (kind == WaitKind::kFutex) Futex(&word, FUTEX_WAKE, 1, nullptr);
}

int ShmServer(Region r, WaitKind kind) {
  uint32_t last = 0;
  for (;;) {
    uint32_t s = WaitChange(r.area->req.seq, last, kind, kIdleTimeoutNs);
    if (s == last) return 1;
    last = s;
    const uint32_t n = r.area->req.len;
    if (n == kStop) return 0;
    if (n > kMaxPayload) return 3;
    if (n <= kInline) {
      memcpy(r.area->resp.inline_data, r.area->req.inline_data, n);
    } else {
      memcpy(r.resp_data, r.req_data, n);
    }
    r.area->resp.len = n;
    Publish(r.area->resp.seq, s, kind);
  }
}

int RunShm(const std::string& contender, WaitKind kind) {
  const Placement placement = PlacementFromFlags();
  const RunLimits limits = LimitsFromFlags();
  const std::vector<int64_t> payloads =
      PayloadsOr(DefaultPayloads());
  Region r = MapRegion();
  pid_t server = ForkChild([&] {
    PinToCpu(placement.server_cpu);
    return ShmServer(r, kind);
  });
  if (server < 0) return 2;
  PinToCpu(placement.client_cpu);

  std::vector<char> src(kMaxPayload, 'x'), dst(kMaxPayload, 0);
  uint32_t seq = 0;
  int rc = 0;
  for (int64_t payload : payloads) {
    if (payload < 0 || static_cast<size_t>(payload) > kMaxPayload) continue;
    const size_t n = static_cast<size_t>(payload);
    auto call = [&]() -> bool {
      ++seq;
      if (seq == kStop) seq = 1;
      Stamp(src.data(), n, seq);
      if (n <= kInline) {
        memcpy(r.area->req.inline_data, src.data(), n);
      } else {
        memcpy(r.req_data, src.data(), n);
      }
      r.area->req.len = static_cast<uint32_t>(n);
      Publish(r.area->req.seq, seq, kind);
      // The reply carries the request's sequence number.
      uint32_t prev = seq - 1;
      uint32_t got = r.area->resp.seq.load(std::memory_order_acquire);
      if (got != seq) {
        prev = got;
        got = WaitChange(r.area->resp.seq, prev, kind, kCallTimeoutNs);
      }
      if (got != seq) {
        fprintf(stderr, "%s: no reply to call %u\n", contender.c_str(), seq);
        return false;
      }
      const char* from = n <= kInline ? r.area->resp.inline_data : r.resp_data;
      memcpy(dst.data(), from, n);
      if (!CheckStamp(dst.data(), n, seq)) {
        fprintf(stderr, "%s: wrong reply to call %u\n", contender.c_str(), seq);
        return false;
      }
      return true;
    };
    Samples samples;
    if (!Measure(limits, call, &samples)) {
      rc = 1;
      break;
    }
    Result res = MakeEchoResult(contender, placement.name, payload, samples);
    if (kind == WaitKind::kSpin && placement.name == "same-core") {
      res.note = "both spinners share one core: each hop waits out a slice";
    }
    PrintResult(res);
  }
  // Ask the server to stop, then make sure it has.
  r.area->req.len = kStop;
  ++seq;
  Publish(r.area->req.seq, seq == kStop ? 1 : seq, kind);
  int status = 0;
  if (!WaitChild(server, 2000, &status)) StopChild(server);
  return rc;
}

int SocketServer(int fd) {
  std::vector<char> buf(kMaxPayload + 4);
  for (;;) {
    uint32_t n;
    if (!ReadFull(fd, &n, 4)) return 1;
    if (n == kStop) return 0;
    if (n > kMaxPayload) return 3;
    memcpy(buf.data(), &n, 4);
    if (!ReadFull(fd, buf.data() + 4, n)) return 1;
    if (!WriteFull(fd, buf.data(), n + 4)) return 1;
  }
}

int RunSocketpair() {
  const Placement placement = PlacementFromFlags();
  const RunLimits limits = LimitsFromFlags();
  const std::vector<int64_t> payloads =
      PayloadsOr(DefaultPayloads());
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    fprintf(stderr, "socketpair: %s\n", strerror(errno));
    return 2;
  }
  pid_t server = ForkChild([&] {
    close(fds[0]);
    PinToCpu(placement.server_cpu);
    return SocketServer(fds[1]);
  });
  close(fds[1]);
  if (server < 0) return 2;
  PinToCpu(placement.client_cpu);
  const int fd = fds[0];
  // The watchdog bounds a read that never returns.
  std::vector<char> out(kMaxPayload + 4, 'x'), in(kMaxPayload + 4, 0);
  uint64_t seq = 0;
  int rc = 0;
  for (int64_t payload : payloads) {
    if (payload < 0 || static_cast<size_t>(payload) > kMaxPayload) continue;
    const uint32_t n = static_cast<uint32_t>(payload);
    auto call = [&]() -> bool {
      ++seq;
      memcpy(out.data(), &n, 4);
      Stamp(out.data() + 4, n, seq);
      if (!WriteFull(fd, out.data(), n + 4)) return false;
      uint32_t got;
      if (!ReadFullTimeout(fd, &got, 4, 5000) || got != n) return false;
      if (!ReadFullTimeout(fd, in.data(), n, 5000)) return false;
      if (!CheckStamp(in.data(), n, seq)) {
        fprintf(stderr, "socketpair: wrong reply\n");
        return false;
      }
      return true;
    };
    Samples samples;
    if (!Measure(limits, call, &samples)) {
      fprintf(stderr, "socketpair: call failed\n");
      rc = 1;
      break;
    }
    PrintResult(MakeEchoResult("socketpair", placement.name, payload, samples));
  }
  uint32_t stop = kStop;
  WriteFull(fd, &stop, 4);
  close(fd);
  int status = 0;
  if (!WaitChild(server, 2000, &status)) StopChild(server);
  return rc;
}

int RunMemcpy() {
  const Placement placement = PlacementFromFlags();
  const RunLimits limits = LimitsFromFlags();
  const std::vector<int64_t> sizes =
      PayloadsOr({1 << 20, 16 << 20});
  PinToCpu(placement.client_cpu);
  std::vector<char> src(kMaxPayload, 'a'), dst(kMaxPayload, 'b');
  for (int64_t size : sizes) {
    if (size <= 0 || static_cast<size_t>(size) > kMaxPayload) continue;
    const size_t n = static_cast<size_t>(size);
    auto call = [&]() -> bool {
      memcpy(dst.data(), src.data(), n);
      asm volatile("" : : "r"(dst.data()) : "memory");
      return true;
    };
    Samples samples;
    Measure(limits, call, &samples);
    Result res;
    res.contender = "memcpy";
    res.placement = "single-core";
    res.payload = size;
    res.stats = ComputeStats(samples.ns);
    if (samples.elapsed_s > 0) {
      res.calls_per_s = res.stats.samples / samples.elapsed_s;
      res.gbps = static_cast<double>(n) * res.calls_per_s / 1e9;
    }
    res.note = "one process, bytes copied per second";
    PrintResult(res);
  }
  return 0;
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "lower_bounds --mode=spin|spin-yield|futex|socketpair|memcpy "
                  "[--placement=...] ...");
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "spin") return RunShm("shm-spin", WaitKind::kSpin);
  if (mode == "spin-yield") {
    return RunShm("shm-spin-yield", WaitKind::kSpinYield);
  }
  if (mode == "futex") return RunShm("futex", WaitKind::kFutex);
  if (mode == "socketpair") return RunSocketpair();
  if (mode == "memcpy") return RunMemcpy();
  fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
  return 2;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
