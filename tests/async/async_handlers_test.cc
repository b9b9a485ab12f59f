// Asynchronous handlers through generated code (pending.idl), on the
// in-process transport, the local transport and gRPC over a Unix socket,
// each server with two workers:
//  - 10,000 [async] calls pending at once while plain calls still complete,
//    then all answered from another thread (200 on gRPC under TSan, see
//    kGrpcPendingCalls);
//  - a call left unfinished when its client goes away is cancelled (its
//    context and cancel callbacks), and its completion object is harmless
//    afterwards.
#include <stdlib.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "tests/async/pending.lpc.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

namespace lpc::test::pending {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;

constexpr int kWorkers = 2;

// How many [async] calls the gRPC run keeps pending on one connection.
// Under ThreadSanitizer, gRPC's own client and server stop making progress
// beyond a few hundred pending calls on one connection (1,000 stalls, 200
// pass in seconds), while the default build holds 10,000.
#if defined(__SANITIZE_THREAD__)
constexpr int kGrpcPendingCalls = 200;
#else
constexpr int kGrpcPendingCalls = 10000;
#endif

// Waits (with a deadline) until `pred` holds.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration limit = absl::Seconds(120)) {
  const absl::Time until = absl::Now() + limit;
  while (!pred()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class PendingImpl final : public PendingService {
 public:
  void Add(AsyncUnaryCall<AddResult> call, int64_t a, int64_t b) override {
    MutexLock lock(&mu_);
    adds_.emplace_back(std::move(call), a + b);
  }
  absl::StatusOr<int64_t> Echo(CallContext&, int64_t v) override { return v; }
  void Watch(AsyncServerStream<Tick> call, const std::string&) override {
    call.context().AddCancelCallback([this] { cancels_.fetch_add(1); });
    MutexLock lock(&mu_);
    watches_.push_back(std::move(call));
  }

  size_t pending_adds() {
    MutexLock lock(&mu_);
    return adds_.size();
  }
  // Answers every parked Add from a thread of its own.
  void ReplyToAdds() {
    std::deque<std::pair<AsyncUnaryCall<AddResult>, int64_t>> adds;
    {
      MutexLock lock(&mu_);
      adds.swap(adds_);
    }
    std::thread t([&adds] {
      for (const auto& [call, sum] : adds) {
        AddResult r;
        r.value = sum;
        call.Reply(r);
      }
    });
    t.join();
  }
  std::vector<AsyncServerStream<Tick>> TakeWatches() {
    MutexLock lock(&mu_);
    return std::move(watches_);
  }
  size_t pending_watches() {
    MutexLock lock(&mu_);
    return watches_.size();
  }
  int cancels() const { return cancels_.load(); }

 private:
  Mutex mu_;
  std::deque<std::pair<AsyncUnaryCall<AddResult>, int64_t>> adds_
      ABSL_GUARDED_BY(mu_);
  std::vector<AsyncServerStream<Tick>> watches_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> cancels_{0};
};

using ChannelMaker = std::function<absl::StatusOr<std::shared_ptr<Channel>>()>;

// A server with one transport, and a channel to it.
struct Harness {
  std::string name;
  int pending_calls;  // For TenThousandPendingWhileOtherCallsComplete,
  int connections;    // spread over this many channels.
  // Adds the transport to `server`; returns how to open a channel to it
  // once the server started.
  std::function<ChannelMaker(Server*)> add_transport;
};

std::string TempDir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/lpc_async_XXXXXX";  // Short: socket paths.
    const char* made = ::mkdtemp(tmpl);
    return std::string(made == nullptr ? "/tmp" : made);
  }();
  return dir;
}

class AsyncHandlersTest : public ::testing::TestWithParam<Harness> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>();
    ASSERT_THAT(server_->RegisterService(&impl_), IsOk());
    make_channel_ = GetParam().add_transport(server_.get());
    ASSERT_THAT(server_->Start(), IsOk());
    absl::StatusOr<std::shared_ptr<Channel>> ch = make_channel_();
    ASSERT_THAT(ch.status(), IsOk());
    channel_ = *std::move(ch);
    client_ = std::make_unique<PendingClient>(channel_);
  }
  void TearDown() override {
    client_.reset();
    more_clients_.clear();
    channel_.reset();
    server_->Shutdown();
  }

  PendingImpl impl_;
  std::unique_ptr<Server> server_;
  ChannelMaker make_channel_;
  std::shared_ptr<Channel> channel_;
  std::unique_ptr<PendingClient> client_;
  std::vector<std::unique_ptr<PendingClient>> more_clients_;
};

