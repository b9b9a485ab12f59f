// The client direction of wire compatibility: what the generated client
// stubs of testdata/wire_compat.idl send is what protoc's classes of the
// emitted .proto write for the same values (field by field, byte for byte;
// fields in any order), and what protoc's classes write as a reply, the
// stubs decode to the same values. The transport is a CapturingChannel, so
// the test holds whatever the stubs do inside. Decoding of unusual and
// malformed bytes is in wire_compat_robust_test.cc; the server direction in
// wire_compat_server_test.cc.
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_values.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::wire {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::wire_testing::Canonical;
using ::lpc::wire_testing::CapturingChannel;
using ::lpc::wire_testing::ContainerCases;
using ::lpc::wire_testing::kUnknownColor;
using ::lpc::wire_testing::kUnknownNegativeColor;
using ::lpc::wire_testing::LargeBytes;
using ::lpc::wire_testing::MakeLeaf;
using ::lpc::wire_testing::SameMessage;
using ::lpc::wire_testing::ScalarCases;
using ::lpc::wire_testing::Serialize;
using ::lpc::wire_testing::TreeCases;
using ::lpc::wire_testing::Utf8Text;
using ::lpc::wire_testing::BinaryBytes;
using ::lpc::wire_testing::WireEquals;

// Floats compare by bits: -0.0 and NaN must survive.
template <typename F>
bool SameBits(F a, F b) {
  return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
}

class WireClientTest : public ::testing::Test {
 protected:
  std::shared_ptr<CapturingChannel> channel_ = std::make_shared<CapturingChannel>();
  WireClient client_{channel_};

  // The request of the last call.
  const std::string& last_request() { return channel_->calls().back().request; }
};

TEST(CanonicalTest, OrderFreeButByteExact) {
  Leaf leaf = MakeLeaf(1, "x");
  const std::string bytes = Serialize(leaf);  // 08 01 12 01 78
  const std::string swapped = bytes.substr(2) + bytes.substr(0, 2);
  EXPECT_TRUE(WireEquals(swapped, leaf));
  // A non-minimal varint for v = 1: same value, other bytes.
  EXPECT_FALSE(WireEquals(std::string("\x08\x81\x00\x12\x01x", 6), leaf));
  // A zero written out: same value, other bytes.
  EXPECT_FALSE(WireEquals(bytes + std::string("\x08\x00", 2), MakeLeaf(0, "x")));
  EXPECT_FALSE(Canonical(std::string("\x08", 1), *Leaf::descriptor()).has_value());
}

TEST_F(WireClientTest, EchoScalarsEveryScalarValue) {
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    EchoScalarsResponse reply;
    *reply.mutable_result() = c.value;
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<Scalars> got = client_.EchoScalars(c.value);
    ASSERT_THAT(got.status(), IsOk());
    EchoScalarsRequest want;
    *want.mutable_s() = c.value;
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_TRUE(SameMessage(*got, c.value));
  }
}

TEST_F(WireClientTest, AllInEveryScalarAsParameter) {
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    const Scalars& s = c.value;
    ASSERT_THAT(client_.AllIn(s.b(), static_cast<int8_t>(s.i8()),
                              static_cast<int16_t>(s.i16()), s.i32(), s.i64(),
                              static_cast<uint8_t>(s.u8()),
                              static_cast<uint16_t>(s.u16()), s.u32(), s.u64(),
                              s.f(), s.d(), s.s(), s.by(), s.color()),
                IsOk());
    AllInRequest want;
    want.set_b(s.b());
    want.set_i8(s.i8());
    want.set_i16(s.i16());
    want.set_i32(s.i32());
    want.set_i64(s.i64());
    want.set_u8(s.u8());
    want.set_u16(s.u16());
    want.set_u32(s.u32());
    want.set_u64(s.u64());
    want.set_f(s.f());
    want.set_d(s.d());
    want.set_s(s.s());
    want.set_by(s.by());
    want.set_c(s.color());
    EXPECT_TRUE(WireEquals(last_request(), want));
    if (c.name == "zero") {
      EXPECT_EQ(last_request(), "");  // proto3 omits zeros
    }
  }
}

