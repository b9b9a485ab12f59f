// An lpc server of lpc.interop.Greeter over gRPC, for the Python tests.
// Usage:
//   interop_server <listen-address>   plain gRPC on that address
//   LPC_CONFIG=<file> interop_server  every server entry of the config file,
//                                     each its own gRPC listener (TLS,
//                                     health, reflection as configured)
//
// Prints "ready" on stdout once serving. Shuts down (with a grace of 30 s in
// config mode, 200 ms otherwise) on SIGTERM, when stdin reaches EOF, or
// after 60 seconds. A bad config or a listener that cannot start prints
// "interop_server: <status>" to stderr and exits with 1.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/config.h"
#include "runtime/server.h"
#include "transports/connect.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/interop/interop.lpc.h"

namespace {

std::atomic<bool> g_terminate{false};

void OnSigterm(int) { g_terminate.store(true); }

class Greeter final : public lpc::interop::GreeterService {
 public:
  absl::StatusOr<std::string> Greet(lpc::CallContext& ctx,
                                    const std::string& name,
                                    int64_t* count) override {
    *count = notes_.load();
    auto it = ctx.metadata().find("x-lang");
    if (it != ctx.metadata().end()) {
      ctx.response_metadata().emplace("x-seen-lang", it->second);
    }
    return absl::StrCat("hello, ", name);
  }

  absl::Status Fail(lpc::CallContext&, int32_t code,
                    const std::string& message) override {
    return absl::Status(static_cast<absl::StatusCode>(code), message);
  }

  void Note(lpc::CallContext&, const std::string& line) override {
    if (!line.empty()) notes_.fetch_add(1);
  }

  absl::Status Hold(lpc::CallContext& ctx, int32_t ms) override {
    holding_.fetch_add(1);
    ctx.WaitForCancellation(absl::Now() + absl::Milliseconds(ms));
    holding_.fetch_sub(1);
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> Holding(lpc::CallContext&) override {
    return holding_.load();
  }

  absl::StatusOr<std::string> WhoAmI(lpc::CallContext& ctx) override {
    return ctx.peer().ToString();
  }

 private:
  std::atomic<int64_t> notes_{0};
  std::atomic<int32_t> holding_{0};
};

absl::Status AddListeners(lpc::Server& server, int argc, char** argv) {
  const char* config_path = getenv("LPC_CONFIG");
  if (argc == 2) {
    lpc::GrpcServerOptions options;
    options.listen_addresses = {argv[1]};
    return server.AddTransport(lpc::MakeGrpcServerTransport(options));
  }
  if (config_path == nullptr) {
    return absl::InvalidArgumentError(
        "usage: interop_server <listen-address>, or LPC_CONFIG=<file> "
        "interop_server");
  }
  absl::StatusOr<lpc::config::Config> config =
      lpc::LoadConfigFile(config_path);
  if (!config.ok()) return config.status();
  for (const lpc::config::ServerEndpoint& entry : config->server()) {
    absl::Status s = lpc::AddListenersFromConfig(&server, entry);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa = {};
  sa.sa_handler = OnSigterm;  // No SA_RESTART: poll below returns EINTR.
  sigaction(SIGTERM, &sa, nullptr);

  Greeter greeter;
  lpc::ServerOptions server_options;
  server_options.shutdown_grace =
      argc == 2 ? absl::Milliseconds(200) : absl::Seconds(30);
  lpc::Server server(server_options);
  absl::Status s = server.RegisterService(&greeter);
  if (s.ok()) s = AddListeners(server, argc, argv);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "interop_server: %s\n", s.ToString().c_str());
    return 1;
  }
  fprintf(stdout, "ready\n");
  fflush(stdout);
  absl::Time limit = absl::Now() + absl::Seconds(60);
  while (absl::Now() < limit && !g_terminate.load()) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) {
      char buf[64];
      if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;  // EOF.
    }
  }
  server.Shutdown();
  return 0;
}
