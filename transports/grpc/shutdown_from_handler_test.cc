// Server::Shutdown called from inside a handler on the gRPC transport: a
// synchronous unary handler and a synchronous streaming handler (both on
// the transport's handler pool). The process lives, the call gets its
// reply, the server ends up shut down. (grpc::Server::Shutdown from a
// gRPC handler deadlocks; lpc's does not.)
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/shutdown_test_service.h"
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"

namespace lpc {
namespace {

using ::lpc::testing::AfterStop;
using ::lpc::testing::CallStop;
using ::lpc::testing::CallStopStream;
using ::lpc::testing::ExpectShutDown;
using ::lpc::testing::StopperService;

class ShutdownFromHandlerTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& name) {
    // Socket paths are limited to 107 bytes; TEST_TMPDIR can be long.
    const char* dir = getenv("TEST_TMPDIR");
    ASSERT_NE(dir, nullptr) << "run the test with bazel test";
    ASSERT_EQ(chdir(dir), 0);
    const std::string path = name + ".sock";
    unlink(path.c_str());
    ServerOptions options;
    options.shutdown_grace = absl::Seconds(20);
    server_ = std::make_unique<Server>(options);
    service_.set_server(server_.get());
    ASSERT_OK(server_->RegisterService(&service_));
    GrpcServerOptions grpc;
    grpc.listen_addresses = {"unix:" + path};
    auto transport = MakeGrpcServerTransport(std::move(grpc));
    GrpcServerTransport* raw = transport.get();
    ASSERT_OK(server_->AddTransport(std::move(transport)));
    ASSERT_OK(server_->Start());
    auto channel = CreateChannel(raw->target(), {});
    ASSERT_OK(channel.status());
    channel_ = *channel;
  }

  StopperService service_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(ShutdownFromHandlerTest, UnaryHandlerThenWait) {
  StartServer("unary_wait");
  EXPECT_EQ(CallStop(*channel_).value_or("error"), "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kWait);
}

TEST_F(ShutdownFromHandlerTest, UnaryHandlerThenDestroy) {
  StartServer("unary_destroy");
  EXPECT_EQ(CallStop(*channel_).value_or("error"), "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kDestroy);
}

TEST_F(ShutdownFromHandlerTest, SyncStreamHandlerThenShutdown) {
  StartServer("stream_shutdown");
  absl::StatusOr<std::string> got = CallStopStream(*channel_);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kShutdown);
}

}  // namespace
}  // namespace lpc
