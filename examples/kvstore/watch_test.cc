// The kvstore's Watch through the in-process transport: changes in store
// order, prefix filtering, a cancelled watch dropped, and a watcher that
// stops reading ended with RESOURCE_EXHAUSTED while the store goes on.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/kvstore/kv_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace example::kv {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(server_.RegisterService(&store_), IsOk());
    auto transport = std::make_unique<lpc::InProcessTransport>("kv_watch_test");
    lpc::InProcessTransport* raw = transport.get();
    ASSERT_THAT(server_.AddTransport(std::move(transport)), IsOk());
    ASSERT_THAT(server_.Start(), IsOk());
    client_ = std::make_unique<KeyValueClient>(raw->NewChannel());
  }
  void TearDown() override { server_.Shutdown(); }

  // The open watches, as the store reports them.
  uint64_t Watches() {
    absl::StatusOr<Stats> stats = client_->GetStats();
    EXPECT_THAT(stats.status(), IsOk());
    return stats.ok() ? stats->watches() : 0;
  }
  // Waits until the store reports `n` open watches, up to 10 s.
  bool WaitForWatches(uint64_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (Watches() != n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

  KeyValueImpl store_;
  lpc::Server server_;
  std::unique_ptr<KeyValueClient> client_;
};

TEST_F(WatchTest, SeesPutsAndDeletesUnderItsPrefixInOrder) {
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  lpc::ClientReader<Change> watch = client_->Watch("a/", &ctx);
  ASSERT_TRUE(WaitForWatches(1));
  ASSERT_THAT(client_->Put("a/1", "x", std::nullopt).status(), IsOk());
  ASSERT_THAT(client_->Put("b/1", "other prefix", std::nullopt).status(), IsOk());
  ASSERT_THAT(client_->Put("a/1", "y", std::nullopt).status(), IsOk());
  ASSERT_THAT(client_->Delete("a/1").status(), IsOk());
  Change c;
  ASSERT_TRUE(watch.Read(&c));
  EXPECT_EQ(c.key(), "a/1");
  EXPECT_EQ(c.value(), "x");
  EXPECT_EQ(c.version(), 1u);
  EXPECT_EQ(c.transport(), "inprocess");
  ASSERT_TRUE(watch.Read(&c));
  EXPECT_EQ(c.value(), "y");
  EXPECT_EQ(c.version(), 2u);
  ASSERT_TRUE(watch.Read(&c));
  EXPECT_TRUE(c.deleted());
  EXPECT_EQ(c.key(), "a/1");
  // Cancelled, the watch is dropped from the store.
  watch.Cancel();
  EXPECT_THAT(watch.Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(WaitForWatches(0));
}

TEST_F(WatchTest, AWatcherThatStopsReadingIsEndedAndTheStoreGoesOn) {
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  lpc::ClientReader<Change> stalled = client_->Watch("", &ctx);
  ASSERT_TRUE(WaitForWatches(1));
  // More changes than the stream's window and the watcher's queue hold.
  const int puts = static_cast<int>(Watchers::kMaxQueuedChanges) + 200;
  for (int i = 0; i < puts; ++i) {
    ASSERT_THAT(client_->Put(absl::StrCat("k", i), "v", std::nullopt).status(),
                IsOk());
  }
  EXPECT_TRUE(WaitForWatches(0));
  // The reader gets what was in the window, then the reason.
  Change c;
  int read = 0;
  while (stalled.Read(&c)) ++read;
  EXPECT_GT(read, 0);
  EXPECT_LT(read, puts);
  EXPECT_THAT(stalled.Finish(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       ::testing::HasSubstr("fell more than 1024 changes behind")));
}

}  // namespace
}  // namespace example::kv
