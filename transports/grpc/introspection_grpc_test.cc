// The introspection service over gRPC, called with lpc's generated client
// through lpc's gRPC channel: interfaces, the transport's counters (and no
// connections: gRPC shows a callback server none), descriptors, health;
// and the standard reflection and health services next to it.
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "runtime/introspection.lpc.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestService;
using ::lpc::introspection::IntrospectionClient;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::Contains;

class IntrospectionGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions so;
    so.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(so);
    ASSERT_OK(server_->RegisterService(&service_));
    GrpcServerOptions options;
    options.listen_addresses = {"127.0.0.1:0"};
    ASSERT_OK(server_->AddTransport(MakeGrpcServerTransport(options)));
    ASSERT_OK(server_->Start());
    address_ = server_->targets()[0].substr(strlen("grpc:"));
    auto channel = GrpcChannel::Create(address_);
    ASSERT_OK(channel.status());
    channel_ = *channel;
    client_ = std::make_unique<IntrospectionClient>(channel_);
  }

  TestService service_;
  std::unique_ptr<Server> server_;
  std::string address_;
  std::shared_ptr<Channel> channel_;
  std::unique_ptr<IntrospectionClient> client_;
};

TEST_F(IntrospectionGrpcTest, ServerInfoAndCounters) {
  CallContext ctx;
  const std::string payload(500, 'p');
  ASSERT_OK(channel_->Call(TestInterface(),
                           *TestInterface().FindMethod(grpc_test::kEcho), &ctx,
                           payload));
  // The Echo call leaves the server's table when gRPC runs its OnDone,
  // which may come after the client has its reply: ask until only the
  // asking call is in flight (each ask is one more call).
  absl::StatusOr<introspection::ServerInfo> info;
  std::map<std::string, uint64_t> counters;
  uint64_t asks = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  do {
    info = client_->GetServerInfo();
    ASSERT_OK(info);
    ++asks;
    counters.clear();
    for (const auto& c : info->counters()) counters[c.name()] = c.value();
  } while (counters["grpc.calls_in_flight"] != 1 && absl::Now() < give_up);
  EXPECT_EQ(info->pid(), static_cast<uint32_t>(getpid()));
  EXPECT_THAT(info->targets(), Contains(server_->targets()[0]));
  std::vector<std::string> names;
  for (const auto& i : info->interfaces()) names.push_back(i.name());
  EXPECT_THAT(names,
              ::testing::ElementsAre(std::string(TestInterface().full_name),
                                     "lpc.introspection.Introspection"));
  EXPECT_EQ(info->interfaces(0).uuid(), TestInterface().uuid);
  EXPECT_EQ(info->interfaces(0).version_major(), TestInterface().version.major);
  EXPECT_EQ(info->interfaces(0).methods_size(),
            static_cast<int>(TestInterface().methods.size()));
  EXPECT_EQ(info->connections(), 0u);
  // The Echo call and the asks.
  EXPECT_EQ(counters["grpc.calls_started"], 1 + asks);
  EXPECT_EQ(counters["grpc.calls_in_flight"], 1u);
  EXPECT_GE(counters["grpc.bytes_in"], payload.size());
  EXPECT_GE(counters["grpc.bytes_out"], payload.size());
  EXPECT_EQ(counters["calls_dispatched"], 1 + asks);

  std::map<std::string, uint64_t> cutoffs;
  absl::StatusOr<std::vector<introspection::ConnectionInfo>> conns =
      client_->ListConnections(&cutoffs);
  ASSERT_OK(conns);
  EXPECT_TRUE(conns->empty());
  EXPECT_TRUE(cutoffs.empty());
}

TEST_F(IntrospectionGrpcTest, DescriptorsAndHealth) {
  absl::StatusOr<std::string> bytes =
      client_->GetFileDescriptorSet("lpc.introspection.Introspection");
  ASSERT_OK(bytes);
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(*bytes));
  ASSERT_GE(set.file_size(), 1);
  EXPECT_EQ(set.file(set.file_size() - 1).name(), "runtime/introspection.proto");
  EXPECT_THAT(client_->GetFileDescriptorSet("no.such.Interface"),
              StatusIs(absl::StatusCode::kNotFound));

  absl::StatusOr<std::string> health = client_->Check("");
  ASSERT_OK(health);
  EXPECT_EQ(*health, "SERVING");
  health = client_->Check(std::string(TestInterface().full_name));
  ASSERT_OK(health);
  EXPECT_EQ(*health, "SERVING");
  EXPECT_THAT(client_->Check("no.such.Service"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace lpc
