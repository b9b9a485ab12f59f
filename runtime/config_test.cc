#include "runtime/config.h"

#include <fstream>

#include "absl/flags/flag.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kGood[] = R"pb(
  # The key-value store, on this host.
  endpoint {
    service: "example.kv.KeyValue"
    target: "local:kv"
    default_timeout_ms: 2000
    local { spin: BLOCK }
  }
  endpoint {
    client: "kv-remote"
    target: "grpc:dns:///kv.example.com:443"
    grpc { lb_policy: "round_robin" int_args { key: "grpc.max_reconnect_backoff_ms" value: 1000 } }
  }
  server { name: "kv" local_port: "kv" grpc_address: "127.0.0.1:0" }
)pb";

TEST(ConfigTest, ParsesAndFindsEndpoints) {
  ASSERT_OK_AND_ASSIGN(config::Config c, ParseConfig(kGood, "kv.textproto"));
  const config::Endpoint* e = FindEndpoint(c, "example.kv.KeyValue");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->target(), "local:kv");
  EXPECT_EQ(e->local().spin(), config::BLOCK);
  // A client name wins over the service.
  e = FindEndpoint(c, "example.kv.KeyValue", "kv-remote");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->grpc().lb_policy(), "round_robin");
  EXPECT_EQ(FindEndpoint(c, "other.Service"), nullptr);
  ASSERT_NE(FindServer(c, "kv"), nullptr);
  EXPECT_EQ(FindServer(c, "kv")->grpc_address(0), "127.0.0.1:0");
}

TEST(ConfigTest, UnknownFieldNamesFileLineAndField) {
  EXPECT_THAT(ParseConfig("endpoint {\n  service: \"a.B\"\n  taget: \"local:x\"\n}\n",
                          "bad.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad.textproto:3:")));
  EXPECT_THAT(ParseConfig("endpoint {\n  service: \"a.B\"\n  taget: \"local:x\"\n}\n",
                          "bad.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("taget")));
}

TEST(ConfigTest, BadTargetSchemeNamesTheField) {
  EXPECT_THAT(ParseConfig("endpoint {\n  service: \"a.B\"\n  target: \"lcoal:x\"\n}\n",
                          "t.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("t.textproto:3:3: endpoint[0].target: unknown scheme 'lcoal'")));
}

TEST(ConfigTest, AutoTargetNeedsBothHalves) {
  EXPECT_THAT(ParseConfig("endpoint { service: \"a.B\" target: \"auto:kv\" }",
                          "a.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("auto:<port>@<grpc-target>")));
}

TEST(ConfigTest, EndpointWithoutNameOrTargetIsRejected) {
  EXPECT_THAT(ParseConfig("\n\nendpoint { target: \"local:x\" }", "n.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("n.textproto:3:")));
  EXPECT_THAT(ParseConfig("endpoint { service: \"a.B\" }", "n.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("endpoint[0].target: missing")));
}

TEST(ConfigTest, WrongValueTypeIsAParseError) {
  EXPECT_THAT(ParseConfig("endpoint {\n service: \"a.B\"\n target: \"local:x\"\n "
                          "default_timeout_ms: \"soon\" }",
                          "v.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("v.textproto:4:")));
}

TEST(ConfigTest, ServerNeedsAListener) {
  EXPECT_THAT(ParseConfig("server { name: \"kv\" }", "s.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("server[0]: needs a local_port")));
}

TEST(ConfigTest, LocalStreamSettings) {
  ASSERT_OK_AND_ASSIGN(
      config::Config c,
      ParseConfig("server { name: \"kv\" local_port: \"kv\"\n"
                  "  max_workers: 4 max_handlers_per_connection: 2\n"
                  "  max_streams_per_connection: 16\n"
                  "  max_stream_handler_threads: 8 }",
                  "s.textproto"));
  EXPECT_EQ(c.server(0).max_streams_per_connection(), 16u);
  EXPECT_EQ(c.server(0).max_stream_handler_threads(), 8u);
  // The bounds themselves are allowed.
  EXPECT_OK(ParseConfig("server { local_port: \"kv\" "
                        "max_streams_per_connection: 1048576 "
                        "max_stream_handler_threads: 4096 }",
                        "s.textproto")
                .status());
}

TEST(ConfigTest, BadLocalStreamSettingsNameTheField) {
  // Past the bounds: the file, line and column of the field, and why.
  EXPECT_THAT(
      ParseConfig("server {\n  local_port: \"kv\"\n"
                  "  max_streams_per_connection: 4294967295\n}\n",
                  "s.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("s.textproto:3:3: server[0].max_streams_per_connection: "
                         "4294967295 is more than the 1048576 allowed")));
  EXPECT_THAT(
      ParseConfig("server {\n  local_port: \"kv\"\n"
                  "  max_stream_handler_threads: 100000\n}\n",
                  "s.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("s.textproto:3:3: server[0].max_stream_handler_threads: "
                         "100000 is more than the 4096 allowed")));
  // Negative, too large for the field, or not a number: parse errors that
  // name the place.
  EXPECT_THAT(ParseConfig("server {\n  local_port: \"kv\"\n"
                          "  max_streams_per_connection: -1\n}\n",
                          "s.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_streams_per_connection: negative values "
                                 "are not allowed")));
  EXPECT_THAT(ParseConfig("server {\n  local_port: \"kv\"\n"
                          "  max_streams_per_connection: 4294967296\n}\n",
                          "s.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("s.textproto:3:")));
  EXPECT_THAT(ParseConfig("server {\n  local_port: \"kv\"\n"
                          "  max_stream_handler_threads: \"many\"\n}\n",
                          "s.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("s.textproto:3:")));
}

TEST(ConfigTest, FileAndFlagAndEnvironment) {
  std::string path = std::string(getenv("TEST_TMPDIR")) + "/c.textproto";
  std::ofstream(path) << kGood;
  // The flag wins over the environment.
  setenv("LPC_CONFIG", "/nonexistent/env.textproto", 1);
  absl::SetFlag(&FLAGS_lpc_config, path);
  ASSERT_OK_AND_ASSIGN(config::Config c, LoadConfigFromArgsOrEnv());
  EXPECT_EQ(c.endpoint_size(), 2);
  absl::SetFlag(&FLAGS_lpc_config, "");
  setenv("LPC_CONFIG", path.c_str(), 1);
  EXPECT_EQ(ConfigPathFromArgsOrEnv(), path);
  unsetenv("LPC_CONFIG");
  EXPECT_THAT(LoadConfigFromArgsOrEnv(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("LPC_CONFIG")));
  EXPECT_THAT(LoadConfigFile(path + ".missing"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ConfigTest, InterceptorsByName) {
  ASSERT_OK_AND_ASSIGN(
      config::Config c,
      ParseConfig(R"pb(server {
                         name: "kv"
                         local_port: "kv"
                         interceptor: "metrics"
                         interceptor: "access_log"
                       }
                       server { name: "bad" local_port: "b" interceptor: "metric" })pb",
                  "i.textproto"));
  Server server;
  EXPECT_OK(AddInterceptorsFromConfig(&server, c.server(0)));
  EXPECT_EQ(server.Metrics(), "");  // Nothing called yet.
  Server other;
  EXPECT_THAT(AddInterceptorsFromConfig(&other, c.server(1)),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("server 'bad': no interceptor named 'metric'; "
                                 "registered: access_log, metrics")));
}

}  // namespace
}  // namespace lpc
