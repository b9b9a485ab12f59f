// lpc_echo's throughput modes (--mode=throughput): --callers callers, as
// threads sharing one channel or as processes with a connection each. See
// bench/lpc_echo.cc.
#include <stdio.h>
#include <unistd.h>

#include <barrier>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/bench_util.h"
#include "bench/internal/lpc_echo.h"
#include "bench/lpc_bench.lpc.h"
#include "bench/lpc_echo_server.h"

namespace lpc::bench {
namespace {

using ::lpc::bench::echo::EchoClient;

// Per-caller outcome of a throughput window.
struct CallerResult {
  uint64_t calls = 0;  // In the window.
  uint64_t failed = 0;
  std::vector<uint64_t> ns;
};

// Calls in a loop until `end_ns`, recording calls that fall inside
// [start_ns, end_ns].
void CallLoop(EchoClient& client, const std::string& contender,
              int64_t payload, uint64_t seq_base, uint64_t start_ns,
              uint64_t end_ns, int64_t max_calls, CallerResult* out) {
  std::string buf(static_cast<size_t>(payload), 't');
  uint64_t seq = seq_base;
  // Bounded by the window's end; `max_calls` counts calls in the window
  // only (calls before `start_ns`, while other callers start, do not use
  // it up).
  for (int64_t k = 0; k < max_calls;) {
    const uint64_t t0 = NowNs();
    if (t0 >= end_ns) break;
    if (!EchoOnce(client, buf, ++seq, contender)) {
      out->failed = 1;
      break;
    }
    const uint64_t t1 = NowNs();
    if (t0 >= start_ns && t1 <= end_ns) {
      ++k;
      ++out->calls;
      if (out->ns.size() < (1u << 20)) out->ns.push_back(t1 - t0);
    }
  }
}

void PrintThroughput(const Setup& setup, const std::string& kind, int64_t n,
                     int64_t payload, std::vector<CallerResult>& results,
                     uint64_t start, uint64_t end, double server_cpu,
                     int* rc) {
  Samples samples;
  uint64_t total = 0, min_calls = UINT64_MAX, max_calls = 0;
  for (CallerResult& c : results) {
    if (c.failed) *rc = 1;
    total += c.calls;
    min_calls = std::min(min_calls, c.calls);
    max_calls = std::max(max_calls, c.calls);
    samples.ns.insert(samples.ns.end(), c.ns.begin(), c.ns.end());
  }
  samples.elapsed_s = (end - start) / 1e9;
  Result r = MakeEchoResult(setup.contender, "unpinned", payload, samples);
  // Every call counts, even beyond the latency samples kept.
  // (No window when every caller failed before it.)
  r.calls_per_s = end > start ? total / samples.elapsed_s : 0;
  r.gbps = 2.0 * payload * r.calls_per_s / 1e9;
  r.callers = static_cast<int>(n);
  r.kind = kind;
  r.note = kind == "throughput-threads"
               ? "throughput: caller threads share one channel"
               : "throughput: one process and connection per caller";
  const double mean = static_cast<double>(total) / n;
  r.extra.emplace_back("min_caller_share", mean > 0 ? min_calls / mean : 0);
  r.extra.emplace_back("max_caller_share", mean > 0 ? max_calls / mean : 0);
  // Server CPU over the whole run of callers, warm-up included, per call in
  // the window: an upper bound.
  r.extra.emplace_back("server_cpu_us_per_call",
                       total > 0 ? server_cpu / total * 1e6 : 0);
  PrintResult(r);
}

// One caller process: connects and makes one call, reports "ready" (one
// byte on `fd`), reads the window's start and end from `go_fd`, calls until
// the end, then writes its count and latencies to `fd`.
int CallerProcess(const Setup& setup, const std::string& target,
                  int64_t payload, uint64_t seq_base, int64_t max_calls,
                  int fd, int go_fd) {
  CallerResult result;
  {
    auto channel = Connect(setup, target, true);
    if (!channel.ok()) {
      result.failed = 1;
    } else {
      EchoClient client(*channel);
      std::string buf(static_cast<size_t>(payload), 'w');
      const char ready = 'R';
      uint64_t window[2] = {0, 0};
      if (!EchoOnce(client, buf, seq_base, setup.contender) ||
          !WriteFull(fd, &ready, 1) ||
          !ReadFullTimeout(go_fd, window, sizeof(window), 60000)) {
        result.failed = 1;
      } else {
        CallLoop(client, setup.contender, payload, seq_base, window[0],
                 window[1], max_calls, &result);
      }
    }
  }
  close(go_fd);
  const uint64_t header[3] = {result.calls, result.failed, result.ns.size()};
  bool ok = WriteFull(fd, header, sizeof(header)) &&
            WriteFull(fd, result.ns.data(),
                      result.ns.size() * sizeof(uint64_t));
  close(fd);
  return ok ? 0 : 1;
}

}  // namespace

int RunThroughputThreads(const Setup& setup,
                         ServerProcess& server) {
  const RunLimits limits = LimitsFromFlags();
  const int64_t payload = absl::GetFlag(FLAGS_payload);
  auto channel = Connect(setup, server.target, false);
  if (!channel.ok()) return 1;
  {
    // Connect before the clock starts.
    EchoClient client(*channel);
    std::string warm(static_cast<size_t>(payload), 'w');
    if (!EchoOnce(client, warm, 1, setup.contender)) return 1;
  }
  int rc = 0;
  for (int64_t n : absl::GetFlag(FLAGS_callers).values) {
    if (n <= 0 || n > 1024) continue;
    std::vector<std::unique_ptr<EchoClient>> clients;
    for (int64_t i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<EchoClient>(*channel));
    }
    std::vector<CallerResult> results(n);
    // Every caller makes one call first, then all warm up and measure the
    // same window, which starts when the last caller is ready: on a loaded
    // machine, starting the threads can take longer than a window.
    uint64_t start = 0;
    uint64_t end = 0;
    std::barrier ready(static_cast<std::ptrdiff_t>(n), [&]() noexcept {
      start = NowNs() + static_cast<uint64_t>(limits.seconds * 0.2 * 1e9);
      end = start + static_cast<uint64_t>(limits.seconds * 1e9);
    });
    const double cpu0 = ProcessCpuSeconds(server.pid);
    std::vector<std::thread> threads;
    for (int64_t i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        const uint64_t seq_base = static_cast<uint64_t>(i) << 40;
        std::string first(static_cast<size_t>(payload), 'w');
        if (!EchoOnce(*clients[i], first, seq_base, setup.contender)) {
          results[i].failed = 1;
          ready.arrive_and_drop();
          return;
        }
        ready.arrive_and_wait();
        CallLoop(*clients[i], setup.contender, payload, seq_base, start, end,
                 limits.max_iters * 10, &results[i]);
      });
    }
    for (auto& t : threads) t.join();
    PrintThroughput(setup, "throughput-threads", n, payload, results, start,
                    end, ProcessCpuSeconds(server.pid) - cpu0, &rc);
    if (rc != 0) break;
  }
  channel->reset();
  return rc;
}

