#include "runtime/call_context.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lpc {
namespace {

TEST(CallContextTest, DeadlineUnsetUntilSet) {
  CallContext ctx;
  EXPECT_FALSE(ctx.has_deadline());
  EXPECT_FALSE(ctx.IsCancelled());
  ctx.set_timeout(absl::Seconds(5));
  EXPECT_TRUE(ctx.has_deadline());
  EXPECT_GT(ctx.deadline(), absl::Now());
}

TEST(CallContextTest, PastDeadlineCountsAsCancelledButNotExplicitly) {
  CallContext ctx;
  ctx.set_deadline(absl::Now() - absl::Milliseconds(1));
  EXPECT_TRUE(ctx.IsCancelled());
  EXPECT_FALSE(ctx.WasCancelledExplicitly());
}

TEST(CallContextTest, CancelRunsCallbacksOnceAndWakesWaiters) {
  CallContext ctx;
  std::atomic<int> runs{0};
  ctx.AddCancelCallback([&] { runs.fetch_add(1); });
  uint64_t removed = ctx.AddCancelCallback([&] { runs.fetch_add(100); });
  ctx.RemoveCancelCallback(removed);
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    woke = ctx.WaitForCancellation(absl::Now() + absl::Seconds(30));
  });
  ctx.Cancel();
  ctx.Cancel();
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(runs.load(), 1);
  EXPECT_TRUE(ctx.WasCancelledExplicitly());
  // A callback added after cancellation runs at once.
  ctx.AddCancelCallback([&] { runs.fetch_add(10); });
  EXPECT_EQ(runs.load(), 11);
}

TEST(CallContextTest, WaitEndsAtDeadline) {
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(20));
  EXPECT_TRUE(ctx.WaitForCancellation(absl::InfiniteFuture()));
  EXPECT_FALSE(ctx.WasCancelledExplicitly());
}

TEST(CallContextTest, WaitEndsAtItsOwnLimit) {
  CallContext ctx;
  EXPECT_FALSE(ctx.WaitForCancellation(absl::Now() + absl::Milliseconds(5)));
}

TEST(PeerIdentityTest, ToStringNamesEveryKnownPart) {
  PeerIdentity p;
  p.transport = "local";
  p.address = "local:calc";
  p.uid = 1000;
  p.gid = 100;
  p.pid = 42;
  EXPECT_EQ(p.ToString(), "local local:calc uid=1000 gid=100 pid=42");
  EXPECT_EQ(PeerIdentity().ToString(), "unknown");
}

}  // namespace
}  // namespace lpc
