// Choosing a transport by configuration.
//
// This is the one library that links every transport, so that programs can
// name a server by a target string or a config entry and never by a
// transport's API:
//
//   absl::StatusOr<lpc::config::Config> config =
//       lpc::LoadConfigFromArgsOrEnv();  // after absl::ParseCommandLine
//   auto channel = lpc::ConnectFromConfig(*config, "example.kv.KeyValue");
//
//   lpc::Server server;
//   server.RegisterService(&store);
//   lpc::AddListenersFromConfig(&server, *lpc::FindServer(*config, "kv"));
//
// It also provides the "auto:<port>@<grpc-target>" scheme: the local port
// when it exists on this host and accepts this client, otherwise gRPC.
//
// Thread safety: all functions are thread-safe.
#ifndef LPC_TRANSPORTS_CONNECT_H_
#define LPC_TRANSPORTS_CONNECT_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"
#include "runtime/config.h"
#include "runtime/server.h"

namespace lpc {

// A channel to `target` (local:, grpc:, auto:, inprocess:), with the
// options of `endpoint` if given (its target field is ignored).
absl::StatusOr<std::shared_ptr<Channel>> ConnectTarget(
    std::string_view target, const config::Endpoint* endpoint = nullptr);

// A channel for the config entry of `client` (if non-empty and present) or
// of `service`. NOT_FOUND names both when the config has neither.
absl::StatusOr<std::shared_ptr<Channel>> ConnectFromConfig(
    const config::Config& config, std::string_view service,
    std::string_view client = {});

// Adds to `server` a local port transport and/or a gRPC transport, as the
// entry names; both serve the server's services. Also adds the entry's
// interceptors (AddInterceptorsFromConfig).
absl::Status AddListenersFromConfig(Server* server,
                                    const config::ServerEndpoint& entry);

// Whether the local port `port` exists on this host and its server accepts
// this client: OK, or the status that says why not (UNAVAILABLE when nobody
// listens, PERMISSION_DENIED when the policy refuses this client). Costs
// one connection and one round trip.
absl::Status ProbeLocalPort(std::string_view port,
                            const config::Endpoint* endpoint = nullptr,
                            absl::Duration timeout = absl::Seconds(1));

// Registers "local", "grpc", "auto" and "inprocess" with CreateChannel.
// ConnectTarget and ConnectFromConfig call it; idempotent.
void RegisterAllTransports();

}  // namespace lpc

#endif  // LPC_TRANSPORTS_CONNECT_H_
