// Item 14 of docs/reliability.md: soak. Client processes (reliability_peer
// soak) make mixed sync, async and oneway Echo calls of 0 B - 1 MiB against
// a server process, checking every reply. Short mode: one round of 8
// processes x 2,000 calls. Long mode: rounds of 64 processes x 16,000 calls
// until at least 1,000,000 calls and 10 minutes. Reports lost, duplicated
// and mismatched replies (all 0), throughput, and the server's RSS and fd
// count at the start and the end (no growth).
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
  const int fds0 = CountFds(spid);
  const int64_t rss0 = RssKib(spid);
  const int procs = static_cast<int>(Scaled(8, 64));
  const int64_t calls_per = Scaled(2000, 16000);
  const int64_t min_total = Scaled(1, 1000000);
  const absl::Duration min_time = LongMode() ? absl::Minutes(10) : absl::ZeroDuration();
  int64_t ok = 0, lost = 0, dup = 0, mismatch = 0, failed = 0, oneway = 0,
          bytes = 0, total = 0, rounds = 0, bad_lines = 0;
  int64_t rss_peak = rss0;
  const absl::Time start = absl::Now();
  while (total < min_total || absl::Now() - start < min_time) {
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
    total += procs * calls_per;
    ++rounds;
    if (!LongMode()) break;
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  // All clients are gone: their connections close.
  WaitFor([&] { return CountFds(spid) <= fds0; });
  const int fds1 = CountFds(spid);
  const int64_t rss1 = RssKib(spid);
  Report("soak",
         absl::StrFormat(
             "processes=%d rounds=%lld calls=%lld ok=%lld lost=%lld dup=%lld "
             "mismatch=%lld failed=%lld oneway=%lld seconds=%.1f "
             "calls_per_s=%.0f MB_per_s=%.1f server_fds=%d->%d "
             "server_rss_kib=%lld->%lld (peak %lld) client_crashes=%lld",
             procs, static_cast<long long>(rounds),
             static_cast<long long>(total), static_cast<long long>(ok),
             static_cast<long long>(lost), static_cast<long long>(dup),
             static_cast<long long>(mismatch), static_cast<long long>(failed),
             static_cast<long long>(oneway), secs, total / secs,
             bytes / secs / 1e6, fds0, fds1, static_cast<long long>(rss0),
             static_cast<long long>(rss1), static_cast<long long>(rss_peak),
             static_cast<long long>(bad_lines)));
  EXPECT_EQ(bad_lines, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(dup, 0);
  EXPECT_EQ(mismatch, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ok, total);
  EXPECT_EQ(fds1, fds0);
  if (RssIsMeaningful()) EXPECT_LT(rss1 - rss0, 128 * 1024);
}

}  // namespace
}  // namespace lpc::reliability
