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
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_join.h"
#include "runtime/config.pb.h"
#include "runtime/server.h"
#include "tests/conformance/conformance_service.h"
#include "transports/connect.h"

int main(int argc, char** argv) {
  lpc::config::ServerEndpoint entry;
  entry.set_name("conformance");
  lpc::ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      size_t n = std::strlen(flag);
      return arg.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--local_port=")) {
      entry.set_local_port(v);
    } else if (const char* v = value("--runtime_dir=")) {
      entry.set_runtime_dir(v);
    } else if (const char* v = value("--grpc=")) {
      entry.add_grpc_address(v);
    } else if (const char* v = value("--max_message_size=")) {
      options.max_message_size = std::strtoull(v, nullptr, 10);
      entry.set_max_message_size(options.max_message_size);
    } else {
      std::fprintf(stderr, "conformance_server: unknown argument %s\n", argv[i]);
      return 2;
    }
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
