// The main loop the example servers share: serve one service on the
// listeners a config file names, until SIGINT or SIGTERM.
#ifndef EXAMPLES_COMMON_SERVE_H_
#define EXAMPLES_COMMON_SERVE_H_

#include <functional>
#include <string>

#include "runtime/server.h"

namespace lpc_examples {

// Loads the config named on the command line (--lpc_config=<file>, or the
// LPC_CONFIG environment variable), registers `service` on a server with
// that config's server entry `name` (its listeners and max_message_size),
// starts it, and prints "<program>: ready <targets>". On SIGINT or SIGTERM
// it prints "<program>: signal <n>, shutting down", shuts the server down,
// runs `after_shutdown` (if set) on it, and returns. The exit code for
// main: 0, 1 if the server could not start, 2 for a bad config; the reason
// goes to stderr. Call it before starting any thread: it blocks the two
// signals.
int ServeUntilSignal(
    int argc, char** argv, const char* program, const std::string& name,
    lpc::Service* service,
    const std::function<void(const lpc::Server&)>& after_shutdown = nullptr);

}  // namespace lpc_examples

#endif  // EXAMPLES_COMMON_SERVE_H_
