// Implementation of the benchmark plumbing declared in bench_util.h.

#include "bench/bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/flags.h"

ABSL_FLAG(std::string, placement, "cross-core",
          "where client and server run: cross-core (CPUs 0 and 1), same-core "
          "(CPU 0) or unpinned");
ABSL_FLAG(int, client_cpu, -2,
          "pin the client to this CPU instead (-1: unpinned); -2 keeps "
          "--placement's choice");
ABSL_FLAG(int, server_cpu, -2,
          "pin the server to this CPU instead (-1: unpinned); -2 keeps "
          "--placement's choice");
ABSL_FLAG(int64_t, warmup, lpc::bench::RunLimits{}.warmup_iters,
          "untimed calls before measuring");
ABSL_FLAG(int64_t, iters, lpc::bench::RunLimits{}.max_iters,
          "measured calls, at most");
ABSL_FLAG(double, seconds, lpc::bench::RunLimits{}.seconds,
          "wall-clock budget of one measurement");
ABSL_FLAG(int, timeout, 120,
          "the watchdog kills the process after this many seconds");
ABSL_FLAG(lpc::bench::IntList, payloads, {},
          "payload sizes in bytes, comma-separated (default: the "
          "contender's own list)");

namespace lpc::bench {

bool AbslParseFlag(absl::string_view text, IntList* list, std::string* error) {
  list->values.clear();
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(entry, &v) || v < 0) {
      *error = absl::StrCat("'", entry, "' is not a non-negative integer");
      return false;
    }
    list->values.push_back(v);
  }
  return true;
}

std::string AbslUnparseFlag(const IntList& list) {
  return absl::StrJoin(list.values, ",");
}

void ParseBenchFlags(int argc, char** argv, const char* usage) {
  std::vector<std::string> args = ParseFlags(argc, argv, usage);
  if (!args.empty()) {
    fprintf(stderr, "unexpected argument '%s'; try --help\n", args[0].c_str());
    exit(2);
  }
  ArmWatchdog(absl::GetFlag(FLAGS_timeout));
}

std::vector<int64_t> PayloadsOr(const std::vector<int64_t>& fallback) {
  IntList payloads = absl::GetFlag(FLAGS_payloads);
  return payloads.values.empty() ? fallback : payloads.values;
}

const std::vector<int64_t>& DefaultPayloads() {
  static const std::vector<int64_t> kPayloads = {0,       64,      1024,
                                                 65536,   1 << 20, 16 << 20};
  return kPayloads;
}

Placement PlacementFromFlags() {
  Placement p;
  p.name = absl::GetFlag(FLAGS_placement);
  if (p.name == "cross-core") {
    p.client_cpu = 0;
    p.server_cpu = 1;
  } else if (p.name == "same-core") {
    p.client_cpu = 0;
    p.server_cpu = 0;
  } else if (p.name == "unpinned") {
    p.client_cpu = -1;
    p.server_cpu = -1;
  } else {
    fprintf(stderr, "unknown --placement=%s\n", p.name.c_str());
    exit(2);
  }
  // -2: not given, keep the placement's CPU.
  const int client_cpu = absl::GetFlag(FLAGS_client_cpu);
  const int server_cpu = absl::GetFlag(FLAGS_server_cpu);
  if (client_cpu != -2) p.client_cpu = client_cpu;
  if (server_cpu != -2) p.server_cpu = server_cpu;
  return p;
}

void PinToCpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
    exit(2);
  }
}

RunLimits LimitsFromFlags() {
  RunLimits l;
  l.warmup_iters = absl::GetFlag(FLAGS_warmup);
  l.max_iters = absl::GetFlag(FLAGS_iters);
  l.seconds = absl::GetFlag(FLAGS_seconds);
  return l;
}

bool Measure(const RunLimits& limits, const std::function<bool()>& call,
             Samples* out) {
  out->ns.clear();
  out->elapsed_s = 0;
  const uint64_t warmup_deadline =
      NowNs() + static_cast<uint64_t>(limits.seconds * limits.warmup_share * 1e9);
  for (int64_t i = 0; i < limits.warmup_iters; ++i) {
    if (!call()) return false;
    if (NowNs() > warmup_deadline) break;
  }
  out->ns.reserve(static_cast<size_t>(
      std::min<int64_t>(limits.max_iters, 1 << 20)));
  const uint64_t start = NowNs();
  const uint64_t deadline = start + static_cast<uint64_t>(limits.seconds * 1e9);
  uint64_t t0 = start;
  for (int64_t i = 0; i < limits.max_iters; ++i) {
    if (!call()) return false;
    uint64_t t1 = NowNs();
    out->ns.push_back(t1 - t0);
    t0 = t1;
    if (t1 > deadline) break;
  }
  out->elapsed_s = (t0 - start) / 1e9;
  return true;
}

