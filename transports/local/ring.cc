// SPSC record ring; see ring.h.
#include "transports/local/ring.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

// Copies `n` bytes starting at byte `pos` of a ring of `ring_bytes` bytes,
// wrapping at the end.
void CopyOut(const std::byte* ring, uint64_t ring_bytes, uint64_t pos,
             std::byte* dst, uint64_t n) {
  const uint64_t first = std::min(n, ring_bytes - pos);
  std::memcpy(dst, ring + pos, first);
  if (first < n) std::memcpy(dst + first, ring, n - first);
}

void CopyIn(std::byte* ring, uint64_t ring_bytes, uint64_t pos,
            const std::byte* src, uint64_t n) {
  if (n == 0) return;
  const uint64_t first = std::min(n, ring_bytes - pos);
  std::memcpy(ring + pos, src, first);
  if (first < n) std::memcpy(ring, src + first, n - first);
}

}  // namespace

RingProducer::RingProducer(RingControl* control, std::byte* slots,
                           uint32_t slot_count, uint32_t max_record_slots)
    : control_(control),
      slots_(slots),
      capacity_(slot_count),
      max_record_slots_(max_record_slots) {
  tail_ = published_ = SharedLoad(control_->producer_index);
  cached_head_ = SharedLoad(control_->consumer_index);
}

absl::StatusOr<bool> RingProducer::TryWrite(absl::Span<const std::byte> head,
                                            absl::Span<const std::byte> body) {
  const uint64_t bytes = head.size() + body.size();
  const uint64_t need = (bytes + kSlotSize - 1) / kSlotSize;
  if (head.size() < 4 || need > max_record_slots_) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring: record of ", bytes, " bytes exceeds the limit of ",
                     max_record_bytes()));
  }
  absl::StatusOr<bool> room = HasRoom(need);
  if (!room.ok() || !*room) return room;
  const uint64_t ring_bytes = capacity_ * kSlotSize;
  const uint64_t pos = (tail_ & (capacity_ - 1)) * kSlotSize;
  CopyIn(slots_, ring_bytes, pos, head.data(), head.size());
  CopyIn(slots_, ring_bytes, (pos + head.size()) % ring_bytes, body.data(),
         body.size());
  tail_ += need;
  return true;
}

absl::StatusOr<bool> RingProducer::TryWriteWith(
    absl::Span<const std::byte> head, uint64_t body_size,
    absl::FunctionRef<void(uint8_t*)> write_body) {
  const uint64_t bytes = head.size() + body_size;
  const uint64_t need = (bytes + kSlotSize - 1) / kSlotSize;
  if (head.size() < 4 || need > max_record_slots_) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring: record of ", bytes, " bytes exceeds the limit of ",
                     max_record_bytes()));
  }
  absl::StatusOr<bool> room = HasRoom(need);
  if (!room.ok() || !*room) return room;
  const uint64_t ring_bytes = capacity_ * kSlotSize;
  const uint64_t pos = (tail_ & (capacity_ - 1)) * kSlotSize;
  CopyIn(slots_, ring_bytes, pos, head.data(), head.size());
  const uint64_t body_pos = (pos + head.size()) % ring_bytes;
  if (body_size > 0 && body_pos + body_size <= ring_bytes) {
    write_body(reinterpret_cast<uint8_t*>(slots_ + body_pos));
  } else if (body_size > 0) {
    thread_local std::vector<uint8_t> scratch;
    if (scratch.size() < body_size) scratch.resize(body_size);
    write_body(scratch.data());
    CopyIn(slots_, ring_bytes, body_pos,
           reinterpret_cast<const std::byte*>(scratch.data()), body_size);
  }
  tail_ += need;
  return true;
}

absl::StatusOr<bool> RingProducer::HasRoom(uint64_t need) {
  if (tail_ - cached_head_ + need <= capacity_) return true;
  absl::StatusOr<uint64_t> head = ConsumedIndex();
  if (!head.ok()) return head.status();
  return tail_ - cached_head_ + need <= capacity_;
}

absl::StatusOr<uint64_t> RingProducer::ConsumedIndex() {
  const uint64_t head_index = SharedLoad(control_->consumer_index);  // Once.
  if (head_index > tail_ || tail_ - head_index > capacity_) {
    return absl::DataLossError(
        absl::StrCat("ring: consumer index ", head_index,
                     " inconsistent with producer index ", tail_));
  }
  cached_head_ = head_index;
  return head_index;
}

bool RingProducer::Publish() {
  if (tail_ != published_) {
    SharedStore(control_->producer_index, tail_, std::memory_order_seq_cst);
    published_ = tail_;
  }
  // seq_cst store above, seq_cst read-modify-write here: pairs with the
  // consumer's seq_cst store of consumer_sleeping and re-read of the index.
  if (SharedLoad(control_->consumer_sleeping, std::memory_order_seq_cst) == 0) {
    return false;
  }
  return SharedExchange<uint32_t>(control_->consumer_sleeping, 0) != 0;
}

void RingProducer::SetWaiting(bool waiting) {
  SharedStore<uint32_t>(control_->producer_waiting, waiting ? 1 : 0,
                        std::memory_order_seq_cst);
}

