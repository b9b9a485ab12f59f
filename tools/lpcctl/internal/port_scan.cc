// The runtime-directory scan behind `lpcctl list`.
#include "tools/lpcctl/internal/port_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "transports/local/local_transport.h"
#include "transports/local/unique_fd.h"

namespace lpc::lpcctl {
namespace {

constexpr char kLockSuffix[] = ".lock";

std::string ReadProcLocks() {
  std::ifstream in("/proc/locks");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A non-blocking connect to the socket at `path`: OK when something
// accepts (or its backlog is full), UNAVAILABLE when refused, the errno
// otherwise.
absl::Status ProbeConnect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  local::UniqueFd fd(
      socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr),
              sizeof(addr)) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    return absl::OkStatus();
  }
  if (errno == ECONNREFUSED) {
    return absl::UnavailableError("connection refused");
  }
  return absl::PermissionDeniedError(
      absl::StrCat("connect: ", std::strerror(errno)));
}

}  // namespace

const char* PortStateName(PortState state) {
  switch (state) {
    case PortState::kLive:
      return "live";
    case PortState::kStale:
      return "stale";
    case PortState::kUnreachable:
      return "unreachable";
  }
  return "?";
}

std::string DefaultRuntimeDir() {
  // PortPath knows the default; the directory is everything before the name.
  absl::StatusOr<std::string> path = local::PortPath("x", "");
  if (!path.ok()) return "/run/lpc";
  return path->substr(0, path->size() - 2);
}

std::optional<pid_t> FindFlockHolder(const std::string& proc_locks, dev_t dev,
                                     ino_t ino) {
  // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:567 0 EOF"; a waiter's line has
  // "->" after the number.
  for (absl::string_view line : absl::StrSplit(proc_locks, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 6 || f[1] != "FLOCK") continue;
    std::vector<absl::string_view> id = absl::StrSplit(f[5], ':');
    uint32_t major_no = 0;
    uint32_t minor_no = 0;
    uint64_t inode = 0;
    int32_t pid = 0;
    if (id.size() != 3 || !absl::SimpleHexAtoi(id[0], &major_no) ||
        !absl::SimpleHexAtoi(id[1], &minor_no) ||
        !absl::SimpleAtoi(id[2], &inode) || !absl::SimpleAtoi(f[4], &pid)) {
      continue;
    }
    if (makedev(major_no, minor_no) == dev && inode == ino) return pid;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<PortFile>> ScanRuntimeDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    const int err = errno;
    const std::string what =
        absl::StrCat("runtime directory ", dir, ": ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(what);
    return absl::PermissionDeniedError(what);
  }
  std::vector<PortFile> ports;
  const int dir_fd = dirfd(d);
  while (dirent* e = readdir(d)) {
    struct stat st;
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISSOCK(st.st_mode)) {
      continue;
    }
    PortFile port;
    port.name = e->d_name;
    port.path = absl::StrCat(dir, "/", port.name);
    port.socket_uid = st.st_uid;
    ports.push_back(std::move(port));
  }
  closedir(d);
  std::sort(ports.begin(), ports.end(),
            [](const PortFile& a, const PortFile& b) { return a.name < b.name; });

  const std::string locks = ReadProcLocks();
  for (PortFile& port : ports) {
    struct stat lock;
    if (stat(absl::StrCat(port.path, kLockSuffix).c_str(), &lock) == 0) {
      port.lock_pid = FindFlockHolder(locks, lock.st_dev, lock.st_ino);
    }
    if (port.lock_pid.has_value()) continue;
    absl::Status probe = ProbeConnect(port.path);
    if (absl::IsUnavailable(probe)) {
      port.state = PortState::kStale;
    } else if (!probe.ok()) {
      port.state = PortState::kUnreachable;
      port.error = std::string(probe.message());
    }
  }
  return ports;
}

}  // namespace lpc::lpcctl
