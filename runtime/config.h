// Loading lpc's configuration file (runtime/config.proto, text format).
//
//   absl::StatusOr<lpc::config::Config> config =
//       lpc::LoadConfigFromArgsOrEnv(argc, argv);   // --lpc_config / LPC_CONFIG
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

#include "absl/status/statusor.h"
#include "runtime/config.pb.h"

namespace lpc {

// Parses and validates `text`; `filename` is used in messages only.
absl::StatusOr<config::Config> ParseConfig(std::string_view text,
                                           std::string_view filename);

// Reads and parses the file at `path`.
absl::StatusOr<config::Config> LoadConfigFile(const std::string& path);

// The config path from a `--lpc_config=<path>` (or `--lpc_config <path>`)
// argument, else from $LPC_CONFIG, else "".
std::string ConfigPathFromArgsOrEnv(int argc, char** argv);

// Loads the config named by ConfigPathFromArgsOrEnv; NOT_FOUND when none is
// named.
absl::StatusOr<config::Config> LoadConfigFromArgsOrEnv(int argc, char** argv);

// The endpoint for `client` if one names it, else the one for `service`,
// else nullptr.
const config::Endpoint* FindEndpoint(const config::Config& config,
                                     std::string_view service,
                                     std::string_view client = {});

// The server entry called `name`, or nullptr.
const config::ServerEndpoint* FindServer(const config::Config& config,
                                         std::string_view name);

}  // namespace lpc

#endif  // LPC_RUNTIME_CONFIG_H_
