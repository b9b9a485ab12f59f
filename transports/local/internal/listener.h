// The access policy that admits or refuses each client accepted on the
// server's port (the port's name and socket: port_name.h).
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

// The access policy: allowed_uids / allowed_gids, then accept_callback.
// OK to admit, PERMISSION_DENIED (naming `name`, uid and gid) to refuse.
absl::Status CheckAccess(const LocalPortOptions& options,
                         const std::string& name,
                         const PeerCredentials& creds);

// Sends one kRefused packet carrying `why`, without waiting.
void SendRefusal(int socket, const absl::Status& why);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_LISTENER_H_
