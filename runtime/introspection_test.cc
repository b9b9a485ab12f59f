// The built-in introspection service over the in-process transport: the
// interfaces with uuid, version and methods, the counters, the descriptors,
// health, and ServerOptions::introspection = false.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/introspection.lpc.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::introspection::IntrospectionClient;
using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::RawService;
using ::lpc::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

const introspection::InterfaceInfo* FindInterface(
    const introspection::ServerInfo& info, const std::string& name) {
  for (const auto& i : info.interfaces()) {
    if (i.name() == name) return &i;
  }
  return nullptr;
}

uint64_t CounterValue(const introspection::ServerInfo& info,
                      const std::string& name) {
  for (const auto& c : info.counters()) {
    if (c.name() == name) return c.value();
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

class IntrospectionTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    options.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(options);
    ASSERT_OK(server_->RegisterService(&raw_));
    auto t = std::make_unique<InProcessTransport>("introspection_test");
    transport_ = t.get();
    ASSERT_OK(server_->AddTransport(std::move(t)));
    ASSERT_OK(server_->Start());
    client_ = std::make_unique<IntrospectionClient>(transport_->NewChannel());
  }

  RawService raw_;
  std::unique_ptr<Server> server_;
  InProcessTransport* transport_ = nullptr;
  std::unique_ptr<IntrospectionClient> client_;
};

TEST_F(IntrospectionTest, ServerInfoListsInterfacesWithMethods) {
  Start();
  absl::StatusOr<introspection::ServerInfo> info = client_->GetServerInfo();
  ASSERT_OK(info);
  EXPECT_EQ(info->pid(), static_cast<uint32_t>(getpid()));
  EXPECT_EQ(info->uid(), static_cast<uint32_t>(getuid()));
  EXPECT_EQ(info->start_time_unix_ms(), absl::ToUnixMillis(server_->start_time()));
  EXPECT_THAT(info->targets(), Contains("inprocess:introspection_test"));

  const introspection::InterfaceInfo* raw = FindInterface(*info, "lpc.test.Raw");
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(raw->uuid(), RawDescriptor().uuid);
  EXPECT_EQ(raw->version_major(), 2u);
  EXPECT_EQ(raw->version_minor(), 1u);
  ASSERT_EQ(raw->methods_size(), 5);
  EXPECT_EQ(raw->methods(3).name(), "Note");
  EXPECT_EQ(raw->methods(3).id(), 4u);
  EXPECT_TRUE(raw->methods(3).oneway());
  EXPECT_EQ(raw->methods(0).kind(), "unary");
  // A hand-written service has no .proto in the generated pool.
  EXPECT_EQ(raw->methods(0).request_type(), "");

  // The service lists itself, with the message types of its .proto.
  const introspection::InterfaceInfo* self =
      FindInterface(*info, "lpc.introspection.Introspection");
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->uuid(), "b49b68d4-7a19-4ec4-a48b-95adb952c0a6");
  EXPECT_EQ(self->version_major(), 1u);
  ASSERT_EQ(self->methods_size(), 4);
  EXPECT_EQ(self->methods(0).name(), "GetServerInfo");
  EXPECT_EQ(self->methods(0).request_type(),
            "lpc.introspection.GetServerInfoRequest");
  EXPECT_EQ(self->methods(0).response_type(),
            "lpc.introspection.GetServerInfoResponse");
  EXPECT_EQ(self->methods(3).name(), "Check");
  EXPECT_EQ(self->methods(3).id(), 4u);
}

TEST_F(IntrospectionTest, CountersCountCalls) {
  Start();
  CallContext ctx;
  auto channel = transport_->NewChannel();
  ASSERT_OK(channel->Call(RawDescriptor(), *RawDescriptor().FindMethodByName("Echo"),
                          &ctx, "x"));
  std::string fail_request(1, static_cast<char>(absl::StatusCode::kAborted));
  CallContext ctx2;
  EXPECT_THAT(channel->Call(RawDescriptor(),
                            *RawDescriptor().FindMethodByName("Fail"), &ctx2,
                            fail_request),
              StatusIs(absl::StatusCode::kAborted));
  absl::StatusOr<introspection::ServerInfo> info = client_->GetServerInfo();
  ASSERT_OK(info);
  // Echo, Fail and this GetServerInfo.
  EXPECT_EQ(CounterValue(*info, "calls_dispatched"), 3u);
  EXPECT_EQ(CounterValue(*info, "calls_failed"), 1u);
}

TEST_F(IntrospectionTest, FileDescriptorSetParsesAndDeclaresTheService) {
  Start();
  absl::StatusOr<std::string> bytes =
      client_->GetFileDescriptorSet("lpc.introspection.Introspection");
  ASSERT_OK(bytes);
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(*bytes));
  ASSERT_GE(set.file_size(), 1);
  const google::protobuf::FileDescriptorProto& file =
      set.file(set.file_size() - 1);
  EXPECT_EQ(file.name(), "runtime/introspection.proto");
  EXPECT_EQ(file.package(), "lpc.introspection");
  ASSERT_EQ(file.service_size(), 1);
  EXPECT_EQ(file.service(0).name(), "Introspection");
  EXPECT_EQ(file.service(0).method_size(), 4);
}

TEST_F(IntrospectionTest, FileDescriptorSetOfUnknownInterfaceIsNotFound) {
  Start();
  EXPECT_THAT(client_->GetFileDescriptorSet("no.such.Interface"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("does not serve no.such.Interface")));
  // Served, but hand-written: no descriptor compiled in.
  EXPECT_THAT(client_->GetFileDescriptorSet("lpc.test.Raw"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("no descriptor of lpc.test.Raw")));
}

TEST_F(IntrospectionTest, CheckSaysServing) {
  Start();
  absl::StatusOr<std::string> all = client_->Check("");
  ASSERT_OK(all);
  EXPECT_EQ(*all, "SERVING");
  absl::StatusOr<std::string> raw = client_->Check("lpc.test.Raw");
  ASSERT_OK(raw);
  EXPECT_EQ(*raw, "SERVING");
  EXPECT_THAT(client_->Check("no.such.Service"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(server_->serving());
  server_->Shutdown();
  EXPECT_FALSE(server_->serving());
}

TEST_F(IntrospectionTest, InProcessReportsNoConnections) {
  Start();
  std::map<std::string, uint64_t> cutoffs;
  absl::StatusOr<std::vector<introspection::ConnectionInfo>> conns =
      client_->ListConnections(&cutoffs);
  ASSERT_OK(conns);
  EXPECT_TRUE(conns->empty());
  EXPECT_TRUE(cutoffs.empty());
}

TEST_F(IntrospectionTest, OffWhenDisabled) {
  ServerOptions options;
  options.introspection = false;
  Start(options);
  EXPECT_THAT(client_->GetServerInfo(),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(server_->Interfaces().size(), 1u);
}

}  // namespace
}  // namespace lpc
