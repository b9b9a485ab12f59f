// Endpoint: payload placement and the validating consumer; see endpoint.h.
#include "transports/local/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/handle_errors.h"
#include "transports/local/memfd.h"
#include "transports/local/shared_word.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"

namespace lpc::local {

absl::Status MemfdPort::SendHandles(uint64_t, absl::Span<const int>) {
  return absl::FailedPreconditionError("no control socket for descriptors");
}

absl::StatusOr<std::vector<UniqueFd>> MemfdPort::TakeHandles(uint64_t message_id,
                                                             uint32_t count,
                                                             absl::Time) {
  if (count == 0) return std::vector<UniqueFd>();
  return MakeHandleError(HandleError::kMissing, message_id,
                         "descriptors are not carried here");
}

absl::Status MemfdPort::SendBuffer(const BufferBody&, int) {
  return absl::FailedPreconditionError("no control socket for buffers");
}

absl::Status MemfdPort::SendPoolBuffer(uint64_t, uint32_t, Buffer*) {
  return absl::FailedPreconditionError("no buffer pool here");
}

absl::StatusOr<ReceivedBuffer> MemfdPort::TakeBuffer(uint64_t message_id,
                                                     absl::Time) {
  return MakeHandleError(HandleError::kBufferMissing, message_id,
                         "buffers are not carried here");
}

absl::Status SocketMemfdPort::SendPayloadFd(uint32_t number, uint64_t length,
                                            int fd) {
  PayloadFdBody body{number, 0, length};
  const int fds[1] = {fd};
  return SendPacket(socket_,
                    EncodeControl(ControlType::kPayloadFd, &body, sizeof(body)),
                    fds);
}

absl::StatusOr<UniqueFd> SocketMemfdPort::TakePayloadFd(uint32_t number,
                                                        uint64_t length,
                                                        absl::Time deadline) {
  absl::StatusOr<Packet> p = RecvPacket(socket_, deadline);
  if (!p.ok()) return p.status();
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                          p->bytes.size()),
      &body);
  if (!type.ok()) return type.status();
  PayloadFdBody b;
  if (*type != ControlType::kPayloadFd || body.size() != sizeof(b) ||
      p->fds.size() != 1) {
    return absl::DataLossError("control: expected one payload memfd packet");
  }
  std::memcpy(&b, body.data(), sizeof(b));
  if (b.memfd_number != number || b.length != length || b.reserved != 0) {
    return absl::DataLossError(absl::StrCat("control: payload memfd number ",
                                            b.memfd_number, ", expected ",
                                            number));
  }
  return std::move(p->fds[0]);
}

Endpoint::Endpoint(Side side, std::byte* base, const SectionLayout& layout,
                   MemfdPort* memfds, EndpointOptions options)
    : side_(side),
      base_(base),
      layout_(layout),
      memfds_(memfds),
      options_(options),
      control_(ControlOf(base, layout)) {
  const SectionGeometry& g = layout.geometry;
  const uint32_t max_record = g.max_record_slots * kSlotSize;
  max_inline_record_ = std::min(options.max_inline_record, max_record);
  if (max_inline_record_ < kFrameHeaderSize) max_inline_record_ = kFrameHeaderSize;
  std::byte* req_slots = base + layout.request_ring_offset;
  std::byte* rep_slots = base + layout.reply_ring_offset;
  std::byte* c2s = base + layout.c2s_data_offset;
  std::byte* s2c = base + layout.s2c_data_offset;
  if (side == Side::kClient) {
    outbound_ = RingProducer(&control_->request, req_slots, g.request_slots,
                             g.max_record_slots);
    out_data_ = DataAreaWriter(&control_->c2s, c2s, g.c2s_data_bytes);
    inbound_ = RingConsumer(&control_->reply, rep_slots, g.reply_slots,
                            g.max_record_slots);
    in_data_ = DataAreaReader(&control_->s2c, s2c, g.s2c_data_bytes);
    own_running_ = &control_->client.running;
    peer_running_ = &control_->server.running;
    own_last_cpu_ = &control_->client.last_cpu;
    peer_last_cpu_ = &control_->server.last_cpu;
  } else {
    outbound_ = RingProducer(&control_->reply, rep_slots, g.reply_slots,
                             g.max_record_slots);
    out_data_ = DataAreaWriter(&control_->s2c, s2c, g.s2c_data_bytes);
    inbound_ = RingConsumer(&control_->request, req_slots, g.request_slots,
                            g.max_record_slots);
    in_data_ = DataAreaReader(&control_->c2s, c2s, g.c2s_data_bytes);
    own_running_ = &control_->server.running;
    peer_running_ = &control_->client.running;
    own_last_cpu_ = &control_->server.last_cpu;
    peer_last_cpu_ = &control_->client.last_cpu;
  }
}

