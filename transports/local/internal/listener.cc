// The access policy (listener.h).
#include "transports/local/internal/listener.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "transports/local/frame.h"

namespace lpc::local::internal {

absl::Status CheckAccess(const LocalPortOptions& options,
                         const std::string& name,
                         const PeerCredentials& creds) {
  const auto& a = options.allowed_uids;
  const auto& g = options.allowed_gids;
  bool allowed = a.empty() && g.empty();
  allowed |= std::find(a.begin(), a.end(), creds.uid) != a.end();
  allowed |= std::find(g.begin(), g.end(), creds.gid) != g.end();
  for (uint32_t group : creds.groups) {
    allowed |= std::find(g.begin(), g.end(), group) != g.end();
  }
  if (allowed && options.accept_callback) {
    allowed = options.accept_callback(creds);
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "local port ", name, " refuses uid ", creds.uid, " gid ", creds.gid));
}

void SendRefusal(int socket, const absl::Status& why) {
  std::string p = EncodeStatusPacket(ControlType::kRefused, why);
  ::send(socket, p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace lpc::local::internal
