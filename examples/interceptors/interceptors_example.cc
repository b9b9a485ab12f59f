// The examples of docs/interceptors.md, compiled and run as a test: a
// server interceptor that rejects calls without a tenant, a client
// interceptor that adds one, and the built-in access_log and metrics.
// docs_snippets_test checks that the page's code blocks are this file's.
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "examples/interceptors/greeter.lpc.h"
#include "runtime/inprocess.h"
#include "runtime/interceptor.h"
#include "runtime/interceptors.h"
#include "runtime/server.h"

namespace {

class GreeterImpl final : public example::greeter::GreeterService {
 public:
  absl::StatusOr<std::string> Hello(lpc::CallContext& ctx,
                                    const std::string& name) override {
    (void)ctx;
    return "hello, " + name;
  }
};

// [server interceptor]
// Rejects calls that carry no "tenant" metadata, and tells the client
// which server answered.
class RequireTenant final : public lpc::ServerInterceptor {
 public:
  absl::Status OnStart(const lpc::InterceptedCall& call,
                       lpc::CallContext& ctx) override {
    (void)call;
    if (ctx.metadata().count("tenant") == 0) {
      return absl::PermissionDeniedError("calls need a tenant");
    }
    ctx.response_metadata().emplace("served-by", "greeter-1");
    return absl::OkStatus();
  }
};
// [end]

// [client interceptor]
// Adds the caller's tenant to every call, and counts the calls that fail.
class AddTenant final : public lpc::ClientInterceptor {
 public:
  explicit AddTenant(std::string tenant) : tenant_(std::move(tenant)) {}
  absl::Status OnStart(const lpc::InterceptedCall& call,
                       lpc::CallContext& ctx) override {
    (void)call;
    ctx.metadata().emplace("tenant", tenant_);
    return absl::OkStatus();
  }
  void OnFinish(const lpc::InterceptedCall& call, lpc::CallContext& ctx,
                const absl::Status& status,
                const lpc::CallStats& stats) override {
    (void)call;
    (void)ctx;
    (void)stats;
    if (!status.ok()) ++failures;
  }
  std::atomic<int> failures{0};

 private:
  const std::string tenant_;
};
// [end]

}  // namespace

int main() {
  GreeterImpl impl;
  // [server setup]
  lpc::Server server;
  server.RegisterService(&impl).IgnoreError();
  auto metrics = std::make_shared<lpc::MetricsInterceptor>();
  server.AddInterceptor(std::make_shared<lpc::AccessLogInterceptor>())
      .IgnoreError();
  server.AddInterceptor(metrics).IgnoreError();
  server.AddInterceptor(std::make_shared<RequireTenant>()).IgnoreError();
  auto transport = std::make_unique<lpc::InProcessTransport>("greeter");
  lpc::InProcessTransport* in_process = transport.get();
  server.AddTransport(std::move(transport)).IgnoreError();
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  // [end]

  // [client setup]
  auto add_tenant = std::make_shared<AddTenant>("blue");
  example::greeter::GreeterClient greeter(
      lpc::InterceptChannel(in_process->NewChannel(), {add_tenant}));
  absl::StatusOr<std::string> reply = greeter.Hello("ada");
  // [end]

  // Without the client interceptor the server refuses the call.
  example::greeter::GreeterClient bare(in_process->NewChannel());
  absl::StatusOr<std::string> refused = bare.Hello("eve");

  // [report]
  std::printf("%s", server.Metrics().c_str());
  // metrics /example.greeter.Greeter/Hello calls=2 errors=1 mean_us=...
  //   p50_us<... p90_us<... p99_us<...
  //   codes OK=1 PERMISSION_DENIED=1
  //   latency_us <...
  // [end]
  server.Shutdown();

  const bool ok = reply.ok() && *reply == "hello, ada" &&
                  absl::IsPermissionDenied(refused.status()) &&
                  add_tenant->failures == 0 &&
                  metrics->Snapshot().size() == 1 &&
                  metrics->Snapshot()[0].calls == 2 &&
                  metrics->Snapshot()[0].errors == 1;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