TEST_F(WireClientTest, AllOutEveryScalarAsResult) {
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    const Scalars& s = c.value;
    AllOutResponse reply;
    reply.set_result(s.u64() ^ 1);
    reply.set_b(s.b());
    reply.set_i8(s.i8());
    reply.set_i16(s.i16());
    reply.set_i32(s.i32());
    reply.set_i64(s.i64());
    reply.set_u8(s.u8());
    reply.set_u16(s.u16());
    reply.set_u32(s.u32());
    reply.set_u64(s.u64());
    reply.set_f(s.f());
    reply.set_d(s.d());
    reply.set_s(s.s());
    reply.set_by(s.by());
    reply.set_c(s.color());
    channel_->QueueReply(Serialize(reply));
    bool b = !s.b();
    int8_t i8 = 5;
    int16_t i16 = 5;
    int32_t i32 = 5;
    int64_t i64 = 5;
    uint8_t u8 = 5;
    uint16_t u16 = 5;
    uint32_t u32 = 5;
    uint64_t u64 = 5;
    float f = 5;
    double d = 5;
    std::string str = "stale";
    std::string by = "stale";
    Color color = RED;
    absl::StatusOr<uint64_t> got = client_.AllOut(
        &b, &i8, &i16, &i32, &i64, &u8, &u16, &u32, &u64, &f, &d, &str, &by,
        &color);
    ASSERT_THAT(got.status(), IsOk());
    EXPECT_EQ(last_request(), "");
    EXPECT_EQ(*got, s.u64() ^ 1);
    EXPECT_EQ(b, s.b());
    EXPECT_EQ(i8, s.i8());
    EXPECT_EQ(i16, s.i16());
    EXPECT_EQ(i32, s.i32());
    EXPECT_EQ(i64, s.i64());
    EXPECT_EQ(u8, s.u8());
    EXPECT_EQ(u16, s.u16());
    EXPECT_EQ(u32, s.u32());
    EXPECT_EQ(u64, s.u64());
    EXPECT_TRUE(SameBits(f, s.f())) << f;
    EXPECT_TRUE(SameBits(d, s.d())) << d;
    EXPECT_EQ(str, s.s());
    EXPECT_EQ(by, s.by());
    EXPECT_EQ(color, s.color());
  }
}

struct InOutValues {
  std::string name;
  int8_t i8;
  int32_t x;
  std::string s;
  std::string by;
  Leaf leaf;
  std::vector<int32_t> xs;
  std::map<std::string, std::string> m;
  std::optional<int32_t> o;
};

std::vector<InOutValues> InOutCases() {
  return {
      {"zero", 0, 0, "", "", Leaf(), {}, {}, std::nullopt},
      {"present_zero", 0, 0, "", "", Leaf(), {0}, {{"", ""}}, 0},
      {"full", -128, -1, Utf8Text(), BinaryBytes(), MakeLeaf(-9, "nine"),
       {1, -1, 0, std::numeric_limits<int32_t>::max()},
       {{"k", "v"}, {"", "empty key"}, {Utf8Text(), ""}},
       std::numeric_limits<int32_t>::min()},
  };
}

TEST_F(WireClientTest, InOutEachDirection) {
  for (const InOutValues& c : InOutCases()) {
    SCOPED_TRACE(c.name);
    InOutRequest want;
    want.set_i8(c.i8);
    want.set_x(c.x);
    want.set_s(c.s);
    want.set_by(c.by);
    *want.mutable_leaf() = c.leaf;
    for (int32_t v : c.xs) want.add_xs(v);
    for (const auto& [k, v] : c.m) (*want.mutable_m())[k] = v;
    if (c.o.has_value()) want.set_o(*c.o);
    // The reply carries the request's values back, shifted a little.
    InOutResponse reply;
    reply.set_result(c.x - 1);
    reply.set_i8(c.i8 == 0 ? 127 : 0);
    reply.set_s(c.s + "!");
    reply.set_by(c.by);
    *reply.mutable_leaf() = c.leaf;
    for (int32_t v : c.xs) reply.add_xs(-v);
    reply.set_y(-32768);
    for (const auto& [k, v] : c.m) (*reply.mutable_m())[v] = k;
    if (!c.o.has_value()) reply.set_o(0);
    channel_->QueueReply(Serialize(reply));

    int8_t i8 = c.i8;
    std::string s = c.s;
    std::string by = c.by;
    Leaf leaf = c.leaf;
    std::vector<int32_t> xs = c.xs;
    int16_t y = 1;
    std::map<std::string, std::string> m = c.m;
    std::optional<int32_t> o = c.o;
    absl::StatusOr<int64_t> got =
        client_.InOut(&i8, c.x, &s, &by, &leaf, &xs, &y, &m, &o);
    ASSERT_THAT(got.status(), IsOk());
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, reply.result());
    EXPECT_EQ(i8, reply.i8());
    EXPECT_EQ(s, reply.s());
    EXPECT_EQ(by, reply.by());
    EXPECT_TRUE(SameMessage(leaf, reply.leaf()));
    EXPECT_EQ(xs, std::vector<int32_t>(reply.xs().begin(), reply.xs().end()));
    EXPECT_EQ(y, -32768);
    EXPECT_EQ(m, (std::map<std::string, std::string>(reply.m().begin(),
                                                     reply.m().end())));
    EXPECT_EQ(o, reply.has_o() ? std::optional<int32_t>(reply.o()) : std::nullopt);

    // The asynchronous stub sends the same bytes.
    channel_->QueueReply(Serialize(reply));
    std::optional<absl::StatusOr<WireClient::InOutResult>> async;
    client_.InOutAsync(c.i8, c.x, c.s, c.by, c.leaf, c.xs, c.m, c.o,
                       [&](absl::StatusOr<WireClient::InOutResult> r) {
                         async = std::move(r);
                       });
    ASSERT_TRUE(async.has_value());
    ASSERT_THAT(async->status(), IsOk());
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ((*async)->s, reply.s());
    EXPECT_EQ((*async)->o, o);
  }
}

