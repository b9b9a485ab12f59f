// The threads that run GrpcServerTransport's unary handlers where their
// calls arrive (internal/cq_pollers.h): blocking handlers do not stall the
// server, calls beyond max_workers wait and then overflow, and a
// cancellation reaches a handler even when every worker is busy.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestMethod;
using ::lpc::grpc_test::TestService;
using ::lpc::testing::StatusIs;

constexpr absl::Duration kWait = absl::Seconds(10);

// The outcome of a StartCall.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::StatusOr<std::string>> result;

  ResponseCallback Callback() {
    return [this](absl::StatusOr<std::string> r) {
      std::lock_guard<std::mutex> lock(mu);
      result = std::move(r);
      cv.notify_all();
    };
  }
  std::optional<absl::StatusOr<std::string>> Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, absl::ToChronoTime(absl::Now() + kWait),
                  [&] { return result.has_value(); });
    return result;
  }
};

class GrpcServerThreadsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void Start(GrpcServerOptions options, ServerOptions server_options = {}) {
    server_ = std::make_unique<Server>(server_options);
    ASSERT_OK(server_->RegisterService(&service_));
    options.listen_addresses = {"127.0.0.1:0"};
    auto transport = MakeGrpcServerTransport(std::move(options));
    transport_ = transport.get();
    ASSERT_OK(server_->AddTransport(std::move(transport)));
    ASSERT_OK(server_->Start());
    auto channel = CreateChannel(transport_->target());
    ASSERT_OK(channel.status());
    channel_ = *channel;
  }

  uint64_t Counter(const std::string& name) {
    TransportReport report;
    transport_->Report(&report);
    for (const auto& [key, value] : report.counters) {
      if (key == name) return value;
    }
    return 0;
  }

  // Asks the transport until `name` reads `value` or kWait passes.
  bool WaitForCounter(const std::string& name, uint64_t value) {
    const absl::Time limit = absl::Now() + kWait;
    while (Counter(name) != value) {
      if (absl::Now() > limit) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

  absl::StatusOr<std::string> Echo(const std::string& text) {
    CallContext ctx;
    ctx.set_timeout(kWait);
    return channel_->Call(TestInterface(), TestMethod(grpc_test::kEcho), &ctx,
                          text);
  }

  TestService service_;
  std::unique_ptr<Server> server_;
  GrpcServerTransport* transport_ = nullptr;
  std::shared_ptr<Channel> channel_;
};

// Four handlers block on one starting thread's worth of pollers: more
// threads start, the server still answers, and each cancel reaches its
// handler.
TEST_F(GrpcServerThreadsTest, BlockingHandlersDoNotStallTheServer) {
  GrpcServerOptions options;
  options.min_workers = 1;
  options.max_workers = 8;
  Start(options);
  constexpr int kBlocked = 4;
  std::vector<std::unique_ptr<CallContext>> contexts;
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < kBlocked; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    contexts.back()->set_timeout(kWait);
    outcomes.push_back(std::make_unique<Outcome>());
    channel_->StartCall(TestInterface(), TestMethod(grpc_test::kBlock),
                        contexts.back().get(), "", outcomes.back()->Callback());
  }
  ASSERT_TRUE(service_.WaitForBlockStarted(kBlocked, kWait));
  absl::StatusOr<std::string> echo = Echo("still here");
  ASSERT_OK(echo.status());
  EXPECT_EQ(*echo, "still here");
  for (auto& ctx : contexts) ctx->Cancel();
  for (auto& outcome : outcomes) {
    auto r = outcome->Wait();
    ASSERT_TRUE(r.has_value());
    EXPECT_THAT(*r, StatusIs(absl::StatusCode::kCancelled));
  }
  EXPECT_TRUE(service_.WaitForBlockCancelled(kBlocked, kWait));
}

// With one worker busy, the next call waits and the one after that is
// refused; the busy handler still learns of its cancellation (a thread
// beyond max_workers keeps polling), and the waiting call runs after it.
TEST_F(GrpcServerThreadsTest, CallsBeyondMaxWorkersWaitThenOverflow) {
  GrpcServerOptions options;
  options.min_workers = 1;
  options.max_workers = 1;
  options.max_queued_calls = 1;
  Start(options);
  CallContext block_ctx;
  block_ctx.set_timeout(kWait);
  Outcome blocked;
  channel_->StartCall(TestInterface(), TestMethod(grpc_test::kBlock),
                      &block_ctx, "", blocked.Callback());
  ASSERT_TRUE(service_.WaitForBlockStarted(1, kWait));

  CallContext waiting_ctx;
  waiting_ctx.set_timeout(kWait);
  Outcome waiting;
  channel_->StartCall(TestInterface(), TestMethod(grpc_test::kEcho),
                      &waiting_ctx, "queued", waiting.Callback());
  ASSERT_TRUE(WaitForCounter("calls_queued", 1));
  EXPECT_THAT(Echo("overflow"),
              StatusIs(absl::StatusCode::kResourceExhausted));

  block_ctx.Cancel();
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
  auto b = blocked.Wait();
  ASSERT_TRUE(b.has_value());
  EXPECT_THAT(*b, StatusIs(absl::StatusCode::kCancelled));
  auto w = waiting.Wait();
  ASSERT_TRUE(w.has_value());
  ASSERT_OK(w->status());
  EXPECT_EQ(**w, "queued");
}

// Shutdown while a call waits for a worker: it is answered UNAVAILABLE,
// the running handler is cancelled, and Shutdown returns.
TEST_F(GrpcServerThreadsTest, ShutdownAnswersTheWaitingCalls) {
  GrpcServerOptions options;
  options.min_workers = 1;
  options.max_workers = 1;
  ServerOptions server_options;
  server_options.shutdown_grace = absl::ZeroDuration();
  Start(options, server_options);
  CallContext block_ctx;
  block_ctx.set_timeout(kWait);
  Outcome blocked;
  channel_->StartCall(TestInterface(), TestMethod(grpc_test::kBlock),
                      &block_ctx, "", blocked.Callback());
  ASSERT_TRUE(service_.WaitForBlockStarted(1, kWait));
  CallContext waiting_ctx;
  waiting_ctx.set_timeout(kWait);
  Outcome waiting;
  channel_->StartCall(TestInterface(), TestMethod(grpc_test::kEcho),
                      &waiting_ctx, "x", waiting.Callback());
  ASSERT_TRUE(WaitForCounter("calls_queued", 1));

  server_->Shutdown();
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
  for (Outcome* o : {&blocked, &waiting}) {
    auto r = o->Wait();
    ASSERT_TRUE(r.has_value());
    EXPECT_THAT(*r, StatusIs(absl::StatusCode::kUnavailable));
  }
}

}  // namespace
}  // namespace lpc
