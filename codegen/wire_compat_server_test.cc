// The server direction of wire compatibility: a request that protoc's
// classes of the emitted .proto write reaches the generated Dispatch's
// handler with the same values, and the reply Dispatch writes is what
// protoc writes for the handler's results (field by field, byte for byte;
// fields in any order). The client direction is in
// wire_compat_client_test.cc, unusual and malformed bytes in
// wire_compat_robust_test.cc.
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_service.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_values.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::wire {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::wire_testing::BinaryBytes;
using ::lpc::wire_testing::Canonical;
using ::lpc::wire_testing::ContainerCases;
using ::lpc::wire_testing::DispatchExact;
using ::lpc::wire_testing::Hex;
using ::lpc::wire_testing::kUnknownColor;
using ::lpc::wire_testing::kUnknownNegativeColor;
using ::lpc::wire_testing::LargeBytes;
using ::lpc::wire_testing::MakeLeaf;
using ::lpc::wire_testing::RecordingContexts;
using ::lpc::wire_testing::RecordingWire;
using ::lpc::wire_testing::SameMessage;
using ::lpc::wire_testing::ScalarCases;
using ::lpc::wire_testing::Serialize;
using ::lpc::wire_testing::TreeCases;
using ::lpc::wire_testing::Utf8Text;
using ::lpc::wire_testing::WireEquals;

class WireServerTest : public ::testing::Test {
 protected:
  // Dispatches `request` (protoc's bytes) to method `id`, through
  // DispatchWith on an exactly sized copy and through the string API's
  // Dispatch; the reply bytes, which must be the same both ways.
  std::string Call(lpc::Service& service, uint32_t id,
                   const google::protobuf::Message& request) {
    CallContext ctx;
    std::string response = "stale";
    EXPECT_THAT(DispatchExact(service, id, ctx, Serialize(request), &response),
                IsOk());
    CallContext string_ctx;
    std::string string_response = "stale";
    EXPECT_THAT(service.Dispatch(id, string_ctx, Serialize(request), &string_response),
                IsOk());
    // The same but for the order of map entries, which protobuf's maps
    // do not keep from one message to the next.
    const MethodDescriptor* method = service.descriptor().FindMethod(id);
    const google::protobuf::Descriptor* type =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            "lpc.codegen.wire." + std::string(method->name) + "Response");
    EXPECT_NE(type, nullptr);
    if (type != nullptr && !method->oneway) {
      EXPECT_EQ(Canonical(string_response, *type), Canonical(response, *type))
          << Hex(string_response) << "\n" << Hex(response);
    } else {
      EXPECT_EQ(string_response, response);
    }
    return response;
  }

  RecordingWire wire_;
};

TEST_F(WireServerTest, EchoScalarsEveryScalarValue) {
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    EchoScalarsRequest request;
    *request.mutable_s() = c.value;
    *wire_.echo_scalars_reply.mutable_result() = c.value;
    const std::string response = Call(wire_, 1, request);
    EXPECT_TRUE(SameMessage(wire_.echo_scalars, request));
    EXPECT_TRUE(WireEquals(response, wire_.echo_scalars_reply));
  }
}

TEST_F(WireServerTest, AllInAndAllOutEveryScalar) {
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    const Scalars& s = c.value;
    AllInRequest in;
    in.set_b(s.b());
    in.set_i8(s.i8());
    in.set_i16(s.i16());
    in.set_i32(s.i32());
    in.set_i64(s.i64());
    in.set_u8(s.u8());
    in.set_u16(s.u16());
    in.set_u32(s.u32());
    in.set_u64(s.u64());
    in.set_f(s.f());
    in.set_d(s.d());
    in.set_s(s.s());
    in.set_by(s.by());
    in.set_c(s.color());
    EXPECT_EQ(Call(wire_, 2, in), "");
    EXPECT_TRUE(SameMessage(wire_.all_in, in));

    AllOutResponse& out = wire_.all_out_reply;
    out.set_result(s.u64() ^ 3);
    out.set_b(s.b());
    out.set_i8(s.i8());
    out.set_i16(s.i16());
    out.set_i32(s.i32());
    out.set_i64(s.i64());
    out.set_u8(s.u8());
    out.set_u16(s.u16());
    out.set_u32(s.u32());
    out.set_u64(s.u64());
    out.set_f(s.f());
    out.set_d(s.d());
    out.set_s(s.s());
    out.set_by(s.by());
    out.set_c(s.color());
    EXPECT_TRUE(WireEquals(Call(wire_, 3, AllOutRequest()), out));
  }
}

