// SCM_RIGHTS packet I/O; see control_socket.h.
#include "transports/local/control_socket.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lpc::local {

namespace {

// One sendmsg of `bytes` with `fds` (at most kMaxFdsPerPacket), retried on
// EINTR; `flags` adds to MSG_NOSIGNAL. Returns the byte count or -errno.
ssize_t SendMsg(int socket, std::string_view bytes, absl::Span<const int> fds,
                int flags) {
  struct iovec iov;
  iov.iov_base = const_cast<char*>(bytes.data());
  iov.iov_len = bytes.size();
  struct msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket)];
  if (!fds.empty()) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (int i = 0; i < 8; ++i) {  // EINTR only; bounded.
    const ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL | flags);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
  return -EINTR;
}

}  // namespace

absl::Status SendPacket(int socket, std::string_view bytes,
                        absl::Span<const int> fds, absl::Time deadline) {
  if (fds.size() > kMaxFdsPerPacket || bytes.size() > kMaxControlPacket) {
    return absl::InvalidArgumentError("control: packet too large");
  }
  for (;;) {
    ssize_t n = SendMsg(socket, bytes, fds, 0);
    if (n < 0) {
      errno = static_cast<int>(-n);
      n = -1;
    }
    if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
    if (n >= 0) return absl::DataLossError("control: short send");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int timeout_ms = 1000;
      bool by_deadline = false;
      if (deadline != absl::InfiniteFuture()) {
        const absl::Duration left = deadline - absl::Now();
        if (left < absl::Seconds(1)) {
          by_deadline = true;
          timeout_ms = left <= absl::ZeroDuration()
                           ? 0
                           : static_cast<int>(absl::ToInt64Milliseconds(
                                 left + absl::Microseconds(999)));
        }
      }
      struct pollfd p = {socket, POLLOUT, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) {
        if (by_deadline) {
          return absl::DeadlineExceededError(
              "control: peer not reading by the deadline");
        }
        return absl::UnavailableError("control: peer not reading");
      }
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("control: send failed: ", std::strerror(errno)));
  }
}

absl::Status TrySendPacket(int socket, std::string_view bytes) {
  return TrySendPacket(socket, bytes, {});
}

absl::Status TrySendPacket(int socket, std::string_view bytes,
                           absl::Span<const int> fds) {
  if (fds.size() > kMaxFdsPerPacket || bytes.size() > kMaxControlPacket) {
    return absl::InvalidArgumentError("control: packet too large");
  }
  const ssize_t n = SendMsg(socket, bytes, fds, MSG_DONTWAIT);
  if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
  if (n >= 0) return absl::DataLossError("control: short send");
  if (n == -EAGAIN || n == -EWOULDBLOCK) {
    return absl::ResourceExhaustedError("control: send would block");
  }
  if (n == -EINTR) return absl::UnavailableError("control: send interrupted");
  return absl::UnavailableError(
      absl::StrCat("control: send failed: ", std::strerror(static_cast<int>(-n))));
}

absl::StatusOr<Packet> RecvPacket(int socket, absl::Time deadline,
                                  std::vector<UniqueFd>* refused_fds) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    int timeout_ms = 0;
    if (left > absl::ZeroDuration()) {
      timeout_ms = left > absl::Seconds(3600)
                       ? 3600 * 1000
                       : static_cast<int>(absl::ToInt64Milliseconds(
                             left + absl::Microseconds(999)));
    }
    struct pollfd p = {socket, POLLIN, 0};
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      return absl::UnavailableError(
          absl::StrCat("control: poll failed: ", std::strerror(errno)));
    }
    if (rc == 0) {
      return absl::DeadlineExceededError("control: no packet before deadline");
    }
    Packet packet;
    packet.bytes.resize(kMaxControlPacket);
    struct iovec iov = {packet.bytes.data(), packet.bytes.size()};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket)];
    struct msghdr msg;
    std::memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && errno == ECONNRESET) {
      // The peer closed with packets of ours unread. Linux reports that
      // once, before the packets the peer sent us, which stay queued (a
      // GOODBYE with the reason among them): read on.
      msg.msg_controllen = sizeof(control);
      msg.msg_flags = 0;
      n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) errno = ECONNRESET;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      return absl::UnavailableError(
          absl::StrCat("control: receive failed: ", std::strerror(errno)));
    }
    // Take ownership of every fd first, so that any error path closes them.
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
          c->cmsg_len >= CMSG_LEN(0)) {
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          packet.fds.emplace_back(fd);
        }
      }
    }
    const bool truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    if ((n == 0 || truncated) && refused_fds != nullptr) {
      for (UniqueFd& fd : packet.fds) refused_fds->push_back(std::move(fd));
    }
    if (n == 0) return absl::UnavailableError("control: peer hung up");
    if (truncated) return absl::DataLossError("control: truncated packet");
    packet.bytes.resize(static_cast<size_t>(n));
    return packet;
  }
}

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83  // include/uapi/asm-generic/socket.h, Linux 6.16.
#endif

bool SetPassRights(int socket, bool on) {
  const int value = on ? 1 : 0;
  return ::setsockopt(socket, SOL_SOCKET, SO_PASSRIGHTS, &value,
                      sizeof(value)) == 0;
}

bool PeerHungUp(int socket) {
  struct pollfd p = {socket, POLLRDHUP, 0};
  const int rc = ::poll(&p, 1, 0);
  return rc > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

absl::Status MakeSocketPair(UniqueFd* a, UniqueFd* b) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  a->Reset(fds[0]);
  b->Reset(fds[1]);
  return absl::OkStatus();
}

}  // namespace lpc::local
