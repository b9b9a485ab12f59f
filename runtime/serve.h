// A server's main loop: serve one service on the listeners that the config
// file names, until SIGINT or SIGTERM.
//
//   int main(int argc, char** argv) {
//     absl::ParseCommandLine(argc, argv);   // sets --lpc_config
//     MyService service;
//     return lpc::ServeUntilSignal("my_server", "my", &service);
//   }
//
// Thread safety: call it once, from main, before any other thread starts.
#ifndef LPC_RUNTIME_SERVE_H_
#define LPC_RUNTIME_SERVE_H_

#include <functional>
#include <string>

#include "runtime/server.h"
#include "runtime/service.h"

namespace lpc {

// Loads the config with LoadConfigFromArgsOrEnv (the --lpc_config flag, so
// absl::ParseCommandLine must have run, else $LPC_CONFIG), registers
// `service` on a server built from that config's server entry `name` (its
// listeners and max_message_size), starts it, and prints
// "<program>: ready <targets>" to stdout. On SIGINT or SIGTERM it prints
// "<program>: signal <n>, shutting down", shuts the server down, runs
// `after_shutdown` (if set) on it, and returns.
//
// Returns the exit code for main: 0 after a signal, 1 if the server could
// not start, 2 for a missing or bad config or no server entry `name`; the
// reason goes to stderr as "<program>: <reason>". It blocks SIGINT and
// SIGTERM in the calling thread, so every thread started after it inherits
// the mask and the signals reach only the sigwait here.
int ServeUntilSignal(
    const char* program, const std::string& name, Service* service,
    const std::function<void(const Server&)>& after_shutdown = nullptr);

}  // namespace lpc

#endif  // LPC_RUNTIME_SERVE_H_
