// Frame and control-packet codecs; see frame.h.
#include "transports/local/frame.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace lpc::local {
namespace {

absl::Status Bad(const char* field, uint64_t value) {
  return absl::DataLossError(
      absl::StrCat("frame: bad ", field, " (", value, ")"));
}

constexpr uint32_t kMaxStatusMessage = 1024;
// A STREAM_FINISH with metadata: the block (at most 16 KiB of entries and
// its 8-byte header) and the status message.
constexpr uint32_t kMaxFinishPayload = (16 << 10) + 8 + kMaxStatusMessage;
constexpr size_t kMaxBindField = 256;

}  // namespace

bool IsClientToServer(MessageType type) {
  switch (type) {
    case MessageType::kRequest:
    case MessageType::kOneway:
    case MessageType::kCancel:
    case MessageType::kBind:
    case MessageType::kStreamOpen:
    case MessageType::kStreamMessage:
    case MessageType::kHalfClose:
    case MessageType::kWindowUpdate:
      return true;
    default:
      return false;
  }
}

bool IsServerToClient(MessageType type) {
  switch (type) {
    case MessageType::kReply:
    case MessageType::kBindReply:
    case MessageType::kStreamMessage:
    case MessageType::kStreamFinish:
    case MessageType::kWindowUpdate:
      return true;
    default:
      return false;
  }
}

std::string EncodeStreamOpenBody(uint32_t window_messages,
                                 uint64_t window_bytes) {
  const StreamOpenBody b{window_messages, 0, window_bytes};
  return std::string(reinterpret_cast<const char*>(&b), sizeof(b));
}

absl::StatusOr<StreamOpenBody> DecodeStreamOpenBody(std::string_view payload,
                                                    std::string_view* rest) {
  StreamOpenBody b;
  if (payload.size() < sizeof(b)) {
    return absl::DataLossError("bad stream open: body too short");
  }
  std::memcpy(&b, payload.data(), sizeof(b));
  if (b.reserved != 0 || b.window_messages == 0 || b.window_bytes == 0) {
    return absl::DataLossError("bad stream open: zero window or reserved set");
  }
  *rest = payload.substr(sizeof(b));
  return b;
}

std::string EncodeWindowBody(uint32_t kind, uint32_t messages, uint64_t bytes) {
  const WindowBody b{messages, kind, bytes};
  return std::string(reinterpret_cast<const char*>(&b), sizeof(b));
}

absl::StatusOr<WindowBody> DecodeWindowBody(std::string_view payload) {
  WindowBody b;
  if (payload.size() != sizeof(b)) {
    return absl::DataLossError("bad window update: wrong size");
  }
  std::memcpy(&b, payload.data(), sizeof(b));
  if (b.kind != kWindowCredits && b.kind != kWindowAnnounce) {
    return absl::DataLossError(
        absl::StrCat("bad window update: unknown kind ", b.kind));
  }
  return b;
}

