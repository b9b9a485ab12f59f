// The client half of the handshake; see client_handshake.h and "Connection
// and handshake" in docs/local-transport.md.
#include "transports/local/internal/client_handshake.h"

#include <errno.h>
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

absl::StatusOr<ClientHandshake> ConnectAndHandshake(
    const std::string& path, const LocalChannelOptions& o,
    absl::Time deadline) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) return absl::UnavailableError("socket() failed");
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr),
                sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to local port ", path, ": ", std::strerror(errno)));
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
  absl::StatusOr<Packet> p = RecvPacket(
      sock.get(), std::min(deadline, absl::Now() + o.connect_timeout));
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
