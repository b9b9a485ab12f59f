// Endpoint: payload placement and the validating consumer; see endpoint.h.
#include "transports/local/endpoint.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/handle_errors.h"
#include "transports/local/memfd.h"
#include "transports/local/shared_word.h"

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

namespace {

// The tag and length of a length-delimited field (protobuf wire format).
uint8_t* WriteVarint(uint64_t v, uint8_t* p) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

}  // namespace

uint64_t PayloadLength(const OutgoingMessage& m) {
  if (m.body == nullptr) return m.payload.size();
  return m.payload.size() + SerializedSize(*m.body);
}

void WritePayload(const OutgoingMessage& m, uint8_t* dst) {
  if (!m.payload.empty()) std::memcpy(dst, m.payload.data(), m.payload.size());
  if (m.body == nullptr) return;
  uint8_t* p = dst + m.payload.size();
  m.body->WriteTo(p);
  p += m.body->size();
  if (const BufferField* f = m.body->buffer(); f != nullptr) {
    const uint64_t tag = (uint64_t{f->field_number} << 3) | 2;
    p = WriteVarint(tag, p);
    p = WriteVarint(f->buffer->size(), p);
    if (!f->buffer->empty()) {
      std::memcpy(p, f->buffer->data(), f->buffer->size());
    }
  }
}

absl::StatusOr<bool> Endpoint::TrySend(const OutgoingMessage& m) {
  const uint64_t length = PayloadLength(m);
  if (length > options_.max_payload || length > UINT32_MAX) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", length,
                     " bytes exceeds the limit of ", options_.max_payload));
  }
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.type = static_cast<uint8_t>(m.type);
  h.flags = m.flags;
  h.message_id = m.message_id;
  h.deadline_ns = m.deadline_ns;
  h.interface_slot = m.interface_slot;
  h.method_id = m.method_id;
  h.status_code = m.status_code;
  h.payload_length = static_cast<uint32_t>(length);
  if (!m.handles.empty()) {
    if (m.handles.size() > kMaxHandlesHardLimit || m.message_id == 0 ||
        (m.type != MessageType::kRequest && m.type != MessageType::kOneway &&
         m.type != MessageType::kReply)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a message of type ", static_cast<int>(m.type), " with ",
          m.handles.size(), " descriptors cannot be sent"));
    }
    h.handle_count = static_cast<uint32_t>(m.handles.size());
  }
  const auto as_bytes = [](const void* p, size_t n) {
    return absl::Span<const std::byte>(static_cast<const std::byte*>(p), n);
  };
  if (kFrameHeaderSize + length <= max_inline_record_) {
    h.payload_mode = static_cast<uint8_t>(PayloadMode::kInline);
    h.record_size = kFrameHeaderSize + static_cast<uint32_t>(length);
    if (!m.handles.empty()) {
      // The packet goes only once the record surely fits (never twice).
      absl::StatusOr<bool> room =
          outbound_.HasRoom((h.record_size + kSlotSize - 1) / kSlotSize);
      if (!room.ok() || !*room) return room;
      if (absl::Status s = memfds_->SendHandles(m.message_id, m.handles);
          !s.ok()) {
        return s;
      }
    }
    absl::StatusOr<bool> written =
        m.body == nullptr
            ? outbound_.TryWrite(as_bytes(&h, sizeof(h)),
                                 as_bytes(m.payload.data(), m.payload.size()))
            : outbound_.TryWriteWith(as_bytes(&h, sizeof(h)), length,
                                     [&m](uint8_t* dst) { WritePayload(m, dst); });
    if (written.ok() && !*written && !m.handles.empty()) {
      return absl::InternalError("ring: room vanished under a serialised sender");
    }
    return written;
  }
  // Out of line: make sure the one-slot record fits before placing the
  // payload, so that a full ring never strands a placed payload. Senders
  // are serialised, so the room cannot vanish in between.
  h.record_size = kFrameHeaderSize;
  absl::StatusOr<bool> room = outbound_.HasRoom(1);
  if (!room.ok() || !*room) return room;
  absl::StatusOr<std::optional<uint32_t>> off = out_data_.Allocate(length);
  if (!off.ok()) return off.status();
  int kept = -1;  // The kept memfd that carries it, if any.
  if (!off->has_value() && MemfdBudgetReached(length)) {
    return false;  // Like a full ring: the caller queues and retries.
  }
  // From here on the record is written (or the connection is broken), so
  // its descriptors go now, once.
  if (!m.handles.empty()) {
    if (absl::Status s = memfds_->SendHandles(m.message_id, m.handles);
        !s.ok()) {
      return s;
    }
  }
  if (off->has_value()) {
    h.payload_mode = static_cast<uint8_t>(PayloadMode::kDataArea);
    h.payload_ref = **off;
    WritePayload(m, reinterpret_cast<uint8_t*>(out_data_.At(**off)));
  } else {
    h.payload_mode = static_cast<uint8_t>(PayloadMode::kMemfd);
    h.payload_ref = next_out_memfd_;
    absl::StatusOr<int> sent = SendPayloadMemfd(m, length);
    if (!sent.ok()) return sent.status();
    kept = *sent;
    ++next_out_memfd_;
  }
  absl::StatusOr<bool> written = outbound_.TryWrite(as_bytes(&h, sizeof(h)), {});
  if (written.ok() && !*written) {
    return absl::InternalError("ring: room vanished under a serialised sender");
  }
  // Reusable once the peer has consumed this record.
  if (written.ok() && kept >= 0) {
    kept_memfds_[kept].read_after = outbound_.written_index();
  }
  // Tracked only where a budget is set (the server's endpoints).
  if (written.ok() && !off->has_value() &&
      (options_.max_uncollected_memfd_bytes != 0 ||
       options_.shared_uncollected_memfd_bytes != nullptr)) {
    const uint64_t bytes = PayloadMemfdSize(length);
    uncollected_memfds_.emplace_back(outbound_.written_index(), bytes);
    uncollected_memfd_bytes_ += bytes;
    if (options_.shared_uncollected_memfd_bytes != nullptr) {
      options_.shared_uncollected_memfd_bytes->fetch_add(
          bytes, std::memory_order_relaxed);
    }
  }
  return written;
}

