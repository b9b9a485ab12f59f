// Single-producer/single-consumer record ring over 64-byte slots in shared
// memory.
//
// A record is a byte string whose first 4 bytes hold its own total length
// (little-endian uint32, at least 4). It occupies ceil(length / 64)
// consecutive slots, wrapping around the end of the ring; the record header
// and a small payload therefore share one cache line. Producer and consumer
// indices are free-running 64-bit slot counts in RingControl.
//
// The consumer never trusts the producer: Poll() reads producer_index ONCE
// and validates it (tail - head <= capacity); Next() copies a record's first
// slot out, validates its length against the published range and the record
// limit, copies the rest out, and only then returns it. The producer
// likewise validates the consumer's index. Any violation is DATA_LOSS naming
// the field; nothing a peer writes reaches an assert.
//
// Wake-ups (Dekker-style): the producer publishes its index, then (seq_cst)
// swaps consumer_sleeping to 0 and rings the doorbell only if it was 1. The
// consumer sets consumer_sleeping = 1, re-checks the ring (seq_cst) and only
// then sleeps. The doorbell itself (futex or eventfd) is the caller's.
//
// Thread safety: one thread at a time per producer object and one per
// consumer object (callers serialise with their own locks).
#ifndef LPC_TRANSPORTS_LOCAL_RING_H_
#define LPC_TRANSPORTS_LOCAL_RING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "transports/local/section.h"

namespace lpc::local {

class RingProducer {
 public:
  RingProducer() = default;
  // `slots` points at slot_count * kSlotSize bytes; slot_count is a power of
  // two. A record may span at most max_record_slots slots.
  RingProducer(RingControl* control, std::byte* slots, uint32_t slot_count,
               uint32_t max_record_slots);

  // Largest record, in bytes, TryWrite accepts.
  uint32_t max_record_bytes() const { return max_record_slots_ * kSlotSize; }

  // Appends one record made of `head` followed by `body` (the first 4 bytes
  // of `head` must hold head.size() + body.size()). Not visible to the
  // consumer until Publish(). Returns false if the ring has no room now;
  // DATA_LOSS if the consumer's index is corrupt.
  absl::StatusOr<bool> TryWrite(absl::Span<const std::byte> head,
                                absl::Span<const std::byte> body);
  // The same, with a body of `body_size` bytes that `write_body` writes:
  // straight into the slots when they do not wrap at the ring's end, else
  // into a scratch buffer that is then copied in.
  absl::StatusOr<bool> TryWriteWith(
      absl::Span<const std::byte> head, uint64_t body_size,
      absl::FunctionRef<void(uint8_t*)> write_body);

  // Whether `slots` more slots fit now. DATA_LOSS if the consumer's index
  // is corrupt.
  absl::StatusOr<bool> HasRoom(uint64_t slots);

  // The consumer's index, read now and validated (DATA_LOSS if corrupt):
  // every record that ends at or before it has been consumed.
  absl::StatusOr<uint64_t> ConsumedIndex();
  // Where the next record will start (the end of the last one written).
  uint64_t written_index() const { return tail_; }

  // Makes every written record visible. Returns true if the consumer was
  // asleep and must be woken (the flag has been cleared).
  bool Publish();

  // Records written but not yet published.
  bool HasUnpublished() const { return tail_ != published_; }

  // Marks the producer as waiting for space. After this, the caller re-tries
  // TryWrite once before it sleeps on control->producer_waiting.
  void SetWaiting(bool waiting);

  RingControl* control() const { return control_; }

 private:
  RingControl* control_ = nullptr;
  std::byte* slots_ = nullptr;
  uint64_t capacity_ = 0;
  uint32_t max_record_slots_ = 0;
  uint64_t tail_ = 0;        // Private write position.
  uint64_t published_ = 0;   // Last value stored to producer_index.
  uint64_t cached_head_ = 0;  // Last validated consumer_index.
};

class RingConsumer {
 public:
  RingConsumer() = default;
  RingConsumer(RingControl* control, const std::byte* slots,
               uint32_t slot_count, uint32_t max_record_slots);

  // Reads the producer index once and validates it. Returns the number of
  // published slots not yet consumed.
  absl::StatusOr<uint64_t> Poll();

  // The next record within the range the last Poll() validated, copied to
  // private memory (valid until the next call). Empty span: none left.
  // The record's length is validated (>= min_bytes, within the published
  // range and the record limit); its contents are not.
  absl::StatusOr<absl::Span<const std::byte>> Next(uint32_t min_bytes = 4);
  // Puts the record the last Next() returned back, unconsumed: the next
  // Next() reads it again from shared memory (and validates it afresh).
  // Call at most once per Next().
  void Unread();

  // Publishes the consumed index. Returns true if the producer was waiting
  // for space and at least half the ring is now free (the flag has been
  // cleared; the caller wakes it). A waiting producer stays flagged until
  // then, so a later Release wakes it; one after the ring is drained
  // always does.
  bool Release();
  // Like Release, but only once a quarter of the ring is consumed and
  // unreleased, more than half of it is published beyond the released
  // index, or the producer waits for space: the consumer then writes
  // the cache line the producer reads on every publish (consumer_sleeping
  // shares it) once per batch instead of once per record. Since a record
  // spans at most half the ring, a producer facing an empty ring always
  // finds room after the consumer drained it and called this.
  bool ReleaseBatched();

  // A cheap hint: whether the producer has published beyond what we have
  // consumed. Not validated; callers then Poll(). Unlike the rest of the
  // consumer, this and the sleep protocol below may be called from any
  // thread: they read the consumed position through an atomic copy, which
  // can only lag (making them report "maybe data", never miss data).
  bool HasPublishedHint() const;

  // Sleep protocol: sets consumer_sleeping and re-checks. Returns true if
  // the ring is still empty and the caller may sleep; false if records
  // arrived (the flag is cleared again).
  bool PrepareToSleep();
  void ClearSleeping();
  uint32_t* sleeping_word() { return &control_->consumer_sleeping; }
  uint32_t* producer_waiting_word() { return &control_->producer_waiting; }

  uint64_t head() const { return head_; }

 private:
  RingControl* control_ = nullptr;
  const std::byte* slots_ = nullptr;
  uint64_t capacity_ = 0;
  uint32_t max_record_slots_ = 0;
  uint64_t head_ = 0;     // Private read position.
  uint64_t last_start_ = 0;  // Where the record Next() returned last began.
  uint64_t visible_head_ = 0;  // Copy of head_ for other threads (atomic_ref).
  uint64_t limit_ = 0;    // Validated producer index from the last Poll().
  uint64_t released_ = 0;
  std::vector<std::byte> buffer_;  // Private copy of the current record.
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_RING_H_
