// Deadline callbacks (the runtime's deadline timer) and parent contexts:
// the deadline and the cancellation of a parent reach its children.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/call_context.h"
#include "runtime/internal/call_context_access.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;
namespace {

// A flag that a callback raises and a test waits for, with a deadline.
class Flag {
 public:
  void Raise() {
    std::lock_guard<std::mutex> lock(mu_);
    ++raised_;
    cv_.notify_all();
  }
  // Waits until raised `n` times or 10 s passed.
  bool WaitFor(int n = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10),
                        [&] { return raised_ >= n; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return raised_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int raised_ = 0;
};

TEST(DeadlineCallbackTest, RunsWhenTheDeadlinePasses) {
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(20));
  Flag ran;
  ctx.AddCancelCallback([&] { ran.Raise(); });
  ASSERT_TRUE(ran.WaitFor());
  EXPECT_TRUE(ctx.IsCancelled());
  EXPECT_FALSE(ctx.WasCancelledExplicitly());  // Semantics unchanged.
  ctx.Cancel();  // Already ran: not again.
  EXPECT_EQ(ran.count(), 1);
}

TEST(DeadlineCallbackTest, ADeadlineSetAfterTheCallbackCounts) {
  CallContext ctx;
  Flag ran;
  ctx.AddCancelCallback([&] { ran.Raise(); });  // No deadline yet.
  ctx.set_timeout(absl::Milliseconds(10));      // As a channel would.
  ASSERT_TRUE(ran.WaitFor());
}

TEST(DeadlineCallbackTest, APassedDeadlineRunsTheCallbackAtOnce) {
  CallContext ctx;
  ctx.set_deadline(absl::Now() - absl::Milliseconds(1));
  int runs = 0;
  EXPECT_EQ(ctx.AddCancelCallback([&] { ++runs; }), 0u);
  EXPECT_EQ(runs, 1);
}

TEST(DeadlineCallbackTest, TransportCallbacksRunOnlyOnCancel) {
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(10));
  Flag user;
  std::atomic<int> transport{0};
  CallContextAccess::AddTransportCancelCallback(
      ctx, [&] { transport.fetch_add(1); });
  ctx.AddCancelCallback([&] { user.Raise(); });
  ASSERT_TRUE(user.WaitFor());
  EXPECT_EQ(transport.load(), 0);
  ctx.Cancel();
  EXPECT_EQ(transport.load(), 1);
  EXPECT_EQ(user.count(), 1);
}

TEST(DeadlineCallbackTest, RemovedCallbacksNeverRun) {
  std::atomic<int> removed_runs{0};
  Flag later;
  CallContext early;
  early.set_timeout(absl::Milliseconds(5));
  const uint64_t h = early.AddCancelCallback([&] { removed_runs.fetch_add(1); });
  early.RemoveCancelCallback(h);
  // The timer fires in deadline order: once the later context's callback
  // ran, the earlier entry (if any were left) would have run before it.
  CallContext barrier;
  barrier.set_timeout(absl::Milliseconds(30));
  barrier.AddCancelCallback([&] { later.Raise(); });
  ASSERT_TRUE(later.WaitFor());
  EXPECT_EQ(removed_runs.load(), 0);
}

TEST(DeadlineCallbackTest, ManyContextsEachRunOnce) {
  constexpr int kContexts = 500;
  Flag ran;
  std::vector<std::unique_ptr<CallContext>> contexts;
  for (int i = 0; i < kContexts; ++i) {
    auto ctx = std::make_unique<CallContext>();
    ctx->set_timeout(absl::Milliseconds(1 + (i * 7) % 40));
    ctx->AddCancelCallback([&] { ran.Raise(); });
    if (i % 2 == 0) ctx->AddCancelCallback([&] { ran.Raise(); });
    contexts.push_back(std::move(ctx));
  }
  ASSERT_TRUE(ran.WaitFor(kContexts + kContexts / 2));
  // Half of them cancelled afterwards: nothing runs twice.
  for (int i = 0; i < kContexts; i += 2) contexts[i]->Cancel();
  EXPECT_EQ(ran.count(), kContexts + kContexts / 2);
}

TEST(DeadlineCallbackTest, ContextsDestroyedBeforeTheirDeadline) {
  // Destroying a context removes its timer entry (ASan and TSan see a
  // use after free or a race otherwise).
  for (int i = 0; i < 1000; ++i) {
    CallContext ctx;
    ctx.set_timeout(absl::Microseconds(i % 50));
    ctx.AddCancelCallback([] {});
  }
  Flag ran;
  CallContext last;
  last.set_timeout(absl::Milliseconds(5));
  last.AddCancelCallback([&] { ran.Raise(); });
  EXPECT_TRUE(ran.WaitFor());
}

TEST(DeadlineCallbackTest, AFarDeadlineDoesNotStallTheTimer) {
  // A deadline a peer sent may be centuries away.
  CallContext far;
  far.set_deadline(absl::FromUnixSeconds(int64_t{1} << 40));
  far.AddCancelCallback([] {});
  Flag ran;
  CallContext near;
  near.set_timeout(absl::Milliseconds(5));
  near.AddCancelCallback([&] { ran.Raise(); });
  EXPECT_TRUE(ran.WaitFor());
}

TEST(ParentContextTest, ChildTakesTheEarlierDeadline) {
  CallContext parent;
  parent.set_timeout(absl::Seconds(1));
  CallContext child(&parent);
  EXPECT_EQ(child.deadline(), parent.deadline());
  child.set_timeout(absl::Seconds(10));  // Later: the parent's stays.
  EXPECT_EQ(child.deadline(), parent.deadline());
  child.set_timeout(absl::Milliseconds(100));  // Earlier: its own.
  EXPECT_LT(child.deadline(), parent.deadline());

  CallContext unset_parent;  // A parent without a deadline adds none.
  CallContext child2(&unset_parent);
  EXPECT_FALSE(child2.has_deadline());
  child2.set_parent(nullptr);
  child2.set_timeout(absl::Seconds(5));
  EXPECT_TRUE(child2.has_deadline());
}

