// RawClient; see raw_client.h.
#include "tests/reliability/raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/shared_word.h"

namespace lpc::reliability {

using local::ControlType;
using local::FrameHeader;
using local::IncomingMessage;
using local::MessageType;
using local::OutgoingMessage;

absl::StatusOr<std::unique_ptr<RawClient>> RawClient::Connect(
    const std::string& path, absl::Duration timeout) {
  std::unique_ptr<RawClient> c(new RawClient());
  c->sock_.Reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!c->sock_) return absl::UnavailableError("socket() failed");
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(c->sock_.get(), reinterpret_cast<sockaddr*>(&addr),
                sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("connect ", path, ": ",
                                               std::strerror(errno)));
  }
  absl::StatusOr<local::Packet> p =
      local::RecvPacket(c->sock_.get(), absl::Now() + timeout);
  if (!p.ok()) return p.status();
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = local::DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                          p->bytes.size()),
      &body);
  if (!type.ok()) return type.status();
  if (*type == ControlType::kRefused) return local::DecodeStatusBody(body);
  local::WelcomeBody w;
  if (*type != ControlType::kWelcome || body.size() != sizeof(w) ||
      p->fds.size() != 2) {
    return absl::DataLossError("malformed welcome");
  }
  std::memcpy(&w, body.data(), sizeof(w));
  local::SectionGeometry g;
  g.request_slots = w.request_slots;
  g.reply_slots = w.reply_slots;
  g.c2s_data_bytes = w.c2s_data_bytes;
  g.s2c_data_bytes = w.s2c_data_bytes;
  g.max_record_slots = w.max_record_slots;
  absl::StatusOr<local::SectionLayout> layout = local::ComputeLayout(g);
  if (!layout.ok()) return layout.status();
  if (layout->total_size != w.section_size) {
    return absl::DataLossError("section size mismatch");
  }
  if (absl::Status s =
          local::ValidateSealedMemfd(p->fds[0].get(), layout->total_size);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<local::Mapping> map =
      local::Mapping::Map(p->fds[0].get(), layout->total_size, true);
  if (!map.ok()) return map.status();
  if (absl::Status s = local::ValidateSectionHeader(map->data(), map->size(),
                                                    *layout);
      !s.ok()) {
    return s;
  }
  c->layout_ = *layout;
  c->map_ = std::move(*map);
  c->eventfd_ = std::move(p->fds[1]);
  c->port_ = std::make_unique<local::SocketMemfdPort>(c->sock_.get());
  local::EndpointOptions eo;
  eo.peer_eventfd = c->eventfd_.get();
  c->ep_ = std::make_unique<local::Endpoint>(local::Side::kClient,
                                             c->map_.data(), c->layout_,
                                             c->port_.get(), eo);
  return c;
}