TEST_F(WireServerTest, InOutEachDirection) {
  InOutRequest zero;
  InOutRequest present_zero;
  present_zero.add_xs(0);
  (*present_zero.mutable_m())[""] = "";
  present_zero.set_o(0);
  present_zero.mutable_leaf();
  InOutRequest full;
  full.set_i8(-128);
  full.set_x(-1);
  full.set_s(Utf8Text());
  full.set_by(BinaryBytes());
  *full.mutable_leaf() = MakeLeaf(-9, "nine");
  for (int32_t v : {1, -1, 0, std::numeric_limits<int32_t>::max()}) full.add_xs(v);
  (*full.mutable_m())["k"] = "v";
  (*full.mutable_m())[Utf8Text()] = "";
  full.set_o(std::numeric_limits<int32_t>::min());
  for (const InOutRequest* request : {&zero, &present_zero, &full}) {
    SCOPED_TRACE(request->ShortDebugString());
    const std::string response = Call(wire_, 4, *request);
    // The handler got the values...
    InOutRequest got = wire_.in_out;
    if (!request->has_leaf()) got.clear_leaf();  // a struct is always present
    EXPECT_TRUE(SameMessage(got, *request));
    // ... and changed them as RecordingWire::InOut says.
    InOutResponse want;
    want.set_result(request->x() - 1);
    want.set_i8(request->i8() == 0 ? 127 : 0);
    want.set_s(request->s() + "!");
    want.set_by(request->by());
    *want.mutable_leaf() = request->leaf();
    for (int32_t v : request->xs()) want.add_xs(-v);
    want.set_y(-32768);
    for (const auto& [k, v] : request->m()) (*want.mutable_m())[v] = k;
    want.set_o(request->has_o() ? request->o() : 0);
    EXPECT_TRUE(WireEquals(response, want));
  }
}

TEST_F(WireServerTest, EchoContainersEveryContainer) {
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    EchoContainersRequest request;
    *request.mutable_c() = c.value;
    *wire_.echo_containers_reply.mutable_result() = c.value;
    const std::string response = Call(wire_, 5, request);
    EXPECT_TRUE(SameMessage(wire_.echo_containers, request));
    EXPECT_TRUE(WireEquals(response, wire_.echo_containers_reply));
  }
}

TEST_F(WireServerTest, SequencesAsParameters) {
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    const Containers& v = c.value;
    SeqsRequest request;
    *request.mutable_i32s() = v.i32s();
    *request.mutable_i8s() = v.i8s();
    *request.mutable_strs() = v.strings();
    *request.mutable_blobs() = v.blobs();
    *request.mutable_leaves() = v.leaves();
    *request.mutable_colors() = v.colors();
    *request.mutable_ds() = v.doubles();
    SeqsResponse& reply = wire_.seqs_reply;
    *reply.mutable_result() = v.i8s();
    *reply.mutable_u16s() = v.u16s();
    const std::string response = Call(wire_, 6, request);
    EXPECT_TRUE(SameMessage(wire_.seqs, request));
    EXPECT_TRUE(WireEquals(response, reply));
  }
}

TEST_F(WireServerTest, MapsAsParameters) {
  MapsRequest full;
  (*full.mutable_a())[""] = Leaf();
  (*full.mutable_a())[Utf8Text()] = MakeLeaf(1, "one");
  (*full.mutable_b())[std::numeric_limits<int64_t>::min()] = "";
  (*full.mutable_b())[0] = Utf8Text();
  (*full.mutable_c())[false] = 0;
  (*full.mutable_c())[true] = -1;
  (*full.mutable_d())[0] = BLACK;
  (*full.mutable_d())[255] = kUnknownNegativeColor;
  MapsResponse full_reply;
  (*full_reply.mutable_result())[-32768] = 255;
  (*full_reply.mutable_result())[0] = 0;
  (*full_reply.mutable_e())[0] = "";
  (*full_reply.mutable_e())[std::numeric_limits<uint64_t>::max()] = BinaryBytes();
  for (bool empty : {true, false}) {
    SCOPED_TRACE(empty ? "empty" : "full");
    const MapsRequest request = empty ? MapsRequest() : full;
    wire_.maps_reply = empty ? MapsResponse() : full_reply;
    const std::string response = Call(wire_, 7, request);
    EXPECT_TRUE(SameMessage(wire_.maps, request));
    EXPECT_TRUE(WireEquals(response, wire_.maps_reply));
  }
}

TEST_F(WireServerTest, OptionalsAbsentPresentAndPresentZero) {
  OptsRequest absent;
  OptsResponse absent_reply;
  OptsRequest zero;
  zero.set_a(0);
  zero.set_b("");
  zero.mutable_c();
  zero.set_d(BLACK);
  zero.set_e(0);
  OptsResponse zero_reply;
  zero_reply.mutable_result();
  zero_reply.set_f(-0.0);
  zero_reply.set_g("");
  OptsRequest set;
  set.set_a(-1);
  set.set_b(Utf8Text());
  *set.mutable_c() = MakeLeaf(2, "two");
  set.set_d(kUnknownColor);
  set.set_e(255);
  OptsResponse set_reply;
  *set_reply.mutable_result() = MakeLeaf(-1, "");
  set_reply.set_f(std::numeric_limits<double>::quiet_NaN());
  set_reply.set_g(BinaryBytes());
  for (const auto& [request, reply] :
       {std::pair(&absent, &absent_reply), std::pair(&zero, &zero_reply),
        std::pair(&set, &set_reply)}) {
    SCOPED_TRACE(request->ShortDebugString());
    wire_.opts_reply = *reply;
    const std::string response = Call(wire_, 8, *request);
    EXPECT_TRUE(SameMessage(wire_.opts, *request));
    EXPECT_TRUE(WireEquals(response, *reply));
  }
}

