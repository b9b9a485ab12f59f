// The local ports of one runtime directory, as the files there show them.
//
// A local port is a socket <runtime_dir>/<name> beside its lock file
// <name>.lock (transports/local/internal/port_name.h): the server that owns
// the name holds an exclusive flock on the lock file for as long as it
// lives. ScanRuntimeDir reads that without touching the lock (taking it,
// even for a moment, could make a starting server fail with
// ALREADY_EXISTS): it looks the lock up in /proc/locks, which also names
// the holder's pid. Only a socket whose lock nobody holds gets a
// non-blocking connect, and a refused connect makes it stale.
//
// Thread safety: the functions are thread-safe.
#ifndef LPC_TOOLS_LPCCTL_INTERNAL_PORT_SCAN_H_
#define LPC_TOOLS_LPCCTL_INTERNAL_PORT_SCAN_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lpc::lpcctl {

enum class PortState {
  kLive,         // The lock is held, or something accepts on the socket.
  kStale,        // Nobody holds the lock and a connect is refused.
  kUnreachable,  // Nobody holds the lock and connect failed otherwise.
};

// "live", "stale" or "unreachable".
const char* PortStateName(PortState state);

struct PortFile {
  std::string name;  // The socket's file name: the port name.
  std::string path;  // <runtime_dir>/<name>.
  PortState state = PortState::kLive;
  // The pid holding the lock, as /proc/locks reports it (it may be 0 or
  // another namespace's pid when the holder is in another pid namespace).
  std::optional<pid_t> lock_pid;
  uid_t socket_uid = 0;  // The socket file's owner.
  std::string error;     // For kUnreachable: why connect failed.
};

// The runtime directory lpc uses when none is given: $XDG_RUNTIME_DIR/lpc,
// or /run/lpc (as LocalPortOptions::runtime_dir).
std::string DefaultRuntimeDir();

// Every socket in `dir`, sorted by name. NOT_FOUND when `dir` does not
// exist; PERMISSION_DENIED when it cannot be read.
absl::StatusOr<std::vector<PortFile>> ScanRuntimeDir(const std::string& dir);

// The holders of flock(2) locks, from the text of /proc/locks, for the
// inode (dev, ino): the pid of the first holder found, or nullopt. Lines
// that do not parse are skipped. Exposed for tests.
std::optional<pid_t> FindFlockHolder(const std::string& proc_locks, dev_t dev,
                                     ino_t ino);

}  // namespace lpc::lpcctl

#endif  // LPC_TOOLS_LPCCTL_INTERNAL_PORT_SCAN_H_
