// The generated client decoders against protoc's parser, on the same
// valid-but-unusual and malformed replies as wire_compat_robust_server_test
// sends the server (see there): where protoc parses the reply into values
// in range, the stub returns protoc's values; otherwise the call fails
// with INTERNAL, never a crash. Stream messages the client reads likewise.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_values.h"
#include "codegen/wire_compat_variants.h"
#include "gtest/gtest.h"

namespace lpc::codegen::wire {
namespace {

using ::google::protobuf::Message;
using ::lpc::wire_testing::BinaryBytes;
using ::lpc::wire_testing::ContainerCases;
using ::lpc::wire_testing::Decoder;
using ::lpc::wire_testing::ExpectDecodesLikeProtoc;
using ::lpc::wire_testing::MakeLeaf;
using ::lpc::wire_testing::ReplyingChannel;
using ::lpc::wire_testing::ScalarCases;
using ::lpc::wire_testing::StreamingChannel;
using ::lpc::wire_testing::TreeCases;
using ::lpc::wire_testing::Utf8Text;

constexpr absl::StatusCode kBad = absl::StatusCode::kInternal;

// A decoder: a WireClient call `call` whose reply is the bytes; `call`
// returns the stub's values as a reply message.
template <typename Reply>
Decoder ClientCall(std::function<absl::Status(WireClient&, Reply*)> call) {
  return [call](const std::string& bytes, std::unique_ptr<Message>* got) {
    WireClient client(ReplyingChannel(bytes));
    auto reply = std::make_unique<Reply>();
    absl::Status status = call(client, reply.get());
    if (status.ok()) *got = std::move(reply);
    return status;
  };
}

TEST(WireRobustClientTest, AllOut) {
  const Decoder decode = ClientCall<AllOutResponse>([](WireClient& client,
                                                       AllOutResponse* r) {
    bool b;
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    double d;
    std::string s, by;
    Color c;
    absl::StatusOr<uint64_t> result = client.AllOut(
        &b, &i8, &i16, &i32, &i64, &u8, &u16, &u32, &u64, &f, &d, &s, &by, &c);
    if (!result.ok()) return result.status();
    r->set_result(*result);
    r->set_b(b);
    r->set_i8(i8);
    r->set_i16(i16);
    r->set_i32(i32);
    r->set_i64(i64);
    r->set_u8(u8);
    r->set_u16(u16);
    r->set_u32(u32);
    r->set_u64(u64);
    r->set_f(f);
    r->set_d(d);
    r->set_s(s);
    r->set_by(by);
    r->set_c(c);
    return absl::OkStatus();
  });
  for (const auto& c : ScalarCases()) {
    if (c.name == "large") continue;  // corrupting each of 1 MiB: too slow
    SCOPED_TRACE(c.name);
    const Scalars& s = c.value;
    AllOutResponse sample;
    sample.set_result(s.u64() ^ 1);
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
    ExpectDecodesLikeProtoc(sample, decode, kBad);
  }
}

TEST(WireRobustClientTest, InOut) {
  InOutResponse sample;
  sample.set_result(-1);
  sample.set_i8(127);
  sample.set_s(Utf8Text());
  sample.set_by(BinaryBytes());
  *sample.mutable_leaf() = MakeLeaf(-9, "nine");
  for (int32_t v : {1, -1, 0, 300}) sample.add_xs(v);
  sample.set_y(-32768);
  (*sample.mutable_m())["k"] = "v";
  (*sample.mutable_m())[""] = Utf8Text();
  sample.set_o(0);
  ExpectDecodesLikeProtoc(
      sample,
      ClientCall<InOutResponse>([](WireClient& client, InOutResponse* r) {
        int8_t i8 = 0;
        std::string s, by;
        Leaf leaf;
        std::vector<int32_t> xs;
        int16_t y = 0;
        std::map<std::string, std::string> m;
        std::optional<int32_t> o;
        absl::StatusOr<int64_t> result =
            client.InOut(&i8, 0, &s, &by, &leaf, &xs, &y, &m, &o);
        if (!result.ok()) return result.status();
        r->set_result(*result);
        r->set_i8(i8);
        r->set_s(s);
        r->set_by(by);
        *r->mutable_leaf() = leaf;
        for (int32_t v : xs) r->add_xs(v);
        r->set_y(y);
        for (const auto& [k, v] : m) (*r->mutable_m())[k] = v;
        if (o.has_value()) r->set_o(*o);
        return absl::OkStatus();
      }),
      kBad, [](Message* m) { static_cast<InOutResponse*>(m)->mutable_leaf(); });
}

TEST(WireRobustClientTest, EchoContainersAndTrees) {
  const Decoder containers = ClientCall<EchoContainersResponse>(
      [](WireClient& client, EchoContainersResponse* r) {
        absl::StatusOr<Containers> got = client.EchoContainers(Containers());
        if (!got.ok()) return got.status();
        *r->mutable_result() = *got;
        return absl::OkStatus();
      });
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    EchoContainersResponse sample;
    *sample.mutable_result() = c.value;
    ExpectDecodesLikeProtoc(sample, containers, kBad, [](Message* m) {
      static_cast<EchoContainersResponse*>(m)->mutable_result();
    });
  }
  const Decoder trees = ClientCall<EchoTreeResponse>(
      [](WireClient& client, EchoTreeResponse* r) {
        absl::StatusOr<Tree> got = client.EchoTree(Tree());
        if (!got.ok()) return got.status();
        *r->mutable_result() = *got;
        return absl::OkStatus();
      });
  for (const auto& c : TreeCases()) {
    SCOPED_TRACE(c.name);
    EchoTreeResponse sample;
    *sample.mutable_result() = c.value;
    ExpectDecodesLikeProtoc(sample, trees, kBad, [](Message* m) {
      static_cast<EchoTreeResponse*>(m)->mutable_result();
    });
  }
}

TEST(WireRobustClientTest, SequencesMapsOptionals) {
  SeqsResponse seqs;
  for (int32_t v : {0, -128, 127, -1}) seqs.add_result(v);
  for (uint32_t v : {0u, 65535u, 300u}) seqs.add_u16s(v);
  ExpectDecodesLikeProtoc(
      seqs, ClientCall<SeqsResponse>([](WireClient& client, SeqsResponse* r) {
        std::vector<uint16_t> u16s;
        absl::StatusOr<std::vector<int8_t>> got =
            client.Seqs({}, {}, {}, {}, {}, {}, {}, &u16s);
        if (!got.ok()) return got.status();
        for (int8_t v : *got) r->add_result(v);
        for (uint16_t v : u16s) r->add_u16s(v);
        return absl::OkStatus();
      }),
      kBad);

  MapsResponse maps;
  (*maps.mutable_result())[-32768] = 255;
  (*maps.mutable_result())[0] = 0;
  (*maps.mutable_e())[0] = "";
  (*maps.mutable_e())[~uint64_t{0}] = BinaryBytes();
  ExpectDecodesLikeProtoc(
      maps, ClientCall<MapsResponse>([](WireClient& client, MapsResponse* r) {
        std::map<uint64_t, std::string> e;
        absl::StatusOr<std::map<int16_t, uint8_t>> got =
            client.Maps({}, {}, {}, {}, &e);
        if (!got.ok()) return got.status();
        for (const auto& [k, v] : *got) (*r->mutable_result())[k] = v;
        for (const auto& [k, v] : e) (*r->mutable_e())[k] = v;
        return absl::OkStatus();
      }),
      kBad);

  const Decoder opts = ClientCall<OptsResponse>([](WireClient& client,
                                                   OptsResponse* r) {
    std::optional<double> f;
    std::optional<std::string> g;
    absl::StatusOr<std::optional<Leaf>> got =
        client.Opts(std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                    std::nullopt, &f, &g);
    if (!got.ok()) return got.status();
    if (got->has_value()) *r->mutable_result() = **got;
    if (f.has_value()) r->set_f(*f);
    if (g.has_value()) r->set_g(*g);
    return absl::OkStatus();
  });
  OptsResponse zero;
  zero.mutable_result();
  zero.set_f(-0.0);
  zero.set_g("");
  ExpectDecodesLikeProtoc(zero, opts, kBad);
  OptsResponse set;
  *set.mutable_result() = MakeLeaf(-1, Utf8Text());
  set.set_f(1.5);
  set.set_g(BinaryBytes());
  ExpectDecodesLikeProtoc(set, opts, kBad);
}

TEST(WireRobustClientTest, SingleValueResults) {
  TextResponse text;
  text.set_result(Utf8Text());
  ExpectDecodesLikeProtoc(
      text, ClientCall<TextResponse>([](WireClient& client, TextResponse* r) {
        absl::StatusOr<std::string> got = client.Text("");
        if (!got.ok()) return got.status();
        r->set_result(*got);
        return absl::OkStatus();
      }),
      kBad);
  BlobResponse blob;
  blob.set_result(BinaryBytes());
  ExpectDecodesLikeProtoc(
      blob, ClientCall<BlobResponse>([](WireClient& client, BlobResponse* r) {
        absl::StatusOr<std::string> got = client.Blob("");
        if (!got.ok()) return got.status();
        r->set_result(*got);
        return absl::OkStatus();
      }),
      kBad);
  MaybeTextResponse maybe;
  maybe.set_result("");
  ExpectDecodesLikeProtoc(
      maybe,
      ClientCall<MaybeTextResponse>([](WireClient& client, MaybeTextResponse* r) {
        absl::StatusOr<std::optional<std::string>> got = client.MaybeText(true);
        if (!got.ok()) return got.status();
        if (got->has_value()) r->set_result(**got);
        return absl::OkStatus();
      }),
      kBad);
  LeavesResponse leaves;
  leaves.add_result();
  *leaves.add_result() = MakeLeaf(-1, Utf8Text());
  ExpectDecodesLikeProtoc(
      leaves,
      ClientCall<LeavesResponse>([](WireClient& client, LeavesResponse* r) {
        absl::StatusOr<std::vector<Leaf>> got = client.Leaves(0);
        if (!got.ok()) return got.status();
        for (const Leaf& leaf : *got) *r->add_result() = leaf;
        return absl::OkStatus();
      }),
      kBad);
  PaintResponse paint;
  paint.set_result(DEEP);
  ExpectDecodesLikeProtoc(
      paint, ClientCall<PaintResponse>([](WireClient& client, PaintResponse* r) {
        absl::StatusOr<Color> got = client.Paint(BLACK);
        if (!got.ok()) return got.status();
        r->set_result(*got);
        return absl::OkStatus();
      }),
      kBad);
}

TEST(WireRobustClientTest, ContextHandles) {
  UseResponse sample;
  sample.set_result(0x8000000000000001);
  sample.set_t(1);
  sample.set_u(~uint64_t{0});
  sample.mutable_g()->set_session(7);
  sample.mutable_g()->set_note(Utf8Text());
  ExpectDecodesLikeProtoc(
      sample,
      [](const std::string& bytes, std::unique_ptr<Message>* got) {
        ContextsClient client(ReplyingChannel(bytes));
        Session t, u;
        Holder g;
        absl::StatusOr<Session> result = client.Use(Session(), &t, &u, Holder(), &g);
        if (!result.ok()) return result.status();
        auto r = std::make_unique<UseResponse>();
        r->set_result(result->wire_id());
        r->set_t(t.wire_id());
        r->set_u(u.wire_id());
        *r->mutable_g() = g;
        *got = std::move(r);
        return absl::OkStatus();
      },
      kBad, [](Message* m) { static_cast<UseResponse*>(m)->mutable_g(); });
}

// The first stream message the client reads of method `id`, or the call's
// status once it ended without one.
template <typename T, typename Open>
Decoder StreamRead(Open open) {
  return [open](const std::string& bytes, std::unique_ptr<Message>* got) {
    WireStreamsClient client(StreamingChannel({bytes}));
    auto stream = open(client);
    auto m = std::make_unique<T>();
    if (!stream.Read(m.get())) {
      absl::Status status = stream.Finish();
      return status.ok() ? absl::UnknownError("no message, status OK") : status;
    }
    *got = std::move(m);
    return absl::OkStatus();
  };
}

TEST(WireRobustClientTest, StreamMessages) {
  ExpectDecodesLikeProtoc(
      ScalarCases()[1].value,
      StreamRead<Scalars>([](WireStreamsClient& c) { return c.Down("", 0); }), kBad);
  ExpectDecodesLikeProtoc(
      TreeCases()[1].value,
      StreamRead<Tree>([](WireStreamsClient& c) { return c.Both(); }), kBad);
  ExpectDecodesLikeProtoc(
      MakeLeaf(-1, Utf8Text()),
      StreamRead<Leaf>([](WireStreamsClient& c) { return c.LaterDown(0); }), kBad);
  UpResponse up;
  *up.mutable_result() = ContainerCases()[1].value;
  ExpectDecodesLikeProtoc(
      up,
      [](const std::string& bytes, std::unique_ptr<Message>* got) {
        WireStreamsClient client(StreamingChannel({bytes}));
        auto writer = client.Up();
        absl::StatusOr<Containers> reply = writer.Finish();
        if (!reply.ok()) return reply.status();
        auto r = std::make_unique<UpResponse>();
        *r->mutable_result() = *reply;
        *got = std::move(r);
        return absl::OkStatus();
      },
      kBad, [](Message* m) { static_cast<UpResponse*>(m)->mutable_result(); });
}

}  // namespace
}  // namespace lpc::codegen::wire
