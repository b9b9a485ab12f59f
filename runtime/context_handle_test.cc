#include "runtime/context_handle.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/internal/call_context_access.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

struct SessionTag;
struct OtherTag;
using Session = ContextHandle<SessionTag>;
using Other = ContextHandle<OtherTag>;

// Counts rundowns and destructions, and waits for them with a deadline.
struct Counter {
  Mutex mu;
  CondVar cv;
  int rundowns ABSL_GUARDED_BY(mu) = 0;
  int destroyed ABSL_GUARDED_BY(mu) = 0;

  void Rundown() {
    MutexLock lock(&mu);
    ++rundowns;
    cv.SignalAll();
  }
  void Destroyed() {
    MutexLock lock(&mu);
    ++destroyed;
    cv.SignalAll();
  }
  bool WaitFor(int want_rundowns, int want_destroyed) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    MutexLock lock(&mu);
    while (rundowns < want_rundowns || destroyed < want_destroyed) {
      if (!cv.WaitWithDeadline(&mu, deadline)) break;
    }
    return rundowns >= want_rundowns && destroyed >= want_destroyed;
  }
  int Rundowns() {
    MutexLock lock(&mu);
    return rundowns;
  }
};

struct Object {
  explicit Object(Counter* c, std::string name = "")
      : counter(c), name(std::move(name)) {}
  ~Object() { counter->Destroyed(); }
  Counter* counter;
  std::string name;
  bool ran = false;
};

