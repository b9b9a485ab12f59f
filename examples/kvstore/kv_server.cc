// kv_server: serves the kvstore example on every listener its config names.
//
//   kv_server --lpc_config=examples/kvstore/server.textproto [--name=kv]
//
// It prints "kv_server: ready <targets>" once every listener accepts calls,
// and shuts down cleanly (draining in-flight calls) on SIGINT or SIGTERM.
#include <cstdio>
#include <cstring>
#include <string>

#include "examples/common/serve.h"
#include "examples/kvstore/kv_service.h"

namespace {

std::string FlagValue(int argc, char** argv, const std::string& name,
                      const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      return argv[i] + prefix.size();
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  example::kv::KeyValueImpl store;
  return lpc_examples::ServeUntilSignal(
      argc, argv, "kv_server", FlagValue(argc, argv, "name", "kv"), &store,
      [](const lpc::Server& server) {
        std::printf("kv_server: served %llu calls\n",
                    static_cast<unsigned long long>(server.calls_dispatched()));
      });
}
