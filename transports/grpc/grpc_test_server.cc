// A gRPC lpc server serving the TestService, run as a child process by
// grpc_kill_test. Usage: grpc_test_server <listen-address>
//
// Prints "ready" once serving and "blocked" whenever a Block call starts,
// one per line on stdout. Exits when stdin reaches EOF (its parent closed
// the pipe or died) or after 60 seconds, whichever comes first.
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "runtime/server.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/test_service.h"

namespace {

std::mutex g_stdout_mu;

void Say(const char* line) {
  std::lock_guard<std::mutex> lock(g_stdout_mu);
  fprintf(stdout, "%s\n", line);
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <listen-address>\n", argv[0]);
    return 2;
  }
  lpc::grpc_test::TestService service;
  service.set_on_block_started([](lpc::CallContext&) { Say("blocked"); });
  lpc::ServerOptions server_options;
  server_options.shutdown_grace = absl::Milliseconds(100);
  lpc::Server server(server_options);
  lpc::GrpcServerOptions options;
  options.listen_addresses = {argv[1]};
  if (!server.RegisterService(&service).ok() ||
      !server.AddTransport(lpc::MakeGrpcServerTransport(options)).ok()) {
    return 1;
  }
  absl::Status s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "grpc_test_server: %s\n", s.ToString().c_str());
    return 1;
  }
  Say("ready");
  absl::Time limit = absl::Now() + absl::Seconds(60);
  while (absl::Now() < limit) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int n = poll(&p, 1, 1000);
    if (n > 0) {
      char buf[64];
      if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;  // EOF.
    }
  }
  server.Shutdown();
  return 0;
}
