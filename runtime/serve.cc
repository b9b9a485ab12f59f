// ServeUntilSignal: config, listeners, and a sigwait for SIGINT/SIGTERM.
#include "runtime/serve.h"

#include <signal.h>

#include <cstdio>

#include "absl/strings/str_join.h"
#include "runtime/config.h"
#include "transports/connect.h"

namespace lpc {

int ServeUntilSignal(
    const char* program, const std::string& name, Service* service,
    const std::function<void(const Server&)>& after_shutdown) {
  absl::StatusOr<config::Config> config = LoadConfigFromArgsOrEnv();
  if (!config.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, config.status().ToString().c_str());
    return 2;
  }
  const config::ServerEndpoint* entry = FindServer(*config, name);
  if (entry == nullptr) {
    std::fprintf(stderr, "%s: the config has no server named '%s'\n", program,
                 name.c_str());
    return 2;
  }
  // Blocked in every thread the server starts; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServerOptions options;
  if (entry->max_message_size() > 0) {
    options.max_message_size = entry->max_message_size();
  }
  if (entry->has_introspection()) options.introspection = entry->introspection();
  Server server(options);
  absl::Status s = server.RegisterService(service);
  if (s.ok()) s = AddListenersFromConfig(&server, *entry);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, s.ToString().c_str());
    return 1;
  }
  std::printf("%s: ready %s\n", program, absl::StrJoin(server.targets(), " ").c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("%s: signal %d, shutting down\n", program, sig);
  server.Shutdown();
  if (after_shutdown) after_shutdown(server);
  return 0;
}

}  // namespace lpc
