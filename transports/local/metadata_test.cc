#include "transports/local/metadata.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(MetadataTest, RoundTripKeepsEntriesAndFollowingPayload) {
  Metadata md = {{"x-request-id", "42"}, {"x-user", "ada"},
                 {"trace-bin", std::string("\0\xff\x01", 3)},
                 {"x-user", "bob"}, {"lpc-internal", "never sent"}};
  std::string wire;
  ASSERT_OK(EncodeMetadata(md, &wire));
  wire += "payload";
  Metadata got;
  std::string_view rest;
  ASSERT_OK(DecodeMetadata(wire, &got, &rest));
  EXPECT_EQ(rest, "payload");
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(got.count("x-user"), 2u);
  EXPECT_EQ(got.find("trace-bin")->second, std::string("\0\xff\x01", 3));
  EXPECT_EQ(got.count("lpc-internal"), 0u);
}

TEST(MetadataTest, SenderRejectsBadKeysAndValues) {
  std::string wire;
  EXPECT_THAT(EncodeMetadata({{"Upper", "x"}}, &wire),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Upper")));
  EXPECT_THAT(EncodeMetadata({{"x-text", "line\nbreak"}}, &wire),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Metadata many;
  for (int i = 0; i < 100; ++i) many.emplace("k" + std::to_string(i), "v");
  EXPECT_THAT(EncodeMetadata(many, &wire),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
}

TEST(MetadataTest, ReceiverRejectsEveryMalformedBlock) {
  Metadata md;
  std::string_view rest;
  auto decode = [&](const std::string& wire) {
    md.clear();
    return DecodeMetadata(wire, &md, &rest);
  };
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<char*>(&v), 4); };
  EXPECT_THAT(decode(""), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(decode(u32(3)), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(decode(u32(0xffffffff) + u32(0)), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(decode(u32(100) + u32(0)), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(decode(u32(8) + u32(1000)), StatusIs(absl::StatusCode::kDataLoss));
  // A key length that runs past the block.
  EXPECT_THAT(decode(u32(8) + u32(1) + u32(0x7fffffff)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("key length")));
  // A value length near 2^32.
  EXPECT_THAT(decode(u32(13) + u32(1) + u32(1) + "k" + u32(0xfffffffe)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("value length")));
  // A reserved key forged by the peer.
  EXPECT_THAT(decode(u32(20) + u32(1) + u32(7) + "lpc-uid" + u32(1) + "0"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("reserved")));
  // Trailing bytes inside the block.
  EXPECT_THAT(decode(u32(5) + u32(0) + "z"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("after")));
  EXPECT_TRUE(md.empty() || md.size() <= 1);
}

}  // namespace
}  // namespace lpc::local
