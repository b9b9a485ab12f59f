// Item 14 of docs/reliability.md: soak. Client processes (reliability_peer
// soak) make mixed sync, async and oneway Echo calls of 0 B - 1 MiB against
// a server process, checking every reply. Short mode: 3 rounds of 8
// processes x 700 calls (x 250 under ASan/TSan). Long mode: rounds of 64
// processes x 16,000 calls until at least 1,000,000 calls and 10 minutes.
// Reports lost, duplicated and mismatched replies (all 0), throughput, and
// the server's RSS, fd count, threads and mappings after every round.
//
// Growth check. After each round the test waits until the server has closed
// every client connection (its fd count is back to the idle count: a real
// event, bounded by 10 s), then samples /proc/<server>/status and
// /proc/<server>/fd. Round 1 is warm-up: it grows the worker pool, glibc's
// per-thread malloc arenas (up to 8 per core), the arenas' retained free
// memory (the mmap threshold rises to 1 MiB after the first 1 MiB payload
// is freed, so later payloads come from the arenas), and glibc's cache of
// thread stacks. The assertions compare later rounds with round 1:
//   - fds after every round == fds before the first round (exact);
//   - mappings after the last round <= mappings after round 1 + 8
//     (mappings of leaked thread stacks or payloads would grow per round);
//   - RSS after the last round <= RSS after round 1 + kRssSlackKib, in
//     builds where RSS means something (not ASan/TSan). kRssSlackKib is
//     what the allocator may still legitimately add after warm-up: which
//     arena a worker thread uses, and how much free memory each arena keeps
//     (up to its 2 MiB trim threshold above its top, plus fragmentation
//     around 1 MiB chunks), depends on scheduling, so a later round can
//     touch a few MiB that round 1 did not. A leak of a fixed size per call
//     exceeds it soon: in long mode one round is 1,024,000 calls, so 16
//     bytes per call are 16 MiB per round.
//
// LPC_SOAK_ROUNDS, LPC_SOAK_PROCS and LPC_SOAK_CALLS (via --test_env)
// override the number of rounds (exactly that many, no time minimum), the
// client processes per round and the calls per process.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// See the file comment.
constexpr int64_t kRssSlackKib = 8 * 1024;
constexpr int kMapsSlack = 8;

// The value of environment variable `name` if it is a positive number,
// else `fallback`.
int64_t EnvOr(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  int64_t n = 0;
  if (v != nullptr && absl::SimpleAtoi(v, &n) && n > 0) return n;
  return fallback;
}

// The server's figures at one point of the run.
struct Sample {
  int fds = 0;
  int maps = 0;
  int64_t threads = 0;
  int64_t rss = 0;    // KiB, VmRSS = RssAnon + RssFile + RssShmem.
  int64_t anon = 0;   // KiB
  int64_t shmem = 0;  // KiB
  int64_t vm = 0;     // KiB, VmSize
};

Sample Take(pid_t pid) {
  Sample s;
  s.fds = CountFds(pid);
  s.maps = CountAllMaps(pid);
  s.threads = ProcStatusField(pid, "Threads");
  s.rss = RssKib(pid);
  s.anon = ProcStatusField(pid, "RssAnon");
  s.shmem = ProcStatusField(pid, "RssShmem");
  s.vm = ProcStatusField(pid, "VmSize");
  return s;
}

std::string Format(const Sample& s) {
  return absl::StrFormat(
      "rss_kib=%lld anon_kib=%lld shmem_kib=%lld vm_kib=%lld fds=%d "
      "threads=%lld maps=%d",
      static_cast<long long>(s.rss), static_cast<long long>(s.anon),
      static_cast<long long>(s.shmem), static_cast<long long>(s.vm), s.fds,
      static_cast<long long>(s.threads), s.maps);
}

