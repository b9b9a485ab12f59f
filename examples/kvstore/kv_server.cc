// kv_server: serves the kvstore example on every listener its config names.
//
//   kv_server --lpc_config=examples/kvstore/server.textproto [--name=kv]
//
// It prints "kv_server: ready <targets>" once every listener accepts calls,
// and shuts down cleanly (draining in-flight calls) on SIGINT or SIGTERM.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "examples/kvstore/kv_service.h"
#include "runtime/flags.h"
#include "runtime/serve.h"

ABSL_FLAG(std::string, name, "kv", "the config's server entry to serve");

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "kv_server --lpc_config=<file> [--name=kv]");
  if (!args.empty()) {
    std::fprintf(stderr, "kv_server: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  example::kv::KeyValueImpl store;
  return lpc::ServeUntilSignal(
      "kv_server", absl::GetFlag(FLAGS_name), &store,
      [](const lpc::Server& server) {
        std::printf("kv_server: served %llu calls\n",
                    static_cast<unsigned long long>(server.calls_dispatched()));
      });
}
