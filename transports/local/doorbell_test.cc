// Tests of the scheduling helpers in doorbell.h that do not depend on
// timing: MoveOffThisCpu's effect on the thread's CPU and affinity, and
// what YieldSpinUntil reports about its first yield.
#include "transports/local/doorbell.h"

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lpc::local {
namespace {

cpu_set_t Affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  return set;
}

void SetAffinity(const cpu_set_t& set) {
  ASSERT_EQ(::sched_setaffinity(0, sizeof(set), &set), 0);
}

// Runs `body` on a thread of its own, whose affinity it may change.
template <typename Body>
void OnOwnThread(Body body) {
  std::thread t(body);
  t.join();
}

TEST(MoveOffThisCpuTest, MovesToAnotherAllowedCpuAndKeepsTheAffinity) {
  const cpu_set_t allowed = Affinity();
  if (CPU_COUNT(&allowed) < 2) {
    // Nowhere to go (a one-CPU machine or cpuset): it must say so and
    // change nothing.
    OnOwnThread([&] {
      const int before = ::sched_getcpu();
      EXPECT_FALSE(MoveOffThisCpu());
      EXPECT_EQ(::sched_getcpu(), before);
      const cpu_set_t after = Affinity();
      EXPECT_TRUE(CPU_EQUAL(&after, &allowed));
    });
    return;
  }
  OnOwnThread([&] {
    // Several rounds: the thread must leave whichever CPU it is on. (The
    // kernel may move it again between the call and the check; on a busy
    // machine a round or two may see that.)
    int moved = 0;
    for (int i = 0; i < 20; ++i) {
      const int before = ::sched_getcpu();
      ASSERT_TRUE(MoveOffThisCpu());
      moved += ::sched_getcpu() != before;
      const cpu_set_t after = Affinity();
      EXPECT_TRUE(CPU_EQUAL(&after, &allowed)) << "affinity not restored";
    }
    EXPECT_GE(moved, 15);
  });
}

TEST(MoveOffThisCpuTest, AThreadAllowedOneCpuStaysAndIsNotChanged) {
  const cpu_set_t allowed = Affinity();
  int cpu = -1;
  for (int i = 0; i < CPU_SETSIZE && cpu < 0; ++i) {
    if (CPU_ISSET(i, &allowed)) cpu = i;
  }
  ASSERT_GE(cpu, 0);
  OnOwnThread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    SetAffinity(one);
    EXPECT_FALSE(MoveOffThisCpu());
    EXPECT_EQ(::sched_getcpu(), cpu);
    const cpu_set_t after = Affinity();
    EXPECT_TRUE(CPU_EQUAL(&after, &one));
  });
}

TEST(YieldSpinUntilTest, ReportsTheFirstYieldOnlyWhenItEndedTheWait) {
  int64_t first = 0;
  // Ready before any yield: no yield to report.
  EXPECT_TRUE(YieldSpinUntil(
      1000 * 1000, [] { return true; }, [] { return true; }, &first));
  EXPECT_EQ(first, -1);

  // Ready right after the first yield: its duration is reported.
  int polls = 0;
  EXPECT_TRUE(YieldSpinUntil(
      1000 * 1000 * 1000, [&] { return ++polls >= 2; }, [] { return true; },
      &first));
  EXPECT_EQ(polls, 2);
  EXPECT_GE(first, 0);

  // Not ready after the first yield: -1, whether it is ready later or the
  // wait gives up at a long yield (a busy machine).
  polls = 0;
  YieldSpinUntil(
      int64_t{1000} * 1000 * 1000, [&] { return ++polls >= 5; },
      [] { return true; }, &first);
  EXPECT_GE(polls, 3);
  EXPECT_EQ(first, -1);

  // Stopped by keep_going: false, and -1.
  EXPECT_FALSE(YieldSpinUntil(
      1000 * 1000, [] { return false; }, [] { return false; }, &first));
  EXPECT_EQ(first, -1);
}

TEST(MonotonicDeadlineTest, AnAnchorConvertsAsBothClocksDo) {
  const absl::Time wall = absl::Now();
  const int64_t mono = MonotonicNowNs();
  const absl::Time anchor = WallClockAnchor(wall, mono);
  for (int64_t ahead : {int64_t{0}, int64_t{1}, int64_t{1500000},
                        int64_t{3600} * 1000000000}) {
    const absl::Time read = FromMonotonicDeadlineNs(mono + ahead);
    const absl::Time anchored = FromMonotonicDeadlineNs(mono + ahead, anchor);
    EXPECT_EQ(anchored, wall + absl::Nanoseconds(ahead));
    // The clocks were read again just now: the two agree within the time
    // that took, and exactly unless the wall clock was set meanwhile.
    EXPECT_LT(absl::AbsDuration(read - anchored), absl::Milliseconds(100))
        << ahead;
  }
  // And back: a deadline survives the round trip through wire ns.
  const absl::Time deadline = wall + absl::Seconds(7);
  EXPECT_EQ(FromMonotonicDeadlineNs(ToMonotonicDeadlineNs(deadline, wall, mono),
                                    anchor),
            deadline);
}

TEST(MonotonicDeadlineTest, AnchoredConversionTakesAnyPeerValue) {
  const absl::Time anchor = WallClockAnchor(absl::Now(), MonotonicNowNs());
  EXPECT_EQ(FromMonotonicDeadlineNs(0, anchor), absl::InfiniteFuture());
  EXPECT_EQ(FromMonotonicDeadlineNs(-1, anchor), absl::InfiniteFuture());
  EXPECT_EQ(FromMonotonicDeadlineNs(INT64_MIN, anchor),
            absl::InfiniteFuture());
  // Far past the anchor's range of exact sums: a finite time well in the
  // future or infinity, never a wrapped value in the past.
  const absl::Time far = FromMonotonicDeadlineNs(INT64_MAX, anchor);
  EXPECT_GT(far, absl::Now() + absl::Hours(24 * 365 * 100));
  EXPECT_GT(FromMonotonicDeadlineNs(1, anchor), anchor);
}

}  // namespace
}  // namespace lpc::local
