// Loading lpc's configuration file (runtime/config.proto, text format).
//
//   absl::ParseCommandLine(argc, argv);          // sets --lpc_config
//   absl::StatusOr<lpc::config::Config> config =
//       lpc::LoadConfigFromArgsOrEnv();           // --lpc_config, else $LPC_CONFIG
//
// Every error names the file, the line and the field:
//   "kv.textproto:4:3: endpoint.target: unknown scheme 'lcoal' ..."
// A program is expected to fail at start-up on such an error.
//
// Thread safety: free functions over immutable data.
#ifndef LPC_RUNTIME_CONFIG_H_
#define LPC_RUNTIME_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "runtime/config.pb.h"
#include "runtime/server.h"

// --lpc_config=<path>: the config file. Defined once, in config.cc, for every
// binary that links the config loader; absl::ParseCommandLine sets it.
ABSL_DECLARE_FLAG(std::string, lpc_config);

namespace lpc {

// Parses and validates `text`; `filename` is used in messages only.
absl::StatusOr<config::Config> ParseConfig(std::string_view text,
                                           std::string_view filename);

// Reads and parses the file at `path`.
absl::StatusOr<config::Config> LoadConfigFile(const std::string& path);

// The config path: the --lpc_config flag if it is set (absl::ParseCommandLine
// must have run), else $LPC_CONFIG, else "".
std::string ConfigPathFromArgsOrEnv();

// Loads the config named by ConfigPathFromArgsOrEnv; NOT_FOUND when none is
// named.
absl::StatusOr<config::Config> LoadConfigFromArgsOrEnv();

// The endpoint for `client` if one names it, else the one for `service`,
// else nullptr.
const config::Endpoint* FindEndpoint(const config::Config& config,
                                     std::string_view service,
                                     std::string_view client = {});

// The server entry called `name`, or nullptr.
const config::ServerEndpoint* FindServer(const config::Config& config,
                                         std::string_view name);

// Adds to `server` the interceptors that `entry` names (its `interceptor`
// fields, in order), made by the factories registered under those names
// (runtime/interceptor.h). NOT_FOUND for a name nobody registered, naming
// the server entry and the registered names. Before server->Start().
absl::Status AddInterceptorsFromConfig(Server* server,
                                       const config::ServerEndpoint& entry);

}  // namespace lpc

#endif  // LPC_RUNTIME_CONFIG_H_
