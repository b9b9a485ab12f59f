// The server's named connection port: binding the listening socket, and
// the access policy that admits or refuses each accepted client.
//
// Thread safety: free functions over their arguments.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_LISTENER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_LISTENER_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "transports/local/local_transport.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

// Binds a non-blocking, listening SOCK_SEQPACKET socket at `path` (creating
// its directory) with file mode `socket_mode`. ALREADY_EXISTS if a live
// server owns the path; a stale file from a dead server is replaced.
// `name` is the port name, for messages.
absl::StatusOr<UniqueFd> BindListener(const std::string& name,
                                      const std::string& path,
                                      mode_t socket_mode);

// The access policy: allowed_uids / allowed_gids, then accept_callback.
// OK to admit, PERMISSION_DENIED (naming `name`, uid and gid) to refuse.
absl::Status CheckAccess(const LocalPortOptions& options,
                         const std::string& name,
                         const PeerCredentials& creds);

// Sends one kRefused packet carrying `why`, without waiting.
void SendRefusal(int socket, const absl::Status& why);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_LISTENER_H_
