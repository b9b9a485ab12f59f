// The local server's worker pool under a client that would take it all
// (docs/local-transport.md, "Worker pool"; items 5 and 10 of
// docs/reliability.md). Each test blocks handlers on Hold, which returns
// only when cancelled, so what the pool lets run is exact, not timed:
//   - one client's handlers stop at max_handlers_per_connection, and a
//     second client is served meanwhile; the cap set in the config file
//     holds the same way;
//   - oneway calls count toward max_in_flight_per_connection;
//   - a CANCEL reaches its handler while every handler slot is taken (the
//     pool keeps a thread that reads rings);
//   - oneway calls a client published before it went away still run;
//   - a client with calls queued up is throttled (contended_cpu_share)
//     while a light client is busy, and not while it is alone.
//   - a flood of blocking oneway calls does not make the pool start a
//     thread per call while a neighbour calls.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "transports/connect.h"
#include "runtime/config.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

TestServerOptions PoolOptions(const std::string& dir, int concurrency,
                              int max_workers) {
  TestServerOptions o;
  o.dir = dir;
  o.local.concurrency = concurrency;
  o.local.max_workers = max_workers;
  return o;
}

// A pool server in a fresh directory and two channels to it; the first
// has made one call, and the second too if `warm_second` (a call makes a
// client count as busy for a while: see contended_cpu_share).
struct TwoClients {
  TempDir dir;
  std::unique_ptr<TestServer> server;
  absl::StatusOr<std::shared_ptr<Channel>> first, second;

  // Starts them; `ok()` says whether it all worked.
  TwoClients(int concurrency, int max_workers, bool warm_second) {
    if (dir.path().empty()) return;
    server = std::make_unique<TestServer>(
        PoolOptions(dir.path(), concurrency, max_workers));
    if (!server->start_status().ok()) return;
    first = MakeChannel(server->local_target(), dir.path());
    second = MakeChannel(server->local_target(), dir.path());
    if (!first.ok() || !second.ok()) return;
    warm = CallRel(**first, EchoMethod(), "warm").ok() &&
           (!warm_second || CallRel(**second, EchoMethod(), "warm").ok());
  }
  bool ok() const { return warm; }

 private:
  bool warm = false;
};

TEST(FairnessTest, OneClientStopsAtItsHandlerCapAndANeighbourIsServed) {
  // Four handlers in all, at most two for one connection (the default
  // max_handlers_per_connection is max_workers / 2).
  TwoClients clients(2, 4, /*warm_second=*/false);
  ASSERT_TRUE(clients.ok());
  TestServer& server = *clients.server;
  auto& greedy = clients.first;
  auto& neighbour = clients.second;

  std::vector<std::unique_ptr<PendingHold>> holds;
  for (int i = 0; i < 8; ++i) {
    holds.push_back(std::make_unique<PendingHold>());
    holds.back()->Start(**greedy, absl::StrCat("g", i));
  }
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 2; }));
  // Six Hold calls wait in the server. The neighbour is served at once.
  absl::StatusOr<std::string> r =
      CallRel(**neighbour, EchoMethod(), "hello", absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "hello");
  // And a neighbour's own blocking call gets a handler too.
  PendingHold theirs;
  theirs.Start(**neighbour, "n0");
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 3; }));
  // The greedy client still has exactly its two.
  EXPECT_EQ(server.service().running(), 3);

  theirs.ctx.Cancel();
  for (auto& h : holds) h->ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] {
    for (auto& h : holds) {
      if (!h->done.load()) return false;
    }
    return theirs.done.load();
  }));
  for (auto& h : holds) EXPECT_EQ(h->code, absl::StatusCode::kCancelled);
  EXPECT_EQ(theirs.code, absl::StatusCode::kCancelled);
}

