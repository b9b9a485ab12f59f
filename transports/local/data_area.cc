// Data-area byte ring; see data_area.h.
#include "transports/local/data_area.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

uint64_t AlignUp(uint64_t v) {
  return (v + kDataAlignment - 1) & ~(kDataAlignment - 1);
}

}  // namespace

DataAreaWriter::DataAreaWriter(DataAreaControl* control, std::byte* base,
                               uint64_t capacity)
    : control_(control), base_(base), capacity_(capacity) {
  if (control_ != nullptr) cursor_ = SharedLoad(control_->released);
}

absl::StatusOr<std::optional<uint32_t>> DataAreaWriter::Allocate(
    uint64_t length) {
  if (capacity_ == 0 || length == 0 || length > capacity_) return std::nullopt;
  const uint64_t size = AlignUp(length);
  const uint64_t pos = cursor_ % capacity_;
  const uint64_t skip = (pos + size > capacity_) ? capacity_ - pos : 0;
  const uint64_t released = SharedLoad(control_->released);
  if (released > cursor_ || cursor_ - released > capacity_) {
    return absl::DataLossError(absl::StrCat("data area: released counter ",
                                            released, " inconsistent with ",
                                            cursor_));
  }
  const uint64_t free_bytes = capacity_ - (cursor_ - released);
  if (skip + size > free_bytes) return std::nullopt;
  cursor_ += skip;
  const uint64_t offset = cursor_ % capacity_;
  cursor_ += size;
  return static_cast<uint32_t>(offset);
}

DataAreaReader::DataAreaReader(DataAreaControl* control, const std::byte* base,
                               uint64_t capacity)
    : control_(control), base_(base), capacity_(capacity) {
  if (control_ != nullptr) cursor_ = released_ = SharedLoad(control_->released);
}

absl::Status DataAreaReader::Read(uint64_t offset, uint64_t length,
                                  std::string* out) {
  if (capacity_ == 0) {
    return absl::DataLossError("data area: payload refers to an empty area");
  }
  if (length == 0 || length > capacity_) {
    return absl::DataLossError(
        absl::StrCat("data area: payload length ", length, " out of range"));
  }
  const uint64_t size = AlignUp(length);
  uint64_t pos = cursor_ % capacity_;
  uint64_t advance = 0;
  if (pos + size > capacity_) {  // The producer must have wrapped to 0.
    advance = capacity_ - pos;
    pos = 0;
  }
  uint64_t end;
  if (offset != pos || AddOverflows(offset, length, &end) || end > capacity_) {
    return absl::DataLossError(absl::StrCat("data area: payload offset ",
                                            offset, " out of order (expected ",
                                            pos, ")"));
  }
  if (out != nullptr) {
    // One pass over the shared bytes (no zero-fill of `out` first).
    out->assign(reinterpret_cast<const char*>(base_ + offset), length);
  }
  cursor_ += advance + size;
  return absl::OkStatus();
}

void DataAreaReader::Release() {
  if (cursor_ == released_) return;
  SharedStore(control_->released, cursor_, std::memory_order_release);
  released_ = cursor_;
}

}  // namespace lpc::local