absl::Status RawClient::Send(const OutgoingMessage& m, bool flush) {
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<bool> ok = ep_->TrySend(m);
    if (!ok.ok()) return ok.status();
    if (*ok) {
      if (flush) ep_->Flush();
      // Keep the raw writer's position in step with the endpoint's.
      raw_tail_ = local::SharedLoad(control()->request.producer_index);
      return absl::OkStatus();
    }
    ep_->Flush();
    ep_->WaitForRoom(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError("request ring stayed full");
}

std::optional<std::string> RawClient::CheckSocket(bool leave_payload_fds) {
  struct pollfd p = {sock_.get(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return std::nullopt;
  if (leave_payload_fds) {
    // A reply's PAYLOAD_FD goes out before its record is published: one
    // that is here while the record is not yet visible is the endpoint's
    // to take (SocketMemfdPort), not a packet to drop.
    std::string head(local::kMaxControlPacket, '\0');
    const ssize_t n =
        ::recv(sock_.get(), head.data(), head.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      absl::Span<const std::byte> body;
      absl::StatusOr<ControlType> type = local::DecodeControlHeader(
          absl::MakeConstSpan(reinterpret_cast<const std::byte*>(head.data()),
                              static_cast<size_t>(n)),
          &body);
      if (type.ok() && *type == ControlType::kPayloadFd) return std::nullopt;
    }
  }
  absl::StatusOr<local::Packet> packet =
      local::RecvPacket(sock_.get(), absl::InfinitePast());
  if (absl::IsDeadlineExceeded(packet.status())) {
    if (local::PeerHungUp(sock_.get())) return std::string("hang-up");
    return std::nullopt;
  }
  if (!packet.ok()) return std::string("hang-up");
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = local::DecodeControlHeader(
      absl::MakeConstSpan(
          reinterpret_cast<const std::byte*>(packet->bytes.data()),
          packet->bytes.size()),
      &body);
  if (type.ok() && *type == ControlType::kGoodbye) {
    return std::string(local::DecodeStatusBody(body).message());
  }
  return std::string("unexpected control packet");
}

absl::StatusOr<IncomingMessage> RawClient::WaitReply(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<std::optional<IncomingMessage>> m = ep_->Receive();
    if (!m.ok()) return m.status();
    if (m->has_value()) {
      ep_->ReleaseReceived();
      return std::move(**m);
    }
    if (std::optional<std::string> why =
            CheckSocket(/*leave_payload_fds=*/true)) {
      return absl::UnavailableError(*why);
    }
    if (absl::Now() >= end) return absl::DeadlineExceededError("no reply");
    ep_->WaitForInbound(0, absl::Milliseconds(1));
  }
}

absl::StatusOr<uint32_t> RawClient::Bind(const InterfaceDescriptor& iface,
                                         absl::Duration timeout) {
  local::BindRequest req{std::string(iface.full_name), std::string(iface.uuid),
                         iface.version.major, iface.version.minor};
  const std::string payload = local::EncodeBindRequest(req);
  OutgoingMessage m;
  m.type = MessageType::kBind;
  m.message_id = NextId();
  m.payload = payload;
  if (absl::Status s = Send(m); !s.ok()) return s;
  absl::StatusOr<IncomingMessage> r = WaitReply(timeout);
  if (!r.ok()) return r.status();
  if (r->header.status_code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(r->header.status_code),
                        r->payload);
  }
  return r->header.interface_slot;
}

absl::StatusOr<std::string> RawClient::Call(uint32_t slot, uint32_t method_id,
                                            std::string_view payload,
                                            absl::Duration timeout) {
  OutgoingMessage m;
  m.type = MessageType::kRequest;
  m.message_id = NextId();
  m.interface_slot = slot;
  m.method_id = method_id;
  m.deadline_ns = local::MonotonicNowNs() + absl::ToInt64Nanoseconds(timeout);
  m.payload = payload;
  if (absl::Status s = Send(m); !s.ok()) return s;
  absl::StatusOr<IncomingMessage> r = WaitReply(timeout);
  if (!r.ok()) return r.status();
  if (r->header.message_id != m.message_id) {
    return absl::DataLossError("reply for another call");
  }
  if (r->header.status_code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(r->header.status_code),
                        r->payload);
  }
  return std::move(r->payload);
}

void RawClient::WriteRaw(std::string_view record) {
  const uint32_t slots = layout_.geometry.request_slots;
  std::byte* ring = map_.data() + layout_.request_ring_offset;
  const size_t n = std::max<size_t>(1, (record.size() + 63) / 64);
  for (size_t i = 0; i < n; ++i) {
    std::byte slot[64] = {};
    const size_t off = i * 64;
    if (off < record.size()) {
      std::memcpy(slot, record.data() + off,
                  std::min<size_t>(64, record.size() - off));
    }
    std::memcpy(ring + ((raw_tail_ + i) % slots) * 64, slot, 64);
  }
  raw_tail_ += n;
}

void RawClient::PublishRaw() {
  local::SharedStore<uint64_t>(control()->request.producer_index, raw_tail_,
                               std::memory_order_seq_cst);
  Ring();
}

void RawClient::Ring() { local::SignalEventFd(eventfd_.get()); }

std::optional<std::string> RawClient::WaitCutOff(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (std::optional<std::string> why = CheckSocket()) return why;
    struct pollfd p = {sock_.get(), POLLIN | POLLRDHUP, 0};
    ::poll(&p, 1, 5);
  }
  return CheckSocket();
}

std::string MakeRecord(const FrameHeader& h, std::string_view inline_payload) {
  std::string r(sizeof(h) + inline_payload.size(), '\0');
  std::memcpy(r.data(), &h, sizeof(h));
  if (!inline_payload.empty()) {
    std::memcpy(r.data() + sizeof(h), inline_payload.data(),
                inline_payload.size());
  }
  return r;
}

FrameHeader RequestHeader(uint64_t id, uint32_t slot, uint32_t method,
                          uint32_t payload_length) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = local::kFrameHeaderSize + payload_length;
  h.type = static_cast<uint8_t>(MessageType::kRequest);
  h.payload_mode = static_cast<uint8_t>(local::PayloadMode::kInline);
  h.message_id = id;
  h.deadline_ns = local::MonotonicNowNs() + int64_t{5} * 1000000000;
  h.interface_slot = slot;
  h.method_id = method;
  h.payload_length = payload_length;
  return h;
}

}  // namespace lpc::reliability