absl::StatusOr<FrameHeader> DecodeFrame(absl::Span<const std::byte> record,
                                        const FrameLimits& limits) {
  if (record.size() < kFrameHeaderSize) {
    return Bad("record_size", record.size());
  }
  FrameHeader h;
  std::memcpy(&h, record.data(), sizeof(h));
  if (h.record_size != record.size()) return Bad("record_size", h.record_size);
  if (h.type < 1 || h.type > 11) return Bad("type", h.type);
  if (h.payload_mode > 2) return Bad("payload_mode", h.payload_mode);
  if ((h.flags & ~kFlagKnownMask) != 0) return Bad("flags", h.flags);
  const auto type = static_cast<MessageType>(h.type);
  if ((h.flags & kFlagMetadata) != 0 && type != MessageType::kRequest &&
      type != MessageType::kOneway && type != MessageType::kReply &&
      type != MessageType::kStreamOpen &&
      type != MessageType::kStreamMessage &&
      type != MessageType::kStreamFinish) {
    return Bad("flags", h.flags);
  }
  if ((h.flags & kFlagBuffer) != 0 &&
      ((type != MessageType::kRequest && type != MessageType::kOneway &&
        type != MessageType::kReply) ||
       h.message_id == 0)) {
    return Bad("flags", h.flags);
  }
  if (h.handle_count != 0) {
    if (type >= MessageType::kStreamOpen) {
      return absl::DataLossError(absl::StrCat(
          "frame: stream records carry no descriptors (handle_count ",
          h.handle_count, ")"));
    }
    if ((type != MessageType::kRequest && type != MessageType::kOneway &&
         type != MessageType::kReply) ||
        h.handle_count > kMaxHandlesHardLimit) {
      return Bad("handle_count", h.handle_count);
    }
  }
  if (h.payload_length > limits.max_payload) {
    return Bad("payload_length", h.payload_length);
  }
  const auto mode = static_cast<PayloadMode>(h.payload_mode);
  if (mode == PayloadMode::kInline) {
    if (h.payload_length != record.size() - kFrameHeaderSize) {
      return Bad("payload_length", h.payload_length);
    }
    if (h.payload_ref != 0) return Bad("payload_ref", h.payload_ref);
  } else {
    if (record.size() != kFrameHeaderSize) return Bad("record_size", h.record_size);
    if (h.payload_length == 0) return Bad("payload_length", 0);
  }
  const bool is_call = type == MessageType::kRequest ||
                       type == MessageType::kOneway ||
                       type == MessageType::kStreamOpen;
  if (is_call) {
    if (h.deadline_ns < 0) return Bad("deadline_ns", h.deadline_ns);
  } else {
    if (h.deadline_ns != 0) return Bad("deadline_ns", h.deadline_ns);
    if (type != MessageType::kBindReply && h.interface_slot != 0) {
      return Bad("interface_slot", h.interface_slot);
    }
    if (h.method_id != 0) return Bad("method_id", h.method_id);
  }
  const bool is_reply = type == MessageType::kReply ||
                        type == MessageType::kBindReply ||
                        type == MessageType::kStreamFinish;
  if (is_reply) {
    if (h.status_code > 16) return Bad("status_code", h.status_code);
    if (type == MessageType::kStreamFinish) {
      const bool md = (h.flags & kFlagMetadata) != 0;
      if (h.payload_length > (md ? kMaxFinishPayload : kMaxStatusMessage) ||
          (!md && h.status_code == 0 && h.payload_length != 0)) {
        return Bad("payload_length", h.payload_length);
      }
    } else if (h.status_code != 0 && h.payload_length > kMaxStatusMessage) {
      return Bad("payload_length", h.payload_length);
    }
  } else if (h.status_code != 0) {
    return Bad("status_code", h.status_code);
  }
  if ((type == MessageType::kCancel || type == MessageType::kHalfClose) &&
      h.payload_length != 0) {
    return Bad("payload_length", h.payload_length);
  }
  if (type >= MessageType::kStreamOpen && h.message_id == 0) {
    return Bad("message_id", 0);
  }
  if (type == MessageType::kWindowUpdate &&
      (mode != PayloadMode::kInline || h.payload_length != sizeof(WindowBody))) {
    return Bad("payload_length", h.payload_length);
  }
  if (type == MessageType::kStreamOpen &&
      h.payload_length < sizeof(StreamOpenBody)) {
    return Bad("payload_length", h.payload_length);
  }
  if (type == MessageType::kBindReply && h.payload_length != 0 &&
      h.status_code == 0) {
    return Bad("payload_length", h.payload_length);
  }
  return h;
}

std::string EncodeControl(ControlType type, const void* body, size_t body_size,
                          std::string_view trailer) {
  ControlHeader h{kControlMagic, static_cast<uint16_t>(type),
                  static_cast<uint16_t>(kProtocolVersion)};
  std::string out(sizeof(h) + body_size + trailer.size(), '\0');
  std::memcpy(out.data(), &h, sizeof(h));
  if (body_size > 0) std::memcpy(out.data() + sizeof(h), body, body_size);
  if (!trailer.empty()) {
    std::memcpy(out.data() + sizeof(h) + body_size, trailer.data(),
                trailer.size());
  }
  return out;
}

absl::StatusOr<ControlType> DecodeControlHeader(
    absl::Span<const std::byte> packet, absl::Span<const std::byte>* body) {
  if (packet.size() < sizeof(ControlHeader)) {
    return absl::DataLossError("control: packet too short");
  }
  ControlHeader h;
  std::memcpy(&h, packet.data(), sizeof(h));
  if (h.magic != kControlMagic) {
    return absl::DataLossError("control: bad magic");
  }
  if (h.version != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "control: protocol version ", h.version, ", expected ", kProtocolVersion));
  }
  if (h.type < 1 || h.type > 11) {
    return absl::DataLossError(absl::StrCat("control: bad type ", h.type));
  }
  *body = packet.subspan(sizeof(h));
  return static_cast<ControlType>(h.type);
}