TEST(SoakTest, EveryReplyCheckedNoGrowth) {
  TempDir dir;
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "0"});
  ASSERT_EQ(server.ReadLine(), "READY");
  const pid_t spid = server.pid();
  const int fds_idle = CountFds(spid);
  {
    auto ch = MakeChannel("local:p", dir.path());
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
  }
  // The warm-up connection is closed: back to the idle fd count.
  WaitFor([&] { return CountFds(spid) <= fds_idle; });
  const Sample s0 = Take(spid);
  Report("soak_round", absl::StrCat("round=0 (one warm call) ", Format(s0)));

  const int procs = static_cast<int>(EnvOr("LPC_SOAK_PROCS", Scaled(8, 64)));
  const int64_t calls_per =
      EnvOr("LPC_SOAK_CALLS", Scaled(kSanitized ? 250 : 700, 16000));
  const int64_t fixed_rounds = EnvOr("LPC_SOAK_ROUNDS", 0);
  // Without LPC_SOAK_ROUNDS: short mode 3 rounds; long mode at least 3
  // rounds, 10^6 calls and 10 minutes.
  const int64_t min_rounds = fixed_rounds > 0 ? fixed_rounds : 3;
  const int64_t max_rounds = fixed_rounds > 0 ? fixed_rounds : Scaled(3, 1000);
  const int64_t min_total = fixed_rounds > 0 ? 1 : Scaled(1, 1000000);
  const absl::Duration min_time = fixed_rounds == 0 && LongMode()
                                      ? absl::Minutes(10)
                                      : absl::ZeroDuration();
  int64_t ok = 0, lost = 0, dup = 0, mismatch = 0, failed = 0, oneway = 0,
          bytes = 0, total = 0, rounds = 0, bad_lines = 0, fd_waits_failed = 0;
  int64_t rss_peak = s0.rss;
  std::vector<Sample> after;  // after[i]: after round i + 1.
  const absl::Time start = absl::Now();
  while (rounds < max_rounds &&
         (rounds < min_rounds || total < min_total ||
          absl::Now() - start < min_time)) {
    const absl::Time round_start = absl::Now();
    std::vector<std::unique_ptr<ChildProcess>> clients;
    for (int i = 0; i < procs; ++i) {
      clients.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
          PeerBinary(), "soak", "local:p", dir.path(), absl::StrCat(calls_per),
          absl::StrCat(rounds * procs + i + 1)}));
    }
    for (auto& c : clients) {
      const std::string line = c->ReadLine(absl::Seconds(LongMode() ? 1800 : 120));
      rss_peak = std::max(rss_peak, RssKib(spid));
      int64_t v[7] = {0, 0, 0, 0, 0, 0, 0};
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      bool good = f.size() == 8 && f[0] == "SOAK";
      for (int k = 0; good && k < 7; ++k) {
        std::vector<std::string> kv = absl::StrSplit(f[k + 1], '=');
        good = kv.size() == 2 && absl::SimpleAtoi(kv[1], &v[k]);
      }
      if (!good) {
        ++bad_lines;
        lost += calls_per;  // A client that died lost all its calls.
        continue;
      }
      ok += v[0];
      lost += v[1];
      dup += v[2];
      mismatch += v[3];
      failed += v[4];
      oneway += v[5];
      bytes += v[6];
      c->Wait();
    }
    clients.clear();  // Kills and reaps any client still running.
    total += procs * calls_per;
    ++rounds;
    // Every client is gone; the sample is taken once the server has closed
    // all their connections.
    if (!WaitFor([&] { return CountFds(spid) <= s0.fds; })) ++fd_waits_failed;
    after.push_back(Take(spid));
    Report("soak_round",
           absl::StrFormat("round=%lld calls=%lld seconds=%.1f %s",
                           static_cast<long long>(rounds),
                           static_cast<long long>(total),
                           absl::ToDoubleSeconds(absl::Now() - round_start),
                           Format(after.back())));
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  ASSERT_FALSE(after.empty());
  const Sample& first = after.front();
  const Sample& last = after.back();
  std::string rss_series, fd_series;
  for (const Sample& s : after) {
    absl::StrAppend(&rss_series, rss_series.empty() ? "" : ",", s.rss);
    absl::StrAppend(&fd_series, fd_series.empty() ? "" : ",", s.fds);
  }
  Report("soak",
         absl::StrFormat(
             "processes=%d rounds=%lld calls=%lld ok=%lld lost=%lld dup=%lld "
             "mismatch=%lld failed=%lld oneway=%lld seconds=%.1f "
             "calls_per_s=%.0f MB_per_s=%.1f server_fds=%d->%d "
             "server_rss_kib=%lld (warm call) %lld (round 1) -> %lld "
             "(round %lld) peak %lld; growth_after_warmup_kib=%lld "
             "(slack %lld) maps=%d->%d client_crashes=%lld "
             "rss_kib_per_round=[%s] fds_per_round=[%s]",
             procs, static_cast<long long>(rounds),
             static_cast<long long>(total), static_cast<long long>(ok),
             static_cast<long long>(lost), static_cast<long long>(dup),
             static_cast<long long>(mismatch), static_cast<long long>(failed),
             static_cast<long long>(oneway), secs, total / secs,
             bytes / secs / 1e6, s0.fds, last.fds,
             static_cast<long long>(s0.rss), static_cast<long long>(first.rss),
             static_cast<long long>(last.rss), static_cast<long long>(rounds),
             static_cast<long long>(rss_peak),
             static_cast<long long>(last.rss - first.rss),
             static_cast<long long>(kRssSlackKib), first.maps, last.maps,
             static_cast<long long>(bad_lines), rss_series, fd_series));
  EXPECT_EQ(bad_lines, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(dup, 0);
  EXPECT_EQ(mismatch, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ok, total);
  EXPECT_EQ(fd_waits_failed, 0);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].fds, s0.fds) << "after round " << i + 1;
  }
  EXPECT_LE(last.maps, first.maps + kMapsSlack);
  if (RssIsMeaningful() && rounds >= 2) {
    EXPECT_LE(last.rss - first.rss, kRssSlackKib)
        << "server RSS grew after warm-up: " << rss_series;
  }
}

}  // namespace
}  // namespace lpc::reliability
