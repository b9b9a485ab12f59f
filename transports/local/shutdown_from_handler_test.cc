// Server::Shutdown called from inside a handler on the local transport: a
// synchronous unary handler (on the completion-port workers) and a
// synchronous streaming handler (on the handler pool). The process lives,
// the call gets its reply, the server ends up shut down.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/shutdown_test_service.h"
#include "testing/status_matchers.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

using ::lpc::testing::AfterStop;
using ::lpc::testing::CallStop;
using ::lpc::testing::CallStopStream;
using ::lpc::testing::ExpectShutDown;
using ::lpc::testing::StopperService;

class ShutdownFromHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lpc-stopper-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer() {
    ServerOptions options;
    options.shutdown_grace = absl::Seconds(20);
    server_ = std::make_unique<Server>(options);
    service_.set_server(server_.get());
    ASSERT_OK(server_->RegisterService(&service_));
    LocalPortOptions port;
    port.runtime_dir = dir_;
    auto transport = MakeLocalServerTransport("stopper", port);
    ASSERT_OK(transport.status());
    ASSERT_OK(server_->AddTransport(std::move(*transport)));
    ASSERT_OK(server_->Start());
    LocalChannelOptions local;
    local.runtime_dir = dir_;
    auto channel = CreateLocalChannel("stopper", {}, local);
    ASSERT_OK(channel.status());
    channel_ = *channel;
  }

  std::string dir_;
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

TEST_F(ShutdownFromHandlerTest, SyncStreamHandlerThenShutdown) {
  StartServer();
  absl::StatusOr<std::string> got = CallStopStream(*channel_);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kShutdown);
}

TEST_F(ShutdownFromHandlerTest, SyncStreamHandlerThenWait) {
  StartServer();
  absl::StatusOr<std::string> got = CallStopStream(*channel_);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "stopping");
  ExpectShutDown(server_, *channel_, service_, AfterStop::kWait);
}

}  // namespace
}  // namespace lpc::local