TEST_F(WireClientTest, EchoContainersEveryContainer) {
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    EchoContainersResponse reply;
    *reply.mutable_result() = c.value;
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<Containers> got = client_.EchoContainers(c.value);
    ASSERT_THAT(got.status(), IsOk());
    EchoContainersRequest want;
    *want.mutable_c() = c.value;
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_TRUE(SameMessage(*got, c.value));
  }
}

TEST_F(WireClientTest, SequencesAsParameters) {
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    const Containers& v = c.value;
    std::vector<int32_t> i32s(v.i32s().begin(), v.i32s().end());
    std::vector<int8_t> i8s(v.i8s().begin(), v.i8s().end());
    std::vector<std::string> strs(v.strings().begin(), v.strings().end());
    std::vector<std::string> blobs(v.blobs().begin(), v.blobs().end());
    std::vector<Leaf> leaves(v.leaves().begin(), v.leaves().end());
    std::vector<Color> colors;
    for (int e : v.colors()) colors.push_back(static_cast<Color>(e));
    std::vector<double> ds(v.doubles().begin(), v.doubles().end());
    SeqsResponse reply;
    for (int8_t e : i8s) reply.add_result(e);
    for (uint32_t e : v.u16s()) reply.add_u16s(e);
    channel_->QueueReply(Serialize(reply));
    std::vector<uint16_t> u16s = {7};
    absl::StatusOr<std::vector<int8_t>> got =
        client_.Seqs(i32s, i8s, strs, blobs, leaves, colors, ds, &u16s);
    ASSERT_THAT(got.status(), IsOk());
    SeqsRequest want;
    *want.mutable_i32s() = v.i32s();
    *want.mutable_i8s() = v.i8s();
    *want.mutable_strs() = v.strings();
    *want.mutable_blobs() = v.blobs();
    *want.mutable_leaves() = v.leaves();
    *want.mutable_colors() = v.colors();
    *want.mutable_ds() = v.doubles();
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, i8s);
    EXPECT_EQ(u16s, std::vector<uint16_t>(v.u16s().begin(), v.u16s().end()));
  }
}

TEST_F(WireClientTest, MapsAsParameters) {
  const std::map<std::string, Leaf> a = {
      {"", Leaf()}, {"x", MakeLeaf(1, "")}, {Utf8Text(), MakeLeaf(0, "t")}};
  const std::map<int64_t, std::string> b = {
      {std::numeric_limits<int64_t>::min(), ""}, {0, "zero"}, {-1, Utf8Text()}};
  const std::map<bool, int32_t> c = {{false, 0}, {true, -1}};
  const std::map<uint8_t, Color> d = {
      {0, BLACK}, {255, kUnknownNegativeColor}, {7, kUnknownColor}};
  for (bool empty : {true, false}) {
    SCOPED_TRACE(empty ? "empty" : "full");
    MapsRequest want;
    if (!empty) {
      for (const auto& [k, v] : a) (*want.mutable_a())[k] = v;
      for (const auto& [k, v] : b) (*want.mutable_b())[k] = v;
      for (const auto& [k, v] : c) (*want.mutable_c())[k] = v;
      for (const auto& [k, v] : d) (*want.mutable_d())[k] = v;
    }
    MapsResponse reply;
    if (!empty) {
      (*reply.mutable_result())[-32768] = 255;
      (*reply.mutable_result())[0] = 0;
      (*reply.mutable_result())[32767] = 1;
      (*reply.mutable_e())[0] = "";
      (*reply.mutable_e())[std::numeric_limits<uint64_t>::max()] = BinaryBytes();
    }
    channel_->QueueReply(Serialize(reply));
    std::map<uint64_t, std::string> e = {{5, "stale"}};
    absl::StatusOr<std::map<int16_t, uint8_t>> got =
        empty ? client_.Maps({}, {}, {}, {}, &e) : client_.Maps(a, b, c, d, &e);
    ASSERT_THAT(got.status(), IsOk());
    EXPECT_TRUE(WireEquals(last_request(), want));
    if (empty) {
      EXPECT_EQ(last_request(), "");
    }
    EXPECT_EQ(got->size(), reply.result().size());
    for (const auto& [k, v] : reply.result()) {
      EXPECT_EQ(got->at(static_cast<int16_t>(k)), v) << k;
    }
    EXPECT_EQ(e, (std::map<uint64_t, std::string>(reply.e().begin(),
                                                  reply.e().end())));
  }
}

