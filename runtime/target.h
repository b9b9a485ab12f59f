// Target strings and the registry of channel factories.
//
// A target names a server the way an MS-RPC binding string does:
//   inprocess:<name>               a server in this process (tests)
//   local:<port-name>              the local shared-memory port
//   grpc:<any gRPC target>         gRPC: dns:///host:port, ipv4:..., unix:...
//   auto:<port-name>@<grpc-target> local if that port exists on this host and
//                                  accepts this client, otherwise gRPC
//
// Each transport registers a factory for its scheme when its library is
// linked in (or explicitly, by calling its Register...() function), so the
// runtime never depends on a transport.
//
// Thread safety: all functions are thread-safe.
#ifndef LPC_RUNTIME_TARGET_H_
#define LPC_RUNTIME_TARGET_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/channel.h"

namespace lpc {

struct Target {
  std::string scheme;   // "local", "grpc", "auto", "inprocess".
  std::string address;  // Everything after the first ':'.
};

// Splits "scheme:address". INVALID_ARGUMENT names the problem.
absl::StatusOr<Target> ParseTarget(std::string_view target);

// Options handed to a channel factory: the common ones, and the
// transport-specific ones as an opaque pointer whose type each transport
// documents (nullptr means defaults).
struct ChannelArgs {
  ChannelOptions common;
  const void* transport_options = nullptr;
};

using ChannelFactory = std::function<absl::StatusOr<std::shared_ptr<Channel>>(
    std::string_view address, const ChannelArgs& args)>;

// Registers `factory` for `scheme`, replacing any earlier one.
void RegisterChannelFactory(std::string scheme, ChannelFactory factory);

// The schemes that have a factory, sorted.
std::vector<std::string> RegisteredSchemes();

// Creates a channel for `target`. INVALID_ARGUMENT for a malformed target,
// UNIMPLEMENTED for a scheme whose transport is not linked in.
absl::StatusOr<std::shared_ptr<Channel>> CreateChannel(
    std::string_view target, const ChannelArgs& args = {});

}  // namespace lpc

#endif  // LPC_RUNTIME_TARGET_H_
