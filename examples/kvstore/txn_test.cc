// The kvstore's transactions (context handles): commit and abort, isolation
// between clients, NOT_FOUND for forged and foreign handles, and the rundown
// (abort) exactly once when the client closes its connection or dies, over
// the in-process transport and the local port.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "examples/kvstore/kv_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/context_handle.h"
#include "runtime/inprocess.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/local/local_transport.h"

extern char** environ;

namespace example::kv {
namespace {

using ::lpc::testing::StatusIs;

// Counts aborts and remembers when the last one ran.
struct AbortWatch {
  lpc::Mutex mu;
  lpc::CondVar cv;
  int aborted ABSL_GUARDED_BY(mu) = 0;
  absl::Time last ABSL_GUARDED_BY(mu);

  void Aborted() {
    lpc::MutexLock lock(&mu);
    ++aborted;
    last = absl::Now();
    cv.SignalAll();
  }
  // Waits until `n` aborts ran or `deadline`; returns the count.
  int WaitFor(int n, absl::Time deadline) {
    lpc::MutexLock lock(&mu);
    while (aborted < n && cv.WaitWithDeadline(&mu, deadline)) {
    }
    return aborted;
  }
  absl::Time Last() {
    lpc::MutexLock lock(&mu);
    return last;
  }
};

class TxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    impl_.set_on_txn_aborted([this] { watch_.Aborted(); });
    ASSERT_TRUE(server_.RegisterService(&impl_).ok());
    auto inproc = std::make_unique<lpc::InProcessTransport>("txn_test");
    inproc_ = inproc.get();
    ASSERT_TRUE(server_.AddTransport(std::move(inproc)).ok());
    // A fresh directory under /tmp: TEST_TMPDIR is too long for a Unix
    // socket path.
    char tmpl[] = "/tmp/lpc-txn-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    lpc::local::LocalPortOptions po;
    po.runtime_dir = dir_;
    auto local = lpc::local::MakeLocalServerTransport("kv_txn", po);
    ASSERT_TRUE(local.ok()) << local.status();
    ASSERT_TRUE(server_.AddTransport(std::move(*local)).ok());
    ASSERT_TRUE(server_.Start().ok());
  }
  void TearDown() override {
    server_.Shutdown();
    ASSERT_TRUE(lpc::internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<lpc::Channel> LocalChannel() {
    lpc::local::LocalChannelOptions lo;
    lo.runtime_dir = dir_;
    auto ch = lpc::local::CreateLocalChannel("kv_txn", {}, lo);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return *ch;
  }

  Stats GetStats() {
    KeyValueClient kv(inproc_->NewChannel());
    absl::StatusOr<Stats> s = kv.GetStats();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.value_or(Stats());
  }

  AbortWatch watch_;
  KeyValueImpl impl_;
  lpc::Server server_;
  lpc::InProcessTransport* inproc_ = nullptr;
  std::string dir_;
};

TEST_F(TxnTest, CommitAppliesAllAbortDropsAll) {
  for (bool local : {false, true}) {
    SCOPED_TRACE(local ? "local" : "in-process");
    KeyValueClient kv(local ? LocalChannel() : inproc_->NewChannel());
    const std::string k = local ? "l/" : "i/";
    absl::StatusOr<Txn> t = kv.Begin();
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE(kv.TxnPut(*t, k + "a", "1").ok());
    ASSERT_TRUE(kv.TxnPut(*t, k + "b", "2").ok());
    uint64_t version = 0;
    // Staged, not visible.
    EXPECT_THAT(kv.Get(k + "a", &version).status(),
                StatusIs(absl::StatusCode::kNotFound));
    EXPECT_EQ(kv.Commit(*t).value_or(0), 2u);
    EXPECT_EQ(kv.Get(k + "b", &version).value_or(""), "2");
    // Ended: the handle names nothing now.
    EXPECT_THAT(kv.Commit(*t).status(), StatusIs(absl::StatusCode::kNotFound));

    absl::StatusOr<Txn> u = kv.Begin();
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE(kv.TxnPut(*u, k + "c", "3").ok());
    ASSERT_TRUE(kv.Abort(*u).ok());
    EXPECT_THAT(kv.Abort(*u), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(kv.Get(k + "c", &version).status(),
                StatusIs(absl::StatusCode::kNotFound));
  }
  EXPECT_EQ(watch_.WaitFor(2, absl::Now() + absl::Seconds(10)), 2);
  EXPECT_EQ(GetStats().open_txns(), 0u);
}

TEST_F(TxnTest, ForgedAndForeignHandlesAreNotFound) {
  KeyValueClient mine(LocalChannel());
  KeyValueClient other_local(LocalChannel());
  KeyValueClient other_inproc(inproc_->NewChannel());
  absl::StatusOr<Txn> t = mine.Begin();
  ASSERT_TRUE(t.ok()) << t.status();
  // A handle used on a second connection, of the same or another transport.
  EXPECT_THAT(other_local.TxnPut(*t, "x", "y"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(other_local.Commit(*t).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(other_inproc.Abort(*t), StatusIs(absl::StatusCode::kNotFound));
  // Forged: the empty handle, and ids next to the real one.
  EXPECT_THAT(mine.Commit(Txn()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  for (uint64_t delta : {1ull, 2ull, 1ull << 63}) {
    EXPECT_THAT(mine.TxnPut(Txn::FromWire(t->wire_id() ^ delta), "x", "y"),
                StatusIs(absl::StatusCode::kNotFound));
  }
  // Nothing reached the transaction.
  ASSERT_TRUE(mine.TxnPut(*t, "mine", "1").ok());
  EXPECT_EQ(mine.Commit(*t).value_or(0), 1u);
  EXPECT_EQ(watch_.WaitFor(0, absl::Now()), 0);
}

TEST_F(TxnTest, CloseThenDisconnectRunsDownOnce) {
  for (bool local : {false, true}) {
    SCOPED_TRACE(local ? "local" : "in-process");
    const int before = watch_.WaitFor(0, absl::Now());
    {
      KeyValueClient kv(local ? LocalChannel() : inproc_->NewChannel());
      absl::StatusOr<Txn> a = kv.Begin();
      absl::StatusOr<Txn> b = kv.Begin();
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_TRUE(kv.Abort(*a).ok());
      EXPECT_EQ(watch_.WaitFor(before + 1, absl::Now()), before + 1);
    }  // The client closes its channel: b is aborted, a not again.
    EXPECT_EQ(watch_.WaitFor(before + 2, absl::Now() + absl::Seconds(10)),
              before + 2);
    ASSERT_TRUE(lpc::internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
    EXPECT_EQ(watch_.WaitFor(0, absl::Now()), before + 2);
  }
  EXPECT_EQ(GetStats().open_txns(), 0u);
  EXPECT_EQ(GetStats().aborted_txns(), 4u);
}

std::string HolderPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir != nullptr ? srcdir : ".") +
         "/lpc/examples/kvstore/txn_holder";
}

// A client process opens 100 transactions over the local port and is
// killed with SIGKILL: the server sees the socket close and runs the 100
// rundowns. The time from the kill to the last rundown is printed (the
// target is 100 ms); the test asserts that all of them run.
TEST_F(TxnTest, KilledClientsTransactionsRunDown) {
  constexpr int kTxns = 100;
  // Its stdout tells us when it is ready; its stdin stays open (it holds
  // its transactions until stdin closes), so only the kill ends it.
  int out[2], in[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  std::string path = HolderPath();
  std::string count = std::to_string(kTxns);
  std::vector<char*> args = {path.data(), dir_.data(),
                             const_cast<char*>("kv_txn"), count.data(),
                             nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, path.c_str(), &actions, nullptr, args.data(),
                          environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(in[0]);
  // Its "ready" line: every transaction is open on the server.
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  ASSERT_EQ(line, "ready");
  EXPECT_EQ(GetStats().open_txns(), static_cast<uint64_t>(kTxns));
  EXPECT_EQ(watch_.WaitFor(0, absl::Now()), 0);

  const absl::Time killed = absl::Now();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(watch_.WaitFor(kTxns, absl::Now() + absl::Seconds(10)), kTxns);
  const absl::Duration took = watch_.Last() - killed;
  std::printf("%d rundowns ran %.1f ms after kill -9 (target: 100 ms)\n",
              kTxns, absl::ToDoubleMilliseconds(took));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(in[1]);
  EXPECT_TRUE(WIFSIGNALED(status));
  ASSERT_TRUE(lpc::internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(watch_.WaitFor(0, absl::Now()), kTxns);  // Exactly once each.
  Stats s = GetStats();
  EXPECT_EQ(s.open_txns(), 0u);
  EXPECT_EQ(s.aborted_txns(), static_cast<uint64_t>(kTxns));
  // Its staged puts were dropped.
  KeyValueClient kv(inproc_->NewChannel());
  uint64_t version = 0;
  EXPECT_THAT(kv.Get("held/0", &version).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace example::kv