absl::StatusOr<int> Endpoint::SendPayloadMemfd(const OutgoingMessage& m,
                                               uint64_t length) {
  if (memfds_ == nullptr) {
    return absl::FailedPreconditionError("no control socket for memfds");
  }
  const uint64_t size = PayloadMemfdSize(length);
  const int64_t now_ns = MonotonicNowNs();
  TrimKeptMemfds(now_ns);
  int index = -1;
  if (!kept_memfds_.empty()) {
    absl::StatusOr<uint64_t> consumed = outbound_.ConsumedIndex();
    if (!consumed.ok()) return consumed.status();
    for (size_t i = 0; i < kept_memfds_.size(); ++i) {
      const KeptMemfd& k = kept_memfds_[i];
      if (k.size == size && k.read_after <= *consumed) {
        index = static_cast<int>(i);
        break;
      }
    }
  }
  UniqueFd fresh;  // A new memfd that is not kept: closed on return.
  if (index >= 0) {
    options_.memfd_pool->reused.fetch_add(1, std::memory_order_relaxed);
  } else {
    absl::StatusOr<UniqueFd> fd = CreateSealedMemfd("lpc-payload", size);
    if (!fd.ok()) return fd.status();
    fresh = std::move(*fd);
    if (options_.memfd_pool != nullptr) {
      options_.memfd_pool->made.fetch_add(1, std::memory_order_relaxed);
      index = KeepMemfd(&fresh, size);
    }
  }
  int fd = fresh.get();
  Mapping* map = nullptr;
  Mapping temporary;  // A message written into a memfd that is not kept.
  if (index >= 0) {
    KeptMemfd& k = kept_memfds_[index];
    k.last_used_ns = now_ns;
    // Not reusable until the record that carries it has been consumed (the
    // caller sets read_after once it is written).
    k.read_after = UINT64_MAX;
    fd = k.fd.get();
    map = &k.map;
  } else if (m.body != nullptr) {
    map = &temporary;
  }
  // Only the first `length` bytes are ever read; the tail of a kept
  // memfd may hold an earlier payload to the same peer.
  absl::Status s;
  if (map != nullptr && map->data() == nullptr && m.body != nullptr) {
    // A message writes itself: into our own mapping of the memfd, kept
    // with it, so that later payloads in it cost no mapping either.
    absl::StatusOr<Mapping> made = Mapping::MapForWriting(fd, size);
    if (made.ok()) {
      *map = std::move(*made);
    } else {
      s = made.status();
    }
  }
  if (s.ok()) {
    if (map != nullptr && map->data() != nullptr) {
      WritePayload(m, reinterpret_cast<uint8_t*>(map->data()));
    } else {
      s = WriteWhole(fd, m.payload);  // A string payload (body is null).
    }
  }
  if (s.ok()) s = memfds_->SendPayloadFd(next_out_memfd_, length, fd);
  if (!s.ok()) {
    if (index >= 0) DropKeptMemfd(index);
    return s;
  }
  return index;
}

