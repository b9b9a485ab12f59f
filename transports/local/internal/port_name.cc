// PortName; see port_name.h.
#include "transports/local/internal/port_name.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "transports/local/control_socket.h"

namespace lpc::local::internal {
namespace {

std::string Errno() { return std::strerror(errno); }

// Opens `dir` (creating its last component if missing) and checks that
// nobody but this euid or root can change what is in it.
absl::StatusOr<UniqueFd> OpenRuntimeDir(const std::string& dir,
                                        mode_t socket_mode) {
  const mode_t create_mode = (socket_mode & 0066) != 0 ? 0711 : 0700;
  if (::mkdir(dir.c_str(), create_mode) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create runtime dir ", dir, ": ", Errno()));
  }
  UniqueFd fd(::open(dir.c_str(),
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open runtime dir ", dir,
        errno == ELOOP || errno == ENOTDIR ? " (a symlink or not a directory)"
                                           : "",
        ": ", Errno()));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot stat runtime dir ", dir, ": ", Errno()));
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "runtime dir ", dir, " is owned by uid ", st.st_uid,
        ", not by this user (", ::geteuid(), ") or root"));
  }
  // Others who may write here could swap the socket or the lock file for
  // their own, unless the sticky bit keeps them to their own files (as in
  // /tmp; they can still take a free name first, as anywhere).
  if ((st.st_mode & 0022) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "runtime dir ", dir,
        " is writable by group or others without the sticky bit (mode 0",
        absl::Hex(st.st_mode & 07777), ")"));
  }
  return fd;
}

// Whether a process listens on the socket file `name` in `dir`: a
// non-blocking connect that is not refused (accepted, or a full backlog).
bool SomeoneListens(const std::string& bind_path) {
  UniqueFd probe(
      ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) return true;  // Cannot tell: leave the file alone.
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, bind_path.data(), bind_path.size());
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr),
                sizeof(addr)) == 0) {
    return true;
  }
  return errno != ECONNREFUSED && errno != ENOENT;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PortName>> PortName::Claim(
    const std::string& path, mode_t socket_mode, int backlog) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash + 1 == path.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("local port path ", path, " has no directory"));
  }
  std::unique_ptr<PortName> port(new PortName);
  port->path_ = path;
  port->name_ = path.substr(slash + 1);
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  absl::StatusOr<UniqueFd> dir_fd = OpenRuntimeDir(dir, socket_mode);
  if (!dir_fd.ok()) return dir_fd.status();
  port->dir_ = std::move(*dir_fd);

  // 2. The lock.
  const std::string lock_name = absl::StrCat(port->name_, ".lock");
  port->lock_.Reset(::openat(port->dir_.get(), lock_name.c_str(),
                             O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!port->lock_) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open lock file ", dir, "/", lock_name, ": ", Errno()));
  }
  int rc;
  do {
    rc = ::flock(port->lock_.get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const bool held = errno == EWOULDBLOCK;
    port->lock_.Reset();
    if (held) {
      return absl::AlreadyExistsError(absl::StrCat(
          "local port ", port->name_, " is already served at ", path));
    }
    return absl::UnavailableError(
        absl::StrCat("flock ", dir, "/", lock_name, ": ", Errno()));
  }

  // 3. Under the lock: a socket file left by a dead owner is replaced.
  // Paths go through the checked directory's fd.
  const std::string bind_path = absl::StrCat(
      "/proc/self/fd/", port->dir_.get(), "/", port->name_);
  if (bind_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("local port name too long: ", port->name_));
  }
  struct stat st;
  if (::fstatat(port->dir_.get(), port->name_.c_str(), &st,
                AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists and is not a socket"));
    }
    if (SomeoneListens(bind_path)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "local port ", port->name_, " is already served at ", path,
          " (by a server that does not take ", lock_name, ")"));
    }
    if (::unlinkat(port->dir_.get(), port->name_.c_str(), 0) != 0 &&
        errno != ENOENT) {
      return absl::UnavailableError(
          absl::StrCat("cannot remove stale ", path, ": ", Errno()));
    }
  }

  // 4. Bind with the mode set beforehand, then listen.
  UniqueFd fd(
      ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return absl::UnavailableError(absl::StrCat("socket: ", Errno()));
  if (::fchmod(fd.get(), socket_mode & 0777) != 0) {
    return absl::UnavailableError(
        absl::StrCat("fchmod of the port socket: ", Errno()));
  }
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, bind_path.data(), bind_path.size());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", path, ": ", Errno()));
  }
  UniqueFd node(::openat(port->dir_.get(), port->name_.c_str(),
                         O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!node || ::fstat(node.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    ::unlinkat(port->dir_.get(), port->name_.c_str(), 0);
    return absl::UnavailableError(
        absl::StrCat("cannot stat the bound ", path, ": ", Errno()));
  }
  port->dev_ = st.st_dev;
  port->ino_ = st.st_ino;
  if ((st.st_mode & 0777) != (socket_mode & 0777)) {
    // The umask narrowed it; widen it on the inode itself (an O_PATH
    // handle cannot be fchmod'ed, its /proc link can).
    const std::string node_path = absl::StrCat("/proc/self/fd/", node.get());
    if (::chmod(node_path.c_str(), socket_mode & 0777) != 0) {
      const std::string why = Errno();
      port->Release();
      return absl::PermissionDeniedError(
          absl::StrCat("chmod ", path, ": ", why));
    }
  }
  // No fd may ride on a connection before the server has admitted its
  // client: its sockets take fds only once the handshake turns them on
  // (server_handshake.cc). Kernels without SO_PASSRIGHTS go on without.
  SetPassRights(fd.get(), false);
  if (::listen(fd.get(), backlog) != 0) {
    const std::string why = Errno();
    port->Release();
    return absl::UnavailableError(absl::StrCat("listen: ", why));
  }
  port->listener_ = std::move(fd);
  return port;
}

void PortName::Release() {
  if (!lock_) return;
  struct stat st;
  if (ino_ != 0 &&
      ::fstatat(dir_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlinkat(dir_.get(), name_.c_str(), 0);
  }
  ino_ = 0;
  listener_.Reset();
  lock_.Reset();  // Drops the flock.
  dir_.Reset();
}

}  // namespace lpc::local::internal