std::string EncodeStatusPacket(ControlType type, const absl::Status& status) {
  std::string_view msg(status.message().data(), status.message().size());
  if (msg.size() > kMaxStatusMessage) msg = msg.substr(0, kMaxStatusMessage);
  StatusBody b{static_cast<uint32_t>(status.code()),
               static_cast<uint32_t>(msg.size())};
  return EncodeControl(type, &b, sizeof(b), msg);
}

absl::Status DecodeStatusBody(absl::Span<const std::byte> body) {
  StatusBody b;
  if (body.size() < sizeof(b)) {
    return absl::DataLossError("control: status body too short");
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.status_code > 16 || b.status_code == 0 ||
      b.message_length > kMaxStatusMessage ||
      b.message_length != body.size() - sizeof(b)) {
    return absl::DataLossError("control: bad status body");
  }
  return absl::Status(
      static_cast<absl::StatusCode>(b.status_code),
      absl::string_view(reinterpret_cast<const char*>(body.data()) + sizeof(b),
                        b.message_length));
}

std::string EncodeCancelPacket(uint64_t message_id) {
  const CancelBody b{message_id};
  return EncodeControl(ControlType::kCancel, &b, sizeof(b));
}

absl::StatusOr<uint64_t> DecodeCancelBody(absl::Span<const std::byte> body) {
  CancelBody b;
  if (body.size() != sizeof(b)) {
    return absl::DataLossError(absl::StrCat("control: CANCEL body of ",
                                            body.size(), " bytes, expected ",
                                            sizeof(b)));
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.message_id == 0) {
    return absl::DataLossError("control: CANCEL for message id 0");
  }
  return b.message_id;
}

std::string EncodeHandlesPacket(uint64_t message_id, uint32_t count) {
  const HandlesBody b{message_id, count, 0};
  return EncodeControl(ControlType::kHandles, &b, sizeof(b));
}

std::string EncodeBufferPacket(const BufferBody& b) {
  return EncodeControl(ControlType::kBuffer, &b, sizeof(b));
}

absl::StatusOr<BufferBody> DecodeBufferBody(absl::Span<const std::byte> body,
                                            size_t fds_received) {
  BufferBody b;
  if (body.size() != sizeof(b)) {
    return absl::DataLossError(absl::StrCat("control: BUFFER body of ",
                                            body.size(), " bytes, expected ",
                                            sizeof(b)));
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.message_id == 0) {
    return absl::DataLossError("control: BUFFER for message id 0");
  }
  if (b.reserved != 0) {
    return absl::DataLossError("control: BUFFER with reserved set");
  }
  if (b.field_number == 0 || b.field_number > (uint32_t{1} << 29) - 1) {
    return absl::DataLossError(
        absl::StrCat("control: BUFFER field number ", b.field_number));
  }
  if (b.length == 0 || b.length > UINT64_MAX - b.offset) {
    return absl::DataLossError(absl::StrCat("control: BUFFER range ",
                                            b.offset, "+", b.length));
  }
  if (fds_received != 1) {
    return absl::DataLossError(absl::StrCat(
        "control: BUFFER carries ", fds_received, " descriptors, not 1"));
  }
  return b;
}

std::string EncodePoolPacket(const PoolBody& b) {
  return EncodeControl(ControlType::kPool, &b, sizeof(b));
}

absl::StatusOr<PoolBody> DecodePoolBody(absl::Span<const std::byte> body,
                                        size_t fds_received, size_t want_fds) {
  PoolBody b;
  if (body.size() != sizeof(b)) {
    return absl::DataLossError(absl::StrCat("control: POOL body of ",
                                            body.size(), " bytes, expected ",
                                            sizeof(b)));
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.reserved != 0) {
    return absl::DataLossError("control: POOL with reserved set");
  }
  if (b.chunk_bytes < 4096 || b.chunk_bytes % 4096 != 0 ||
      b.chunk_count < 2 || b.chunk_count % 2 != 0 ||
      b.chunk_count > kMaxPoolChunks ||
      b.chunk_bytes > UINT64_MAX / b.chunk_count) {
    return absl::DataLossError(absl::StrCat("control: POOL layout of ",
                                            b.chunk_count, " chunks of ",
                                            b.chunk_bytes, " bytes"));
  }
  if (fds_received != want_fds) {
    return absl::DataLossError(absl::StrCat("control: POOL carries ",
                                            fds_received, " descriptors, not ",
                                            want_fds));
  }
  return b;
}

