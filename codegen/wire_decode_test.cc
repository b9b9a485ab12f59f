// The generated decoders (runtime/wire.h, codegen/internal/emit_wire.cc)
// against protobuf's own parser: every request that protobuf accepts the
// generated server accepts with the same values, every one it refuses is
// INVALID_ARGUMENT, and damaged input (truncated, bytes changed) never
// crashes. Also the encodings protobuf accepts that protoc never writes:
// fields out of order or repeated, unknown fields, unpacked repeated
// scalars, map entries with the value first or missing parts.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/test_service.lpc.h"
#include "codegen/testdata/test_service.pb.h"
#include "codegen/wire_compat_testing.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/call_context.h"
#include "testing/status_matchers.h"

namespace lpc::codegen {
namespace {

namespace t = ::lpc::codegen::test;
namespace tt = ::lpc::codegen::testtypes;
using ::lpc::testing::StatusIs;
using ::lpc::wire_testing::DispatchBytes;
using ::lpc::wire_testing::WireBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr uint32_t kConcat = 3;
constexpr uint32_t kNarrow = 5;
constexpr uint32_t kLookup = 6;

// Records the arguments its handlers saw.
class RecordingTester : public t::TesterService {
 public:
  absl::StatusOr<int64_t> Add(CallContext&, int64_t a, int64_t b) override {
    return a + b;
  }
  absl::Status Divide(CallContext&, int64_t, int64_t, int64_t*, int64_t*) override {
    return absl::OkStatus();
  }
  absl::StatusOr<uint32_t> Concat(CallContext&, std::string* text,
                                  const std::string& suffix,
                                  int32_t* count) override {
    concat = {*text, suffix, *count};
    return 0u;
  }
  absl::StatusOr<t::Record> EchoRecord(CallContext&, const t::Record& r,
                                       t::Record*) override {
    return r;
  }
  absl::StatusOr<std::vector<int8_t>> Narrow(CallContext&, int8_t x, uint8_t,
                                             int16_t, uint16_t,
                                             const std::vector<int8_t>& xs,
                                             std::map<int16_t, uint8_t>*) override {
    narrow_x = x;
    narrow_xs = xs;
    return xs;
  }
  absl::StatusOr<std::optional<std::string>> Lookup(
      CallContext&, const std::map<std::string, std::string>& table,
      const std::string& key, const std::optional<int32_t>& hint) override {
    lookup_table = table;
    lookup_key = key;
    lookup_hint = hint;
    return std::nullopt;
  }
  absl::StatusOr<t::Mode> Toggle(CallContext&, t::Mode m,
                                 const std::vector<t::Mode>&,
                                 tt::Level*) override {
    return m;
  }
  absl::Status Fail(CallContext&, int32_t, const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status Nothing(CallContext&) override { return absl::OkStatus(); }
  void Notify(CallContext&, const std::string&, const tt::Tag&) override {}
  absl::StatusOr<bool> Dodge(CallContext&, int32_t, bool*) override {
    return true;
  }
  absl::StatusOr<std::string> Swap(CallContext&, const std::string& d) override {
    return d;
  }

  struct ConcatArgs {
    std::string text, suffix;
    int32_t count = 0;
  } concat;
  int8_t narrow_x = 0;
  std::vector<int8_t> narrow_xs;
  std::map<std::string, std::string> lookup_table;
  std::string lookup_key;
  std::optional<int32_t> lookup_hint;
};

class WireDecodeTest : public ::testing::Test {
 protected:
  // The request decoded from an exact heap copy (DispatchBytes), so that
  // ASan sees a read past its end.
  absl::Status Dispatch(uint32_t method, const std::string& request) {
    return DispatchBytes(impl_, method, request);
  }
  RecordingTester impl_;
};

TEST_F(WireDecodeTest, FieldsInAnyOrderLastOneWinsUnknownSkipped) {
  const std::string req = WireBytes()
                              .Varint(3, 7)               // count
                              .Len(99, "unknown")         // unknown, length
                              .Len(2, "suffix")           // suffix
                              .Fixed64(98, 1)             // unknown, fixed64
                              .Len(1, "first")            // text
                              .Fixed32(97, 1)             // unknown, fixed32
                              .Varint(96, 5)              // unknown, varint
                              .Len(1, "second")           // text again
                              .Fixed32(3, 1)              // count, wrong type: skipped
                              .str();
  ASSERT_OK(Dispatch(kConcat, req));
  EXPECT_EQ(impl_.concat.text, "second");
  EXPECT_EQ(impl_.concat.suffix, "suffix");
  EXPECT_EQ(impl_.concat.count, 7);
}

TEST_F(WireDecodeTest, RepeatedScalarsPackedAndUnpacked) {
  WireBytes packed;
  packed.Raw(1).Raw(2);
  const std::string req = WireBytes()
                              .Varint(5, 9)                 // xs, unpacked
                              .Len(5, packed.str())         // xs, packed
                              .Varint(5, uint64_t(-3))      // xs: -3 as int32
                              .Varint(1, 4)
                              .Varint(1, 5)                 // x: last wins
                              .str();
  ASSERT_OK(Dispatch(kNarrow, req));
  EXPECT_EQ(impl_.narrow_x, 5);
  EXPECT_THAT(impl_.narrow_xs, ElementsAre(9, 1, 2, -3));
}

TEST_F(WireDecodeTest, NarrowValuesOutOfRangeNameTheField) {
  EXPECT_THAT(Dispatch(kNarrow, WireBytes().Varint(5, 300).str()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("xs: value out of range for int8")));
  WireBytes packed;
  packed.Raw(1).Raw(128);
  EXPECT_THAT(Dispatch(kNarrow, WireBytes().Len(5, packed.str()).str()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("xs: value out of range for int8")));
}

TEST_F(WireDecodeTest, MapEntriesInAnyShape) {
  const std::string value_first = WireBytes().Len(2, "v1").Len(1, "k1").str();
  const std::string key_only = WireBytes().Len(1, "k2").str();
  const std::string value_only = WireBytes().Len(2, "v3").str();
  const std::string dup = WireBytes().Len(1, "k1").Len(2, "v4").Varint(9, 1).str();
  const std::string req = WireBytes()
                              .Len(1, value_first)
                              .Len(1, key_only)
                              .Len(1, value_only)
                              .Len(1, dup)  // k1 again: the later entry wins
                              .Varint(3, 0)  // hint: present though zero
                              .str();
  ASSERT_OK(Dispatch(kLookup, req));
  EXPECT_THAT(impl_.lookup_table,
              ElementsAre(Pair("", "v3"), Pair("k1", "v4"), Pair("k2", "")));
  EXPECT_EQ(impl_.lookup_hint, std::optional<int32_t>(0));
}

TEST_F(WireDecodeTest, RefusesWhatProtobufRefuses) {
  // Field number 0, a truncated length, an end-group tag, a string that is
  // not UTF-8, a varint of 11 bytes.
  for (const std::string& bad :
       {WireBytes().Varint(0, 1).str(), WireBytes().Tag(2, 2).Raw(10).str() + "abc",
        WireBytes().Tag(5, 4).str(), WireBytes().Len(2, "\xff\xfe").str(),
        std::string("\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)}) {
    EXPECT_FALSE(t::LookupRequest().ParseFromString(bad));
    EXPECT_THAT(Dispatch(kLookup, bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("does not parse")));
  }
}

// Damages a valid request at every byte (truncated there; each byte
// replaced by a few values) and checks the generated decoder against
// protobuf's parser: the same verdict, and when both accept, the same
// values. Runs under ASan with the rest of //codegen.
TEST_F(WireDecodeTest, DamagedRequestsDecodeAsProtobufParsesThem) {
  t::LookupRequest msg;
  (*msg.mutable_table())["alpha"] = "one";
  (*msg.mutable_table())["beta"] = "";
  msg.set_key("alpha");
  msg.set_hint(-2);
  const std::string good = msg.SerializeAsString();
  auto check = [&](const std::string& bytes) {
    t::LookupRequest parsed;
    const bool pb_ok = parsed.ParseFromString(bytes);
    impl_.lookup_table.clear();
    impl_.lookup_key.clear();
    impl_.lookup_hint.reset();
    const absl::Status s = Dispatch(kLookup, bytes);
    ASSERT_EQ(s.ok(), pb_ok) << s << " for " << ::testing::PrintToString(bytes);
    if (!pb_ok) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      return;
    }
    EXPECT_EQ(impl_.lookup_key, parsed.key());
    EXPECT_EQ(impl_.lookup_hint.has_value(), parsed.has_hint());
    if (parsed.has_hint()) EXPECT_EQ(*impl_.lookup_hint, parsed.hint());
    std::map<std::string, std::string> table(parsed.table().begin(),
                                             parsed.table().end());
    EXPECT_EQ(impl_.lookup_table, table);
  };
  for (size_t i = 0; i <= good.size(); ++i) check(good.substr(0, i));
  for (size_t i = 0; i < good.size(); ++i) {
    for (int v : {0x00, 0x01, 0x08, 0x0a, 0x12, 0x7f, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      check(bad);
    }
  }
}

}  // namespace
}  // namespace lpc::codegen