int Endpoint::KeepMemfd(UniqueFd* fd, uint64_t size) {
  PayloadMemfdPool& pool = *options_.memfd_pool;
  if (size > pool.budget) return -1;
  const auto drop_oldest = [this] {
    size_t oldest = 0;
    for (size_t i = 1; i < kept_memfds_.size(); ++i) {
      if (kept_memfds_[i].last_used_ns < kept_memfds_[oldest].last_used_ns) {
        oldest = i;
      }
    }
    DropKeptMemfd(oldest);
  };
  if (kept_memfds_.size() >= PayloadMemfdPool::kMaxKeptPerEndpoint) {
    drop_oldest();
  }
  for (;;) {
    uint64_t kept = pool.kept_bytes.load(std::memory_order_relaxed);
    if (kept + size <= pool.budget) {
      if (pool.kept_bytes.compare_exchange_weak(kept, kept + size,
                                                std::memory_order_relaxed)) {
        break;
      }
      continue;
    }
    // Over budget: make room from our own least recently used, if any.
    if (kept_memfds_.empty()) return -1;
    drop_oldest();
  }
  // The descriptor count: others' may hold them all; then ours give way.
  while (pool.kept_count.fetch_add(1, std::memory_order_relaxed) >=
         PayloadMemfdPool::kMaxKeptPerPool) {
    pool.kept_count.fetch_sub(1, std::memory_order_relaxed);
    if (kept_memfds_.empty()) {
      pool.kept_bytes.fetch_sub(size, std::memory_order_relaxed);
      return -1;
    }
    drop_oldest();
  }
  KeptMemfd k;
  k.fd = std::move(*fd);
  k.size = size;
  k.read_after = UINT64_MAX;
  kept_memfds_.push_back(std::move(k));
  return static_cast<int>(kept_memfds_.size() - 1);
}

void Endpoint::DropKeptMemfd(size_t i) {
  options_.memfd_pool->kept_bytes.fetch_sub(kept_memfds_[i].size,
                                            std::memory_order_relaxed);
  options_.memfd_pool->kept_count.fetch_sub(1, std::memory_order_relaxed);
  if (i + 1 != kept_memfds_.size()) std::swap(kept_memfds_[i], kept_memfds_.back());
  kept_memfds_.pop_back();
}

void Endpoint::TrimKeptMemfds(int64_t now_ns) {
  const int64_t idle_ns = absl::ToInt64Nanoseconds(options_.memfd_keep_idle);
  for (size_t i = 0; i < kept_memfds_.size();) {
    if (now_ns - kept_memfds_[i].last_used_ns > idle_ns) {
      DropKeptMemfd(i);
    } else {
      ++i;
    }
  }
}

Endpoint::~Endpoint() {
  while (!kept_memfds_.empty()) DropKeptMemfd(kept_memfds_.size() - 1);
  if (options_.shared_uncollected_memfd_bytes != nullptr) {
    options_.shared_uncollected_memfd_bytes->fetch_sub(
        uncollected_memfd_bytes_, std::memory_order_relaxed);
  }
}

uint64_t Endpoint::UncollectedMemfdBytes() {
  if (uncollected_memfds_.empty()) return 0;
  // A peer that scribbled over its consumer index gets nothing forgotten
  // (its own replies wait); the ring reports the damage elsewhere.
  absl::StatusOr<uint64_t> consumed = outbound_.ConsumedIndex();
  uint64_t freed = 0;
  while (consumed.ok() && !uncollected_memfds_.empty() &&
         uncollected_memfds_.front().first <= *consumed) {
    freed += uncollected_memfds_.front().second;
    uncollected_memfds_.pop_front();
  }
  uncollected_memfd_bytes_ -= freed;
  if (freed != 0 && options_.shared_uncollected_memfd_bytes != nullptr) {
    options_.shared_uncollected_memfd_bytes->fetch_sub(
        freed, std::memory_order_relaxed);
  }
  return uncollected_memfd_bytes_;
}

bool Endpoint::MemfdBudgetReached(uint64_t payload_size) {
  const uint64_t per = options_.max_uncollected_memfd_bytes;
  const uint64_t shared_max = options_.max_shared_uncollected_memfd_bytes;
  if (per == 0 && (shared_max == 0 ||
                   options_.shared_uncollected_memfd_bytes == nullptr)) {
    return false;
  }
  // One memfd may always be out, so that any payload can go.
  if (UncollectedMemfdBytes() == 0) return false;
  const uint64_t bytes = PayloadMemfdSize(payload_size);
  if (per != 0 && uncollected_memfd_bytes_ + bytes > per) return true;
  return shared_max != 0 && options_.shared_uncollected_memfd_bytes != nullptr &&
         options_.shared_uncollected_memfd_bytes->load(
             std::memory_order_relaxed) + bytes > shared_max;
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
  IncomingMessage msg;
  msg.header = *h;
  const uint64_t accept =
      options_.accept_payload == 0 ? options_.max_payload : options_.accept_payload;
  msg.oversized = h->payload_length > accept;
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
  return msg;
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
