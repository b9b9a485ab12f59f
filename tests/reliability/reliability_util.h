// Shared helpers of the reliability suite (docs/reliability.md): short and
// long mode, temporary socket directories, child processes started by
// fork+exec and ended by pid, /proc figures of a process, latency
// percentiles, and the "RESULT <test>: ..." lines every test prints.
//
// Thread safety: free functions are thread-safe; a ChildProcess or TempDir
// is used by one thread at a time.
#ifndef LPC_TESTS_RELIABILITY_RELIABILITY_UTIL_H_
#define LPC_TESTS_RELIABILITY_RELIABILITY_UTIL_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lpc::reliability {

// True when LPC_RELIABILITY_LONG=1: the long, documented runs.
bool LongMode();
// `short_value` normally, `long_value` in long mode.
int64_t Scaled(int64_t short_value, int64_t long_value);

// CLOCK_MONOTONIC in ns: comparable across processes on this host.
int64_t MonoNs();

// A fresh directory /tmp/lpcr-XXXXXX (mode 0755), removed with its contents
// on destruction. Short enough for Unix socket paths (108 bytes).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process started by fork+exec, with its stdout on a pipe. Killed
// (SIGKILL, by pid) and reaped on destruction if still running.
class ChildProcess {
 public:
  // Runs `argv[0]` with `argv`. `argv[0]` is a path (runfiles-relative for
  // the suite's own binaries).
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  // One line of stdout without the newline; "" after `timeout` or EOF.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(20));
  // Sends SIGKILL (if running) and reaps. Returns the wait status.
  int Kill();
  // Sends `sig` without reaping.
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the wait status, or -1 if the
  // child still runs.
  int Wait(absl::Duration timeout = absl::Seconds(30));

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

// The suite's peer binary (tests/reliability/reliability_peer).
std::string PeerBinary();

// Figures of process `pid` from /proc.
int CountFds(pid_t pid);
// Mappings whose line in /proc/<pid>/maps contains `needle`.
int CountMaps(pid_t pid, const std::string& needle);
int CountAllMaps(pid_t pid);
// The process's resident set now (VmRSS), and the most it has ever held
// (VmHWM, which the kernel keeps, so no sampling thread need wake to find
// the peak); -1 if unreadable.
int64_t RssKib(pid_t pid);
int64_t PeakRssKib(pid_t pid);

// False under AddressSanitizer or ThreadSanitizer, whose quarantine and
// shadow memory make RSS growth meaningless; RSS bounds are then reported
// but not asserted.
bool RssIsMeaningful();

// The q-quantile (0..1) of `v` (sorted copy); 0 for an empty vector.
double Quantile(std::vector<double> v, double q);
// The same of a vector already sorted: several quantiles of one large
// sample need one sort, not one each.
double SortedQuantile(const std::vector<double>& sorted, double q);

// Prints "RESULT <name>: <text>" to stdout (the test log), flushed.
void Report(const std::string& name, const std::string& text);

// Polls `pred` every millisecond until it holds or `limit` passes.
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return pred();
}

// A "<field>: <n> ..." line of /proc/<pid>/status as a number (the value in
// kB for the Vm*/Rss* fields, a count for "Threads"); -1 if absent.
// `field` is given without the colon, e.g. "RssAnon".
int64_t ProcStatusField(pid_t pid, const std::string& field);

// A control measurement for timing tests: on every CPU (up to 8), a thread
// pinned there at real-time priority (SCHED_FIFO 1, if this process may use
// it) that sleeps 1 ms at a time and records every wake-up that came more
// than `min_stall` late. Such a thread preempts every ordinary thread the
// moment its timer fires, so a late wake-up means that its CPU ran nothing
// of this machine's meanwhile: the hypervisor took the virtual CPU away
// (steal time), or the kernel did not schedule. A deadline missed while
// that happened is the machine's, not the library's; tests report both
// counts. Without real-time priority the threads still run, and
// `realtime()` says so (their stalls then include CPU contention, and
// tests must not subtract them).
class MachineStallMonitor {
 public:
  explicit MachineStallMonitor(absl::Duration min_stall = absl::Milliseconds(1));
  ~MachineStallMonitor();  // Stops and joins the thread.
  MachineStallMonitor(const MachineStallMonitor&) = delete;
  MachineStallMonitor& operator=(const MachineStallMonitor&) = delete;

  bool realtime() const { return realtime_.load(); }
  // The longest stall on any CPU (in ns of MonoNs time) that overlaps
  // [from_ns, to_ns]; 0 if none.
  int64_t LongestStallWithin(int64_t from_ns, int64_t to_ns) const;
  // Stalls so far, and their total and longest length in ns.
  size_t count() const;
  int64_t total_ns() const;
  int64_t longest_ns() const;

 private:
  void Run(int cpu);

  const int64_t min_stall_ns_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> realtime_{true};
  mutable std::mutex mu_;
  std::vector<std::pair<int64_t, int64_t>> stalls_;  // mu_: [start, end)
  std::vector<std::thread> threads_;
};

}  // namespace lpc::reliability

#endif  // LPC_TESTS_RELIABILITY_RELIABILITY_UTIL_H_