TEST_F(WireClientTest, OptionalsAbsentPresentAndPresentZero) {
  struct OptCase {
    std::string name;
    std::optional<int32_t> a;
    std::optional<std::string> b;
    std::optional<Leaf> c;
    std::optional<Color> d;
    std::optional<uint8_t> e;
  };
  const std::vector<OptCase> cases = {
      {"absent", {}, {}, {}, {}, {}},
      {"zero", 0, "", Leaf(), BLACK, 0},
      {"set", -1, Utf8Text(), MakeLeaf(2, "two"), kUnknownColor, 255},
  };
  for (const OptCase& c : cases) {
    SCOPED_TRACE(c.name);
    OptsRequest want;
    if (c.a) want.set_a(*c.a);
    if (c.b) want.set_b(*c.b);
    if (c.c) *want.mutable_c() = *c.c;
    if (c.d) want.set_d(*c.d);
    if (c.e) want.set_e(*c.e);
    OptsResponse reply;
    if (c.name == "zero") {
      reply.mutable_result();
      reply.set_f(-0.0);
      reply.set_g("");
    } else if (c.name == "set") {
      *reply.mutable_result() = MakeLeaf(-1, Utf8Text());
      reply.set_f(std::numeric_limits<double>::quiet_NaN());
      reply.set_g(BinaryBytes());
    }
    channel_->QueueReply(Serialize(reply));
    std::optional<double> f = 1.0;
    std::optional<std::string> g = "stale";
    absl::StatusOr<std::optional<Leaf>> got =
        client_.Opts(c.a, c.b, c.c, c.d, c.e, &f, &g);
    ASSERT_THAT(got.status(), IsOk());
    EXPECT_TRUE(WireEquals(last_request(), want));
    ASSERT_EQ(got->has_value(), reply.has_result());
    if (got->has_value()) {
      EXPECT_TRUE(SameMessage(**got, reply.result()));
    }
    ASSERT_EQ(f.has_value(), reply.has_f());
    if (f.has_value()) {
      EXPECT_TRUE(SameBits(*f, reply.f())) << *f;
    }
    ASSERT_EQ(g.has_value(), reply.has_g());
    if (g.has_value()) {
      EXPECT_EQ(*g, reply.g());
    }
  }
}

TEST_F(WireClientTest, EchoTreeNestedAndRecursive) {
  for (const auto& c : TreeCases()) {
    SCOPED_TRACE(c.name);
    EchoTreeResponse reply;
    *reply.mutable_result() = c.value;
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<Tree> got = client_.EchoTree(c.value);
    ASSERT_THAT(got.status(), IsOk());
    EchoTreeRequest want;
    *want.mutable_t() = c.value;
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_TRUE(SameMessage(*got, c.value));
  }
}

TEST_F(WireClientTest, OnewayAndEmptyMessages) {
  ASSERT_THAT(client_.Fire(Utf8Text(), -32768, MakeLeaf(3, "")), IsOk());
  ASSERT_THAT(client_.Fire("", 0, Leaf()), IsOk());
  ASSERT_EQ(channel_->calls().size(), 2u);
  FireRequest want;
  want.set_s(Utf8Text());
  want.set_x(-32768);
  *want.mutable_leaf() = MakeLeaf(3, "");
  EXPECT_TRUE(channel_->calls()[0].oneway);
  EXPECT_EQ(channel_->calls()[0].method, 10u);
  EXPECT_TRUE(WireEquals(channel_->calls()[0].request, want));
  FireRequest zero;
  zero.mutable_leaf();  // a struct parameter is always present
  EXPECT_TRUE(WireEquals(channel_->calls()[1].request, zero));

  channel_->QueueReply(std::string());
  EXPECT_THAT(client_.Nothing(), IsOk());
  EXPECT_EQ(channel_->calls().back().method, 11u);
  EXPECT_EQ(last_request(), "");
}

