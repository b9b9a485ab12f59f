// The generated server decoders against protoc's parser, on the
// valid-but-unusual encodings a stock peer may send (fields out of order,
// unknown fields of every wire type, repeated scalars unpacked or in
// several packed runs, overlong varints, a singular field twice, a
// sub-message split in two, a known field number with the wrong wire
// type, missing fields) and on malformed bytes (every truncation, byte
// corruptions, truncated varints, lengths past the end, bad groups,
// invalid UTF-8): where protoc parses the request, the handler gets
// protoc's values; where it does not, or where an int8/int16/uint8/uint16
// carries a value outside its range (which protoc accepts: the .proto
// widens them), Dispatch fails with INVALID_ARGUMENT, never a crash.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_service.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_values.h"
#include "codegen/wire_compat_variants.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::wire {
namespace {

using ::google::protobuf::Message;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::lpc::wire_testing::BinaryBytes;
using ::lpc::wire_testing::ContainerCases;
using ::lpc::wire_testing::Decoder;
using ::lpc::wire_testing::DispatchBytes;
using ::lpc::wire_testing::EncodeVarint;
using ::lpc::wire_testing::ExpectDecodesLikeProtoc;
using ::lpc::wire_testing::FakeServerStream;
using ::lpc::wire_testing::MakeLeaf;
using ::lpc::wire_testing::RecordingContexts;
using ::lpc::wire_testing::RecordingWire;
using ::lpc::wire_testing::ScalarCases;
using ::lpc::wire_testing::Serialize;
using ::lpc::wire_testing::TreeCases;
using ::lpc::wire_testing::Utf8Text;

constexpr absl::StatusCode kBad = absl::StatusCode::kInvalidArgument;

// A decoder: a fresh RecordingWire's Dispatch of method `id`; what the
// handler got is RecordingWire::*seen.
template <typename Request>
Decoder WireDispatch(uint32_t id, Request RecordingWire::*seen) {
  return [id, seen](const std::string& bytes, std::unique_ptr<Message>* got) {
    RecordingWire service;
    absl::Status status = DispatchBytes(service, id, bytes);
    if (status.ok()) got->reset(new Request(service.*seen));
    return status;
  };
}

TEST(WireRobustServerTest, AllIn) {
  for (const auto& c : ScalarCases()) {
    if (c.name == "large") continue;  // corrupting each of 1 MiB: too slow
    SCOPED_TRACE(c.name);
    const Scalars& s = c.value;
    AllInRequest sample;
    sample.set_b(s.b());
    sample.set_i8(s.i8());
    sample.set_i16(s.i16());
    sample.set_i32(s.i32());
    sample.set_i64(s.i64());
    sample.set_u8(s.u8());
    sample.set_u16(s.u16());
    sample.set_u32(s.u32());
    sample.set_u64(s.u64());
    sample.set_f(s.f());
    sample.set_d(s.d());
    sample.set_s(s.s());
    sample.set_by(s.by());
    sample.set_c(s.color());
    ExpectDecodesLikeProtoc(sample, WireDispatch(2, &RecordingWire::all_in), kBad);
  }
}

TEST(WireRobustServerTest, InOut) {
  InOutRequest sample;
  sample.set_i8(-128);
  sample.set_x(-1);
  sample.set_s(Utf8Text());
  sample.set_by(BinaryBytes());
  *sample.mutable_leaf() = MakeLeaf(-9, "nine");
  for (int32_t v : {1, -1, 0, 300}) sample.add_xs(v);
  (*sample.mutable_m())["k"] = "v";
  (*sample.mutable_m())[""] = Utf8Text();
  sample.set_o(0);
  ExpectDecodesLikeProtoc(sample, WireDispatch(4, &RecordingWire::in_out), kBad,
                          [](Message* m) {
                            static_cast<InOutRequest*>(m)->mutable_leaf();
                          });
}

TEST(WireRobustServerTest, EchoContainers) {
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    EchoContainersRequest sample;
    *sample.mutable_c() = c.value;
    ExpectDecodesLikeProtoc(
        sample, WireDispatch(5, &RecordingWire::echo_containers), kBad,
        [](Message* m) { static_cast<EchoContainersRequest*>(m)->mutable_c(); });
  }
}

