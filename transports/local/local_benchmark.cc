// Cross-process benchmarks of the local transport: Echo calls through a real
// port and section, with the server in a child process (local_test_peer).
//
//   bazel build -c opt //transports/local:local_benchmark
//   bazel-bin/transports/local/local_benchmark [--cpus=0,1] [benchmark flags]
//
// Placement: the client (this process) is pinned to the first CPU of
// --cpus and the server process to the second (default 0,1: cross-core);
// --cpus=0,0 measures same-core; --cpus=-1,-1 leaves both unpinned.
//
// Families (each latency figure is a round trip; p50/p99 are counters):
//   BM_Ref{Spin,Futex}PingPong  bare two-process hand-offs of a 64 B line
//                               (the lower bounds; same placement, same run)
//   BM_RefMemcpy                one memcpy of the payload
//   BM_Echo/<mode>/<bytes>      one synchronous call at a time; mode is
//                               spin (spin = InfiniteDuration on both sides),
//                               block (spin = 0) or default (20 us spin, then
//                               block)
//   BM_EchoPipelined/<window>   asynchronous 64 B calls from one client,
//                               `window` in flight; items_per_second = calls/s
// Compare ratios within one run: this machine is shared and noisy.
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "runtime/flags.h"
#include "runtime/testing_service.h"
#include "transports/local/local_transport.h"

namespace {

std::string g_dir;
std::string g_peer;
int g_client_cpu = 0;
int g_server_cpu = 1;

enum Mode { kSpin = 0, kBlock = 1, kDefault = 2 };
const char* const kModeNames[] = {"spin", "block", "default"};

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void Pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof(set), &set);
}

absl::Duration SpinFor(Mode mode) {
  switch (mode) {
    case kSpin:
      return absl::InfiniteDuration();
    case kBlock:
      return absl::ZeroDuration();
    case kDefault:
      break;
  }
  return absl::Microseconds(20);
}

// One server child per mode; switching modes stops the previous one.
struct ServerChild {
  int mode = -1;
  pid_t pid = -1;
  std::string name;
};
ServerChild g_server;

void StopServer() {
  if (g_server.pid > 0) {
    ::kill(g_server.pid, SIGTERM);
    ::waitpid(g_server.pid, nullptr, 0);
  }
  g_server = ServerChild();
}

// Starts the server for `mode` if needed; returns its port name or "".
std::string ServerFor(Mode mode) {
  if (g_server.mode == mode && g_server.pid > 0) return g_server.name;
  StopServer();
  const std::string name = std::string("bench-") + kModeNames[mode];
  const std::string spin =
      mode == kSpin ? "-1" : mode == kBlock ? "0" : "20";
  const std::string cpu = std::to_string(g_server_cpu);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl(g_peer.c_str(), g_peer.c_str(), "server", g_dir.c_str(),
            name.c_str(), "0", spin.c_str(), cpu.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  // The server prints READY once it listens (the socket file alone may
  // exist before listen(2)). Bounded: 10 s.
  std::string line;
  for (int i = 0; i < 200 && line.find("READY") == std::string::npos; ++i) {
    struct pollfd p = {out[0], POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[64];
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  g_server.mode = mode;
  g_server.pid = pid;
  g_server.name = name;
  return line.find("READY") != std::string::npos ? name : "";
}

void ReportPercentiles(benchmark::State& state, std::vector<int64_t>* ns) {
  if (ns->empty()) return;
  std::sort(ns->begin(), ns->end());
  const auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * (ns->size() - 1));
    return static_cast<double>((*ns)[i]) / 1000.0;
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
}

void BM_Echo(benchmark::State& state) {
  const Mode mode = static_cast<Mode>(state.range(0));
  const std::string name = ServerFor(mode);
  if (name.empty()) {
    state.SkipWithError("server did not start");
    return;
  }
  lpc::local::LocalChannelOptions lo;
  lo.runtime_dir = g_dir;
  lo.spin = SpinFor(mode);
  auto ch = lpc::local::CreateLocalChannel(name, {}, lo);
  if (!ch.ok()) {
    state.SkipWithError("channel");
    return;
  }
  const std::string payload(state.range(1), 'x');
  const auto& d = lpc::testing::RawDescriptor();
  std::vector<int64_t> samples;
  samples.reserve(1 << 20);
  // Warm up: connect, bind, fault in the section.
  for (int i = 0; i < 100; ++i) {
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Seconds(5));
    (*ch)->Call(d, d.methods[0], &ctx, payload).IgnoreError();
  }
  for (auto _ : state) {
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Seconds(5));
    const int64_t t0 = NowNs();
    auto r = (*ch)->Call(d, d.methods[0], &ctx, payload);
    const int64_t t1 = NowNs();
    if (!r.ok() || r->size() != payload.size()) {
      state.SkipWithError(r.ok() ? "short reply"
                                 : std::string(r.status().message()).c_str());
      break;
    }
    if (samples.size() < (1u << 20)) samples.push_back(t1 - t0);
  }
  state.SetLabel(kModeNames[mode]);
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(1) * 2);
  ReportPercentiles(state, &samples);
}

