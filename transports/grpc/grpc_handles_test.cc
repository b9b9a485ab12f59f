// A method that carries handles (file descriptors) fails over gRPC with
// FAILED_PRECONDITION, on the lpc client before anything is sent, and on
// the server when a stock gRPC client calls it anyway; the handler never
// runs. Methods without handles on the same interface work.
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/service.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"

namespace lpc {
namespace {

constexpr MethodDescriptor kMethods[] = {
    {"Plain", 1, false, MethodKind::kUnary},
    {"Give", 2, false, MethodKind::kUnary, /*handles=*/true},
    {"Drop", 3, true, MethodKind::kUnary, /*handles=*/true},
};
constexpr InterfaceDescriptor kInterface = {
    "lpc.test.HandleService", "5c0ffee0-1234-4abc-8def-0123456789fa", {1, 0},
    absl::Span<const MethodDescriptor>(kMethods)};

constexpr char kMessage[] =
    "method /lpc.test.HandleService/Give carries handles (file descriptors); "
    "handles need the local transport";

class HandleService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override { return kInterface; }
  absl::Status Dispatch(uint32_t method_id, CallContext&, std::string_view request,
                        std::string* response) override {
    if (method_id != 1) ++handle_calls;
    *response = std::string(request);
    return absl::OkStatus();
  }
  std::atomic<int> handle_calls{0};
};

class GrpcHandlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.RegisterService(&service_));
    GrpcServerOptions options;
    options.listen_addresses = {"127.0.0.1:0"};
    ASSERT_OK(server_.AddTransport(MakeGrpcServerTransport(options)));
    ASSERT_OK(server_.Start());
    address_ = server_.targets()[0].substr(strlen("grpc:"));
  }
  void TearDown() override { server_.Shutdown(); }

  HandleService service_;
  Server server_;
  std::string address_;
};

TEST_F(GrpcHandlesTest, TheClientRefusesBeforeSending) {
  absl::StatusOr<std::shared_ptr<GrpcChannel>> channel =
      GrpcChannel::Create(address_, ChannelOptions(), GrpcChannelOptions());
  ASSERT_OK(channel.status());
  CallContext ctx;
  absl::StatusOr<std::string> r = (*channel)->Call(kInterface, kMethods[1], &ctx, "x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(r.status().message(), kMessage);
  absl::Status oneway = (*channel)->SendOneway(kInterface, kMethods[2], &ctx, "x");
  EXPECT_EQ(oneway.code(), absl::StatusCode::kFailedPrecondition) << oneway;
  EXPECT_TRUE(absl::StrContains(oneway.message(), "/lpc.test.HandleService/Drop"));
  // The same channel calls a method without handles.
  CallContext ctx2;
  absl::StatusOr<std::string> plain =
      (*channel)->Call(kInterface, kMethods[0], &ctx2, "plain");
  ASSERT_OK(plain.status());
  EXPECT_EQ(*plain, "plain");
  EXPECT_EQ(service_.handle_calls.load(), 0);
}

TEST_F(GrpcHandlesTest, TheServerRefusesAStockClient) {
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  grpc::Slice slice(std::string("x"));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::promise<grpc::Status> done;
  grpc::GenericStub(channel).UnaryCall(
      &ctx, "/lpc.test.HandleService/Give", grpc::StubOptions(), &request,
      &response, [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), kMessage);
  EXPECT_EQ(service_.handle_calls.load(), 0);
}

}  // namespace
}  // namespace lpc
