// One half of a connection's data area, used as a byte ring ("mode 2").
//
// The producer allocates each payload contiguously at its cursor, rounded
// up to 64 bytes; a payload that would straddle the end starts again at
// offset 0 and the skipped tail counts as used. Records refer to a payload
// by (offset, length). The consumer copies payloads out in record order and
// mirrors the producer's cursor arithmetic privately, so it accepts exactly
// one offset for each record: any other offset, or one whose end passes the
// area, is DATA_LOSS. After copying, the consumer advances the shared
// `released` counter, which frees space in FIFO order.
//
// Thread safety: one thread at a time per object.
#ifndef LPC_TRANSPORTS_LOCAL_DATA_AREA_H_
#define LPC_TRANSPORTS_LOCAL_DATA_AREA_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "transports/local/section.h"

namespace lpc::local {

inline constexpr uint64_t kDataAlignment = 64;

class DataAreaWriter {
 public:
  DataAreaWriter() = default;
  // `capacity` is a multiple of kDataAlignment (0: no data area).
  DataAreaWriter(DataAreaControl* control, std::byte* base, uint64_t capacity);

  uint64_t capacity() const { return capacity_; }

  // Reserves `length` contiguous bytes. Returns the offset to write at, or
  // nullopt if the space is not free now (or never fits). DATA_LOSS if the
  // consumer's `released` counter is corrupt.
  absl::StatusOr<std::optional<uint32_t>> Allocate(uint64_t length);

  std::byte* At(uint32_t offset) const { return base_ + offset; }

 private:
  DataAreaControl* control_ = nullptr;
  std::byte* base_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t cursor_ = 0;  // Free-running bytes allocated.
};

class DataAreaReader {
 public:
  DataAreaReader() = default;
  DataAreaReader(DataAreaControl* control, const std::byte* base,
                 uint64_t capacity);

  // Validates that (offset, length) is the next payload in order and lies
  // inside the area, then copies it to `*out` (nullptr: skips it).
  absl::Status Read(uint64_t offset, uint64_t length, std::string* out);

  uint64_t capacity() const { return capacity_; }

  // Publishes the consumed position to the producer.
  void Release();

 private:
  DataAreaControl* control_ = nullptr;
  const std::byte* base_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t cursor_ = 0;
  uint64_t released_ = 0;
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_DATA_AREA_H_
