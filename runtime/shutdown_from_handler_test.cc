// Server::Shutdown called from inside a handler on the in-process
// transport: a synchronous unary handler and a synchronous streaming
// handler (both on the transport's handler pool), with and without an
// interceptor. The process lives, the call gets its reply, the server ends
// up shut down.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/interceptor.h"
#include "runtime/server.h"
#include "runtime/shutdown_test_service.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::AfterStop;
using ::lpc::testing::CallStop;
using ::lpc::testing::CallStopStream;
using ::lpc::testing::ExpectShutDown;
using ::lpc::testing::StopperService;

class ShutdownFromHandlerTest : public ::testing::Test {
 protected:
  void StartServer(bool intercepted = false) {
    ServerOptions options;
    options.shutdown_grace = absl::Seconds(20);
    server_ = std::make_unique<Server>(options);
    service_.set_server(server_.get());
    ASSERT_OK(server_->RegisterService(&service_));
    if (intercepted) {
      auto metrics = MakeServerInterceptor("metrics");
      ASSERT_OK(metrics.status());
      ASSERT_OK(server_->AddInterceptor(*metrics));
    }
    auto transport = std::make_unique<InProcessTransport>("stopper");
    channel_ = transport->NewChannel();
    ASSERT_OK(server_->AddTransport(std::move(transport)));
    ASSERT_OK(server_->Start());
  }

  StopperService service_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(ShutdownFromHandlerTest, UnaryHandlerThenWait) {
  StartServer();
  EXPECT_EQ(CallStop(*channel_).value_or("error"), "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kWait);
}

TEST_F(ShutdownFromHandlerTest, UnaryHandlerThenDestroy) {
  StartServer();
  EXPECT_EQ(CallStop(*channel_).value_or("error"), "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kDestroy);
}

TEST_F(ShutdownFromHandlerTest, InterceptedUnaryHandler) {
  StartServer(/*intercepted=*/true);
  EXPECT_EQ(CallStop(*channel_).value_or("error"), "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kShutdown);
}

TEST_F(ShutdownFromHandlerTest, SyncStreamHandlerThenShutdown) {
  StartServer();
  absl::StatusOr<std::string> got = CallStopStream(*channel_);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kShutdown);
}

TEST_F(ShutdownFromHandlerTest, SyncStreamHandlerThenWait) {
  StartServer(/*intercepted=*/true);
  absl::StatusOr<std::string> got = CallStopStream(*channel_);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kWait);
}

}  // namespace
}  // namespace lpc
