// kv_server: serves the kvstore example on every listener its config names.
//
//   kv_server --lpc_config=examples/kvstore/server.textproto [--name=kv]
//
// It prints "kv_server: ready <targets>" once every listener accepts calls,
// and shuts down cleanly (draining in-flight calls) on SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_join.h"
#include "examples/kvstore/kv_service.h"
#include "runtime/config.h"
#include "runtime/server.h"
#include "transports/connect.h"

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
  absl::StatusOr<lpc::config::Config> config =
      lpc::LoadConfigFromArgsOrEnv(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "kv_server: %s\n", config.status().ToString().c_str());
    return 2;
  }
  std::string name = FlagValue(argc, argv, "name", "kv");
  const lpc::config::ServerEndpoint* entry = lpc::FindServer(*config, name);
  if (entry == nullptr) {
    std::fprintf(stderr, "kv_server: the config has no server named '%s'\n",
                 name.c_str());
    return 2;
  }

  // Block the shutdown signals in every thread; the main thread waits for
  // them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lpc::ServerOptions options;
  if (entry->max_message_size() > 0) {
    options.max_message_size = entry->max_message_size();
  }
  lpc::Server server(options);
  example::kv::KeyValueImpl store;
  absl::Status s = server.RegisterService(&store);
  if (s.ok()) s = lpc::AddListenersFromConfig(&server, *entry);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "kv_server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("kv_server: ready %s\n",
              absl::StrJoin(server.targets(), " ").c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("kv_server: signal %d, shutting down\n", sig);
  server.Shutdown();
  std::printf("kv_server: served %llu calls\n",
              static_cast<unsigned long long>(server.calls_dispatched()));
  return 0;
}
