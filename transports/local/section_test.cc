// Tests for the section layout and header validation.
#include "transports/local/section.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SectionTest, DefaultGeometryLayout) {
  ASSERT_OK_AND_ASSIGN(SectionLayout l, ComputeLayout(SectionGeometry{}));
  EXPECT_EQ(l.control_offset, 128u);
  EXPECT_EQ(l.request_ring_offset, 128u + 512u);
  EXPECT_EQ(l.reply_ring_offset, l.request_ring_offset + 256 * 64);
  EXPECT_EQ(l.c2s_data_offset % kPageSize, 0u);
  EXPECT_GE(l.c2s_data_offset, l.reply_ring_offset + 256 * 64);
  EXPECT_EQ(l.s2c_data_offset, l.c2s_data_offset + (2u << 20));
  EXPECT_EQ(l.total_size, l.s2c_data_offset + (2u << 20));
}

// A 1 MiB payload plus framing must go through the data area in both
// directions (otherwise each call pays for a memfd of its own), also right
// after a payload of the same size: one that does not fit behind the
// previous payload wraps to offset 0, so a half must hold one whole payload.
TEST(SectionTest, DefaultDataAreaHoldsAOneMiBPayloadWithFraming) {
  const SectionGeometry g;
  ASSERT_OK_AND_ASSIGN(SectionLayout l, ComputeLayout(g));
  const uint64_t payload = (uint64_t{1} << 20) + 5;  // protobuf tag + length
  EXPECT_GE(kDefaultDataAreaPayload, payload + 1024);
  EXPECT_GE(l.s2c_data_offset - l.c2s_data_offset, kDefaultDataAreaPayload);
  EXPECT_GE(l.total_size - l.s2c_data_offset, kDefaultDataAreaPayload);
  EXPECT_EQ(g.c2s_data_bytes, kDefaultDataAreaBytes);
  EXPECT_EQ(g.s2c_data_bytes, kDefaultDataAreaBytes);
  // The section stays far below what a client maps by default (256 MiB).
  EXPECT_LT(l.total_size, uint64_t{8} << 20);
}

TEST(SectionTest, RejectsBadGeometry) {
  SectionGeometry g;
  g.request_slots = 100;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("request_slots")));
  g = {};
  g.reply_slots = 4;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("reply_slots")));
  g = {};
  g.c2s_data_bytes = 1000;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("c2s_data_bytes")));
  g = {};
  g.s2c_data_bytes = uint64_t{1} << 40;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("s2c_data_bytes")));
  g = {};
  g.max_record_slots = 200;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("max_record_slots")));
  g.max_record_slots = 0;
  EXPECT_THAT(ComputeLayout(g), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SectionTest, ZeroDataAreaIsAllowed) {
  SectionGeometry g;
  g.c2s_data_bytes = 0;
  g.s2c_data_bytes = 0;
  ASSERT_OK_AND_ASSIGN(SectionLayout l, ComputeLayout(g));
  EXPECT_EQ(l.c2s_data_offset, l.s2c_data_offset);
}

class HeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SectionGeometry g;
    g.c2s_data_bytes = g.s2c_data_bytes = 4096;
    auto l = ComputeLayout(g);
    ASSERT_TRUE(l.ok());
    layout_ = *l;
    mem_.assign(layout_.total_size / 8, 0);
    InitializeSection(base(), layout_);
  }
  std::byte* base() { return reinterpret_cast<std::byte*>(mem_.data()); }
  SectionLayout layout_;
  std::vector<uint64_t> mem_;
};

TEST_F(HeaderTest, ValidHeaderPasses) {
  EXPECT_OK(ValidateSectionHeader(base(), layout_.total_size, layout_));
}

TEST_F(HeaderTest, EachCorruptFieldIsNamed) {
  const struct {
    size_t offset;
    const char* name;
  } fields[] = {
      {offsetof(SectionHeader, magic), "magic"},
      {offsetof(SectionHeader, layout_version), "layout_version"},
      {offsetof(SectionHeader, request_slots), "request_slots"},
      {offsetof(SectionHeader, c2s_data_bytes), "c2s_data_bytes"},
      {offsetof(SectionHeader, reply_ring_offset), "reply_ring_offset"},
      {offsetof(SectionHeader, s2c_data_offset), "s2c_data_offset"},
      {offsetof(SectionHeader, total_size), "total_size"},
  };
  for (const auto& f : fields) {
    InitializeSection(base(), layout_);
    base()[f.offset] ^= std::byte{0x40};
    EXPECT_THAT(ValidateSectionHeader(base(), layout_.total_size, layout_),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(f.name)))
        << f.name;
  }
}

TEST_F(HeaderTest, MappedSizeMismatchIsRejected) {
  EXPECT_THAT(ValidateSectionHeader(base(), layout_.total_size - 4096, layout_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("mapped size")));
}

TEST_F(HeaderTest, GeometryMismatchIsRejected) {
  SectionGeometry g = layout_.geometry;
  g.reply_slots *= 2;
  ASSERT_OK_AND_ASSIGN(SectionLayout other, ComputeLayout(g));
  other.total_size = layout_.total_size;  // Same mapping size, other rings.
  EXPECT_THAT(ValidateSectionHeader(base(), layout_.total_size, other),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("reply_slots")));
}

}  // namespace
}  // namespace lpc::local
