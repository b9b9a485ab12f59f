// The config's gRPC client options past one machine: load-balancing policy,
// keepalive and reconnect backoff, and the errors for values gRPC would
// clamp or reject.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/config.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

// An endpoint whose grpc block is `grpc`, with the block on line 4.
std::string WithGrpc(const std::string& grpc) {
  return "endpoint {\n"
         "  service: \"a.B\"\n"
         "  target: \"grpc:ipv4:198.18.0.2:50051,198.18.1.2:50051\"\n"
         "  grpc {\n" +
         grpc + "\n  }\n}\n";
}

TEST(ConfigGrpcTest, ParsesConnectionSettings) {
  ASSERT_OK_AND_ASSIGN(
      config::Config c,
      ParseConfig(WithGrpc("    lb_policy: \"round_robin\"\n"
                           "    keepalive_time_ms: 20000\n"
                           "    keepalive_timeout_ms: 5000\n"
                           "    keepalive_permit_without_calls: true\n"
                           "    reconnect { initial_backoff_ms: 100 "
                           "max_backoff_ms: 2000 min_connect_timeout_ms: 1000 }"),
                  "r.textproto"));
  const config::GrpcClientOptions& g = c.endpoint(0).grpc();
  EXPECT_EQ(g.lb_policy(), "round_robin");
  EXPECT_EQ(g.keepalive_time_ms(), 20000u);
  EXPECT_EQ(g.keepalive_timeout_ms(), 5000u);
  EXPECT_TRUE(g.keepalive_permit_without_calls());
  EXPECT_EQ(g.reconnect().initial_backoff_ms(), 100u);
  EXPECT_EQ(g.reconnect().max_backoff_ms(), 2000u);
  EXPECT_EQ(g.reconnect().min_connect_timeout_ms(), 1000u);
}

TEST(ConfigGrpcTest, PickFirstAndDnsTargetsAreAccepted) {
  EXPECT_OK(ParseConfig(
      "endpoint { service: \"a.B\" target: \"grpc:dns:///kv.example.com:443\" "
      "grpc { lb_policy: \"pick_first\" } }",
      "p.textproto"));
}

TEST(ConfigGrpcTest, UnknownPolicyNamesTheField) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    lb_policy: \"round-robin\""), "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:5:5: endpoint[0].grpc.lb_policy: unknown "
                         "load-balancing policy 'round-robin'; expected "
                         "pick_first or round_robin")));
}

TEST(ConfigGrpcTest, NegativeValueIsAParseError) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    keepalive_time_ms: -5"), "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:5:24: keepalive_time_ms: negative values "
                         "are not allowed (Expected integer, got: -)")));
  EXPECT_THAT(
      ParseConfig(WithGrpc("    reconnect { initial_backoff_ms: -1 }"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:5:37: initial_backoff_ms: negative values "
                         "are not allowed")));
  // Other parse errors keep protobuf's own words.
  EXPECT_THAT(
      ParseConfig(WithGrpc("    keepalive_time_ms: \"x\""), "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:5:24: Expected integer, got: \"x\"")));
}

TEST(ConfigGrpcTest, BackoffBelowGrpcsFloorIsRejected) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    reconnect {\n      initial_backoff_ms: 10\n    }"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:6:7: endpoint[0].grpc.reconnect."
                         "initial_backoff_ms: 10 ms is out of range; use 0 for "
                         "gRPC's default or 100 to 2147483647 ms")));
  EXPECT_THAT(
      ParseConfig(WithGrpc("    reconnect { min_connect_timeout_ms: 99 }"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("min_connect_timeout_ms: 99 ms is out of range")));
}

TEST(ConfigGrpcTest, ValuesPastAnIntAreRejected) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    keepalive_time_ms: 3000000000"), "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("endpoint[0].grpc.keepalive_time_ms: 3000000000 ms is "
                         "out of range")));
  EXPECT_THAT(
      ParseConfig(WithGrpc("    reconnect { max_backoff_ms: 4294967295 }"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("max_backoff_ms: 4294967295 ms is out of range")));
}

TEST(ConfigGrpcTest, MaxBackoffBelowInitialIsRejected) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    reconnect { initial_backoff_ms: 500 "
                           "max_backoff_ms: 200 }"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("endpoint[0].grpc.reconnect.max_backoff_ms: is less "
                         "than initial_backoff_ms (200 < 500)")));
}

TEST(ConfigGrpcTest, PermitWithoutCallsNeedsAKeepaliveTime) {
  EXPECT_THAT(
      ParseConfig(WithGrpc("    keepalive_permit_without_calls: true"),
                  "r.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("r.textproto:5:5: endpoint[0].grpc."
                         "keepalive_permit_without_calls: needs "
                         "keepalive_time_ms")));
}

}  // namespace
}  // namespace lpc