RingConsumer::RingConsumer(RingControl* control, const std::byte* slots,
                           uint32_t slot_count, uint32_t max_record_slots)
    : control_(control),
      slots_(slots),
      capacity_(slot_count),
      max_record_slots_(max_record_slots),
      buffer_(size_t{max_record_slots} * kSlotSize) {
  head_ = limit_ = released_ = SharedLoad(control_->consumer_index);
  visible_head_ = head_;
}

absl::StatusOr<uint64_t> RingConsumer::Poll() {
  const uint64_t tail = SharedLoad(control_->producer_index);  // Read once.
  if (tail < head_) {
    return absl::DataLossError(absl::StrCat(
        "ring: producer index ", tail, " moved behind consumer index ", head_));
  }
  if (tail - head_ > capacity_) {
    return absl::DataLossError(absl::StrCat("ring: ring index past capacity (",
                                            tail - head_, " > ", capacity_,
                                            ")"));
  }
  limit_ = tail;
  return limit_ - head_;
}

absl::StatusOr<absl::Span<const std::byte>> RingConsumer::Next(
    uint32_t min_bytes) {
  if (head_ == limit_) return absl::Span<const std::byte>();
  const uint64_t ring_bytes = capacity_ * kSlotSize;
  const uint64_t pos = (head_ & (capacity_ - 1)) * kSlotSize;
  std::memcpy(buffer_.data(), slots_ + pos, kSlotSize);
  uint32_t length;
  std::memcpy(&length, buffer_.data(), sizeof(length));  // From the copy.
  if (length < min_bytes || length < 4) {
    return absl::DataLossError(absl::StrCat("ring: record length ", length,
                                            " below minimum ", min_bytes));
  }
  const uint64_t slots = (uint64_t{length} + kSlotSize - 1) / kSlotSize;
  if (slots > max_record_slots_) {
    return absl::DataLossError(absl::StrCat("ring: record length ", length,
                                            " exceeds the record limit"));
  }
  if (slots > limit_ - head_) {
    return absl::DataLossError(absl::StrCat(
        "ring: record length ", length, " exceeds the published range"));
  }
  if (length > kSlotSize) {
    CopyOut(slots_, ring_bytes, (pos + kSlotSize) % ring_bytes,
            buffer_.data() + kSlotSize, length - kSlotSize);
  }
  last_start_ = head_;
  head_ += slots;
  // Release is enough: a reader that sees an older value only concludes
  // "maybe data" (HasPublishedHint) or "do not sleep" (PrepareToSleep).
  SharedStore(visible_head_, head_, std::memory_order_release);
  return absl::Span<const std::byte>(buffer_.data(), length);
}

void RingConsumer::Unread() {
  head_ = last_start_;
  SharedStore(visible_head_, head_, std::memory_order_release);
}

bool RingConsumer::Release() {
  if (head_ == released_) return false;
  SharedStore(control_->consumer_index, head_, std::memory_order_seq_cst);
  released_ = head_;
  if (SharedLoad(control_->producer_waiting, std::memory_order_seq_cst) == 0) {
    return false;
  }
  // A waiting producer is woken once at least half the ring is free, not
  // for every batch consumed: it then writes a long run of records per
  // wake-up instead of one batch's worth, and a client that keeps its ring
  // full (a flood held back by its CPU share) wakes a few times per pause
  // instead of thousands of times a second. A record spans at most half the
  // ring, so the producer then finds room. The occupancy uses the producer
  // index of the last Poll(), which can only lag: with a stale index the
  // wake comes earlier, never later. The flag stays set until then, so
  // every later Release checks again, and one that drains the ring always
  // wakes.
  if (limit_ - head_ > capacity_ / 2) return false;
  return SharedExchange<uint32_t>(control_->producer_waiting, 0) != 0;
}

bool RingConsumer::ReleaseBatched() {
  // Also at once while the producer has published more than half the ring
  // beyond the released index: it is then close to finding the ring full
  // (pipelining), and a release now spares it a wait and us a wake-up.
  if (head_ - released_ < capacity_ / 4 && limit_ - released_ <= capacity_ / 2 &&
      SharedLoad(control_->producer_waiting, std::memory_order_seq_cst) == 0) {
    return false;
  }
  return Release();
}

bool RingConsumer::HasPublishedHint() const {
  const uint64_t head = SharedLoad(visible_head_, std::memory_order_seq_cst);
  return SharedLoad(control_->producer_index, std::memory_order_acquire) != head;
}

bool RingConsumer::PrepareToSleep() {
  SharedStore<uint32_t>(control_->consumer_sleeping, 1,
                        std::memory_order_seq_cst);
  const uint64_t head = SharedLoad(visible_head_, std::memory_order_seq_cst);
  if (SharedLoad(control_->producer_index, std::memory_order_seq_cst) != head) {
    ClearSleeping();
    return false;
  }
  return true;
}

void RingConsumer::ClearSleeping() {
  SharedStore<uint32_t>(control_->consumer_sleeping, 0,
                        std::memory_order_relaxed);
}

}  // namespace lpc::local
