// Helpers of the reliability suite; see reliability_util.h.
#include "tests/reliability/reliability_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace lpc::reliability {

bool LongMode() {
  const char* v = std::getenv("LPC_RELIABILITY_LONG");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

int64_t Scaled(int64_t short_value, int64_t long_value) {
  return LongMode() ? long_value : short_value;
}

int64_t MonoNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/lpcr-XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) {
    path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (pid_ < 0) {
    ::close(out[0]);
    return;
  }
  out_ = out[0];
}

ChildProcess::~ChildProcess() {
  Kill();
  if (out_ >= 0) ::close(out_);
}

std::string ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (out_ < 0 || absl::Now() >= end) return "";
    struct pollfd p = {out_, POLLIN, 0};
    const int left_ms = static_cast<int>(
        std::max<int64_t>(1, absl::ToInt64Milliseconds(end - absl::Now())));
    if (::poll(&p, 1, std::min(left_ms, 100)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(out_, buf, sizeof(buf));
    if (n <= 0) {
      ::close(out_);
      out_ = -1;
      continue;
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

int ChildProcess::Kill() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  const absl::Time end = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    if (absl::Now() >= end) return -1;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

std::string PeerBinary() { return "tests/reliability/reliability_peer"; }

int CountFds(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

int CountMaps(pid_t pid, const std::string& needle) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find(needle) != std::string::npos;
  return n;
}

int CountAllMaps(pid_t pid) { return CountMaps(pid, ""); }

int64_t RssKib(pid_t pid) { return ProcStatusField(pid, "VmRSS"); }
int64_t PeakRssKib(pid_t pid) { return ProcStatusField(pid, "VmHWM"); }

bool RssIsMeaningful() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return SortedQuantile(v, q);
}

double SortedQuantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i =
      static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

void Report(const std::string& name, const std::string& text) {
  std::printf("RESULT %s: %s\n", name.c_str(), text.c_str());
  std::fflush(stdout);
}

int64_t ProcStatusField(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string prefix = field + ":";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::atoll(line.c_str() + prefix.size());
    }
  }
  return -1;
}

MachineStallMonitor::MachineStallMonitor(absl::Duration min_stall)
    : min_stall_ns_(absl::ToInt64Nanoseconds(min_stall)) {
  const long cpus = std::clamp<long>(::sysconf(_SC_NPROCESSORS_ONLN), 1, 8);
  for (int cpu = 0; cpu < cpus; ++cpu) {
    threads_.emplace_back([this, cpu] { Run(cpu); });
  }
}

MachineStallMonitor::~MachineStallMonitor() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
}

void MachineStallMonitor::Run(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  struct sched_param param = {};
  param.sched_priority = 1;
  if (::sched_setaffinity(0, sizeof(set), &set) != 0 ||
      ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param) != 0) {
    realtime_ = false;
  }
  constexpr int64_t kPeriodNs = 1000 * 1000;
  // Bounded: at most five hours of 1 ms periods.
  for (int64_t i = 0; !stop_.load() && i < int64_t{18} * 1000 * 1000; ++i) {
    const int64_t due = MonoNs() + kPeriodNs;
    struct timespec ts = {static_cast<time_t>(due / 1000000000),
                          static_cast<long>(due % 1000000000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) ==
           EINTR) {
    }
    const int64_t woke = MonoNs();
    if (woke - due >= min_stall_ns_) {
      std::lock_guard<std::mutex> lock(mu_);
      if (stalls_.size() < 1000000) stalls_.emplace_back(due, woke);
    }
  }
}

int64_t MachineStallMonitor::LongestStallWithin(int64_t from_ns,
                                                int64_t to_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t longest = 0;
  for (const auto& [start, end] : stalls_) {
    if (start <= to_ns && end >= from_ns) {
      longest = std::max(longest, end - start);
    }
  }
  return longest;
}

size_t MachineStallMonitor::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stalls_.size();
}

int64_t MachineStallMonitor::total_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (const auto& [start, end] : stalls_) total += end - start;
  return total;
}

int64_t MachineStallMonitor::longest_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t longest = 0;
  for (const auto& [start, end] : stalls_) longest = std::max(longest, end - start);
  return longest;
}

}  // namespace lpc::reliability
