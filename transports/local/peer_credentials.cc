// Port paths and peer credentials of Unix sockets; see local_transport.h.
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "transports/local/local_transport.h"

namespace lpc::local {

absl::StatusOr<std::string> PortPath(std::string_view name,
                                     const std::string& runtime_dir) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("local port name must be 1-64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok || name == "." || name == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("local port name \"", std::string(name),
                       "\" may only contain [A-Za-z0-9._-]"));
    }
  }
  // <name>.lock is the lock file of port <name> (internal/port_name.h).
  constexpr std::string_view kLockSuffix = ".lock";
  if (name.size() >= kLockSuffix.size() &&
      name.substr(name.size() - kLockSuffix.size()) == kLockSuffix) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local port name \"", std::string(name), "\" may not end in .lock"));
  }
  std::string dir = runtime_dir;
  if (dir.empty()) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg != nullptr && xdg[0] == '/') {
      dir = absl::StrCat(xdg, "/lpc");
    } else {
      dir = "/run/lpc";
    }
  }
  std::string path = absl::StrCat(dir, "/", std::string(name));
  if (path.size() >= 108) {  // sizeof(sockaddr_un::sun_path)
    return absl::InvalidArgumentError(
        absl::StrCat("local port path too long: ", path));
  }
  return path;
}

absl::StatusOr<PeerCredentials> GetPeerCredentials(int socket) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(
        absl::StrCat("SO_PEERCRED: ", std::strerror(errno)));
  }
  PeerCredentials c;
  c.uid = cred.uid;
  c.gid = cred.gid;
  c.pid = cred.pid;
  gid_t groups[256];
  socklen_t glen = sizeof(groups);
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
    for (size_t i = 0; i < glen / sizeof(gid_t); ++i) c.groups.push_back(groups[i]);
  } else {
    // More than 256 groups, or an old kernel: deny group-based access
    // rather than guess (the uid and primary gid still apply).
    c.groups.clear();
  }
  return c;
}

}  // namespace lpc::local