TEST(WireRobustServerTest, SequencesMapsOptionals) {
  const Containers full = ContainerCases()[1].value;
  SeqsRequest seqs;
  *seqs.mutable_i32s() = full.i32s();
  *seqs.mutable_i8s() = full.i8s();
  *seqs.mutable_strs() = full.strings();
  *seqs.mutable_blobs() = full.blobs();
  *seqs.mutable_leaves() = full.leaves();
  *seqs.mutable_colors() = full.colors();
  *seqs.mutable_ds() = full.doubles();
  ExpectDecodesLikeProtoc(seqs, WireDispatch(6, &RecordingWire::seqs), kBad);

  MapsRequest maps;
  (*maps.mutable_a())[""] = Leaf();
  (*maps.mutable_a())[Utf8Text()] = MakeLeaf(1, "one");
  (*maps.mutable_b())[-5] = "";
  (*maps.mutable_b())[0] = Utf8Text();
  (*maps.mutable_c())[false] = 0;
  (*maps.mutable_c())[true] = -1;
  (*maps.mutable_d())[0] = BLUE;
  (*maps.mutable_d())[255] = static_cast<Color>(-77);
  ExpectDecodesLikeProtoc(maps, WireDispatch(7, &RecordingWire::maps), kBad);

  OptsRequest zero;
  zero.set_a(0);
  zero.set_b("");
  zero.mutable_c();
  zero.set_d(BLACK);
  zero.set_e(0);
  ExpectDecodesLikeProtoc(zero, WireDispatch(8, &RecordingWire::opts), kBad);
  OptsRequest set;
  set.set_a(-1);
  set.set_b(Utf8Text());
  *set.mutable_c() = MakeLeaf(2, "two");
  set.set_d(DEEP);
  set.set_e(255);
  ExpectDecodesLikeProtoc(set, WireDispatch(8, &RecordingWire::opts), kBad);
}

TEST(WireRobustServerTest, TreesStringsBytesAndOneway) {
  for (const auto& c : TreeCases()) {
    SCOPED_TRACE(c.name);
    EchoTreeRequest sample;
    *sample.mutable_t() = c.value;
    ExpectDecodesLikeProtoc(
        sample, WireDispatch(9, &RecordingWire::echo_tree), kBad,
        [](Message* m) { static_cast<EchoTreeRequest*>(m)->mutable_t(); });
  }
  TextRequest text;
  text.set_s(Utf8Text());
  ExpectDecodesLikeProtoc(text, WireDispatch(12, &RecordingWire::text), kBad);
  BlobRequest blob;
  blob.set_b(BinaryBytes());
  ExpectDecodesLikeProtoc(blob, WireDispatch(13, &RecordingWire::blob), kBad);
  FireRequest fire;
  fire.set_s(Utf8Text());
  fire.set_x(-32768);
  *fire.mutable_leaf() = MakeLeaf(3, "x");
  ExpectDecodesLikeProtoc(
      fire, WireDispatch(10, &RecordingWire::fire), kBad,
      [](Message* m) { static_cast<FireRequest*>(m)->mutable_leaf(); });
}

TEST(WireRobustServerTest, ContextHandles) {
  UseRequest sample;
  sample.set_s(0x8000000000000001);
  sample.set_t(1);
  sample.mutable_h()->set_session(~uint64_t{0});
  sample.mutable_h()->set_note(Utf8Text());
  ExpectDecodesLikeProtoc(
      sample,
      [](const std::string& bytes, std::unique_ptr<Message>* got) {
        RecordingContexts service;
        absl::Status status = DispatchBytes(service, 2, bytes);
        if (status.ok()) got->reset(new UseRequest(service.use));
        return status;
      },
      kBad, [](Message* m) { static_cast<UseRequest*>(m)->mutable_h(); });
}

