// Generated context handle types (`context Session;`) end to end over the
// in-process transport: every position a handle can take, rundown exactly
// once (close, then the channel going away), and NOT_FOUND for forged,
// foreign and mistyped handles.
#include <memory>
#include <string>
#include <utility>

#include "codegen/testdata/test_service.lpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/context_handle.h"
#include "runtime/inprocess.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

namespace t = ::lpc::codegen::test;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

static_assert(std::is_same_v<t::Session, t::Session>);
static_assert(!std::is_same_v<t::Session, t::Cursor>,
              "context types are distinct C++ types");

struct SessionState {
  std::string name;
};
struct CursorState {
  std::shared_ptr<SessionState> session;
};

class SessionsImpl : public t::SessionsService {
 public:
  absl::StatusOr<t::Session> Open(CallContext& ctx,
                                  const std::string& name) override {
    return OpenSession(ctx, name);
  }

  absl::StatusOr<std::string> Name(CallContext& ctx,
                                   t::Session s) override {
    absl::StatusOr<std::shared_ptr<SessionState>> st =
        LookupContext<SessionState>(ctx, s);
    if (!st.ok()) return st.status();
    return (*st)->name;
  }

  absl::StatusOr<t::Cursor> Walk(CallContext& ctx, t::Session s,
                                 t::SessionInfo* info) override {
    absl::StatusOr<std::shared_ptr<SessionState>> st =
        LookupContext<SessionState>(ctx, s);
    if (!st.ok()) return st.status();
    info->set_name((*st)->name);
    info->set_session(s.wire_id());
    auto cursor = std::make_shared<CursorState>();
    cursor->session = *st;
    return OpenContext<t::Cursor>(ctx, std::move(cursor), [this](CursorState& c) {
      Record("cursor:" + c.session->name);
    });
  }

  absl::Status Reopen(CallContext& ctx, t::Session s,
                      t::Session* next) override {
    absl::StatusOr<std::string> name = Name(ctx, s);
    if (!name.ok()) return name.status();
    if (absl::Status st = CloseContext(ctx, s); !st.ok()) return st;
    absl::StatusOr<t::Session> opened = OpenSession(ctx, *name);
    if (!opened.ok()) return opened.status();
    *next = *opened;
    return absl::OkStatus();
  }

  absl::Status Renew(CallContext& ctx, t::Session* s) override {
    return Reopen(ctx, *s, s);
  }

  absl::Status Close(CallContext& ctx, t::Session s) override {
    return CloseContext(ctx, s);
  }

  // Waits (with a deadline) until `n` rundowns have run; returns them.
  std::vector<std::string> WaitForRundowns(size_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    MutexLock lock(&mu_);
    while (rundowns_.size() < n && cv_.WaitWithDeadline(&mu_, deadline)) {
    }
    return rundowns_;
  }

 private:
  absl::StatusOr<t::Session> OpenSession(CallContext& ctx,
                                         const std::string& name) {
    auto state = std::make_shared<SessionState>();
    state->name = name;
    return OpenContext<t::Session>(ctx, std::move(state),
                                   [this](SessionState& s) {
                                     Record("session:" + s.name);
                                   });
  }

  void Record(std::string what) {
    MutexLock lock(&mu_);
    rundowns_.push_back(std::move(what));
    cv_.SignalAll();
  }

  Mutex mu_;
  CondVar cv_;
  std::vector<std::string> rundowns_ ABSL_GUARDED_BY(mu_);
};

class ContextHandleCodegenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.RegisterService(&impl_).ok());
    auto transport = std::make_unique<InProcessTransport>("context_test");
    transport_ = transport.get();
    ASSERT_TRUE(server_.AddTransport(std::move(transport)).ok());
    ASSERT_TRUE(server_.Start().ok());
  }
  void TearDown() override {
    server_.Shutdown();
    ASSERT_TRUE(internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  }

  SessionsImpl impl_;
  Server server_;
  InProcessTransport* transport_ = nullptr;
};

TEST_F(ContextHandleCodegenTest, EveryPosition) {
  t::SessionsClient client(transport_->NewChannel());
  absl::StatusOr<t::Session> s = client.Open("a");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->empty());
  EXPECT_EQ(client.Name(*s).value_or(""), "a");

  t::SessionInfo info;
  absl::StatusOr<t::Cursor> cursor = client.Walk(*s, &info);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  EXPECT_EQ(info.name(), "a");
  EXPECT_EQ(t::Session::FromWire(info.session()), *s);

  t::Session next;
  ASSERT_TRUE(client.Reopen(*s, &next).ok());
  EXPECT_NE(next, *s);
  EXPECT_THAT(client.Name(*s).status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(client.Name(next).value_or(""), "a");

  t::Session renewed = next;
  ASSERT_TRUE(client.Renew(&renewed).ok());
  EXPECT_NE(renewed, next);
  EXPECT_EQ(client.Name(renewed).value_or(""), "a");
  // Two sessions run down so far, on Reopen and Renew, before the replies.
  EXPECT_THAT(impl_.WaitForRundowns(2), ElementsAre("session:a", "session:a"));
}

TEST_F(ContextHandleCodegenTest, CloseThenDisconnectRunsDownOnce) {
  {
    t::SessionsClient client(transport_->NewChannel());
    absl::StatusOr<t::Session> a = client.Open("a");
    absl::StatusOr<t::Session> b = client.Open("b");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(client.Close(*a).ok());
    // The rundown ran before Close replied.
    EXPECT_THAT(impl_.WaitForRundowns(1), ElementsAre("session:a"));
    EXPECT_THAT(client.Close(*a), StatusIs(absl::StatusCode::kNotFound));
  }  // The channel goes: b runs down, a does not again.
  EXPECT_THAT(impl_.WaitForRundowns(2),
              ElementsAre("session:a", "session:b"));
  ASSERT_TRUE(internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(impl_.WaitForRundowns(2).size(), 2u);
}

TEST_F(ContextHandleCodegenTest, ForgedForeignAndMistypedHandlesAreNotFound) {
  t::SessionsClient first(transport_->NewChannel());
  t::SessionsClient second(transport_->NewChannel());
  absl::StatusOr<t::Session> s = first.Open("mine");
  ASSERT_TRUE(s.ok());
  t::SessionInfo info;
  absl::StatusOr<t::Cursor> cursor = first.Walk(*s, &info);
  ASSERT_TRUE(cursor.ok());

  // A handle used on a second connection.
  EXPECT_THAT(second.Name(*s).status(),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("no open context handle")));
  EXPECT_THAT(second.Close(*s), StatusIs(absl::StatusCode::kNotFound));
  // Forged ids: the empty handle and one next to a real one.
  EXPECT_THAT(first.Name(t::Session()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(first.Name(t::Session::FromWire(s->wire_id() ^ 1)).status(),
              StatusIs(absl::StatusCode::kNotFound));
  // A handle of another context type (a Cursor's id sent as a Session).
  EXPECT_THAT(first.Name(t::Session::FromWire(cursor->wire_id())).status(),
              StatusIs(absl::StatusCode::kNotFound));
  // None of it reached the session.
  EXPECT_EQ(first.Name(*s).value_or(""), "mine");
  EXPECT_TRUE(impl_.WaitForRundowns(0).empty());
}

}  // namespace
}  // namespace lpc
