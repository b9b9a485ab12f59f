// Section layout computation and header validation; see section.h.
#include "transports/local/section.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

absl::Status CheckSlots(const char* name, uint32_t slots) {
  if (!IsPowerOfTwo(slots) || slots < kMinRingSlots || slots > kMaxRingSlots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "section geometry: ", name, " = ", slots,
        " must be a power of two in [", kMinRingSlots, ", ", kMaxRingSlots, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckData(const char* name, uint64_t bytes) {
  if (bytes % kPageSize != 0 || bytes > kMaxDataAreaBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("section geometry: ", name, " = ", bytes,
                     " must be a multiple of ", kPageSize, " and at most ",
                     kMaxDataAreaBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SectionLayout> ComputeLayout(const SectionGeometry& g) {
  if (auto s = CheckSlots("request_slots", g.request_slots); !s.ok()) return s;
  if (auto s = CheckSlots("reply_slots", g.reply_slots); !s.ok()) return s;
  if (auto s = CheckData("c2s_data_bytes", g.c2s_data_bytes); !s.ok()) return s;
  if (auto s = CheckData("s2c_data_bytes", g.s2c_data_bytes); !s.ok()) return s;
  const uint32_t min_slots =
      g.request_slots < g.reply_slots ? g.request_slots : g.reply_slots;
  if (g.max_record_slots < 1 || g.max_record_slots > min_slots / 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("section geometry: max_record_slots = ", g.max_record_slots,
                     " must be in [1, ", min_slots / 2, "]"));
  }
  // All terms are bounded above (2^20 slots * 64 B, 2^30 data bytes), so the
  // sums cannot overflow 64 bits; the checks below keep it that way if the
  // limits ever grow.
  SectionLayout l;
  l.geometry = g;
  l.control_offset = sizeof(SectionHeader);
  uint64_t off = l.control_offset + sizeof(SectionControl);
  l.request_ring_offset = off;
  uint64_t ring_bytes;
  if (MulOverflows(g.request_slots, kSlotSize, &ring_bytes) ||
      AddOverflows(off, ring_bytes, &off)) {
    return absl::InvalidArgumentError("section geometry: request ring overflows");
  }
  l.reply_ring_offset = off;
  if (MulOverflows(g.reply_slots, kSlotSize, &ring_bytes) ||
      AddOverflows(off, ring_bytes, &off)) {
    return absl::InvalidArgumentError("section geometry: reply ring overflows");
  }
  off = RoundUp(off, kPageSize);
  l.c2s_data_offset = off;
  if (AddOverflows(off, g.c2s_data_bytes, &off)) {
    return absl::InvalidArgumentError("section geometry: data area overflows");
  }
  l.s2c_data_offset = off;
  if (AddOverflows(off, g.s2c_data_bytes, &off)) {
    return absl::InvalidArgumentError("section geometry: data area overflows");
  }
  l.total_size = RoundUp(off, kPageSize);
  return l;
}

void InitializeSection(std::byte* base, const SectionLayout& l) {
  SectionHeader h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kSectionMagic;
  h.layout_version = kLayoutVersion;
  h.header_size = sizeof(SectionHeader);
  h.slot_size = kSlotSize;
  h.request_slots = l.geometry.request_slots;
  h.reply_slots = l.geometry.reply_slots;
  h.max_record_slots = l.geometry.max_record_slots;
  h.c2s_data_bytes = l.geometry.c2s_data_bytes;
  h.s2c_data_bytes = l.geometry.s2c_data_bytes;
  h.control_offset = l.control_offset;
  h.request_ring_offset = l.request_ring_offset;
  h.reply_ring_offset = l.reply_ring_offset;
  h.c2s_data_offset = l.c2s_data_offset;
  h.s2c_data_offset = l.s2c_data_offset;
  h.total_size = l.total_size;
  std::memcpy(base, &h, sizeof(h));
}

absl::Status ValidateSectionHeader(const std::byte* base, uint64_t mapped_size,
                                   const SectionLayout& l) {
  if (mapped_size != l.total_size || mapped_size < sizeof(SectionHeader)) {
    return absl::DataLossError(absl::StrCat("section: mapped size ", mapped_size,
                                            " != expected ", l.total_size));
  }
  SectionHeader h;  // Read once; validate the private copy.
  std::memcpy(&h, base, sizeof(h));
  auto check = [](const char* field, uint64_t got,
                  uint64_t want) -> absl::Status {
    if (got == want) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("section header: ", field, " is ",
                                            got, ", expected ", want));
  };
  struct {
    const char* name;
    uint64_t got, want;
  } const fields[] = {
      {"magic", h.magic, kSectionMagic},
      {"layout_version", h.layout_version, kLayoutVersion},
      {"header_size", h.header_size, sizeof(SectionHeader)},
      {"slot_size", h.slot_size, kSlotSize},
      {"request_slots", h.request_slots, l.geometry.request_slots},
      {"reply_slots", h.reply_slots, l.geometry.reply_slots},
      {"max_record_slots", h.max_record_slots, l.geometry.max_record_slots},
      {"c2s_data_bytes", h.c2s_data_bytes, l.geometry.c2s_data_bytes},
      {"s2c_data_bytes", h.s2c_data_bytes, l.geometry.s2c_data_bytes},
      {"control_offset", h.control_offset, l.control_offset},
      {"request_ring_offset", h.request_ring_offset, l.request_ring_offset},
      {"reply_ring_offset", h.reply_ring_offset, l.reply_ring_offset},
      {"c2s_data_offset", h.c2s_data_offset, l.c2s_data_offset},
      {"s2c_data_offset", h.s2c_data_offset, l.s2c_data_offset},
      {"total_size", h.total_size, l.total_size},
  };
  for (const auto& f : fields) {
    if (auto s = check(f.name, f.got, f.want); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace lpc::local
