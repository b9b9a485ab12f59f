// The layout of the shared section of one client connection.
//
//   offset 0                SectionHeader   (immutable description, 128 B)
//   offset 128              SectionControl  (control words, cache-line padded)
//   request_ring_offset     request ring: request_slots x 64 B (client->server)
//   reply_ring_offset       reply ring:   reply_slots x 64 B   (server->client)
//   c2s_data_offset         client->server data area (byte ring), page aligned
//   s2c_data_offset         server->client data area (byte ring), page aligned
//   total_size              rounded up to the page size
//
// The section holds offsets only, never pointers. The server creates it from
// a SectionGeometry; the client receives the geometry in the handshake,
// recomputes the layout itself with ComputeLayout, and accepts the section
// only if the memfd's fstat size and every header field match what it
// computed (ValidateSectionHeader). Every shared struct is trivially
// copyable with static_asserts on its size and alignment; its control words
// are accessed only through shared_word.h.
//
// Thread safety: free functions are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_SECTION_H_
#define LPC_TRANSPORTS_LOCAL_SECTION_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lpc::local {

inline constexpr uint64_t kSectionMagic = 0x315443455343504Cull;  // "LPCSECT1"
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kSlotSize = 64;
inline constexpr uint64_t kPageSize = 4096;

// Limits a receiver applies to a geometry proposed by the peer.
inline constexpr uint32_t kMinRingSlots = 8;
inline constexpr uint32_t kMaxRingSlots = uint32_t{1} << 20;
inline constexpr uint64_t kMaxDataAreaBytes = uint64_t{1} << 30;

// The largest payload (serialized message plus metadata) the default
// geometry carries through the data area rather than in a memfd of its
// own: 1 MiB of user data plus generous room for protobuf framing and call
// metadata.
inline constexpr uint64_t kDefaultDataAreaPayload =
    (uint64_t{1} << 20) + 64 * 1024;
// Default size of each data-area half: the smallest power of two above
// kDefaultDataAreaPayload.
inline constexpr uint64_t kDefaultDataAreaBytes = uint64_t{2} << 20;
static_assert(kDefaultDataAreaBytes >= kDefaultDataAreaPayload);

// What the two sides negotiate: the sizes of every region.
struct SectionGeometry {
  // Slots of each ring; a power of two in [kMinRingSlots, kMaxRingSlots].
  uint32_t request_slots = 256;
  uint32_t reply_slots = 256;
  // Bytes of each data-area half; a multiple of kPageSize, at most
  // kMaxDataAreaBytes (0 disables the data area: larger payloads use memfds).
  // A payload that does not fit in the free part of its half travels in a
  // sealed memfd of its own instead (a new memfd, mapping and page faults
  // on both sides per call), so the default holds a 1 MiB payload plus its
  // framing (kDefaultDataAreaPayload). The memfd backing the section is
  // touched lazily: an idle connection costs no data-area pages, and one
  // whose payloads are larger than half the area always wraps to offset 0
  // and reuses the same pages.
  // Default: 2 MiB each.
  uint64_t c2s_data_bytes = kDefaultDataAreaBytes;
  uint64_t s2c_data_bytes = kDefaultDataAreaBytes;
  // Most slots one ring record may span (inline payload limit); in
  // [1, min(request_slots, reply_slots) / 2].
  uint32_t max_record_slots = 64;
};

// Byte offsets of every region, derived only from a SectionGeometry.
struct SectionLayout {
  SectionGeometry geometry;
  uint64_t control_offset = 0;
  uint64_t request_ring_offset = 0;
  uint64_t reply_ring_offset = 0;
  uint64_t c2s_data_offset = 0;
  uint64_t s2c_data_offset = 0;
  uint64_t total_size = 0;
};

// Validates `g` against the limits above and computes the layout, with
// overflow-checked arithmetic. INVALID_ARGUMENT names the bad field.
absl::StatusOr<SectionLayout> ComputeLayout(const SectionGeometry& g);

