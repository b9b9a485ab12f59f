// GetPeerPidfd; see peer_pidfd.h.
#include "transports/local/internal/peer_pidfd.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; Debian 12's headers predate it.
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace lpc::local::internal {
namespace {

bool HungUp(int socket) {
  struct pollfd p = {socket, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 &&
         (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace

absl::StatusOr<PeerPidfd> GetPeerPidfd(int socket, PidfdSource source) {
  if (source == PidfdSource::kAny) {
    int fd = -1;
    socklen_t len = sizeof(fd);
    if (::getsockopt(socket, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 &&
        fd >= 0) {
      PeerPidfd p;
      p.fd.Reset(fd);  // The kernel sets O_CLOEXEC.
      p.from_kernel = true;
      return p;
    }
    if (errno == ESRCH) {
      return absl::UnavailableError("SO_PEERPIDFD: the peer has exited");
    }
    if (errno != ENOPROTOOPT && errno != EINVAL) {
      return absl::UnavailableError(
          absl::StrCat("SO_PEERPIDFD: ", std::strerror(errno)));
    }
  }
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::UnavailableError(
        absl::StrCat("SO_PEERCRED: ", std::strerror(errno)));
  }
  if (cred.pid <= 0) return absl::UnavailableError("the peer has no pid");
  // pidfd_open's pidfds are close-on-exec.
  const long fd = ::syscall(SYS_pidfd_open, cred.pid, 0);
  if (fd < 0) {
    if (errno == ENOSYS) {
      return absl::UnimplementedError("no SO_PEERPIDFD and no pidfd_open");
    }
    return absl::UnavailableError(absl::StrCat(
        "pidfd_open(", cred.pid, "): ", std::strerror(errno)));
  }
  PeerPidfd p;
  p.fd.Reset(static_cast<int>(fd));
  // Opened after the fact: pid `cred.pid` now. If the process that
  // connected had died, its end of the socket would have closed with it
  // (see peer_pidfd.h for the exception).
  if (HungUp(socket)) {
    return absl::UnavailableError(
        "the peer hung up: its pid may name another process now");
  }
  return p;
}

int PidOfPidfd(int pidfd) {
  std::ifstream info(absl::StrCat("/proc/self/fdinfo/", pidfd));
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("Pid:", 0) == 0) return std::atoi(line.c_str() + 4);
  }
  return 0;
}

}  // namespace lpc::local::internal