class ContextHandleTest : public ::testing::Test {
 protected:
  ContextHandleTest() {
    internal::CallContextAccess::SetContextTable(ctx_, table_);
    internal::CallContextAccess::SetContextTable(other_ctx_, other_table_);
  }
  // The tables go first, and their rundowns run while counter_ lives.
  ~ContextHandleTest() override {
    internal::CallContextAccess::SetContextTable(ctx_, nullptr);
    internal::CallContextAccess::SetContextTable(other_ctx_, nullptr);
    table_.reset();
    other_table_.reset();
    EXPECT_TRUE(internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  }

  absl::StatusOr<Session> Open(CallContext& ctx, std::string name = "") {
    return OpenContext<Session>(ctx, std::make_shared<Object>(&counter_, name),
                                [](Object& o) {
                                  EXPECT_FALSE(o.ran);
                                  o.ran = true;
                                  o.counter->Rundown();
                                });
  }

  Counter counter_;
  std::shared_ptr<ContextTable> table_ = std::make_shared<ContextTable>(8);
  std::shared_ptr<ContextTable> other_table_ = std::make_shared<ContextTable>();
  CallContext ctx_;
  CallContext other_ctx_;
  std::thread::id test_thread_;
};

TEST_F(ContextHandleTest, OpenLookupClose) {
  absl::StatusOr<Session> s = Open(ctx_, "a");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->empty());
  EXPECT_EQ(table_->size(), 1u);
  absl::StatusOr<std::shared_ptr<Object>> o = LookupContext<Object>(ctx_, *s);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ((*o)->name, "a");
  o->reset();
  EXPECT_EQ(counter_.Rundowns(), 0);
  // Close runs the rundown before it returns, on this thread.
  EXPECT_TRUE(CloseContext(ctx_, *s).ok());
  EXPECT_EQ(counter_.Rundowns(), 1);
  EXPECT_TRUE(counter_.WaitFor(1, 1));
  EXPECT_EQ(table_->size(), 0u);
  EXPECT_THAT(CloseContext(ctx_, *s), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LookupContext<Object>(ctx_, *s).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ContextHandleTest, CloseThenConnectionEndRunsDownOnce) {
  absl::StatusOr<Session> a = Open(ctx_);
  absl::StatusOr<Session> b = Open(ctx_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(CloseContext(ctx_, *a).ok());
  table_->RundownAll();
  table_->RundownAll();  // Idempotent.
  EXPECT_TRUE(counter_.WaitFor(2, 2));
  EXPECT_TRUE(internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(counter_.Rundowns(), 2);
  EXPECT_THAT(CloseContext(ctx_, *b), StatusIs(absl::StatusCode::kNotFound));
  // An ended connection opens nothing more.
  EXPECT_THAT(Open(ctx_).status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ContextHandleTest, ObjectOutlivesRundownWhileAHandlerHoldsIt) {
  absl::StatusOr<Session> s = Open(ctx_);
  ASSERT_TRUE(s.ok());
  absl::StatusOr<std::shared_ptr<Object>> held = LookupContext<Object>(ctx_, *s);
  ASSERT_TRUE(held.ok());
  table_->RundownAll();
  EXPECT_TRUE(counter_.WaitFor(1, 0));
  EXPECT_TRUE((*held)->ran);  // Still alive after its rundown.
  held->reset();
  EXPECT_TRUE(counter_.WaitFor(1, 1));
}

TEST_F(ContextHandleTest, ForgedForeignAndMistypedHandlesAreNotFound) {
  absl::StatusOr<Session> s = Open(ctx_);
  ASSERT_TRUE(s.ok());
  // Forged: an id nobody handed out (the empty one, and a neighbour).
  EXPECT_THAT(LookupContext<Object>(ctx_, Session()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(
      LookupContext<Object>(ctx_, Session::FromWire(s->wire_id() + 1)).status(),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("no open context")));
  // Foreign: the same id on another connection.
  EXPECT_THAT(LookupContext<Object>(other_ctx_, *s).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CloseContext(other_ctx_, *s),
              StatusIs(absl::StatusCode::kNotFound));
  // Another context type with the same id.
  Other other = Other::FromWire(s->wire_id());
  EXPECT_THAT(LookupContext<Object>(ctx_, other).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CloseContext(ctx_, other), StatusIs(absl::StatusCode::kNotFound));
  // A server asking for the wrong object type is its own bug.
  EXPECT_THAT(LookupContext<std::string>(ctx_, *s).status(),
              StatusIs(absl::StatusCode::kInternal));
  // None of that touched the context.
  EXPECT_EQ(counter_.Rundowns(), 0);
  EXPECT_TRUE(LookupContext<Object>(ctx_, *s).ok());
}

TEST_F(ContextHandleTest, AtMostMaxPerConnection) {
  std::vector<Session> open;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<Session> s = Open(ctx_);
    ASSERT_TRUE(s.ok()) << s.status();
    open.push_back(*s);
  }
  EXPECT_THAT(Open(ctx_).status(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max_context_handles_per_connection")));
  ASSERT_TRUE(CloseContext(ctx_, open.back()).ok());
  EXPECT_TRUE(Open(ctx_).ok());
}

TEST_F(ContextHandleTest, ClientContextHasNoTable) {
  CallContext client;
  EXPECT_THAT(Open(client).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(LookupContext<Object>(client, Session::FromWire(1)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ContextHandleTest, RacingClosesAndRundownRunEachOnce) {
  auto table = std::make_shared<ContextTable>(1000);
  CallContext ctx;
  internal::CallContextAccess::SetContextTable(ctx, table);
  std::vector<Session> open;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<Session> s = Open(ctx);
    ASSERT_TRUE(s.ok());
    open.push_back(*s);
  }
  std::atomic<int> closed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < open.size(); i += 2) {
        if (CloseContext(ctx, open[i]).ok()) ++closed;
      }
    });
  }
  table->RundownAll();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(counter_.WaitFor(200, 200));
  EXPECT_TRUE(internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(counter_.Rundowns(), 200);
}

TEST_F(ContextHandleTest, DestroyedTableRunsItsRundowns) {
  auto table = std::make_shared<ContextTable>();
  {
    CallContext ctx;
    internal::CallContextAccess::SetContextTable(ctx, table);
    ASSERT_TRUE(Open(ctx).ok());
    ASSERT_TRUE(Open(ctx).ok());
  }
  table.reset();
  EXPECT_TRUE(counter_.WaitFor(2, 2));
}

TEST_F(ContextHandleTest, RundownsRunOffTheCallersThread) {
  absl::StatusOr<Session> s = OpenContext<Session>(
      ctx_, std::make_shared<int>(0), [this](int&) {
        // Not the thread that ended the connection.
        EXPECT_NE(std::this_thread::get_id(), test_thread_);
        counter_.Rundown();
      });
  ASSERT_TRUE(s.ok());
  test_thread_ = std::this_thread::get_id();
  table_->RundownAll();
  EXPECT_TRUE(counter_.WaitFor(1, 0));
}

}  // namespace
}  // namespace lpc