TEST_P(AsyncHandlersTest, TenThousandPendingWhileOtherCallsComplete) {
  const int calls = GetParam().pending_calls;
  // A local client connection holds at most LocalChannelOptions::
  // max_in_flight (1,024) calls; the local run spreads them over more.
  std::vector<PendingClient*> clients = {client_.get()};
  for (int i = 1; i < GetParam().connections; ++i) {
    absl::StatusOr<std::shared_ptr<Channel>> ch = make_channel_();
    ASSERT_THAT(ch.status(), IsOk());
    more_clients_.push_back(std::make_unique<PendingClient>(*std::move(ch)));
    clients.push_back(more_clients_.back().get());
  }
  std::vector<std::unique_ptr<CallContext>> contexts;
  contexts.reserve(calls);
  std::atomic<int> completed{0}, correct{0};
  for (int i = 0; i < calls; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    contexts.back()->set_timeout(absl::Minutes(5));
    clients[i % clients.size()]->AddAsync(
        i, 1000,
        [&, i](absl::StatusOr<PendingClient::AddResult> r) {
          if (r.ok() && r->value == i + 1000) correct.fetch_add(1);
          completed.fetch_add(1);
        },
        contexts.back().get());
  }
  ASSERT_TRUE(Eventually([&] { return impl_.pending_adds() == static_cast<size_t>(calls); }))
      << impl_.pending_adds() << " of " << calls << " handlers ran";
  EXPECT_EQ(completed.load(), 0);
  // The two workers are free: plain calls complete meanwhile.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int64_t> echo = client_->Echo(i);
    ASSERT_THAT(echo.status(), IsOk());
    EXPECT_EQ(*echo, i);
  }
  impl_.ReplyToAdds();
  ASSERT_TRUE(Eventually([&] { return completed.load() == calls; }));
  EXPECT_EQ(correct.load(), calls);
}

TEST_P(AsyncHandlersTest, AClientGoingAwayCancelsTheCall) {
  {
    ClientReader<Tick> watch = client_->Watch("k");
    ASSERT_TRUE(Eventually([&] { return impl_.pending_watches() == 1; }));
  }  // The client drops its stream without finishing it.
  std::vector<AsyncServerStream<Tick>> watches = impl_.TakeWatches();
  ASSERT_EQ(watches.size(), 1u);
  ASSERT_TRUE(Eventually([&] { return impl_.cancels() == 1; }));
  EXPECT_TRUE(watches[0].context().IsCancelled());
  // The completion object does nothing harmful now.
  Tick t;
  t.set_n(1);
  std::atomic<int> write_result{-1};
  watches[0].Write(t, [&](bool ok) { write_result = ok ? 1 : 0; });
  ASSERT_TRUE(Eventually([&] { return write_result.load() != -1; }));
  EXPECT_EQ(write_result.load(), 0);
  watches[0].Finish(absl::OkStatus());
  watches.clear();
  // The server still serves.
  EXPECT_THAT(client_->Echo(7).status(), IsOk());
}

INSTANTIATE_TEST_SUITE_P(
    Transports, AsyncHandlersTest,
    ::testing::Values(
        Harness{"inprocess", 10000, 1,
                [](Server* server) -> ChannelMaker {
                  auto t = std::make_unique<InProcessTransport>(
                      "async_handlers_test",
                      InProcessOptions{.min_workers = kWorkers,
                                       .max_workers = kWorkers});
                  InProcessTransport* raw = t.get();
                  EXPECT_THAT(server->AddTransport(std::move(t)), IsOk());
                  return [raw]() -> absl::StatusOr<std::shared_ptr<Channel>> {
                    return raw->NewChannel();
                  };
                }},
        Harness{"local", 10000, 10,
                [](Server* server) -> ChannelMaker {
                  static int n = 0;
                  const std::string name = absl::StrCat("async", n++);
                  local::LocalPortOptions o;
                  o.runtime_dir = TempDir();
                  o.concurrency = kWorkers;
                  o.max_workers = kWorkers;
                  auto t = local::MakeLocalServerTransport(name, o);
                  EXPECT_THAT(t.status(), IsOk());
                  if (t.ok()) {
                    EXPECT_THAT(server->AddTransport(*std::move(t)), IsOk());
                  }
                  return [name] {
                    local::LocalChannelOptions lo;
                    lo.runtime_dir = TempDir();
                    return local::CreateLocalChannel(name, {}, lo);
                  };
                }},
        Harness{"grpc_unix", kGrpcPendingCalls, 1,
                [](Server* server) -> ChannelMaker {
                  static int n = 0;
                  const std::string path =
                      absl::StrCat(TempDir(), "/s", n++, ".sock");
                  GrpcServerOptions o;
                  o.listen_addresses = {absl::StrCat("unix:", path)};
                  o.min_workers = kWorkers;
                  o.max_workers = kWorkers;
                  o.max_queued_calls = 20000;
                  EXPECT_THAT(
                      server->AddTransport(MakeGrpcServerTransport(o)),
                      IsOk());
                  return [path] {
                    return CreateChannel(absl::StrCat("grpc:unix:", path));
                  };
                }}),
    [](const ::testing::TestParamInfo<Harness>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace lpc::test::pending