TEST_F(WireServerTest, EchoTreeNestedAndRecursive) {
  for (const auto& c : TreeCases()) {
    SCOPED_TRACE(c.name);
    EchoTreeRequest request;
    *request.mutable_t() = c.value;
    *wire_.echo_tree_reply.mutable_result() = c.value;
    const std::string response = Call(wire_, 9, request);
    EXPECT_TRUE(SameMessage(wire_.echo_tree, request));
    EXPECT_TRUE(WireEquals(response, wire_.echo_tree_reply));
  }
}

TEST_F(WireServerTest, OnewayAndEmptyMessages) {
  FireRequest fire;
  fire.set_s(Utf8Text());
  fire.set_x(-32768);
  *fire.mutable_leaf() = MakeLeaf(3, "");
  EXPECT_EQ(Call(wire_, 10, fire), "");  // no reply for a oneway method
  EXPECT_TRUE(SameMessage(wire_.fire, fire));
  EXPECT_EQ(Call(wire_, 11, NothingRequest()), "");
  EXPECT_EQ(wire_.nothing_calls, 2);  // DispatchWith, then Dispatch
}

TEST_F(WireServerTest, SingleStringAndBytes) {
  for (const std::string& v :
       {std::string(), std::string("a"), Utf8Text(), std::string(200000, 'z')}) {
    SCOPED_TRACE(v.size());
    TextRequest request;
    request.set_s(v);
    wire_.text_reply.set_result(v + v);
    const std::string response = Call(wire_, 12, request);
    EXPECT_EQ(wire_.text.s(), v);
    EXPECT_TRUE(WireEquals(response, wire_.text_reply));
  }
  for (const std::string& v : {std::string(), std::string(1, '\0'), BinaryBytes(),
                               LargeBytes(3 << 20)}) {
    SCOPED_TRACE(v.size());
    BlobRequest request;
    request.set_b(v);
    wire_.blob_reply.set_result(v);
    const std::string response = Call(wire_, 13, request);
    EXPECT_EQ(wire_.blob.b(), v);
    EXPECT_TRUE(WireEquals(response, wire_.blob_reply));
  }
}

TEST_F(WireServerTest, EnumsOptionalAndSequenceResults) {
  for (Color c : {BLACK, RED, BLUE, DEEP, FAR, kUnknownColor,
                  kUnknownNegativeColor}) {
    SCOPED_TRACE(static_cast<int>(c));
    PaintRequest request;
    request.set_c(c);
    wire_.paint_reply.set_result(c);
    const std::string response = Call(wire_, 100000, request);
    EXPECT_EQ(wire_.paint.c(), c);
    EXPECT_TRUE(WireEquals(response, wire_.paint_reply));
  }
  for (std::optional<std::string> v :
       {std::optional<std::string>(), std::optional<std::string>(""),
        std::optional<std::string>(Utf8Text())}) {
    MaybeTextRequest request;
    request.set_give(v.has_value());
    wire_.maybe_text_reply.Clear();
    if (v.has_value()) wire_.maybe_text_reply.set_result(*v);
    const std::string response = Call(wire_, 100001, request);
    EXPECT_TRUE(SameMessage(wire_.maybe_text, request));
    EXPECT_TRUE(WireEquals(response, wire_.maybe_text_reply));
  }
  LeavesRequest request;
  request.set_n(-5);
  wire_.leaves_reply.add_result();
  *wire_.leaves_reply.add_result() = MakeLeaf(-1, Utf8Text());
  wire_.leaves_reply.add_result();
  const std::string response = Call(wire_, 100002, request);
  EXPECT_EQ(wire_.leaves.n(), -5);
  EXPECT_TRUE(WireEquals(response, wire_.leaves_reply));
}

TEST_F(WireServerTest, ContextHandlesAreFixed64) {
  RecordingContexts contexts;
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000001},
                      std::numeric_limits<uint64_t>::max()}) {
    SCOPED_TRACE(id);
    OpenRequest open;
    open.set_name(Utf8Text());
    contexts.open_reply.set_result(id);
    EXPECT_TRUE(WireEquals(Call(contexts, 1, open), contexts.open_reply));
    EXPECT_TRUE(SameMessage(contexts.open, open));

    UseRequest use;
    use.set_s(id);
    use.set_t(~id);
    use.mutable_h()->set_session(id);
    use.mutable_h()->set_note(id == 0 ? "" : "n");
    contexts.use_reply.set_result(~id);
    contexts.use_reply.set_t(id);
    contexts.use_reply.set_u(id ^ 0xff);
    *contexts.use_reply.mutable_g() = use.h();
    const std::string response = Call(contexts, 2, use);
    EXPECT_TRUE(SameMessage(contexts.use, use));
    EXPECT_TRUE(WireEquals(response, contexts.use_reply));
  }
}

}  // namespace
}  // namespace lpc::codegen::wire
