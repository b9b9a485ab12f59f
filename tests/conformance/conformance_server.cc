// conformance_server: serves ConformanceServiceImpl in a process of its own,
// so that the conformance suite can run between two processes.
//
//   conformance_server [--local_port=NAME --runtime_dir=DIR]
//                      [--grpc=ADDRESS] [--max_message_size=BYTES]
//
// Prints "ready <target> [<target>...]" once every listener accepts calls,
// then serves until its standard input reaches end of file (the test closes
// it, or dies), and shuts down.
#include <unistd.h>

#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "runtime/config.pb.h"
#include "runtime/flags.h"
#include "runtime/server.h"
#include "tests/conformance/conformance_service.h"
#include "transports/connect.h"

ABSL_FLAG(std::string, local_port, "", "serve on this local port");
ABSL_FLAG(std::string, runtime_dir, "", "the local port's runtime directory");
ABSL_FLAG(std::string, grpc, "", "serve gRPC on this address");
ABSL_FLAG(uint64_t, max_message_size, 0,
          "the server's message limit; 0 keeps ServerOptions' default");

int main(int argc, char** argv) {
  std::vector<std::string> args = lpc::ParseFlags(
      argc, argv,
      "conformance_server [--local_port=NAME --runtime_dir=DIR] "
      "[--grpc=ADDRESS] [--max_message_size=BYTES]");
  if (!args.empty()) {
    std::fprintf(stderr, "conformance_server: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  lpc::config::ServerEndpoint entry;
  entry.set_name("conformance");
  entry.set_local_port(absl::GetFlag(FLAGS_local_port));
  entry.set_runtime_dir(absl::GetFlag(FLAGS_runtime_dir));
  if (!absl::GetFlag(FLAGS_grpc).empty()) {
    entry.add_grpc_address(absl::GetFlag(FLAGS_grpc));
  }
  lpc::ServerOptions options;
  if (absl::GetFlag(FLAGS_max_message_size) > 0) {
    options.max_message_size = absl::GetFlag(FLAGS_max_message_size);
    entry.set_max_message_size(options.max_message_size);
  }
  options.shutdown_grace = absl::Seconds(1);
  lpc::Server server(options);
  lpc::conformance::ConformanceServiceImpl service;
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = lpc::AddListenersFromConfig(&server, entry);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "conformance_server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("ready %s\n", absl::StrJoin(server.targets(), " ").c_str());
  std::fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
  server.Shutdown();
  return 0;
}
