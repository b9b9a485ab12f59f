// Tests for the benchmark plumbing: the shared flags, percentile arithmetic,
// payload stamps and child-process management.

#include "bench/bench_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <numeric>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

namespace lpc::bench {
namespace {

TEST(FlagsTest, IntListParsesAndRejectsNonNumbers) {
  IntList list;
  std::string error;
  ASSERT_TRUE(AbslParseFlag("0,64,,1024", &list, &error));
  EXPECT_EQ(list.values, (std::vector<int64_t>{0, 64, 1024}));
  EXPECT_EQ(AbslUnparseFlag(list), "0,64,1024");
  EXPECT_FALSE(AbslParseFlag("64,1k", &list, &error));
  EXPECT_EQ(error, "'1k' is not a non-negative integer");
  EXPECT_FALSE(AbslParseFlag("-1", &list, &error));
  EXPECT_EQ(error, "'-1' is not a non-negative integer");
}

TEST(FlagsTest, SharedFlagsFillPlacementLimitsAndPayloads) {
  EXPECT_EQ(PayloadsOr({5}), (std::vector<int64_t>{5}));
  absl::SetFlag(&FLAGS_payloads, IntList{{7, 8}});
  EXPECT_EQ(PayloadsOr({5}), (std::vector<int64_t>{7, 8}));

  absl::SetFlag(&FLAGS_placement, "same-core");
  Placement p = PlacementFromFlags();
  EXPECT_EQ(p.name, "same-core");
  EXPECT_EQ(p.client_cpu, 0);
  EXPECT_EQ(p.server_cpu, 0);
  absl::SetFlag(&FLAGS_server_cpu, 3);
  EXPECT_EQ(PlacementFromFlags().server_cpu, 3);

  absl::SetFlag(&FLAGS_seconds, 0.25);
  absl::SetFlag(&FLAGS_iters, 7);
  RunLimits l = LimitsFromFlags();
  EXPECT_DOUBLE_EQ(l.seconds, 0.25);
  EXPECT_EQ(l.max_iters, 7);
  EXPECT_EQ(l.warmup_iters, RunLimits{}.warmup_iters);
}

TEST(StatsTest, NearestRankPercentiles) {
  std::vector<uint64_t> ns(1000);
  // 1000 samples of 1..1000 us, shuffled order does not matter.
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = (1000 - i) * 1000;
  Stats s = ComputeStats(ns);
  EXPECT_EQ(s.samples, 1000);
  EXPECT_DOUBLE_EQ(s.p50_us, 500);
  EXPECT_DOUBLE_EQ(s.p99_us, 990);
  EXPECT_DOUBLE_EQ(s.p999_us, 999);
  EXPECT_DOUBLE_EQ(s.max_us, 1000);
  EXPECT_DOUBLE_EQ(s.mean_us, 500.5);
}

TEST(StatsTest, FewSamplesUseTheLargestForHighPercentiles) {
  std::vector<uint64_t> ns = {3000, 1000, 2000};
  Stats s = ComputeStats(ns);
  EXPECT_DOUBLE_EQ(s.p50_us, 2);
  EXPECT_DOUBLE_EQ(s.p99_us, 3);
  EXPECT_DOUBLE_EQ(s.p999_us, 3);
  std::vector<uint64_t> empty;
  EXPECT_EQ(ComputeStats(empty).samples, 0);
}

TEST(EchoResultTest, ThroughputCountsBothDirections) {
  Samples samples;
  samples.ns.assign(100, 10000);  // 100 calls of 10 us
  samples.elapsed_s = 0.001;
  Result r = MakeEchoResult("x", "cross-core", 1000, samples);
  EXPECT_DOUBLE_EQ(r.calls_per_s, 100000);
  EXPECT_DOUBLE_EQ(r.gbps, 2.0 * 1000 * 100000 / 1e9);
}

TEST(StampTest, DetectsStaleAndTruncatedPayloads) {
  for (size_t n : {0, 1, 8, 9, 4096}) {
    std::vector<char> buf(n + 1, 0);
    Stamp(buf.data(), n, 42);
    EXPECT_TRUE(CheckStamp(buf.data(), n, 42)) << n;
    if (n > 0) {
      EXPECT_FALSE(CheckStamp(buf.data(), n, 43)) << n;
    }
  }
  std::vector<char> buf(100, 0);
  Stamp(buf.data(), 100, 5);
  buf[99] ^= 1;  // The tail of a truncated copy.
  EXPECT_FALSE(CheckStamp(buf.data(), 100, 5));
}

TEST(MeasureTest, StopsAtIterationBoundAndOnFailure) {
  RunLimits limits;
  limits.warmup_iters = 3;
  limits.max_iters = 10;
  limits.seconds = 10;
  int calls = 0;
  Samples samples;
  ASSERT_TRUE(Measure(limits, [&] { ++calls; return true; }, &samples));
  EXPECT_EQ(samples.ns.size(), 10u);
  EXPECT_EQ(calls, 13);
  calls = 0;
  EXPECT_FALSE(Measure(limits, [&] { return ++calls < 5; }, &samples));
  EXPECT_EQ(calls, 5);
}

TEST(ChildTest, StopChildEndsAProcessThatWouldRunForever) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = ForkChild([&] {
    close(fds[0]);
    char c = 'r';
    if (write(fds[1], &c, 1) != 1) return 1;
    // Blocks until killed; bounded by the parent's StopChild.
    for (int i = 0; i < 600; ++i) pause();
    return 0;
  });
  ASSERT_GT(pid, 0);
  close(fds[1]);
  char c = 0;
  ASSERT_TRUE(ReadFullTimeout(fds[0], &c, 1, 5000));
  EXPECT_EQ(c, 'r');
  int status = StopChild(pid, 1000);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  close(fds[0]);
}

TEST(ChildTest, WaitChildReturnsExitCode) {
  pid_t pid = ForkChild([] { return 7; });
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_TRUE(WaitChild(pid, 5000, &status));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

}  // namespace
}  // namespace lpc::bench