// Messages nested deeper than protoc's recursion limit (100) do not parse;
// the stubs refuse them too, and a very deep one does not crash.
TEST(WireRobustServerTest, NestingDeeperThanProtocAllows) {
  for (int depth : {98, 99, 100, 101, 100000}) {
    SCOPED_TRACE(depth);
    // EchoTreeRequest.t, then Tree.next `depth` times, the innermost empty.
    std::vector<uint64_t> sizes = {0};
    for (int i = 0; i < depth; ++i) {
      sizes.push_back(1 + EncodeVarint(sizes.back()).size() + sizes.back());
    }
    std::string request = "\x0a" + EncodeVarint(sizes.back());
    for (int i = depth; i >= 1; --i) request += "\x12" + EncodeVarint(sizes[i - 1]);
    EchoTreeRequest parsed;
    const bool parses = parsed.ParseFromString(request);
    if (depth == 100000) {
      EXPECT_FALSE(parses);
    }
    RecordingWire service;
    absl::Status status = DispatchBytes(service, 9, request);
    if (parses) {
      EXPECT_THAT(status, IsOk());
    } else {
      EXPECT_THAT(status, StatusIs(kBad));
    }
  }
}

// The stream messages a server reads: a request, or the client's
// elements; a message protoc would not accept ends the call with
// INVALID_ARGUMENT.
class StreamsSink final : public WireStreamsService {
 public:
  std::unique_ptr<Message> seen;
  absl::Status Down(CallContext&, const std::string& prefix, int8_t n,
                    ServerWriter<Scalars>&) override {
    auto m = std::make_unique<DownRequest>();
    m->set_prefix(prefix);
    m->set_n(n);
    seen = std::move(m);
    return absl::OkStatus();
  }
  absl::StatusOr<Containers> Up(CallContext&, ServerReader<Leaf>& in) override {
    auto m = std::make_unique<Leaf>();
    in.Read(m.get());
    seen = std::move(m);
    return Containers();
  }
  absl::Status Both(CallContext&, ServerReaderWriter<Tree, Scalars>& s) override {
    auto m = std::make_unique<Scalars>();
    s.Read(m.get());
    seen = std::move(m);
    return absl::OkStatus();
  }
  void Later(AsyncUnaryCall<LaterResult> call, int8_t x,
             const std::string& note) override {
    auto m = std::make_unique<LaterRequest>();
    m->set_x(x);
    m->set_note(note);
    seen = std::move(m);
    call.Reply(LaterResult{});
  }
  void LaterDown(AsyncServerStream<Leaf> call, int16_t n) override {
    auto m = std::make_unique<LaterDownRequest>();
    m->set_n(n);
    seen = std::move(m);
    call.Finish(absl::OkStatus());
  }
  absl::Status Sink(CallContext&, ServerReader<Leaf>&) override {
    return absl::OkStatus();
  }
};

Decoder StreamDecoder(uint32_t id) {
  return [id](const std::string& bytes, std::unique_ptr<Message>* got) {
    StreamsSink service;
    auto call = std::make_shared<FakeServerStream>(std::vector<std::string>{bytes});
    service.StartCall(id, call);
    std::optional<absl::Status> status = call->status();
    if (!status.has_value()) return absl::UnknownError("the call did not end");
    if (status->ok()) *got = std::move(service.seen);
    return *status;
  };
}

TEST(WireRobustServerTest, StreamMessages) {
  DownRequest down;
  down.set_prefix(Utf8Text());
  down.set_n(-128);
  ExpectDecodesLikeProtoc(down, StreamDecoder(1), kBad);
  ExpectDecodesLikeProtoc(MakeLeaf(-1, Utf8Text()), StreamDecoder(2), kBad);
  ExpectDecodesLikeProtoc(ScalarCases()[1].value, StreamDecoder(3), kBad);
  LaterRequest later;
  later.set_x(127);
  later.set_note(Utf8Text());
  ExpectDecodesLikeProtoc(later, StreamDecoder(4), kBad);
  LaterDownRequest later_down;
  later_down.set_n(-32768);
  ExpectDecodesLikeProtoc(later_down, StreamDecoder(5), kBad);
}

}  // namespace
}  // namespace lpc::codegen::wire