// Many asynchronous calls in flight from one client thread.
void BM_EchoPipelined(benchmark::State& state) {
  const Mode mode = static_cast<Mode>(state.range(0));
  const int window = static_cast<int>(state.range(1));
  const std::string name = ServerFor(mode);
  if (name.empty()) {
    state.SkipWithError("server did not start");
    return;
  }
  lpc::local::LocalChannelOptions lo;
  lo.runtime_dir = g_dir;
  lo.spin = SpinFor(mode);
  auto ch = lpc::local::CreateLocalChannel(name, {}, lo);
  if (!ch.ok()) {
    state.SkipWithError("channel");
    return;
  }
  const std::string payload(64, 'p');
  const auto& d = lpc::testing::RawDescriptor();
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;  // mu
  int failed = 0;       // mu
  std::vector<std::unique_ptr<lpc::CallContext>> ctxs(window);
  int64_t calls = 0;
  for (auto _ : state) {
    {
      std::lock_guard<std::mutex> lock(mu);
      outstanding = window;
    }
    for (int i = 0; i < window; ++i) {
      ctxs[i] = std::make_unique<lpc::CallContext>();
      ctxs[i]->set_timeout(absl::Seconds(5));
      (*ch)->StartCall(d, d.methods[0], ctxs[i].get(), payload,
                       [&](absl::StatusOr<std::string> r) {
                         std::lock_guard<std::mutex> lock(mu);
                         if (!r.ok()) ++failed;
                         if (--outstanding == 0) cv.notify_all();
                       });
    }
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10),
                     [&] { return outstanding == 0; })) {
      state.SkipWithError("calls did not complete");
      break;
    }
    if (failed > 0) {
      state.SkipWithError("a pipelined call failed");
      break;
    }
    calls += window;
  }
  state.SetLabel(kModeNames[mode]);
  state.SetItemsProcessed(calls);
}

// --- Reference hand-offs, measured here so that ratios come from one run.

struct alignas(64) RefLine {
  std::atomic<uint32_t> seq;
  uint32_t sleeping;
  char payload[56];
};
struct RefShared {
  RefLine req;
  RefLine rep;
};

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  struct timespec ts = {0, 100 * 1000 * 1000};
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value,
                   op == FUTEX_WAIT ? &ts : nullptr, nullptr, 0);
}

// Waits until *word != old: spinning (futex == false) or sleeping.
bool AwaitChange(std::atomic<uint32_t>* word, uint32_t old, bool futex) {
  const int64_t end = NowNs() + 2'000'000'000;
  for (uint64_t i = 0;; ++i) {
    if (word->load(std::memory_order_acquire) != old) return true;
    if (futex) {
      Futex(word, FUTEX_WAIT, old);
    } else {
      __builtin_ia32_pause();
    }
    if ((i & 1023) == 1023 && NowNs() > end) return false;
  }
}