bool Endpoint::Flush() {
  if (!outbound_.Publish()) return false;
  if (side_ == Side::kClient && options_.peer_doorbell != nullptr) {
    options_.peer_doorbell->Ring();
  } else if (side_ == Side::kClient && options_.peer_eventfd >= 0) {
    SignalEventFd(options_.peer_eventfd);
  } else {
    FutexWake(&outbound_.control()->consumer_sleeping, 1);
  }
  return true;
}

void Endpoint::MarkWaitingForRoom() { outbound_.SetWaiting(true); }

void Endpoint::WaitForRoom(absl::Duration timeout) {
  outbound_.SetWaiting(true);
  FutexWait(&outbound_.control()->producer_waiting, 1, timeout).IgnoreError();
  outbound_.SetWaiting(false);
}

absl::StatusOr<std::optional<IncomingMessage>> Endpoint::Receive() {
  memfd_parked_ = false;
  parked_on_handles_ = false;
  parked_on_buffer_ = false;
  absl::StatusOr<absl::Span<const std::byte>> record =
      inbound_.Next(kFrameHeaderSize);
  if (!record.ok()) return record.status();
  if (record->empty()) {
    absl::StatusOr<uint64_t> avail = inbound_.Poll();
    if (!avail.ok()) return avail.status();
    if (*avail == 0) return std::nullopt;
    record = inbound_.Next(kFrameHeaderSize);
    if (!record.ok()) return record.status();
    if (record->empty()) return std::nullopt;
  }
  FrameLimits limits;
  limits.max_payload = options_.max_payload;
  absl::StatusOr<FrameHeader> h = DecodeFrame(*record, limits);
  if (!h.ok()) return h.status();
  const auto type = static_cast<MessageType>(h->type);
  if (side_ == Side::kServer ? !IsClientToServer(type)
                             : !IsServerToClient(type)) {
    return absl::DataLossError(
        absl::StrCat("frame: message type ", h->type, " in the wrong direction"));
  }
  if (held_handles_.has_value() &&
      (held_handles_->first != h->message_id ||
       held_handles_->second.size() != h->handle_count)) {
    return absl::DataLossError(
        "frame: a record parked for its payload memfd changed its handles");
  }
  if (!held_handles_.has_value()) {
    if (absl::Status s = TakeHandlesFor(*h); !s.ok()) return s;
    if (memfd_parked_) {
      inbound_.Unread();  // Read again, and validated again, next time.
      return std::nullopt;
    }
  }
  const bool has_buffer = (h->flags & kFlagBuffer) != 0;
  if (held_buffer_.has_value() &&
      (held_buffer_->first != h->message_id || !has_buffer)) {
    return absl::DataLossError(
        "frame: a record parked for its payload changed its buffer");
  }
  if (has_buffer && !held_buffer_.has_value()) {
    if (absl::Status s = TakeBufferFor(*h); !s.ok()) return s;
    if (memfd_parked_) {
      inbound_.Unread();  // Read again, and validated again, next time.
      return std::nullopt;
    }
  }
  IncomingMessage msg;
  msg.header = *h;
  const uint64_t accept =
      options_.accept_payload == 0 ? options_.max_payload : options_.accept_payload;
  const uint64_t buffer_bytes =
      held_buffer_.has_value() ? held_buffer_->second.view.size() : 0;
  msg.oversized = h->payload_length + buffer_bytes > accept;
  if (!msg.oversized && h->payload_length > (uint64_t{64} << 10) &&
      options_.admit_payload && !options_.admit_payload(h->payload_length)) {
    msg.oversized = msg.over_budget = true;
  }
  if (absl::Status s =
          ReadPayload(*h, *record, msg.oversized ? nullptr : &msg.payload);
      !s.ok()) {
    return s;
  }
  if (memfd_parked_) {
    inbound_.Unread();  // Read again, and validated again, next time.
    return std::nullopt;
  }
  if (held_handles_.has_value()) {
    msg.handles = std::move(held_handles_->second);
    held_handles_.reset();
  }
  if (held_buffer_.has_value()) {
    // Not kept for a message that is refused uncopied (the view unmaps).
    if (!msg.oversized) msg.buffer = std::move(held_buffer_->second);
    held_buffer_.reset();
  }
  return msg;
}