// The per-connection cap comes from the config file too
// (server.max_handlers_per_connection): 3 where the default would be 4.
TEST(FairnessTest, PerConnectionCapFromTheConfigFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  absl::StatusOr<config::Config> cfg = ParseConfig(
      absl::StrCat("server { name: \"s\" local_port: \"p\" runtime_dir: \"",
                   dir.path(),
                   "\" socket_mode: 438 max_concurrency: 4 max_workers: 8 "
                   "max_handlers_per_connection: 3 }"),
      "cap.textproto");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  RelService service;
  Server server;
  ASSERT_TRUE(server.RegisterService(&service).ok());
  ASSERT_TRUE(AddListenersFromConfig(&server, cfg->server(0)).ok());
  ASSERT_TRUE(server.Start().ok());
  auto greedy = MakeChannel("local:p", dir.path());
  auto other = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(greedy.ok() && other.ok());
  ASSERT_TRUE(CallRel(**greedy, EchoMethod(), "warm").ok());

  std::vector<std::unique_ptr<PendingHold>> holds;
  for (int i = 0; i < 8; ++i) {
    holds.push_back(std::make_unique<PendingHold>());
    holds.back()->Start(**greedy, absl::StrCat("g", i));
  }
  ASSERT_TRUE(WaitFor([&] { return service.running() == 3; }));
  // Another connection gets a handler of its own; the greedy one still
  // has exactly its three (the pool's concurrency, 4, would allow a
  // fourth, and the default cap is max_workers / 2 = 4).
  PendingHold theirs;
  theirs.Start(**other, "o0");
  ASSERT_TRUE(WaitFor([&] { return service.running() == 4; }));
  EXPECT_EQ(service.running(), 4);

  theirs.ctx.Cancel();
  for (auto& h : holds) h->ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] {
    for (auto& h : holds) {
      if (!h->done.load()) return false;
    }
    return theirs.done.load();
  }));
  server.Shutdown();
}

TEST(FairnessTest, CancelReachesHandlerWhileEveryHandlerSlotIsTaken) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  // Two handlers in all; three clients each block one.
  TestServer server(PoolOptions(dir.path(), 1, 2));
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  std::vector<std::shared_ptr<Channel>> chs;
  for (int i = 0; i < 3; ++i) {
    auto ch = MakeChannel(server.local_target(), dir.path());
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
    chs.push_back(*ch);
  }
  PendingHold a, b, c;
  a.Start(*chs[0], "a");
  b.Start(*chs[1], "b");
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 2; }));
  c.Start(*chs[2], "c");  // Waits for a handler slot.

  // Every handler blocks; the CANCEL for "a" is read by the pool's spare
  // thread, and a's handler sees it.
  a.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] { return server.service().CancelSeenNs("a") != 0; }));
  ASSERT_TRUE(WaitFor([&] { return a.done.load(); }));
  EXPECT_EQ(a.code, absl::StatusCode::kCancelled);
  // Its slot goes to "c".
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 2; }));
  EXPECT_FALSE(c.done.load());

  b.ctx.Cancel();
  c.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] { return b.done.load() && c.done.load(); }));
  EXPECT_EQ(b.code, absl::StatusCode::kCancelled);
  EXPECT_EQ(c.code, absl::StatusCode::kCancelled);
  EXPECT_TRUE(WaitFor([&] { return server.service().CancelSeenNs("b") != 0; }));
}

TEST(FairnessTest, OnewayCallsCountTowardTheInFlightLimit) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  TestServerOptions o = PoolOptions(dir.path(), 2, 4);
  o.local.max_in_flight_per_connection = 4;
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  auto ch = MakeChannel(server.local_target(), dir.path());
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
  const int64_t completed = server.service().completed();

  // Four oneway Sleep calls: two run (the connection's handler cap), two
  // wait, and together they fill the in-flight limit of four, so the server
  // stops reading this client's ring.
  for (int i = 0; i < 4; ++i) {
    CallContext ctx;
    ASSERT_TRUE(
        (*ch)->SendOneway(RelDescriptor(), SleepMethod(), &ctx, "1000").ok());
  }
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 2; }));
  // The next call is not read while four calls are pending: it ends at its
  // deadline, and nothing else ran meanwhile.
  absl::StatusOr<std::string> r =
      CallRel(**ch, EchoMethod(), "late", absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_EQ(server.service().completed(), completed);
  EXPECT_EQ(server.service().running(), 2);

  // Once the Sleep calls end (two rounds of 1 s), the ring is read again
  // and calls go through.
  absl::StatusOr<std::string> after =
      CallRel(**ch, EchoMethod(), "after", absl::Seconds(20));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, "after");
  EXPECT_GE(server.service().completed(), completed + 4);
}

TEST(FairnessTest, OnewayCallsPublishedBeforeTheClientLeavesStillRun) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  TestServer server(PoolOptions(dir.path(), 1, 2));
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  const int64_t notes = server.service().notes();
  {
    auto ch = MakeChannel(server.local_target(), dir.path());
    ASSERT_TRUE(ch.ok());
    ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
    // A slow oneway call first, so the notes are still in the ring (or
    // queued) when the channel closes its socket.
    CallContext slow;
    ASSERT_TRUE(
        (*ch)->SendOneway(RelDescriptor(), SleepMethod(), &slow, "200").ok());
    for (int i = 0; i < 100; ++i) {
      CallContext ctx;
      ASSERT_TRUE(
          (*ch)->SendOneway(RelDescriptor(), NoteMethod(), &ctx, "n").ok());
    }
  }  // The channel goes: its socket closes.
  EXPECT_TRUE(
      WaitFor([&] { return server.service().notes() == notes + 100; }))
      << server.service().notes() - notes << " of 100 notes ran";
  // And then the connection is gone.
  EXPECT_TRUE(WaitFor(
      [&] { return server.local()->stats().connections_open == 0; }));
}