// The parent creates no lpc object in this mode, so the callers it forks
// start from a process without threads.
int RunThroughputProcesses(const Setup& setup,
                           ServerProcess& server) {
  const RunLimits limits = LimitsFromFlags();
  const int64_t payload = absl::GetFlag(FLAGS_payload);
  int rc = 0;
  for (int64_t n : absl::GetFlag(FLAGS_callers).values) {
    if (n <= 0 || n > 256) continue;
    // Every caller gets the window (start, end) from this pipe once all
    // are connected.
    int go[2];
    if (pipe(go) != 0) return 1;
    const double cpu0 = ProcessCpuSeconds(server.pid);
    std::vector<pid_t> pids;
    std::vector<int> fds;
    for (int64_t i = 0; i < n; ++i) {
      int p[2];
      if (pipe(p) != 0) break;
      pid_t pid = ForkChild([&] {
        close(p[0]);
        close(go[1]);
        for (int fd : fds) close(fd);
        return CallerProcess(setup, server.target, payload,
                             static_cast<uint64_t>(i) << 40,
                             limits.max_iters * 10, p[1], go[0]);
      });
      close(p[1]);
      if (pid < 0) {
        close(p[0]);
        break;
      }
      pids.push_back(pid);
      fds.push_back(p[0]);
    }
    close(go[0]);
    std::vector<CallerResult> results(pids.size());
    for (size_t i = 0; i < pids.size(); ++i) {
      char ready = 0;
      if (!ReadFullTimeout(fds[i], &ready, 1, 30000) || ready != 'R') {
        results[i].failed = 1;
      }
    }
    // Each caller warms up on its own until `start`.
    const uint64_t start =
        NowNs() + static_cast<uint64_t>(limits.seconds * 0.2 * 1e9) +
        20'000'000;
    const uint64_t end = start + static_cast<uint64_t>(limits.seconds * 1e9);
    std::vector<uint64_t> windows;
    for (size_t i = 0; i < pids.size(); ++i) {
      windows.push_back(start);
      windows.push_back(end);
    }
    // One write of at most 256 * 16 bytes: each caller reads one whole pair.
    WriteFull(go[1], windows.data(), windows.size() * sizeof(uint64_t));
    close(go[1]);
    const int wait_ms =
        static_cast<int>((end - NowNs()) / 1'000'000) + kCallTimeoutMs + 5000;
    for (size_t i = 0; i < pids.size(); ++i) {
      if (results[i].failed) {
        close(fds[i]);
        continue;
      }
      uint64_t header[3] = {0, 1, 0};
      bool ok = ReadFullTimeout(fds[i], header, sizeof(header), wait_ms) &&
                header[2] <= (1u << 20);
      if (ok) {
        results[i].calls = header[0];
        results[i].failed = header[1];
        results[i].ns.resize(header[2]);
        ok = ReadFullTimeout(fds[i], results[i].ns.data(),
                             header[2] * sizeof(uint64_t), 5000);
      }
      if (!ok) results[i].failed = 1;
      close(fds[i]);
    }
    for (pid_t pid : pids) {
      int status = 0;
      if (!WaitChild(pid, 5000, &status)) StopChild(pid);
    }
    if (static_cast<int64_t>(pids.size()) != n) rc = 1;
    PrintThroughput(setup, "throughput-processes", n, payload, results, start,
                    end, ProcessCpuSeconds(server.pid) - cpu0, &rc);
    if (rc != 0) break;
  }
  return rc;
}

}  // namespace lpc::bench
