// Shared plumbing for lpc's benchmark contenders: the flags they share, CPU
// pinning, latency statistics, the one-JSON-line-per-measurement output
// format that bench/run collects, and helpers to fork and stop a peer process.
//
// Every contender is a separate binary. It prints, on stdout, one JSON object
// per line per measurement (see Result) and nothing else; diagnostics go to
// stderr. Nothing here is thread-safe unless stated; each function is meant to
// be called from a benchmark's main thread.

#ifndef LPC_BENCH_BENCH_UTIL_H_
#define LPC_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/strings/string_view.h"

namespace lpc::bench {

// A comma-separated list of non-negative integers, e.g. "0,64,1024", as the
// value of an absl flag. Empty entries are skipped; anything else that is
// not a number makes the flag's parse fail with the offending entry named.
struct IntList {
  std::vector<int64_t> values;
};
bool AbslParseFlag(absl::string_view text, IntList* list, std::string* error);
std::string AbslUnparseFlag(const IntList& list);

}  // namespace lpc::bench

// The flags every contender shares (bench_util.cc); bench/run passes
// --seconds, --timeout and --payloads to each.
ABSL_DECLARE_FLAG(std::string, placement);
ABSL_DECLARE_FLAG(int, client_cpu);
ABSL_DECLARE_FLAG(int, server_cpu);
ABSL_DECLARE_FLAG(int64_t, warmup);
ABSL_DECLARE_FLAG(int64_t, iters);
ABSL_DECLARE_FLAG(double, seconds);
ABSL_DECLARE_FLAG(int, timeout);
ABSL_DECLARE_FLAG(lpc::bench::IntList, payloads);