// contended_cpu_share. The heavy client queues oneway Sleep calls (each
// charged at most 1 ms of its CPU budget); alone it is never throttled,
// and while a client making one call at a time is busy it is (counted by
// the server's throttle_pauses), yet every call it sent still runs.
TEST(FairnessTest, AQueuedUpClientIsThrottledOnlyWhileALightClientIsBusy) {
  TwoClients clients(2, 4, /*warm_second=*/false);
  ASSERT_TRUE(clients.ok());
  TestServer& server = *clients.server;
  auto& heavy = clients.first;
  auto& light = clients.second;
  const int64_t completed = server.service().completed();
  auto send_sleeps = [&](int n) {
    for (int i = 0; i < n; ++i) {
      CallContext ctx;
      ctx.set_timeout(absl::Seconds(30));
      ASSERT_TRUE(
          (*heavy)->SendOneway(RelDescriptor(), SleepMethod(), &ctx, "2").ok());
    }
  };

  // Alone: no light client is busy, so nothing is held back.
  send_sleeps(40);
  ASSERT_TRUE(WaitFor(
      [&] { return server.service().completed() == completed + 40; }));
  EXPECT_EQ(server.local()->stats().throttle_pauses, 0u);

  // With a light client calling meanwhile: throttled.
  send_sleeps(200);
  int light_calls = 0, light_ok = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (server.local()->stats().throttle_pauses == 0 &&
         absl::Now() < give_up && light_calls < 1000000) {
    absl::StatusOr<std::string> r =
        CallRel(**light, EchoMethod(), "light", absl::Seconds(10));
    ++light_calls;
    light_ok += r.ok() && *r == "light";
  }
  EXPECT_GT(server.local()->stats().throttle_pauses, 0u);
  EXPECT_EQ(light_ok, light_calls);
  // Throttled, not dropped: every Sleep call runs.
  // (completed() counts every call: the light client's too.)
  EXPECT_TRUE(WaitFor([&] {
    return server.service().completed() == completed + 240 + light_calls;
  })) << server.service().completed() - completed - light_calls
      << " of 240 ran";
}

// Thread churn (docs/reliability.md, "fairness_test"): a spare worker
// that left the pool as soon as it was spare was replaced at the next
// handler's start, so 200 blocking oneway calls next to a busy neighbour
// started a thread or more per call. Counted, not timed.
TEST(FairnessTest, BlockingOnewayCallsDoNotChurnThePool) {
  TwoClients clients(2, 16, /*warm_second=*/true);
  ASSERT_TRUE(clients.ok());
  TestServer& server = *clients.server;
  auto& heavy = clients.first;
  auto& light = clients.second;
  const int64_t completed = server.service().completed();
  const uint64_t started = server.local()->stats().threads_started;
  constexpr int kCalls = 200;
  for (int i = 0; i < kCalls; ++i) {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(60));
    ASSERT_TRUE(
        (*heavy)->SendOneway(RelDescriptor(), SleepMethod(), &ctx, "20").ok());
  }
  // The neighbour calls until every Sleep has run (each holds a worker for
  // 20 ms, at most 8 at once: about half a second; bounded at 60 s).
  int light_calls = 0, light_ok = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (server.service().completed() < completed + kCalls + light_calls &&
         absl::Now() < give_up && light_calls < 10000000) {
    absl::StatusOr<std::string> r =
        CallRel(**light, EchoMethod(), "light", absl::Seconds(10));
    ++light_calls;
    light_ok += r.ok() && *r == "light";
  }
  EXPECT_EQ(light_ok, light_calls);
  EXPECT_EQ(server.service().completed(), completed + kCalls + light_calls);
  const uint64_t threads = server.local()->stats().threads_started - started;
  Report("pool_churn",
         absl::StrCat("blocking_oneway_calls=", kCalls,
                      " neighbour_calls=", light_calls,
                      " threads_started=", threads));
  // The pool may grow to max_workers (16) and a spare beyond, and shrink
  // after idle spells; a thread per call would be 200 or more.
  EXPECT_LT(threads, 60u);
}

}  // namespace
}  // namespace lpc::reliability