std::string EncodePoolBufferPacket(const PoolBufferBody& b) {
  return EncodeControl(ControlType::kPoolBuffer, &b, sizeof(b));
}

absl::StatusOr<PoolBufferBody> DecodePoolBufferBody(
    absl::Span<const std::byte> body, size_t fds_received) {
  PoolBufferBody b;
  if (body.size() != sizeof(b)) {
    return absl::DataLossError(absl::StrCat("control: POOL_BUFFER body of ",
                                            body.size(), " bytes, expected ",
                                            sizeof(b)));
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.message_id == 0) {
    return absl::DataLossError("control: POOL_BUFFER for message id 0");
  }
  if (b.field_number == 0 || b.field_number > (uint32_t{1} << 29) - 1) {
    return absl::DataLossError(
        absl::StrCat("control: POOL_BUFFER field number ", b.field_number));
  }
  if (b.length == 0) return absl::DataLossError("control: POOL_BUFFER length 0");
  if (fds_received != 0) {
    return absl::DataLossError("control: POOL_BUFFER with descriptors");
  }
  return b;
}

std::string EncodePoolReturnPacket(absl::Span<const uint32_t> chunks) {
  PoolReturnBody b{static_cast<uint32_t>(chunks.size()), 0};
  return EncodeControl(
      ControlType::kPoolReturn, &b, sizeof(b),
      std::string_view(reinterpret_cast<const char*>(chunks.data()),
                       chunks.size() * sizeof(uint32_t)));
}

absl::StatusOr<std::vector<uint32_t>> DecodePoolReturnBody(
    absl::Span<const std::byte> body, size_t fds_received) {
  PoolReturnBody b;
  if (body.size() < sizeof(b)) {
    return absl::DataLossError("control: POOL_RETURN body too short");
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.reserved != 0 || b.count == 0 || b.count > kMaxPoolReturns ||
      body.size() != sizeof(b) + size_t{b.count} * sizeof(uint32_t)) {
    return absl::DataLossError(absl::StrCat("control: POOL_RETURN of ",
                                            b.count, " chunks in ",
                                            body.size(), " bytes"));
  }
  if (fds_received != 0) {
    return absl::DataLossError("control: POOL_RETURN with descriptors");
  }
  std::vector<uint32_t> chunks(b.count);
  std::memcpy(chunks.data(), body.data() + sizeof(b),
              chunks.size() * sizeof(uint32_t));
  return chunks;
}

absl::StatusOr<HandlesBody> DecodeHandlesBody(absl::Span<const std::byte> body,
                                              size_t fds_received) {
  HandlesBody b;
  if (body.size() != sizeof(b)) {
    return absl::DataLossError(absl::StrCat("control: HANDLES body of ",
                                            body.size(), " bytes, expected ",
                                            sizeof(b)));
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.message_id == 0) {
    return absl::DataLossError("control: HANDLES for message id 0");
  }
  if (b.reserved != 0) {
    return absl::DataLossError("control: HANDLES with reserved set");
  }
  if (b.count == 0 || b.count > kMaxHandlesHardLimit ||
      b.count != fds_received) {
    return absl::DataLossError(absl::StrCat(
        "control: HANDLES announces ", b.count, " descriptors and carries ",
        fds_received));
  }
  return b;
}

std::string EncodeBindRequest(const BindRequest& r) {
  std::string out;
  auto put32 = [&out](uint32_t v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  put32(r.major);
  put32(r.minor);
  put32(static_cast<uint32_t>(r.full_name.size()));
  put32(static_cast<uint32_t>(r.uuid.size()));
  out += r.full_name;
  out += r.uuid;
  return out;
}

absl::StatusOr<BindRequest> DecodeBindRequest(std::string_view bytes) {
  uint32_t f[4];
  if (bytes.size() < sizeof(f)) {
    return absl::DataLossError("bind: request too short");
  }
  std::memcpy(f, bytes.data(), sizeof(f));
  if (f[2] > kMaxBindField || f[3] > kMaxBindField ||
      uint64_t{f[2]} + f[3] != bytes.size() - sizeof(f)) {
    return absl::DataLossError("bind: bad field lengths");
  }
  BindRequest r;
  r.major = f[0];
  r.minor = f[1];
  r.full_name.assign(bytes.data() + sizeof(f), f[2]);
  r.uuid.assign(bytes.data() + sizeof(f) + f[2], f[3]);
  return r;
}

}  // namespace lpc::local
