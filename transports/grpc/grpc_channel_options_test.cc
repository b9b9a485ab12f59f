// GrpcChannelOptions past one machine: the load-balancing policy reaches
// gRPC, and values gRPC would reject or clamp are errors at Create.
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestMethod;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

absl::Status CreateWith(const GrpcChannelOptions& o) {
  return GrpcChannel::Create("unix:unused.sock", {}, o).status();
}

TEST(GrpcChannelOptionsTest, UnknownPolicyIsRejected) {
  GrpcChannelOptions o;
  o.lb_policy = "roundrobin";
  EXPECT_THAT(CreateWith(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown gRPC load-balancing policy "
                                 "'roundrobin'; expected pick_first or "
                                 "round_robin")));
}

TEST(GrpcChannelOptionsTest, NegativeDurationsAreRejected) {
  GrpcChannelOptions o;
  o.keepalive_time = absl::Seconds(-1);
  EXPECT_THAT(CreateWith(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("keepalive_time = -1s")));
  o = {};
  o.min_connect_timeout = absl::Milliseconds(-5);
  EXPECT_THAT(CreateWith(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("min_connect_timeout")));
}

TEST(GrpcChannelOptionsTest, BackoffBelowGrpcsFloorIsRejected) {
  GrpcChannelOptions o;
  o.reconnect_initial_backoff = absl::Milliseconds(20);
  EXPECT_THAT(CreateWith(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("reconnect_initial_backoff = 20ms is out of "
                                 "range; use zero for gRPC's default or "
                                 "100ms to")));
}

TEST(GrpcChannelOptionsTest, MaxBackoffBelowInitialIsRejected) {
  GrpcChannelOptions o;
  o.reconnect_initial_backoff = absl::Seconds(2);
  o.reconnect_max_backoff = absl::Seconds(1);
  EXPECT_THAT(CreateWith(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("reconnect_max_backoff = 1s is less than "
                                 "reconnect_initial_backoff = 2s")));
}

TEST(GrpcChannelOptionsTest, ValidSettingsAreAccepted) {
  GrpcChannelOptions o;
  o.lb_policy = "pick_first";
  o.keepalive_time = absl::Seconds(20);
  o.keepalive_timeout = absl::Seconds(5);
  o.keepalive_permit_without_calls = true;
  o.reconnect_initial_backoff = absl::Milliseconds(100);
  o.reconnect_max_backoff = absl::Seconds(2);
  o.min_connect_timeout = absl::Seconds(1);
  EXPECT_OK(CreateWith(o));
}

// The policy is the one gRPC runs once the channel has resolved its target.
std::string PolicyAfterACall(const std::string& lb_policy) {
  const char* dir = getenv("TEST_TMPDIR");
  EXPECT_NE(dir, nullptr);
  EXPECT_EQ(chdir(dir), 0);
  std::string address = "unix:policy-" + lb_policy + ".sock";
  unlink(address.substr(5).c_str());
  grpc_test::TestService service;
  Server server;
  GrpcServerOptions server_options;
  server_options.listen_addresses = {address};
  EXPECT_OK(server.RegisterService(&service));
  EXPECT_OK(server.AddTransport(MakeGrpcServerTransport(server_options)));
  EXPECT_OK(server.Start());
  GrpcChannelOptions o;
  o.lb_policy = lb_policy;
  absl::StatusOr<std::shared_ptr<GrpcChannel>> channel =
      GrpcChannel::Create(address, {}, o);
  EXPECT_OK(channel.status());
  if (!channel.ok()) return "";
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  EXPECT_OK((*channel)
                ->Call(TestInterface(), TestMethod(grpc_test::kEcho), &ctx, "x")
                .status());
  std::string policy = (*channel)->grpc_channel()->GetLoadBalancingPolicyName();
  channel->reset();
  server.Shutdown();
  return policy;
}

TEST(GrpcChannelOptionsTest, PolicyReachesGrpc) {
  EXPECT_EQ(PolicyAfterACall("round_robin"), "round_robin");
  EXPECT_EQ(PolicyAfterACall("pick_first"), "pick_first");
}

}  // namespace
}  // namespace lpc