absl::Status Endpoint::TakeBufferFor(const FrameHeader& h) {
  if (memfds_ == nullptr) {
    return MakeHandleError(HandleError::kBufferMissing, h.message_id,
                           "buffers are not carried here");
  }
  absl::StatusOr<ReceivedBuffer> got = memfds_->TakeBuffer(
      h.message_id, options_.park_missing_memfd
                        ? absl::InfinitePast()
                        : absl::Now() + options_.memfd_wait);
  if (absl::IsDeadlineExceeded(got.status())) {
    if (options_.park_missing_memfd) {
      memfd_parked_ = parked_on_buffer_ = true;  // Not yet: stays unread.
      return absl::OkStatus();
    }
    return MakeHandleError(HandleError::kBufferMissing, h.message_id,
                           absl::StrCat("the buffer of message ", h.message_id,
                                        " did not arrive"));
  }
  if (!got.ok()) return got.status();
  const BufferBody& b = got->body;
  if (got->pooled.has_value()) {
    // A pool chunk, checked and borrowed when its packet was read.
    if (b.length > options_.max_payload) {
      return MakeHandleError(
          HandleError::kBufferRefused, h.message_id,
          absl::StrCat("the buffer of message ", h.message_id, ": ",
                       b.length, " bytes, more than the limit of ",
                       options_.max_payload));
    }
    held_buffer_.emplace(h.message_id,
                         AttachedBuffer{b.field_number, *std::move(got->pooled)});
    return absl::OkStatus();
  }
  const auto refuse = [&](const std::string& why) {
    return MakeHandleError(
        HandleError::kBufferRefused, h.message_id,
        absl::StrCat("the buffer of message ", h.message_id, ": ", why));
  };
  if (b.length > options_.max_payload) {
    return refuse(absl::StrCat(b.length, " bytes, more than the limit of ",
                               options_.max_payload));
  }
  // A page only ftruncate'd costs its sender nothing, and reading it
  // through our mapping would cost us a page: every page of the file must
  // have memory behind it. The file's kind was checked when its packet
  // was read (F_GET_SEALS).
  if (absl::Status s = CheckAllocated(got->fd.get()); !s.ok()) {
    return refuse(std::string(s.message()));
  }
  // The seals (F_SEAL_WRITE: nobody can change the bytes any more;
  // F_SEAL_SHRINK: reading the mapping never faults), the size, then a
  // read-only mapping. The memfd closes here: a memfd's close never
  // blocks.
  absl::StatusOr<BufferView> view = ::lpc::internal::BufferAccess::MapSealed(
      Fd(got->fd.Release()), b.offset, b.length);
  if (!view.ok()) return refuse(std::string(view.status().message()));
  held_buffer_.emplace(h.message_id,
                       AttachedBuffer{b.field_number, std::move(*view)});
  return absl::OkStatus();
}

absl::Status Endpoint::TakeHandlesFor(const FrameHeader& h) {
  const auto type = static_cast<MessageType>(h.type);
  const bool names_call = type == MessageType::kRequest ||
                          type == MessageType::kOneway ||
                          type == MessageType::kReply ||
                          type == MessageType::kStreamOpen;
  if (!names_call || h.message_id == 0) return absl::OkStatus();
  if (h.handle_count > options_.max_handles) {
    return MakeHandleError(
        HandleError::kTooMany, h.message_id,
        absl::StrCat("message ", h.message_id, " announces ", h.handle_count,
                     " descriptors, more than the limit of ",
                     options_.max_handles));
  }
  if (memfds_ == nullptr) {
    if (h.handle_count == 0) return absl::OkStatus();
    return MakeHandleError(HandleError::kMissing, h.message_id,
                           "descriptors are not carried here");
  }
  absl::StatusOr<std::vector<UniqueFd>> fds = memfds_->TakeHandles(
      h.message_id, h.handle_count,
      options_.park_missing_memfd ? absl::InfinitePast()
                                  : absl::Now() + options_.memfd_wait);
  if (h.handle_count == 0) return fds.status();
  if (absl::IsDeadlineExceeded(fds.status())) {
    if (options_.park_missing_memfd) {
      memfd_parked_ = parked_on_handles_ = true;  // Not yet: stays unread.
      return absl::OkStatus();
    }
    return MakeHandleError(
        HandleError::kMissing, h.message_id,
        absl::StrCat("the ", h.handle_count, " descriptors of message ",
                     h.message_id, " did not arrive"));
  }
  if (!fds.ok()) return fds.status();
  held_handles_.emplace(h.message_id, std::move(*fds));
  return absl::OkStatus();
}

