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

TEST(ConfigTest, SameUidBufferPoolSettings) {
  ASSERT_OK_AND_ASSIGN(
      config::Config c,
      ParseConfig("server { name: \"f\" local_port: \"f\"\n"
                  "  same_uid_buffer_pool: true max_buffer_pool_bytes: 1024 }\n"
                  "endpoint { service: \"s\" target: \"local:f\"\n"
                  "  local { same_uid_buffer_pool: true\n"
                  "    buffer_pool_chunk_bytes: 8192 buffer_pool_chunks: 6 } }",
                  "s.textproto"));
  EXPECT_TRUE(c.server(0).same_uid_buffer_pool());
  EXPECT_EQ(c.server(0).max_buffer_pool_bytes(), 1024u);
  EXPECT_TRUE(c.endpoint(0).local().same_uid_buffer_pool());
  EXPECT_EQ(c.endpoint(0).local().buffer_pool_chunk_bytes(), 8192u);
  EXPECT_EQ(c.endpoint(0).local().buffer_pool_chunks(), 6u);
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
  EXPECT_THAT(
      ParseConfig("server {\n  grpc_address: \"127.0.0.1:0\"\n"
                  "  grpc {\n    max_health_watches: 2000000\n  }\n}\n",
                  "s.textproto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("s.textproto:4:5: server[0].grpc.max_health_watches: "
                         "2000000 is more than the 1048576 allowed")));
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

// Out-of-range values are refused where they are written, file:line:col.
TEST(ConfigTest, OutOfRangeValuesNameFileLineAndColumn) {
  const struct {
    const char* text;
    const char* where;
    const char* says;
  } cases[] = {
      {"endpoint {\n  service: \"a.B\"\n  target: \"grpc:127.0.0.1:70000\"\n}\n",
       "r.textproto:3:3:", "port 70000 is out of range"},
      {"endpoint {\n  service: \"a.B\"\n  target: \"grpc:dns:///h:0\"\n}\n",
       "r.textproto:3:3:", "port 0 is out of range"},
      {"endpoint {\n  service: \"a.B\"\n  target: \"auto:kv@ipv4:1.2.3.4:5,1.2.3.4:99999\"\n}\n",
       "r.textproto:3:3:", "port 99999"},
      {"server {\n  name: \"s\"\n  grpc_address: \"unix:/tmp/a:1\"\n"
       "  grpc_address: \"[::1]:65536\"\n}\n",
       "r.textproto:4:3:", "grpc_address[1]: port 65536"},
      {"server {\n  name: \"s\"\n  local_port: \"p\"\n  max_concurrency: 4000000000\n}\n",
       "r.textproto:4:3:", "max_concurrency: 4000000000 is more than the 4096"},
      {"server {\n  name: \"s\"\n  local_port: \"p\"\n  max_workers: 5000\n}\n",
       "r.textproto:4:3:", "max_workers"},
      {"server {\n  name: \"s\"\n  local_port: \"p\"\n"
       "  max_handlers_per_connection: 2147483648\n}\n",
       "r.textproto:4:3:", "max_handlers_per_connection"},
      {"server {\n  name: \"s\"\n  local_port: \"p\"\n  max_handles_per_message: 254\n}\n",
       "r.textproto:4:3:", "254 is more than the 253"},
      {"endpoint {\n  service: \"a.B\"\n  target: \"local:x\"\n  default_timeout_ms: -5\n}\n",
       "r.textproto:4:", "default_timeout_ms"},
      {"endpoint {\n  service: \"a.B\"\n  target: \"local:x\"\n  default_timeout_ms: 4294967296\n}\n",
       "r.textproto:4:", ""},
      {"server {\n  name: \"s\"\n  grpc_address: \"127.0.0.1:0\"\n"
       "  max_message_size: 18446744073709551616\n}\n",
       "r.textproto:4:", ""},
  };
  for (const auto& c : cases) {
    absl::StatusOr<config::Config> parsed = ParseConfig(c.text, "r.textproto");
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr(c.where)))
        << c.text;
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr(c.says)))
        << c.text;
  }
  // In range: ports 1 to 65535 (0 for a listener), unix paths with colons,
  // IPv6 without a port.
  EXPECT_OK(ParseConfig(
      "endpoint { service: \"a.B\" target: \"grpc:ipv6:[::1]:65535\" }\n"
      "endpoint { service: \"c.D\" target: \"grpc:unix:/run/x:99999\" }\n"
      "endpoint { service: \"e.F\" target: \"grpc:ipv6:::1\" }\n"
      "server { name: \"s\" grpc_address: \"0.0.0.0:0\" max_workers: 4096 "
      "max_handles_per_message: 253 }\n",
      "ok.textproto").status());
}

}  // namespace
}  // namespace lpc
