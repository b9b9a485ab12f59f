// One replica for replica_test: serves ReplicaService over gRPC.
// Usage: replica_server <listen-address> <name>
//
// Prints "ready <listen-address>" once serving. Exits when stdin reaches
// EOF (its parent closed the pipe or died) or after 120 seconds.
#include <poll.h>
#include <unistd.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "runtime/server.h"
#include "tests/replicas/replica_service.h"
#include "transports/grpc/grpc_server.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <listen-address> <name>\n", argv[0]);
    return 2;
  }
  lpc::replicas::ReplicaService service(argv[2]);
  lpc::ServerOptions server_options;
  server_options.shutdown_grace = absl::Milliseconds(100);
  lpc::Server server(server_options);
  lpc::GrpcServerOptions options;
  options.listen_addresses = {argv[1]};
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = server.AddTransport(lpc::MakeGrpcServerTransport(options));
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "replica_server %s: %s\n", argv[2], s.ToString().c_str());
    return 1;
  }
  printf("ready %s\n", argv[1]);
  fflush(stdout);
  absl::Time limit = absl::Now() + absl::Seconds(120);
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