TEST_F(WireClientTest, SingleStringAndBytes) {
  for (const std::string& v :
       {std::string(), std::string("a"), Utf8Text(), std::string(200000, 'z')}) {
    SCOPED_TRACE(v.size());
    TextResponse reply;
    reply.set_result(v + v);
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<std::string> got = client_.Text(v);
    ASSERT_THAT(got.status(), IsOk());
    TextRequest want;
    want.set_s(v);
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, v + v);
  }
  for (const std::string& v : {std::string(), std::string(1, '\0'), BinaryBytes(),
                               LargeBytes(3 << 20)}) {
    SCOPED_TRACE(v.size());
    BlobResponse reply;
    reply.set_result(v);
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<std::string> got = client_.Blob(v);
    ASSERT_THAT(got.status(), IsOk());
    BlobRequest want;
    want.set_b(v);
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, v);
  }
}

TEST_F(WireClientTest, EnumsKnownUnknownAndNegative) {
  for (Color c : {BLACK, RED, BLUE, DEEP, FAR, kUnknownColor,
                  kUnknownNegativeColor}) {
    SCOPED_TRACE(static_cast<int>(c));
    PaintResponse reply;
    reply.set_result(c);
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<Color> got = client_.Paint(c);
    ASSERT_THAT(got.status(), IsOk());
    PaintRequest want;
    want.set_c(c);
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, c);
    EXPECT_EQ(channel_->calls().back().method, 100000u);
  }
}

TEST_F(WireClientTest, OptionalAndSequenceResults) {
  for (std::optional<std::string> v :
       {std::optional<std::string>(), std::optional<std::string>(""),
        std::optional<std::string>(Utf8Text())}) {
    MaybeTextResponse reply;
    if (v.has_value()) reply.set_result(*v);
    channel_->QueueReply(Serialize(reply));
    absl::StatusOr<std::optional<std::string>> got = client_.MaybeText(true);
    ASSERT_THAT(got.status(), IsOk());
    MaybeTextRequest want;
    want.set_give(true);
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(*got, v);
  }
  LeavesResponse reply;
  reply.add_result();
  *reply.add_result() = MakeLeaf(-1, Utf8Text());
  reply.add_result();
  channel_->QueueReply(Serialize(reply));
  absl::StatusOr<std::vector<Leaf>> got = client_.Leaves(-5);
  ASSERT_THAT(got.status(), IsOk());
  LeavesRequest want;
  want.set_n(-5);
  EXPECT_TRUE(WireEquals(last_request(), want));
  ASSERT_EQ(got->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(SameMessage((*got)[i], reply.result(i)));
}

TEST_F(WireClientTest, ContextHandlesAreFixed64) {
  ContextsClient client(channel_);
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000001},
                      std::numeric_limits<uint64_t>::max()}) {
    SCOPED_TRACE(id);
    OpenResponse open_reply;
    open_reply.set_result(id);
    channel_->QueueReply(Serialize(open_reply));
    absl::StatusOr<Session> opened = client.Open(Utf8Text());
    ASSERT_THAT(opened.status(), IsOk());
    EXPECT_EQ(opened->wire_id(), id);
    OpenRequest open_want;
    open_want.set_name(Utf8Text());
    EXPECT_TRUE(WireEquals(last_request(), open_want));

    Holder h;
    h.set_session(id);
    h.set_note(id == 0 ? "" : "n");
    UseResponse reply;
    reply.set_result(~id);
    reply.set_t(id);
    reply.set_u(id ^ 0xff);
    *reply.mutable_g() = h;
    channel_->QueueReply(Serialize(reply));
    Session t = Session::FromWire(~id);
    Session u;
    Holder g;
    absl::StatusOr<Session> got = client.Use(*opened, &t, &u, h, &g);
    ASSERT_THAT(got.status(), IsOk());
    UseRequest want;
    want.set_s(id);
    want.set_t(~id);
    *want.mutable_h() = h;
    EXPECT_TRUE(WireEquals(last_request(), want));
    EXPECT_EQ(got->wire_id(), ~id);
    EXPECT_EQ(t.wire_id(), id);
    EXPECT_EQ(u.wire_id(), id ^ 0xff);
    EXPECT_TRUE(SameMessage(g, h));
  }
}

}  // namespace
}  // namespace lpc::codegen::wire
