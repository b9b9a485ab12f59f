#include "runtime/call_context.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/internal/call_context_access.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;
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

// A handler that waits out its deadline and returns at once: its
// context dies right after the wait, and the deadline callbacks must have
// run (or be running) by then, not be left to the timer thread, which
// skips a dead context. Repeated: the two threads race on every round.
TEST(CallContextTest, DeadlineCallbacksHaveRunWhenTheWaitEnds) {
  struct Runs {
    std::mutex mu;
    std::condition_variable cv;
    int n = 0;
  };
  auto runs = std::make_shared<Runs>();
  for (int round = 1; round <= 50; ++round) {
    {
      CallContext ctx;
      ctx.set_timeout(absl::Milliseconds(2));
      ctx.AddCancelCallback([runs] {
        std::lock_guard<std::mutex> lock(runs->mu);
        ++runs->n;
        runs->cv.notify_all();
      });
      EXPECT_TRUE(ctx.WaitForCancellation(absl::InfiniteFuture()));
    }
    std::unique_lock<std::mutex> lock(runs->mu);
    ASSERT_TRUE(runs->cv.wait_for(lock, std::chrono::seconds(10),
                                  [&] { return runs->n >= round; }))
        << "round " << round << ": the deadline callback never ran";
    EXPECT_EQ(runs->n, round);
  }
}

TEST(CallContextTest, WaitEndsAtItsOwnLimit) {
  CallContext ctx;
  EXPECT_FALSE(ctx.WaitForCancellation(absl::Now() + absl::Milliseconds(5)));
}

TEST(CallContextTest, CancelStateIsSharedAndOutlivesTheContext) {
  std::weak_ptr<internal::CancelState> weak;
  std::shared_ptr<internal::CancelState> held;
  {
    CallContext ctx;
    held = CallContextAccess::cancel_state(ctx);
    // One state per context.
    EXPECT_EQ(CallContextAccess::cancel_state(ctx), held);
    weak = held;
    held->Cancel();  // As a transport would on a CANCEL message.
    EXPECT_TRUE(ctx.WasCancelledExplicitly());
    EXPECT_TRUE(ctx.IsCancelled());
  }
  EXPECT_TRUE(held->cancelled());  // Still valid after the context died.
  held.reset();
  EXPECT_TRUE(weak.expired());  // And freed with its last holder.
}

TEST(CallContextTest, ConcurrentFirstUseMakesOneCancelState) {
  for (int round = 0; round < 50; ++round) {
    CallContext ctx;
    std::shared_ptr<internal::CancelState> a, b;
    std::thread t1([&] { a = CallContextAccess::cancel_state(ctx); });
    std::thread t2([&] { b = CallContextAccess::cancel_state(ctx); });
    t1.join();
    t2.join();
    ASSERT_EQ(a, b) << round;
  }
}

TEST(CallContextTest, CancelBeforeAnyCallbackStillRunsLaterCallbacks) {
  CallContext ctx;
  EXPECT_FALSE(ctx.WasCancelledExplicitly());
  ctx.Cancel();
  int runs = 0;
  EXPECT_EQ(ctx.AddCancelCallback([&] { ++runs; }), 0u);
  EXPECT_EQ(runs, 1);  // At once, on this thread.
}

TEST(CallContextTest, RemovedCallbackDoesNotRun) {
  CallContext ctx;
  int first = 0, second = 0;
  const uint64_t h1 = ctx.AddCancelCallback([&] { ++first; });
  ctx.AddCancelCallback([&] { ++second; });
  ctx.RemoveCancelCallback(h1);
  ctx.Cancel();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(CallContextTest, RemoveWaitsForACallbackThatIsRunning) {
  CallContext ctx;
  std::atomic<bool> started{false}, remove_called{false}, finished{false};
  const uint64_t handle = ctx.AddCancelCallback([&] {
    started = true;
    // Bounded: the remover is at most a thread start away.
    for (int i = 0; i < 10000000 && !remove_called; ++i) std::this_thread::yield();
    for (int i = 0; i < 1000; ++i) std::this_thread::yield();
    finished = true;
  });
  std::thread canceller([&] { ctx.Cancel(); });
  for (int i = 0; i < 10000000 && !started; ++i) std::this_thread::yield();
  ASSERT_TRUE(started);
  remove_called = true;
  ctx.RemoveCancelCallback(handle);
  EXPECT_TRUE(finished);  // Not running any more once Remove returned.
  canceller.join();
}

TEST(CallContextTest, RemoveFromInsideTheCallbackDoesNotWait) {
  CallContext ctx;
  uint64_t handle = 0;
  bool ran = false;
  handle = ctx.AddCancelCallback([&] {
    ctx.RemoveCancelCallback(handle);  // Would deadlock if it waited.
    ran = true;
  });
  ctx.Cancel();
  EXPECT_TRUE(ran);
}

TEST(CallContextTest, MethodPathAndPeerByReference) {
  const std::string path = "/lpc.test.Raw/Echo";
  PeerIdentity peer;
  peer.transport = "local";
  peer.pid = 42;
  CallContext ctx;
  CallContextAccess::SetMethodPathRef(ctx, &path);
  CallContextAccess::SetPeerRef(ctx, &peer);
  EXPECT_EQ(ctx.method_path(), path);
  EXPECT_EQ(&ctx.method_path(), &path);
  EXPECT_EQ(ctx.peer().pid, 42);
  ctx.set_method_path("/own/Copy");  // A copy replaces the reference.
  ctx.set_peer(PeerIdentity{"inprocess", {}, {}, {}, ""});
  EXPECT_EQ(ctx.method_path(), "/own/Copy");
  EXPECT_EQ(ctx.peer().transport, "inprocess");
}

TEST(CallContextTest, ExpireNowIsADeadlineNotACancel) {
  CallContext ctx;
  ctx.set_timeout(absl::Hours(1));
  int deadline_runs = 0;
  int transport_runs = 0;
  ctx.AddCancelCallback([&] { ++deadline_runs; });
  CallContextAccess::AddTransportCancelCallback(ctx, [&] { ++transport_runs; });
  CallContext child(&ctx);
  EXPECT_FALSE(ctx.IsCancelled());
  CallContextAccess::ExpireNow(ctx);
  EXPECT_TRUE(ctx.IsCancelled());
  EXPECT_FALSE(ctx.WasCancelledExplicitly());
  EXPECT_EQ(deadline_runs, 1);
  EXPECT_EQ(transport_runs, 0);
  EXPECT_TRUE(ctx.WaitForCancellation(absl::InfiniteFuture()));
  // The child is not cancelled: it ends at its own deadline.
  EXPECT_FALSE(child.WasCancelledExplicitly());
  // A deadline callback added later runs at once; a second ExpireNow and a
  // later Cancel() do not run the deadline callbacks again.
  ctx.AddCancelCallback([&] { ++deadline_runs; });
  EXPECT_EQ(deadline_runs, 2);
  CallContextAccess::ExpireNow(ctx);
  ctx.Cancel();
  EXPECT_EQ(deadline_runs, 2);
  EXPECT_EQ(transport_runs, 1);
  EXPECT_TRUE(child.WasCancelledExplicitly());
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
  PeerIdentity g;
  g.transport = "grpc";
  g.address = "unix:/run/calc.sock";
  g.tls_common_name = "client-one";
  g.tls_alt_names = {"client-one.example", "spiffe://example/one"};
  EXPECT_EQ(g.ToString(),
            "grpc unix:/run/calc.sock tls_cn=client-one "
            "tls_san=client-one.example,spiffe://example/one");
}

}  // namespace
}  // namespace lpc
