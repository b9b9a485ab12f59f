// The server half of the handshake (server_handshake.h).
#include "transports/local/internal/server_handshake.h"

#include <algorithm>

#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/internal/listener.h"
#include "transports/local/memfd.h"

namespace lpc::local::internal {
namespace {

constexpr uint64_t kHardPayloadCap = uint64_t{1} << 30;

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> ServerHandshake(
    UniqueFd sock, const PeerCredentials& creds,
    const ServerHandshakeOptions& options) {
  absl::StatusOr<SectionLayout> layout = ComputeLayout(options.geometry);
  if (!layout.ok()) {
    FdCloser::Get().Close(std::move(sock));
    return layout.status();
  }
  auto c = std::make_shared<Connection>();
  c->server_state = options.server_state;
  c->creds = creds;
  c->peer.transport = "local";
  c->peer.uid = creds.uid;
  c->peer.gid = creds.gid;
  c->peer.pid = creds.pid;
  c->peer.address = options.address;
  c->layout = *layout;
  absl::StatusOr<UniqueFd> memfd =
      CreateSealedMemfd("lpc-section", c->layout.total_size);
  absl::StatusOr<UniqueFd> efd = CreateEventFd();
  if (!memfd.ok() || !efd.ok()) {
    const absl::Status s = !memfd.ok() ? memfd.status() : efd.status();
    SendRefusal(sock.get(), s);
    FdCloser::Get().Close(std::move(sock));
    return s;
  }
  absl::StatusOr<Mapping> map =
      Mapping::Map(memfd->get(), c->layout.total_size, true);
  if (!map.ok()) {
    FdCloser::Get().Close(std::move(sock));
    return map.status();
  }
  c->map = std::move(*map);
  InitializeSection(c->map.data(), c->layout);
  c->eventfd = std::move(*efd);
  c->sock = std::move(sock);
  EndpointOptions eo;
  eo.max_inline_record = options.max_inline_record;
  eo.max_payload = kHardPayloadCap;
  eo.accept_payload = options.max_message_size;
  eo.park_missing_memfd = true;  // A worker never waits for a memfd.
  eo.max_handles = options.max_handles;
  c->memfd_wait_ns = absl::ToInt64Nanoseconds(options.memfd_wait);
  eo.buffers = options.buffers;
  eo.memfd_pool = options.memfd_pool;
  eo.memfd_keep_idle = options.payload_cache_idle;
  eo.max_uncollected_memfd_bytes = options.max_reply_memfd_bytes_per_connection;
  c->request_bytes.limit = options.max_request_bytes_per_connection;
  c->reply_bytes.limit = options.max_queued_reply_bytes_per_connection;
  c->budgets = options.budgets;
  if (options.budgets != nullptr) {
    eo.shared_uncollected_memfd_bytes = &options.budgets->reply_memfd_bytes.used;
    eo.max_shared_uncollected_memfd_bytes =
        options.budgets->reply_memfd_bytes.limit;
    ServerBudgets* budgets = options.budgets;
    eo.admit_payload = [budgets](uint64_t n) {
      return AdmitRequest(budgets->request_bytes, n);
    };
  }
  c->ep = std::make_unique<Endpoint>(Side::kServer, c->map.data(), c->layout,
                                     c.get(), eo);
  const SectionGeometry& g = c->layout.geometry;
  WelcomeBody w{g.request_slots,
                g.reply_slots,
                g.c2s_data_bytes,
                g.s2c_data_bytes,
                g.max_record_slots,
                static_cast<uint32_t>(
                    std::min<uint64_t>(options.max_message_size >> 10, UINT32_MAX)),
                c->layout.total_size};
  const int fds[2] = {memfd->get(), c->eventfd.get()};
  // Admitted: from now on the client may send payload memfds (the listener
  // refused fds until here, where the kernel has SO_PASSRIGHTS). Before the
  // WELCOME, so that no honest client's fd is refused.
  SetPassRights(c->sock.get(), true);
  // A fresh socket has room for one packet: never waited for.
  if (absl::Status s = TrySendPacket(
          c->sock.get(), EncodeControl(ControlType::kWelcome, &w, sizeof(w)),
          fds);
      !s.ok()) {
    return s;
  }
  return c;
}

}  // namespace lpc::local::internal
