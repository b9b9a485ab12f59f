// PortName: one server's ownership of a local port's name, and the socket
// bound to it.
//
// A server owns a name while it holds an exclusive flock(2) on the lock
// file <runtime_dir>/<name>.lock; the kernel drops the lock when the process
// dies, so a crashed server's name is free again at once. Claim():
//   1. opens the runtime directory with O_NOFOLLOW (creating it first, mode
//      0700, or 0711 when the socket mode lets others connect) and refuses
//      it unless it is a directory owned by this euid or by root that no
//      group or other may write, or only with the sticky bit (as /tmp):
//      nobody else can then swap the socket or the lock file for their own;
//   2. takes the lock without waiting; a live owner means ALREADY_EXISTS,
//      and nothing is touched;
//   3. under the lock, replaces a stale socket file (a socket nobody
//      listens on: a non-blocking connect is refused); one that accepts
//      or has a full backlog is a live server that does not take the lock,
//      and that is ALREADY_EXISTS too;
//   4. binds through /proc/self/fd/<dir>/<name>, so the socket lands in the
//      directory checked in step 1, with its mode set on the socket before
//      bind(2) (fchmod; the umask can only narrow it, and a narrowed mode
//      is widened through an O_PATH|O_NOFOLLOW handle), and listens.
// Release() (and the destructor) unlinks the socket only if the name still
// refers to the inode this claim bound (st_dev, st_ino), then drops the
// lock. The lock file stays: unlinking it would let two servers lock two
// different files of one name.
//
// Thread safety: a PortName is used by one thread at a time.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_PORT_NAME_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_PORT_NAME_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class PortName {
 public:
  // Claims the port whose socket path is `path` (PortPath(); its directory
  // is the runtime directory) with a listening SOCK_SEQPACKET socket
  // (non-blocking, close-on-exec) of file mode `socket_mode`.
  // ALREADY_EXISTS: another server owns the name. PERMISSION_DENIED: the
  // runtime directory is unsafe or cannot be created. Anything else that
  // fails is UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<PortName>> Claim(
      const std::string& path, mode_t socket_mode, int backlog = 128);

  ~PortName() { Release(); }
  PortName(const PortName&) = delete;
  PortName& operator=(const PortName&) = delete;

  // The listening socket (owned until taken).
  int listener() const { return listener_.get(); }
  UniqueFd TakeListener() { return std::move(listener_); }
  const std::string& path() const { return path_; }

  // Unlinks the socket if the name is still this claim's inode, and drops
  // the lock. Idempotent.
  void Release();

 private:
  PortName() = default;

  std::string path_;
  std::string name_;  // The last component of path_.
  UniqueFd dir_;      // The checked runtime directory.
  UniqueFd lock_;     // Holds the flock.
  UniqueFd listener_;
  dev_t dev_ = 0;  // The bound socket's inode.
  ino_t ino_ = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_PORT_NAME_H_
