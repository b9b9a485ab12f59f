// Endpoint's sending side: placing a message (inline, data area, payload
// memfd), the payload memfds kept for reuse and their budgets, and a
// shared buffer sealed to travel beside a message; see endpoint.h.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/buffer.h"
#include "transports/local/doorbell.h"
#include "transports/local/endpoint.h"
#include "transports/local/memfd.h"

namespace lpc::local {

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

absl::StatusOr<::lpc::internal::SealedBuffer> SealForSending(Buffer* b) {
  absl::StatusOr<::lpc::internal::SealedBuffer> sealed =
      ::lpc::internal::BufferAccess::Seal(std::move(*b));
  if (!sealed.ok()) return sealed.status();
  if (!CheckAllocated(sealed->memfd.get()).ok()) {
    struct stat st;
    int r = ::fstat(sealed->memfd.get(), &st);
    while (r == 0) {
      r = ::fallocate(sealed->memfd.get(), 0, 0, st.st_size);
      if (r == 0 || errno != EINTR) break;
    }
    if (r != 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot fill a shared buffer's unwritten pages: ",
          std::strerror(errno)));
    }
  }
  return sealed;
}

void AppendBytesField(uint32_t field_number, std::string_view bytes,
                      std::string* out) {
  uint8_t header[20];
  uint8_t* p = WriteVarint((uint64_t{field_number} << 3) | 2, header);
  p = WriteVarint(bytes.size(), p);
  out->append(reinterpret_cast<const char*>(header), p - header);
  out->append(bytes);
}

uint64_t PayloadLength(const OutgoingMessage& m) {
  if (m.body == nullptr) return m.payload.size();
  if (m.sealed_buffer != nullptr || m.pool_buffer != nullptr) {
    return m.payload.size() + m.body->size();
  }
  return m.payload.size() + SerializedSize(*m.body);
}

void WritePayload(const OutgoingMessage& m, uint8_t* dst) {
  if (!m.payload.empty()) std::memcpy(dst, m.payload.data(), m.payload.size());
  if (m.body == nullptr) return;
  uint8_t* p = dst + m.payload.size();
  m.body->WriteTo(p);
  p += m.body->size();
  // It goes beside the bytes.
  if (m.sealed_buffer != nullptr || m.pool_buffer != nullptr) return;
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
  if (m.sealed_buffer != nullptr || m.pool_buffer != nullptr) {
    if (m.message_id == 0 ||
        (m.type != MessageType::kRequest && m.type != MessageType::kOneway &&
         m.type != MessageType::kReply)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a message of type ", static_cast<int>(m.type),
          " cannot carry a buffer"));
    }
    h.flags |= kFlagBuffer;
  }
  // The packets that go before the record: its handle table, its buffer.
  const auto send_packets = [&]() -> absl::Status {
    if (!m.handles.empty()) {
      if (absl::Status s = memfds_->SendHandles(m.message_id, m.handles);
          !s.ok()) {
        return s;
      }
    }
    if (m.sealed_buffer != nullptr) {
      BufferBody b{};
      b.message_id = m.message_id;
      b.field_number = m.buffer_field;
      b.offset = m.sealed_buffer->offset;
      b.length = m.sealed_buffer->length;
      return memfds_->SendBuffer(b, m.sealed_buffer->memfd.get());
    }
    if (m.pool_buffer != nullptr) {
      return memfds_->SendPoolBuffer(m.message_id, m.buffer_field,
                                     m.pool_buffer);
    }
    return absl::OkStatus();
  };
  const bool packets = !m.handles.empty() || m.sealed_buffer != nullptr ||
                       m.pool_buffer != nullptr;
  const auto as_bytes = [](const void* p, size_t n) {
    return absl::Span<const std::byte>(static_cast<const std::byte*>(p), n);
  };
  if (kFrameHeaderSize + length <= max_inline_record_) {
    h.payload_mode = static_cast<uint8_t>(PayloadMode::kInline);
    h.record_size = kFrameHeaderSize + static_cast<uint32_t>(length);
    if (packets) {
      // The packets go only once the record surely fits (never twice).
      absl::StatusOr<bool> room =
          outbound_.HasRoom((h.record_size + kSlotSize - 1) / kSlotSize);
      if (!room.ok() || !*room) return room;
      if (absl::Status s = send_packets(); !s.ok()) return s;
    }
    absl::StatusOr<bool> written =
        m.body == nullptr
            ? outbound_.TryWrite(as_bytes(&h, sizeof(h)),
                                 as_bytes(m.payload.data(), m.payload.size()))
            : outbound_.TryWriteWith(as_bytes(&h, sizeof(h)), length,
                                     [&m](uint8_t* dst) { WritePayload(m, dst); });
    if (written.ok() && !*written && packets) {
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
  if (packets) {
    if (absl::Status s = send_packets(); !s.ok()) return s;
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

}  // namespace lpc::local