TEST(ParentContextTest, ParentCancelReachesChildAndGrandchild) {
  CallContext parent;
  CallContext child;
  child.set_parent(&parent);
  CallContext grandchild(&child);
  Flag ran;
  grandchild.AddCancelCallback([&] { ran.Raise(); });
  CallContextAccess::AddTransportCancelCallback(grandchild,
                                                [&] { ran.Raise(); });
  EXPECT_FALSE(grandchild.IsCancelled());
  parent.Cancel();
  EXPECT_TRUE(child.WasCancelledExplicitly());
  EXPECT_TRUE(grandchild.WasCancelledExplicitly());
  EXPECT_EQ(ran.count(), 2);
}

TEST(ParentContextTest, AChildOfACancelledParentIsCancelledAtOnce) {
  CallContext parent;
  parent.Cancel();
  CallContext child(&parent);
  EXPECT_TRUE(child.WasCancelledExplicitly());
}

TEST(ParentContextTest, ChildCancelLeavesTheParentAlone) {
  CallContext parent;
  CallContext child(&parent);
  child.Cancel();
  EXPECT_FALSE(parent.IsCancelled());
}

TEST(ParentContextTest, ChildDestroyedFirstUnlinks) {
  CallContext parent;
  int runs = 0;
  {
    CallContext child(&parent);
    child.AddCancelCallback([&] { ++runs; });
  }
  parent.Cancel();  // No dangling link: ASan would see the dead child.
  EXPECT_EQ(runs, 0);
}

TEST(ParentContextTest, ParentDestroyedFirstLeavesTheChildWorking) {
  std::shared_ptr<internal::CancelState> transport_side;
  auto parent = std::make_unique<CallContext>();
  parent->set_timeout(absl::Seconds(30));
  transport_side = CallContextAccess::cancel_state(
      *parent);  // As a server transport holds it.
  CallContext child(parent.get());
  const absl::Time inherited = child.deadline();
  parent.reset();
  EXPECT_EQ(child.deadline(), inherited);
  EXPECT_FALSE(child.IsCancelled());
  transport_side->Cancel();  // The parent's client went away late.
  EXPECT_TRUE(child.WasCancelledExplicitly());
}

TEST(ParentContextTest, ReparentingMovesTheLink) {
  CallContext first, second;
  CallContext child(&first);
  child.set_parent(&second);
  first.Cancel();
  EXPECT_FALSE(child.IsCancelled());
  second.Cancel();
  EXPECT_TRUE(child.IsCancelled());
}

TEST(ParentContextTest, CancelRacesChildDestruction) {
  // A parent cancelled on one thread while its children die on another:
  // each child is either cancelled or already unlinked, never touched after
  // it died (ASan/TSan).
  for (int round = 0; round < 200; ++round) {
    CallContext parent;
    std::vector<std::unique_ptr<CallContext>> children;
    std::atomic<int> runs{0};
    for (int i = 0; i < 8; ++i) {
      children.push_back(std::make_unique<CallContext>(&parent));
      CallContextAccess::AddTransportCancelCallback(*children.back(),
                                                    [&] { runs.fetch_add(1); });
    }
    std::thread killer([&] { children.clear(); });
    parent.Cancel();
    killer.join();
    EXPECT_LE(runs.load(), 8);
  }
}

TEST(ParentContextTest, ChildDestroyedInsideItsOwnCancelCallback) {
  // A transport callback that completes a call whose caller destroys the
  // context at once (an async call's `done`), run by the parent's cancel.
  CallContext parent;
  auto* child = new CallContext(&parent);
  CallContextAccess::AddTransportCancelCallback(*child,
                                                [child] { delete child; });
  parent.Cancel();  // Must not touch the child (or its state) afterwards.
  SUCCEED();
}

TEST(LazyCancelParentTest, IsCancelledReadsTheParentWithoutLinking) {
  CallContext client;
  CallContext server;
  CallContextAccess::SetLazyCancelParent(server, &client);
  EXPECT_FALSE(server.IsCancelled());
  client.Cancel();
  EXPECT_TRUE(server.IsCancelled());
  EXPECT_TRUE(server.WasCancelledExplicitly());
}

TEST(LazyCancelParentTest, ACallbackAddedLaterSeesTheParentsCancel) {
  CallContext client;
  CallContext server;
  CallContextAccess::SetLazyCancelParent(server, &client);
  Flag flag;
  server.AddCancelCallback([&] { flag.Raise(); });  // Makes the link.
  std::thread canceller([&] { client.Cancel(); });
  EXPECT_TRUE(flag.WaitFor());
  canceller.join();
  EXPECT_EQ(flag.count(), 1);
}

TEST(LazyCancelParentTest, LinkingToACancelledParentCancelsAtOnce) {
  CallContext client;
  CallContext server;
  CallContextAccess::SetLazyCancelParent(server, &client);
  client.Cancel();
  Flag flag;
  server.AddCancelCallback([&] { flag.Raise(); });
  EXPECT_EQ(flag.count(), 1);
}

TEST(LazyCancelParentTest, DestroyedFirstUnlinks) {
  CallContext client;
  {
    CallContext server;
    CallContextAccess::SetLazyCancelParent(server, &client);
    server.AddCancelCallback([] {});
  }
  client.Cancel();  // Must not reach the dead context (ASan).
  EXPECT_TRUE(client.IsCancelled());
}

}  // namespace
}  // namespace lpc
