// Packets with file descriptors over a SOCK_SEQPACKET Unix socket.
//
// SendPacket sends one packet with optional fds (SCM_RIGHTS), waiting at
// most a second for room; TrySendPacket sends one and never waits.
// RecvPacket
// receives one packet with close-on-exec fds, waiting at most until a
// deadline; a truncated packet or truncated fd list is DATA_LOSS and every
// received fd is closed. A hang-up is UNAVAILABLE.
//
// Thread safety: thread-safe as far as the kernel is (one packet per call).
#ifndef LPC_TRANSPORTS_LOCAL_CONTROL_SOCKET_H_
#define LPC_TRANSPORTS_LOCAL_CONTROL_SOCKET_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "transports/local/unique_fd.h"

namespace lpc::local {

inline constexpr size_t kMaxControlPacket = 4096;
// The kernel's SCM_MAX_FD: the most descriptors one packet carries (a
// HANDLES packet carries a message's whole handle table).
inline constexpr size_t kMaxFdsPerPacket = 253;

struct Packet {
  std::string bytes;
  std::vector<UniqueFd> fds;
};

// Waits for room at most a second, and not past `deadline`
// (DEADLINE_EXCEEDED; after the second, UNAVAILABLE).
absl::Status SendPacket(int socket, std::string_view bytes,
                        absl::Span<const int> fds = {},
                        absl::Time deadline = absl::InfiniteFuture());

// Sends one packet without fds and without waiting (MSG_DONTWAIT), so it
// may be called from any thread, even one that must not block (a cancel
// callback). RESOURCE_EXHAUSTED if the socket's buffer is full (nothing was
// sent), UNAVAILABLE if the peer is gone.
absl::Status TrySendPacket(int socket, std::string_view bytes);
// The same with fds (SCM_RIGHTS): never waits.
absl::Status TrySendPacket(int socket, std::string_view bytes,
                           absl::Span<const int> fds);

// Waits until a packet arrives or `deadline` (InfinitePast = don't wait:
// UNAVAILABLE "would block" is not returned; DEADLINE_EXCEEDED is). When a
// packet is refused (truncated, or an empty one: hang-up) its fds are
// closed, or moved to `*refused_fds` if given (the caller may then close
// them where a blocking close hurts no one).
absl::StatusOr<Packet> RecvPacket(int socket, absl::Time deadline,
                                  std::vector<UniqueFd>* refused_fds = nullptr);

// SO_PASSRIGHTS (Linux 6.16 and later): whether `socket` takes packets
// that carry fds. Off, the kernel refuses a peer's sendmsg with SCM_RIGHTS
// (EPERM), so no fd is ever queued on the socket. A listening socket's
// setting is inherited by the sockets made for its connections, from the
// moment they connect. Returns false where the kernel lacks the option
// (nothing changed).
bool SetPassRights(int socket, bool on);

// True if the peer has hung up (non-blocking check).
bool PeerHungUp(int socket);

// A connected SOCK_SEQPACKET pair (close-on-exec), for tests and forks.
absl::Status MakeSocketPair(UniqueFd* a, UniqueFd* b);

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_CONTROL_SOCKET_H_
