// The runtime's server and in-process transport, with a hand-written
// service: dispatch, errors, deadlines, cancellation, oneway, shutdown and
// the target registry.
#include "runtime/inprocess.h"

#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/target.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::RawService;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

const MethodDescriptor& M(std::string_view name) {
  return *RawDescriptor().FindMethodByName(name);
}

class InProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.max_message_size = 1000;
    options.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(options);
    ASSERT_OK(server_->RegisterService(&service_));
    auto t = std::make_unique<InProcessTransport>("inprocess_test");
    transport_ = t.get();
    ASSERT_OK(server_->AddTransport(std::move(t)));
    ASSERT_OK(server_->Start());
    channel_ = transport_->NewChannel();
  }

  RawService service_;
  std::unique_ptr<Server> server_;
  InProcessTransport* transport_ = nullptr;
  std::shared_ptr<Channel> channel_;
};

TEST_F(InProcessTest, EchoRoundTrip) {
  CallContext ctx;
  absl::StatusOr<std::string> r =
      channel_->Call(RawDescriptor(), M("Echo"), &ctx, "hello");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(server_->calls_dispatched(), 1u);
}

TEST_F(InProcessTest, HandlerStatusPassesThrough) {
  CallContext ctx;
  std::string req = std::string(1, static_cast<char>(absl::StatusCode::kNotFound)) + "no such key";
  EXPECT_THAT(channel_->Call(RawDescriptor(), M("Fail"), &ctx, req),
              StatusIs(absl::StatusCode::kNotFound, "no such key"));
  EXPECT_EQ(server_->calls_failed(), 1u);
}

TEST_F(InProcessTest, ServerRefusesOversizedRequest) {
  CallContext ctx;
  EXPECT_THAT(channel_->Call(RawDescriptor(), M("Echo"), &ctx, std::string(1001, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("1001")));
}

TEST_F(InProcessTest, ClientRefusesOversizedRequestBeforeSending) {
  ChannelOptions options;
  options.max_message_size = 10;
  auto channel = transport_->NewChannel(options);
  CallContext ctx;
  EXPECT_THAT(channel->Call(RawDescriptor(), M("Echo"), &ctx, std::string(11, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(server_->calls_dispatched(), 0u);
}

TEST_F(InProcessTest, DeadlineEndsCallAndReachesHandler) {
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(50));
  EXPECT_THAT(channel_->Call(RawDescriptor(), M("Block"), &ctx, ""),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  absl::Time limit = absl::Now() + absl::Seconds(10);
  while (service_.cancels_seen() == 0 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(service_.cancels_seen(), 1);
}

TEST_F(InProcessTest, CancelEndsCallAndReachesHandler) {
  CallContext ctx;
  std::optional<absl::StatusOr<std::string>> result;
  std::thread caller([&] {
    result = channel_->Call(RawDescriptor(), M("Block"), &ctx, "");
  });
  absl::Time limit = absl::Now() + absl::Seconds(10);
  while (service_.blocked() == 0 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(service_.blocked(), 1);
  ctx.Cancel();
  caller.join();
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kCancelled));
  while (service_.cancels_seen() == 0 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(service_.cancels_seen(), 1);
}

TEST_F(InProcessTest, OnewayRunsWithoutReply) {
  CallContext ctx;
  ASSERT_OK(channel_->SendOneway(RawDescriptor(), M("Note"), &ctx, "n1"));
  absl::Time limit = absl::Now() + absl::Seconds(10);
  while (service_.notes().empty() && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(service_.notes(), std::vector<std::string>{"n1"});
}

TEST_F(InProcessTest, PeerIdentityIsThisProcess) {
  CallContext ctx;
  ASSERT_OK_AND_ASSIGN(std::string peer,
                       channel_->Call(RawDescriptor(), M("Peer"), &ctx, ""));
  EXPECT_THAT(peer, HasSubstr("pid=" + std::to_string(getpid())));
}

TEST_F(InProcessTest, ShutdownFailsBlockedCallsAfterGrace) {
  CallContext ctx;
  std::optional<absl::StatusOr<std::string>> result;
  std::thread caller([&] {
    result = channel_->Call(RawDescriptor(), M("Block"), &ctx, "");
  });
  absl::Time limit = absl::Now() + absl::Seconds(10);
  while (service_.blocked() == 0 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  server_->Shutdown();
  caller.join();
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kUnavailable));
  CallContext after;
  EXPECT_THAT(channel_->Call(RawDescriptor(), M("Echo"), &after, "x"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(InProcessTest, UnknownMethodAndInterfaceAreUnimplemented) {
  static constexpr MethodDescriptor kMissing{"Missing", 77, false};
  CallContext ctx;
  EXPECT_THAT(channel_->Call(RawDescriptor(), kMissing, &ctx, ""),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("77")));
  InterfaceDescriptor other = RawDescriptor();
  other.full_name = "lpc.test.Other";
  CallContext ctx2;
  EXPECT_THAT(channel_->Call(other, M("Echo"), &ctx2, ""),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("lpc.test.Other")));
}

TEST_F(InProcessTest, BindCheckComparesUuidAndMajorVersion) {
  InterfaceDescriptor d = RawDescriptor();
  d.version = {3, 0};
  CallContext ctx;
  EXPECT_THAT(channel_->Call(d, M("Echo"), &ctx, ""),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("client has version 3.0")));
  d.version = {2, 9};
  CallContext ctx2;
  EXPECT_OK(channel_->Call(d, M("Echo"), &ctx2, "").status());
  d.uuid = "00000000-0000-4000-8000-000000000000";
  CallContext ctx3;
  EXPECT_THAT(channel_->Call(d, M("Echo"), &ctx3, ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("uuid")));
}

TEST_F(InProcessTest, TargetRegistryFindsTheServerByName) {
  ASSERT_OK_AND_ASSIGN(auto channel, CreateChannel("inprocess:inprocess_test"));
  CallContext ctx;
  EXPECT_THAT(channel->Call(RawDescriptor(), M("Echo"), &ctx, "via target"),
              IsOk());
  EXPECT_THAT(CreateChannel("inprocess:nobody"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(CreateChannel("nonsense"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CreateChannel("carrier-pigeon:x"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("carrier-pigeon")));
}

TEST(ServerTest, RejectsDuplicateServiceAndLateRegistration) {
  RawService a, b;
  Server server;
  ASSERT_OK(server.RegisterService(&a));
  EXPECT_THAT(server.RegisterService(&b),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(server.Start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("no transport")));
}

}  // namespace
}  // namespace lpc