absl::Status Endpoint::ReadPayload(const FrameHeader& h,
                                   absl::Span<const std::byte> record,
                                   std::string* out) {
  switch (static_cast<PayloadMode>(h.payload_mode)) {
    case PayloadMode::kInline:
      if (out == nullptr) return absl::OkStatus();
      out->assign(reinterpret_cast<const char*>(record.data()) + kFrameHeaderSize,
                  h.payload_length);
      return absl::OkStatus();
    case PayloadMode::kDataArea:
      // (A length past the area is refused by Read: nothing reserved.)
      if (h.payload_length <= in_data_.capacity()) TakeBuffer(h, out);
      return in_data_.Read(h.payload_ref, h.payload_length, out);
    case PayloadMode::kMemfd: {
      if (h.payload_ref != next_in_memfd_) {
        return absl::DataLossError(absl::StrCat(
            "frame: payload memfd #", h.payload_ref, ", expected #",
            next_in_memfd_));
      }
      if (memfds_ == nullptr) {
        return absl::DataLossError("frame: memfd payload not supported here");
      }
      absl::StatusOr<UniqueFd> fd = memfds_->TakePayloadFd(
          h.payload_ref, h.payload_length,
          options_.park_missing_memfd ? absl::InfinitePast()
                                      : absl::Now() + options_.memfd_wait);
      if (options_.park_missing_memfd && absl::IsDeadlineExceeded(fd.status())) {
        memfd_parked_ = true;  // Not yet: the record stays in the ring.
        return absl::OkStatus();
      }
      ++next_in_memfd_;
      if (!fd.ok()) return fd.status();
      if (absl::Status s = ValidateSealedMemfd(
              fd->get(), PayloadMemfdSize(h.payload_length));
          !s.ok()) {
        return s;
      }
      // A memfd whose pages were never written costs its sender nothing
      // and would cost us the whole length in heap: refused.
      if (absl::Status s = CheckWritten(fd->get(), h.payload_length);
          !s.ok()) {
        return s;
      }
      // Released at once (ReleaseReceived), so that the sender may reuse it.
      memfd_read_ = true;
      if (out == nullptr) return absl::OkStatus();
      TakeBuffer(h, out);
      // Read, not mapped: one copy into our buffer, no faults.
      return ReadWhole(fd->get(), h.payload_length, out);  // Closed here.
    }
  }
  return absl::DataLossError("frame: bad payload_mode");
}

void Endpoint::TakeBuffer(const FrameHeader& h, std::string* out) {
  if (out != nullptr && options_.buffers != nullptr &&
      out->capacity() < h.payload_length) {
    *out = options_.buffers->Take(h.payload_length);
  }
}

void Endpoint::ReleaseReceived() {
  in_data_.Release();
  const bool memfd_read = std::exchange(memfd_read_, false);
  if (!(memfd_read ? inbound_.Release() : inbound_.ReleaseBatched())) return;
  WakeWaitingProducer();
}

void Endpoint::WakeWaitingProducer() {
  if (side_ == Side::kClient && options_.peer_doorbell != nullptr) {
    options_.peer_doorbell->Ring();
  } else if (side_ == Side::kClient && options_.peer_eventfd >= 0) {
    SignalEventFd(options_.peer_eventfd);
  } else {
    FutexWake(inbound_.producer_waiting_word(), 1);
  }
}

bool Endpoint::WaitForInbound(int64_t spin_ns, absl::Duration timeout) {
  if (HasInboundHint()) return true;
  if (spin_ns > 0 && PeerRunningElsewhere(PeerRunning())) {
    if (SpinUntil(
            spin_ns, [this] { return HasInboundHint(); },
            [this] { return PeerRunningElsewhere(PeerRunning()); })) {
      return true;
    }
  }
  if (!inbound_.PrepareToSleep()) return true;
  SetRunning(false);
  FutexWait(inbound_.sleeping_word(), 1, timeout).IgnoreError();
  inbound_.ClearSleeping();
  return HasInboundHint();
}

void Endpoint::SetRunning(bool running) {
  // The peer polls this word while it spins: store only on a change, so
  // that its cache line is not invalidated on every call.
  SetRunningValue(running ? RunningValueForThisCpu() : 0);
}

void Endpoint::SetRunningValue(uint32_t value) {
  const uint32_t old = SharedLoad(*own_running_, std::memory_order_relaxed);
  if (old == value) return;
  // Going to sleep: where it ran is where it will most likely be woken.
  // (Stored first, so a peer that sees `running` cleared sees it too.)
  if (value == 0 && SharedLoad(*own_last_cpu_, std::memory_order_relaxed) != old) {
    SharedStore<uint32_t>(*own_last_cpu_, old, std::memory_order_relaxed);
  }
  SharedStore<uint32_t>(*own_running_, value, std::memory_order_relaxed);
}

uint32_t Endpoint::PeerRunning() const {
  return SharedLoad(*peer_running_, std::memory_order_relaxed);
}

uint32_t Endpoint::PeerLastCpu() const {
  return SharedLoad(*peer_last_cpu_, std::memory_order_relaxed);
}

}  // namespace lpc::local