Stats ComputeStats(std::vector<uint64_t>& ns) {
  Stats s;
  s.samples = static_cast<int64_t>(ns.size());
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto rank = [&](double q) {
    // Nearest rank: the smallest value with at least q of samples at or
    // below it.
    size_t idx = static_cast<size_t>(std::ceil(q * ns.size()));
    if (idx == 0) idx = 1;
    if (idx > ns.size()) idx = ns.size();
    return ns[idx - 1] / 1e3;
  };
  s.p50_us = rank(0.50);
  s.p99_us = rank(0.99);
  s.p999_us = rank(0.999);
  long double sum = 0;
  for (uint64_t v : ns) sum += v;
  s.mean_us = static_cast<double>(sum / ns.size() / 1e3);
  s.max_us = ns.back() / 1e3;
  return s;
}

Result MakeEchoResult(const std::string& contender,
                      const std::string& placement, int64_t payload,
                      Samples& samples) {
  Result r;
  r.contender = contender;
  r.placement = placement;
  r.payload = payload;
  r.stats = ComputeStats(samples.ns);
  if (samples.elapsed_s > 0) {
    r.calls_per_s = r.stats.samples / samples.elapsed_s;
    r.gbps = 2.0 * payload * r.calls_per_s / 1e9;
  }
  return r;
}

namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

void PrintResult(const Result& r) {
  printf(
      "{\"contender\": \"%s\", \"placement\": \"%s\", \"payload\": %lld, "
      "\"callers\": %d, \"samples\": %lld, \"p50_us\": %.3f, \"p99_us\": "
      "%.3f, \"p999_us\": %.3f, \"mean_us\": %.3f, \"max_us\": %.3f, "
      "\"calls_per_s\": %.1f, \"gbps\": %.4f, \"note\": \"%s\", "
      "\"kind\": \"%s\"",
      JsonEscape(r.contender).c_str(), JsonEscape(r.placement).c_str(),
      static_cast<long long>(r.payload), r.callers,
      static_cast<long long>(r.stats.samples), r.stats.p50_us, r.stats.p99_us,
      r.stats.p999_us, r.stats.mean_us, r.stats.max_us, r.calls_per_s, r.gbps,
      JsonEscape(r.note).c_str(), JsonEscape(r.kind).c_str());
  for (const auto& [name, value] : r.extra) {
    if (std::isfinite(value)) {
      printf(", \"%s\": %.6g", JsonEscape(name).c_str(), value);
    } else {
      printf(", \"%s\": null", JsonEscape(name).c_str());
    }
  }
  printf("}\n");
  fflush(stdout);
}

double ProcessCpuSeconds(pid_t pid) {
  clockid_t clock = CLOCK_PROCESS_CPUTIME_ID;
  if (pid != 0 && clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

int64_t ProcessRssBytes(pid_t pid) {
  const std::string path =
      pid == 0 ? "/proc/self/statm" : "/proc/" + std::to_string(pid) + "/statm";
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  const int got = fscanf(f, "%lld %lld", &size, &resident);
  fclose(f);
  if (got != 2) return -1;
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

pid_t ForkChild(const std::function<int()>& body) {
  fflush(stdout);
  fflush(stderr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died between fork and prctl.
    if (getppid() != parent) _exit(1);
    int rc = body();
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
  }
  return pid;
}

bool WaitChild(pid_t pid, int timeout_ms, int* status) {
  const uint64_t deadline = NowNs() + static_cast<uint64_t>(timeout_ms) * 1000000;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status != nullptr) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) return true;  // Not our child any more.
    if (NowNs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int StopChild(pid_t pid, int grace_ms) {
  if (pid <= 0) return 0;
  int status = 0;
  kill(pid, SIGTERM);
  if (WaitChild(pid, grace_ms, &status)) return status;
  kill(pid, SIGKILL);
  WaitChild(pid, 5000, &status);
  return status;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base ? base : "/tmp") +
                     "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    fprintf(stderr, "mkdtemp(%s): %s\n", tmpl.c_str(), strerror(errno));
    exit(2);
  }
  return std::string(buf.data());
}

void RemoveTempDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d != nullptr) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

void ArmWatchdog(int seconds) {
  signal(SIGALRM, SIG_DFL);
  alarm(static_cast<unsigned>(seconds));
}

void Stamp(char* buf, size_t n, uint64_t seq) {
  size_t head = std::min<size_t>(n, sizeof(seq));
  memcpy(buf, &seq, head);
  if (n > sizeof(seq)) buf[n - 1] = static_cast<char>(seq * 31 + 7);
}

bool CheckStamp(const char* buf, size_t n, uint64_t seq) {
  size_t head = std::min<size_t>(n, sizeof(seq));
  if (memcmp(buf, &seq, head) != 0) return false;
  if (n > sizeof(seq) && buf[n - 1] != static_cast<char>(seq * 31 + 7)) {
    return false;
  }
  return true;
}

bool WriteFull(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadFull(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool ReadFullTimeout(int fd, void* buf, size_t n, int timeout_ms) {
  char* p = static_cast<char*>(buf);
  const uint64_t deadline = NowNs() + static_cast<uint64_t>(timeout_ms) * 1000000;
  while (n > 0) {
    uint64_t now = NowNs();
    if (now >= deadline) return false;
    pollfd pfd{fd, POLLIN, 0};
    int left_ms = static_cast<int>((deadline - now) / 1000000) + 1;
    int pr = poll(&pfd, 1, left_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return false;
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    if (r == 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace lpc::bench
