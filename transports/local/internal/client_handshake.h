// The client half of the connect + handshake: connect to a port's socket,
// check the server's uid if asked, take its welcome, and validate the
// section memfd and the doorbell before anything is mapped.
//
// Thread safety: thread-safe (no shared state).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_HANDSHAKE_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_HANDSHAKE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transports/local/local_transport.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

// A completed handshake: the control socket, the server's doorbell eventfd,
// and the mapped, validated section.
struct ClientHandshake {
  UniqueFd sock;
  UniqueFd eventfd;
  Mapping map;
  SectionLayout layout;
};

// Connects to the port socket at `path` and completes the handshake, by
// `deadline` and within o.connect_timeout, whatever the server does: the
// connect does not block past that bound (a squatter's full backlog), nor
// does the wait for the welcome. Reaching the bound is DEADLINE_EXCEEDED if
// it was the call's deadline, UNAVAILABLE if it was connect_timeout. A
// refusal comes back with the server's status (PERMISSION_DENIED,
// RESOURCE_EXHAUSTED); anything else that fails is UNAVAILABLE. The
// returned socket is non-blocking.
absl::StatusOr<ClientHandshake> ConnectAndHandshake(
    const std::string& path, const LocalChannelOptions& o,
    absl::Time deadline);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_HANDSHAKE_H_
