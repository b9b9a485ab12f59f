// An lpc server of lpc.interop.Greeter over gRPC, for python_interop_test.
// Usage: interop_server <listen-address>
//
// Prints "ready" on stdout once serving. Exits when stdin reaches EOF (the
// test closed the pipe or died) or after 60 seconds.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/server.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/interop/interop.lpc.h"

namespace {

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

 private:
  std::atomic<int64_t> notes_{0};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <listen-address>\n", argv[0]);
    return 2;
  }
  Greeter greeter;
  lpc::ServerOptions server_options;
  server_options.shutdown_grace = absl::Milliseconds(200);
  lpc::Server server(server_options);
  lpc::GrpcServerOptions options;
  options.listen_addresses = {argv[1]};
  if (!server.RegisterService(&greeter).ok() ||
      !server.AddTransport(lpc::MakeGrpcServerTransport(options)).ok()) {
    return 1;
  }
  absl::Status s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "interop_server: %s\n", s.ToString().c_str());
    return 1;
  }
  fprintf(stdout, "ready\n");
  fflush(stdout);
  absl::Time limit = absl::Now() + absl::Seconds(60);
  while (absl::Now() < limit) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      char buf[64];
      if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;  // EOF.
    }
  }
  server.Shutdown();
  return 0;
}