// --- Shared structs -------------------------------------------------------

// Written once by the server before the section is handed out; the client
// reads it once (copies it) and compares it with its own layout.
struct SectionHeader {
  uint64_t magic;               // kSectionMagic
  uint32_t layout_version;      // kLayoutVersion
  uint32_t header_size;         // sizeof(SectionHeader)
  uint32_t slot_size;           // kSlotSize
  uint32_t request_slots;
  uint32_t reply_slots;
  uint32_t max_record_slots;
  uint64_t c2s_data_bytes;
  uint64_t s2c_data_bytes;
  uint64_t control_offset;
  uint64_t request_ring_offset;
  uint64_t reply_ring_offset;
  uint64_t c2s_data_offset;
  uint64_t s2c_data_offset;
  uint64_t total_size;
  uint64_t reserved[4];         // zero
};
static_assert(sizeof(SectionHeader) == 128);
static_assert(alignof(SectionHeader) == 8);
static_assert(std::is_trivially_copyable_v<SectionHeader>);
static_assert(std::is_standard_layout_v<SectionHeader>);

// The control words of one ring. The producer writes producer_index and
// producer_waiting; the consumer writes consumer_index and
// consumer_sleeping (the producer may clear consumer_sleeping when it rings
// the doorbell). Each writer's words sit on their own cache line.
struct alignas(64) RingControl {
  uint64_t producer_index;     // free-running count of slots published
  uint32_t producer_waiting;   // 1 while the producer waits for free slots
  uint32_t pad0[13];
  uint64_t consumer_index;     // free-running count of slots consumed
  uint32_t consumer_sleeping;  // 1 while the consumer sleeps (futex word)
  uint32_t pad1[13];
};
static_assert(sizeof(RingControl) == 128);
static_assert(alignof(RingControl) == 64);
static_assert(std::is_trivially_copyable_v<RingControl>);
static_assert(offsetof(RingControl, consumer_index) == 64);

// The consumer's progress through one data-area half.
struct alignas(64) DataAreaControl {
  uint64_t released;  // free-running count of bytes the consumer released
  uint64_t pad[7];
};
static_assert(sizeof(DataAreaControl) == 64);
static_assert(std::is_trivially_copyable_v<DataAreaControl>);

// Hints for spinning: each side stores 1 + the CPU it runs on while it is
// actively working on this connection, and 0 before it blocks. A waiter
// spins only while the peer is running on another CPU. `last_cpu` keeps
// the last nonzero `running` value once it is cleared: the CPU a sleeping
// side will most likely be woken on. Both are hints from the peer: any
// value only changes whether the reader spins, or moves to another CPU
// (rate-limited), never what it reads or accepts.
struct alignas(64) RunningWord {
  uint32_t running;
  uint32_t last_cpu;
  uint32_t pad[14];
};
static_assert(sizeof(RunningWord) == 64);
static_assert(std::is_trivially_copyable_v<RunningWord>);

struct SectionControl {
  RingControl request;      // client -> server
  RingControl reply;        // server -> client
  DataAreaControl c2s;      // consumer: server
  DataAreaControl s2c;      // consumer: client
  RunningWord client;
  RunningWord server;
};
static_assert(sizeof(SectionControl) == 512);
static_assert(alignof(SectionControl) == 64);
static_assert(std::is_trivially_copyable_v<SectionControl>);

// Writes the header into a zero-filled section of layout.total_size bytes.
void InitializeSection(std::byte* base, const SectionLayout& layout);

// Copies the header out of a mapped section once and checks every field
// against `expected`. DATA_LOSS names the first mismatching field.
absl::Status ValidateSectionHeader(const std::byte* base, uint64_t mapped_size,
                                   const SectionLayout& expected);

inline SectionControl* ControlOf(std::byte* base, const SectionLayout& l) {
  return reinterpret_cast<SectionControl*>(base + l.control_offset);
}

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_SECTION_H_