void BM_RefPingPong(benchmark::State& state, bool futex) {
  auto* shared = static_cast<RefShared*>(
      ::mmap(nullptr, sizeof(RefShared), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (shared == MAP_FAILED) {
    state.SkipWithError("mmap");
    return;
  }
  new (shared) RefShared();
  const pid_t pid = ::fork();
  if (pid == 0) {
    Pin(g_server_cpu);
    uint32_t seen = 0;
    for (;;) {
      if (!AwaitChange(&shared->req.seq, seen, futex)) _exit(0);
      seen = shared->req.seq.load(std::memory_order_acquire);
      if (seen == ~0u) _exit(0);
      std::memcpy(shared->rep.payload, shared->req.payload, 56);
      shared->rep.seq.store(seen, std::memory_order_release);
      if (futex) Futex(&shared->rep.seq, FUTEX_WAKE, 1);
    }
  }
  std::vector<int64_t> samples;
  samples.reserve(1 << 20);
  uint32_t seq = 0;
  char out[56];
  for (auto _ : state) {
    const int64_t t0 = NowNs();
    std::memset(shared->req.payload, static_cast<int>(seq), 56);
    shared->req.seq.store(++seq, std::memory_order_release);
    if (futex) Futex(&shared->req.seq, FUTEX_WAKE, 1);
    if (!AwaitChange(&shared->rep.seq, seq - 1, futex)) {
      state.SkipWithError("peer stuck");
      break;
    }
    std::memcpy(out, shared->rep.payload, 56);
    benchmark::DoNotOptimize(out);
    if (samples.size() < (1u << 20)) samples.push_back(NowNs() - t0);
  }
  shared->req.seq.store(~0u, std::memory_order_release);
  Futex(&shared->req.seq, FUTEX_WAKE, 1);
  ::waitpid(pid, nullptr, 0);
  ::munmap(shared, sizeof(RefShared));
  ReportPercentiles(state, &samples);
}

void BM_RefSpinPingPong(benchmark::State& state) { BM_RefPingPong(state, false); }
void BM_RefFutexPingPong(benchmark::State& state) { BM_RefPingPong(state, true); }

void BM_RefMemcpy(benchmark::State& state) {
  std::vector<char> src(state.range(0), 's'), dst(state.range(0));
  std::vector<int64_t> samples;
  for (auto _ : state) {
    const int64_t t0 = NowNs();
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
    samples.push_back(NowNs() - t0);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
  ReportPercentiles(state, &samples);
}

BENCHMARK(BM_RefSpinPingPong)->UseRealTime();
BENCHMARK(BM_RefFutexPingPong)->UseRealTime();
BENCHMARK(BM_RefMemcpy)->Arg(1 << 20)->UseRealTime();
// Grouped by mode so that each server child starts once.
BENCHMARK(BM_Echo)
    ->ArgNames({"mode", "bytes"})
    ->Args({kSpin, 64})
    ->Args({kSpin, 1 << 20})
    ->Args({kBlock, 64})
    ->Args({kDefault, 64})
    ->Args({kDefault, 1000})
    ->Args({kDefault, 64 << 10})
    ->Args({kDefault, 1 << 20})
    ->UseRealTime();
BENCHMARK(BM_EchoPipelined)
    ->ArgNames({"mode", "window"})
    ->Args({kDefault, 64})
    ->Args({kDefault, 128})
    ->UseRealTime();

// Google Benchmark's --help, plus where this binary's own flags are listed.
void PrintHelp() {
  benchmark::PrintDefaultHelp();
  std::printf("\nlocal_benchmark's own flags (--cpus): run with --helpshort\n");
}

// "<client>,<server>" into the two CPUs; false if it is not two integers.
bool ParseCpus(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], &g_client_cpu) &&
         absl::SimpleAtoi(parts[1], &g_server_cpu);
}

}  // namespace

ABSL_FLAG(std::string, cpus, "0,1",
          "<client>,<server>: the CPUs to pin this process and the server "
          "process to; -1 leaves one unpinned");

int main(int argc, char** argv) {
  // Google Benchmark takes its --benchmark_* flags (and --help) first; absl
  // parses the rest, so that anything else unknown is an error.
  benchmark::Initialize(&argc, argv, PrintHelp);
  std::vector<std::string> args = lpc::ParseFlags(
      argc, argv, "local_benchmark [--cpus=0,1] [--benchmark_* flags]");
  if (!args.empty() || !ParseCpus(absl::GetFlag(FLAGS_cpus))) {
    std::fprintf(stderr, "local_benchmark: want --cpus=<client>,<server>, "
                         "no positional arguments (see --help)\n");
    return 2;
  }
  char tmpl[] = "/tmp/lpc-bench-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  g_peer = std::string(argv[0]);
  g_peer = g_peer.substr(0, g_peer.rfind('/')) + "/local_test_peer";
  Pin(g_client_cpu);
  benchmark::RunSpecifiedBenchmarks();
  StopServer();
  ::rmdir(g_dir.c_str());
  return 0;
}
