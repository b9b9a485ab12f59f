// The client half of the handshake; see client_handshake.h and "Connection
// and handshake" in docs/local-transport.md.
#include "transports/local/internal/client_handshake.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/control_socket.h"
#include "transports/local/frame.h"

namespace lpc::local::internal {

namespace {

// The bound of a connect + handshake: the call's deadline or
// connect_timeout, whichever comes first, and the status for reaching it.
struct ConnectBound {
  absl::Time by;
  bool deadline_first;  // The call's deadline, not connect_timeout.
  absl::Duration connect_timeout;

  absl::Status Reached(const std::string& what) const {
    if (deadline_first) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": the call's deadline passed"));
    }
    return absl::UnavailableError(
        absl::StrCat(what, ": connect_timeout (",
                     absl::FormatDuration(connect_timeout), ") passed"));
  }
};

// Connects the non-blocking `fd` to `addr` by `bound.by`.
//
// A Unix socket's non-blocking connect() either completes at once or,
// while the listener's backlog is full, fails with EAGAIN; unlike TCP there
// is no connect in progress whose end poll() could wait for. So the wait
// for room in the backlog is the kernel's own bounded one: a blocking
// connect() on this socket (no other process has its file description)
// with SO_SNDTIMEO set to the time left, which wakes as soon as the server
// accepts and returns EAGAIN when the time is up.
absl::Status ConnectBy(int fd, const sockaddr_un& addr,
                       const std::string& path, const ConnectBound& bound) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  const std::string what = absl::StrCat("cannot connect to local port ", path);
  for (bool nonblocking = true;;) {
    int rc = ::connect(fd, sa, sizeof(addr));
    const int err = rc == 0 ? 0 : errno;
    if (!nonblocking) {
      const int flags = ::fcntl(fd, F_GETFL);
      ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
      nonblocking = true;
    }
    if (rc == 0) return absl::OkStatus();
    if (err != EAGAIN && err != EINTR) {
      return absl::UnavailableError(
          absl::StrCat(what, ": ", std::strerror(err)));
    }
    const absl::Duration left = bound.by - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return bound.Reached(absl::StrCat(
          what, ": its listen backlog stayed full (the server is not "
                "accepting)"));
    }
    // A zero timeval would mean no timeout: at least a microsecond.
    struct timeval tv =
        absl::ToTimeval(std::max(left, absl::Microseconds(1)));
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
      return absl::UnavailableError(
          absl::StrCat(what, ": SO_SNDTIMEO: ", std::strerror(errno)));
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return absl::UnavailableError(
          absl::StrCat(what, ": fcntl: ", std::strerror(errno)));
    }
    nonblocking = false;
  }
}

}  // namespace

absl::StatusOr<ClientHandshake> ConnectAndHandshake(
    const std::string& path, const LocalChannelOptions& o,
    absl::Time deadline) {
  const absl::Time now = absl::Now();
  ConnectBound bound;
  bound.connect_timeout = o.connect_timeout;
  bound.deadline_first = deadline <= now + o.connect_timeout;
  bound.by = bound.deadline_first ? deadline : now + o.connect_timeout;
  // Non-blocking for the connection's life: every send and receive on it
  // is bounded (control_socket.h).
  UniqueFd sock(
      ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock) {
    return absl::UnavailableError(
        absl::StrCat("socket() failed: ", std::strerror(errno)));
  }
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (absl::Status s = ConnectBy(sock.get(), addr, path, bound); !s.ok()) {
    return s;
  }
  if (o.expected_server_uid.has_value()) {
    absl::StatusOr<PeerCredentials> server = GetPeerCredentials(sock.get());
    if (!server.ok()) return server.status();
    if (server->uid != *o.expected_server_uid) {
      return absl::PermissionDeniedError(absl::StrCat(
          "local port ", path, " is served by uid ", server->uid,
          ", expected uid ", *o.expected_server_uid));
    }
  }
  absl::StatusOr<Packet> p = RecvPacket(sock.get(), bound.by);
  if (absl::IsDeadlineExceeded(p.status())) {
    return bound.Reached(absl::StrCat(
        "local handshake failed: no welcome from the server at ", path));
  }
  if (!p.ok()) {
    return absl::UnavailableError(
        absl::StrCat("local handshake failed: ", p.status().message()));
  }
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                          p->bytes.size()),
      &body);
  if (!type.ok()) return absl::UnavailableError(type.status().message());
  if (*type == ControlType::kRefused) {
    absl::Status why = DecodeStatusBody(body);
    if (why.ok() || absl::IsDataLoss(why)) {
      return absl::UnavailableError("server refused the connection");
    }
    return why;
  }
  WelcomeBody w;
  if (*type != ControlType::kWelcome || body.size() != sizeof(w) ||
      p->fds.size() != 2) {
    return absl::UnavailableError("local handshake: malformed welcome");
  }
  std::memcpy(&w, body.data(), sizeof(w));
  SectionGeometry g;
  g.request_slots = w.request_slots;
  g.reply_slots = w.reply_slots;
  g.c2s_data_bytes = w.c2s_data_bytes;
  g.s2c_data_bytes = w.s2c_data_bytes;
  g.max_record_slots = w.max_record_slots;
  absl::StatusOr<SectionLayout> layout = ComputeLayout(g);
  if (!layout.ok()) return absl::UnavailableError(layout.status().message());
  if (layout->total_size != w.section_size ||
      layout->total_size > o.max_section_bytes) {
    return absl::UnavailableError("local handshake: section size mismatch");
  }
  if (absl::Status s = ValidateSealedMemfd(p->fds[0].get(), layout->total_size);
      !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("local handshake: ", s.message()));
  }
  char link[64] = {};
  const std::string proc = absl::StrCat("/proc/self/fd/", p->fds[1].get());
  if (::readlink(proc.c_str(), link, sizeof(link) - 1) < 0 ||
      std::strcmp(link, "anon_inode:[eventfd]") != 0) {
    return absl::UnavailableError("local handshake: doorbell is not an eventfd");
  }
  absl::StatusOr<Mapping> map =
      Mapping::Map(p->fds[0].get(), layout->total_size, true);
  if (!map.ok()) return map.status();
  if (absl::Status s = ValidateSectionHeader(map->data(), map->size(), *layout);
      !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("local handshake: ", s.message()));
  }
  ClientHandshake h;
  h.sock = std::move(sock);
  h.eventfd = std::move(p->fds[1]);
  h.map = std::move(*map);
  h.layout = *layout;
  return h;
}

}  // namespace lpc::local::internal
