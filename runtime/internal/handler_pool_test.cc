#include "runtime/internal/handler_pool.h"

#include <atomic>
#include <memory>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/mutex.h"
#include "testing/status_matchers.h"

namespace lpc::internal {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;

// A gate tasks wait on until the test opens it.
class Gate {
 public:
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }
  void Wait() {
    MutexLock lock(&mu_);
    while (!open_) cv_.WaitWithDeadline(&mu_, absl::Now() + absl::Seconds(30));
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// Waits (with a deadline) until `pred` holds.
template <typename Pred>
bool Eventually(Pred pred) {
  const absl::Time limit = absl::Now() + absl::Seconds(30);
  while (!pred()) {
    if (absl::Now() > limit) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(HandlerPoolTest, RefusesBadOptionsAndTasksBeforeStart) {
  HandlerPool bad({.min_workers = 0, .max_workers = 4});
  EXPECT_THAT(bad.Start(), StatusIs(absl::StatusCode::kInvalidArgument));
  HandlerPool pool({.min_workers = 1, .max_workers = 1});
  EXPECT_THAT(pool.Submit([](bool) {}),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(pool.Start(), IsOk());
  EXPECT_THAT(pool.Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(HandlerPoolTest, RunsEveryTaskOnce) {
  HandlerPool pool({.min_workers = 2, .max_workers = 4});
  ASSERT_THAT(pool.Start(), IsOk());
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i) {
    ASSERT_THAT(pool.Submit([&](bool run) {
      EXPECT_TRUE(run);
      ran.fetch_add(1);
    }),
                IsOk());
  }
  EXPECT_TRUE(pool.WaitIdle(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(ran.load(), 1000);
}

TEST(HandlerPoolTest, GrowsToMaxWorkersWhileTasksBlockThenQueues) {
  HandlerPool pool({.min_workers = 1, .max_workers = 3, .max_queued = 2});
  ASSERT_THAT(pool.Start(), IsOk());
  Gate gate;
  std::atomic<int> started{0};
  auto blocking = [&](bool run) {
    if (!run) return;
    started.fetch_add(1);
    gate.Wait();
  };
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(pool.Submit(blocking), IsOk());
    ASSERT_TRUE(Eventually([&] { return started.load() == i + 1; }));
  }
  EXPECT_EQ(pool.threads(), 3);
  // Every worker is busy: two more wait, the next is refused.
  ASSERT_THAT(pool.Submit(blocking), IsOk());
  ASSERT_THAT(pool.Submit(blocking), IsOk());
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_THAT(pool.Submit(blocking),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(pool.WaitIdle(absl::Now() + absl::Milliseconds(1)));
  gate.Open();
  EXPECT_TRUE(pool.WaitIdle(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(started.load(), 5);
  EXPECT_EQ(pool.threads(), 3);
}

TEST(HandlerPoolTest, StopRunsQueuedTasksAndJoinDropsTheRest) {
  HandlerPool pool({.min_workers = 1, .max_workers = 1});
  ASSERT_THAT(pool.Start(), IsOk());
  Gate gate;
  std::atomic<bool> first_running{false};
  ASSERT_THAT(pool.Submit([&](bool) {
    first_running = true;
    gate.Wait();
  }),
              IsOk());
  EXPECT_TRUE(Eventually([&] { return first_running.load(); }));
  std::atomic<int> ran{0}, dropped{0};
  auto counted = [&](bool run) { (run ? ran : dropped).fetch_add(1); };
  ASSERT_THAT(pool.Submit(counted), IsOk());
  pool.Stop();
  EXPECT_THAT(pool.Submit(counted), StatusIs(absl::StatusCode::kUnavailable));
  gate.Open();
  // Stopped, the queued task still runs.
  EXPECT_TRUE(pool.WaitIdle(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(ran.load(), 1);

  // A task queued behind a blocked one when Join comes is dropped.
  HandlerPool pool2({.min_workers = 1, .max_workers = 1});
  ASSERT_THAT(pool2.Start(), IsOk());
  Gate gate2;
  std::atomic<bool> running2{false};
  ASSERT_THAT(pool2.Submit([&](bool) {
    running2 = true;
    gate2.Wait();
  }),
              IsOk());
  EXPECT_TRUE(Eventually([&] { return running2.load(); }));
  ASSERT_THAT(pool2.Submit(counted), IsOk());
  pool2.Stop();
  gate2.Open();
  pool2.Join();
  EXPECT_EQ(ran.load() + dropped.load(), 2);
}

}  // namespace
}  // namespace lpc::internal