namespace lpc::bench {

// Monotonic clock in nanoseconds.
inline uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Parses the command line (lpc::ParseFlags: --help lists the program's
// flags and the shared ones above; an unknown flag exits 1), then arms the
// watchdog with --timeout. Exits 2 on a positional argument.
void ParseBenchFlags(int argc, char** argv, const char* usage);

// --payloads if given, else `fallback`.
std::vector<int64_t> PayloadsOr(const std::vector<int64_t>& fallback);

// The payload sizes every echo contender sweeps unless told otherwise:
// 0 B, 64 B, 1 KiB, 64 KiB, 1 MiB, 16 MiB.
const std::vector<int64_t>& DefaultPayloads();

// Where the client and server of one measurement run.
struct Placement {
  // "cross-core", "same-core" or "unpinned".
  // Default: "" (PlacementFromFlags fills it)
  std::string name;
  // CPU of the measuring (client) process, or -1 for no pinning.
  // Default: -1
  int client_cpu = -1;
  // CPU of the echoing (server) process, or -1 for no pinning.
  // Default: -1
  int server_cpu = -1;
};

// Reads --placement (cross-core | same-core | unpinned; default cross-core)
// and the optional --client_cpu / --server_cpu overrides (defaults 0 and 1,
// or 0 and 0 for same-core).
Placement PlacementFromFlags();

// Pins the calling thread (and threads it creates later) to `cpu`. Does
// nothing for cpu < 0. Exits the process if the kernel refuses, since a
// benchmark with the wrong placement would report a misleading figure.
void PinToCpu(int cpu);

// Bounds of one latency measurement.
struct RunLimits {
  // Untimed calls before measuring.
  // Default: 200
  int64_t warmup_iters = 200;
  // At most this share of `seconds` is spent warming up.
  // Default: 0.1
  double warmup_share = 0.1;
  // Measured calls, at most.
  // Default: 200000
  int64_t max_iters = 200000;
  // Wall-clock budget for the measured calls.
  // Default: 0.5
  double seconds = 0.5;
};

// Reads --warmup, --iters and --seconds into RunLimits.
RunLimits LimitsFromFlags();

// Latencies of individual calls plus the wall time they took together.
struct Samples {
  std::vector<uint64_t> ns;
  double elapsed_s = 0;
};

// Calls `call` repeatedly within `limits` and times each call. `call` returns
// false on failure; the loop then stops and Measure returns false.
bool Measure(const RunLimits& limits, const std::function<bool()>& call,
             Samples* out);

// Summary statistics of a set of latencies.
struct Stats {
  int64_t samples = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double mean_us = 0;
  double max_us = 0;
};

// Nearest-rank percentiles (sorts `ns` in place). An empty input gives zeros.
Stats ComputeStats(std::vector<uint64_t>& ns);

// One line of the common output schema. bench/run reads these fields:
//   contender, placement, payload, callers, samples, p50_us, p99_us,
//   p999_us, mean_us, calls_per_s, gbps, note, kind, and keeps any extra
//   numeric fields (server CPU per call, memory per connection, ...).
// gbps is the payload bytes moved in both directions per second
// (2 * payload * calls_per_s / 1e9) for echoes, and bytes copied per second
// for memcpy; 0 when it is not meaningful.
struct Result {
  std::string contender;
  std::string placement;
  int64_t payload = 0;
  int callers = 1;
  Stats stats;
  double calls_per_s = 0;
  double gbps = 0;
  std::string note;
  // What was measured: "latency" (one caller, one call in flight),
  // "throughput-threads", "throughput-processes", "pipelined" (one caller,
  // many calls in flight) or "connect" (new client to first reply).
  // Default: "latency"
  std::string kind = "latency";
  // Further figures, printed as extra JSON fields in this order.
  // Default: none
  std::vector<std::pair<std::string, double>> extra;
};

// Fills calls_per_s and gbps (echo convention) from samples and payload.
Result MakeEchoResult(const std::string& contender,
                      const std::string& placement, int64_t payload,
                      Samples& samples);

// Writes `r` as one JSON line on stdout and flushes.
void PrintResult(const Result& r);

// CPU time (user + system, every thread, exited ones included) that process
// `pid` has used, in seconds; pid 0 means this process. Returns -1 if it
// cannot be read.
double ProcessCpuSeconds(pid_t pid);

// Resident set size of process `pid` (0: this process) in bytes, from
// /proc/<pid>/statm; -1 if it cannot be read.
int64_t ProcessRssBytes(pid_t pid);

// Forks a child that runs `body` and exits with its return value. The child
// is killed if this process dies (PR_SET_PDEATHSIG). Returns the child's pid,
// or -1 on failure.
pid_t ForkChild(const std::function<int()>& body);

// Stops a child started by ForkChild: SIGTERM, then SIGKILL after
// `grace_ms`, and reaps it. Returns its exit status as from waitpid.
int StopChild(pid_t pid, int grace_ms = 1000);

// Waits up to `timeout_ms` for the child to exit by itself and reaps it.
// Returns true if it exited.
bool WaitChild(pid_t pid, int timeout_ms, int* status);

// Creates a fresh directory under $TMPDIR (or /tmp) and returns its path.
std::string MakeTempDir(const std::string& prefix);

// Removes a directory made by MakeTempDir, with its files (one level).
void RemoveTempDir(const std::string& dir);

// Arms a watchdog: the process is killed by SIGALRM after `seconds`. Every
// benchmark binary calls this so that a hung peer cannot hang bench/run.
void ArmWatchdog(int seconds);

// Marks a payload with a call's sequence number (its first 8 bytes and its
// last byte), so that an echo returning stale or truncated bytes is caught
// by CheckStamp without reading the whole payload inside the timed loop.
void Stamp(char* buf, size_t n, uint64_t seq);
bool CheckStamp(const char* buf, size_t n, uint64_t seq);

// Writes the whole buffer / reads exactly n bytes, retrying on EINTR and
// short transfers. Return false on EOF or error.
bool WriteFull(int fd, const void* buf, size_t n);
bool ReadFull(int fd, void* buf, size_t n);

// Reads exactly n bytes within `timeout_ms`; false on timeout, EOF or error.
bool ReadFullTimeout(int fd, void* buf, size_t n, int timeout_ms);

}  // namespace lpc::bench

#endif  // LPC_BENCH_BENCH_UTIL_H_
