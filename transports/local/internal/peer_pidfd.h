// A pidfd for the process at the other end of a connected Unix socket: a
// handle on that process which, unlike its pid, can never come to name
// another process.
//
// Where the kernel has SO_PEERPIDFD (Linux 6.5), the kernel hands out the
// pidfd of the process that connected (or, for a socketpair, created the
// socket), taken at that moment: race-free. Elsewhere the pid from
// SO_PEERCRED is opened with pidfd_open(2), and that has a window: the
// process may have died and its pid been reused in between. The fallback
// closes most of it by checking, after opening, that the socket's peer has
// not hung up: a process that died took its end of the socket with it,
// unless it had passed that end on (fork, SCM_RIGHTS) to a process that
// still lives; in that case the pidfd may name the pid's new owner. A
// fallback pidfd is therefore only as good as the peer's discipline with
// its socket, and the source is reported.
//
// Thread safety: thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_PEER_PIDFD_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_PEER_PIDFD_H_

#include "absl/status/statusor.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

enum class PidfdSource {
  kAny,            // SO_PEERPIDFD if the kernel has it, else the fallback.
  kPidfdOpenOnly,  // The fallback only (tests).
};

struct PeerPidfd {
  UniqueFd fd;
  bool from_kernel = false;  // SO_PEERPIDFD (race-free), not the fallback.
};

// A pidfd (close-on-exec) for `socket`'s peer. UNAVAILABLE if the peer is
// gone (or, in the fallback, its socket end was closed); UNIMPLEMENTED if
// the kernel has neither SO_PEERPIDFD nor pidfd_open.
absl::StatusOr<PeerPidfd> GetPeerPidfd(int socket,
                                       PidfdSource source = PidfdSource::kAny);

// The pid a pidfd refers to now ("Pid:" of its fdinfo): -1 once the
// process has been reaped, 0 if it cannot be read.
int PidOfPidfd(int pidfd);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_PEER_PIDFD_H_
