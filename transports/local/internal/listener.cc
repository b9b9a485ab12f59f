// The listening socket and the access policy (listener.h).
#include "transports/local/internal/listener.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "transports/local/frame.h"

namespace lpc::local::internal {

absl::StatusOr<UniqueFd> BindListener(const std::string& name,
                                      const std::string& path,
                                      mode_t socket_mode) {
  const std::string dir = path.substr(0, path.rfind('/'));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create runtime dir ", dir, ": ", std::strerror(errno)));
  }
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return absl::ResourceExhaustedError("socket() failed");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      break;
    }
    if (errno != EADDRINUSE || attempt == 1) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", path, ": ",
                                                 std::strerror(errno)));
    }
    // Someone's socket file is there: a live server, or a stale file left
    // by a killed one. Only a refused connect proves it stale.
    UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr),
                  sizeof(addr)) == 0 || errno != ECONNREFUSED) {
      return absl::AlreadyExistsError(
          absl::StrCat("local port ", name, " is already served at ", path));
    }
    ::unlink(path.c_str());
  }
  if (::chmod(path.c_str(), socket_mode) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("chmod ", path, ": ",
                                                    std::strerror(errno)));
  }
  if (::listen(fd.get(), 128) != 0) {
    return absl::UnavailableError(absl::StrCat("listen: ", std::strerror(errno)));
  }
  return fd;
}

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
