// The conformance suite over the in-process transport.
#include <unistd.h>

#include <memory>

#include "runtime/inprocess.h"
#include "tests/conformance/conformance_service.h"
#include "tests/conformance/conformance_suite.h"

namespace lpc::conformance {
namespace {

class InProcessConformance final : public ConformanceTransport {
 public:
  absl::Status StartServer(const ServerOptions& options) override {
    server_ = std::make_unique<Server>(options);
    absl::Status s = server_->RegisterService(&service_);
    if (s.ok()) s = server_->AddInterceptor(service_.interceptor());
    if (!s.ok()) return s;
    auto transport = std::make_unique<InProcessTransport>("conformance");
    transport_ = transport.get();
    s = server_->AddTransport(std::move(transport));
    if (!s.ok()) return s;
    s = server_->Start();
    if (!s.ok()) return s;
    ChannelOptions relay;
    relay.max_message_size = options.max_message_size;
    absl::StatusOr<std::shared_ptr<Channel>> channel =
        transport_->NewChannel(relay);
    if (!channel.ok()) return channel.status();
    service_.set_relay_channel(*std::move(channel));
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<Channel>> NewChannel(
      const ChannelOptions& options) override {
    return transport_->NewChannel(options);
  }

  void StopServer() override {
    if (server_ != nullptr) server_->Shutdown();
    service_.set_relay_channel(nullptr);
  }

  bool HasKernelCredentials() const override { return true; }

  int ServerPid() const override { return getpid(); }

 private:
  ConformanceServiceImpl service_;
  std::unique_ptr<Server> server_;
  InProcessTransport* transport_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(
    InProcess, ConformanceTest,
    ::testing::Values(ConformanceParam{
        "inprocess",
        [] { return std::make_unique<InProcessConformance>(); }}),
    ConformanceParamName);

INSTANTIATE_TEST_SUITE_P(
    InProcess, StreamConformanceTest,
    ::testing::Values(ConformanceParam{
        "inprocess",
        [] { return std::make_unique<InProcessConformance>(); }}),
    ConformanceParamName);

}  // namespace
}  // namespace lpc::conformance
