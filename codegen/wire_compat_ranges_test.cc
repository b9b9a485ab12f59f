// The stubs' range checks, which refuse values protoc accepts: the .proto
// carries int8/int16 as int32 and uint8/uint16 as uint32, so a stock peer
// may send 128 for an int8. At every position a narrow integer takes in
// testdata/wire_compat.idl (parameter, [in, out], result, sequence
// element, map key and value, optional, struct field at depth, handle
// method, stream request and element, [async] method), each bound and the
// values just past it, and the widest values of the wire type: in range it
// decodes, out of range the server fails with INVALID_ARGUMENT and the
// client with INTERNAL, naming the field.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_service.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_variants.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::wire {
namespace {

using ::google::protobuf::Message;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::lpc::wire_testing::CapturingChannel;
using ::lpc::wire_testing::DispatchBytes;
using ::lpc::wire_testing::ReplyingChannel;
using ::lpc::wire_testing::FakeServerStream;
using ::lpc::wire_testing::NarrowInRange;
using ::lpc::wire_testing::RecordingWire;
using ::lpc::wire_testing::Serialize;
using ::testing::HasSubstr;

enum class Kind { kI8, kI16, kU8, kU16 };

// Bounds, the values past them, and the widest of the wire type.
std::vector<int64_t> Probes(Kind kind) {
  switch (kind) {
    case Kind::kI8:
      return {-128, 127, -129, 128, INT32_MIN, INT32_MAX};
    case Kind::kI16:
      return {-32768, 32767, -32769, 32768, INT32_MIN, INT32_MAX};
    case Kind::kU8:
      return {0, 255, 256, UINT32_MAX};
    case Kind::kU16:
      return {0, 65535, 65536, UINT32_MAX};
  }
  return {};
}

// A message of type `type` from `text`, "{}" replaced by `v`.
std::unique_ptr<Message> Make(const std::string& type, std::string text, int64_t v) {
  const google::protobuf::Descriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
          "lpc.codegen.wire." + type);
  EXPECT_NE(d, nullptr) << type;
  std::unique_ptr<Message> m(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(d)->New());
  text.replace(text.find("{}"), 2, std::to_string(v));
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, m.get())) << text;
  return m;
}

struct Position {
  std::string what;   // names the field in the error
  uint32_t method;
  std::string type;   // the message type
  std::string text;   // its text format, "{}" for the value
  Kind kind;
};

// Runs `decode` on each probe of each position; checks the outcome.
void Probe(const std::vector<Position>& positions, absl::StatusCode error,
           const std::function<absl::Status(const Position&, const std::string&)>& decode) {
  for (const Position& p : positions) {
    for (int64_t v : Probes(p.kind)) {
      SCOPED_TRACE(p.type + " " + p.text + ", {} = " + std::to_string(v));
      std::unique_ptr<Message> m = Make(p.type, p.text, v);
      std::string bad;
      const bool in_range = NarrowInRange(*m, &bad);
      const absl::Status status = decode(p, Serialize(*m));
      if (in_range) {
        EXPECT_THAT(status, IsOk());
      } else {
        EXPECT_THAT(status, StatusIs(error, HasSubstr(p.what)));
      }
    }
  }
}

TEST(WireRangesTest, ServerRefusesOutOfRangeRequests) {
  const std::vector<Position> positions = {
      {"i8", 2, "AllInRequest", "i8: {}", Kind::kI8},
      {"i16", 2, "AllInRequest", "i16: {}", Kind::kI16},
      {"u8", 2, "AllInRequest", "u8: {}", Kind::kU8},
      {"u16", 2, "AllInRequest", "u16: {}", Kind::kU16},
      {"i8", 4, "InOutRequest", "i8: {}", Kind::kI8},
      {"i8s", 6, "SeqsRequest", "i8s: [1, {}, 2]", Kind::kI8},
      {"d", 7, "MapsRequest", "d { key: {} value: RED }", Kind::kU8},
      {"e", 8, "OptsRequest", "e: {}", Kind::kU8},
      {"x", 10, "FireRequest", "x: {}", Kind::kI16},
      {"u8", 1, "EchoScalarsRequest", "s { u8: {} }", Kind::kU8},
      {"i8s", 5, "EchoContainersRequest", "c { i8s: {} }", Kind::kI8},
      {"u16s", 5, "EchoContainersRequest", "c { u16s: [0, {}] }", Kind::kU16},
      {"narrow_map", 5, "EchoContainersRequest", "c { narrow_map { key: {} value: 1 } }", Kind::kI8},
      {"narrow_map", 5, "EchoContainersRequest", "c { narrow_map { key: 1 value: {} } }", Kind::kU8},
      {"wide_map", 5, "EchoContainersRequest", "c { wide_map { key: {} value: 1 } }", Kind::kU16},
      {"wide_map", 5, "EchoContainersRequest", "c { wide_map { key: 1 value: {} } }", Kind::kI16},
      {"opt_i8", 5, "EchoContainersRequest", "c { opt_i8: {} }", Kind::kI8},
      {"opt_u16", 5, "EchoContainersRequest", "c { opt_u16: {} }", Kind::kU16},
      {"i16", 5, "EchoContainersRequest", "c { scalars { i16: {} } }", Kind::kI16},
      {"weight", 9, "EchoTreeRequest",
       "t { forest { key: \"a\" value { root { kids { kids { weight: {} } } } } } }",
       Kind::kI16},
      {"weight", 9, "EchoTreeRequest", "t { next { next { root { weight: {} } } } }",
       Kind::kI16},
  };
  Probe(positions, absl::StatusCode::kInvalidArgument,
        [](const Position& p, const std::string& bytes) {
          RecordingWire service;
          return DispatchBytes(service, p.method, bytes);
        });
}

class NullHandles final : public HandlesService {
 public:
  absl::StatusOr<Carrier> Pass(CallContext&, const Fd&, const Carrier&,
                               std::optional<Fd>*, Fd*, const std::vector<Fd>&,
                               int16_t) override {
    return Carrier();
  }
  void Drop(CallContext&, const Fd&, int32_t) override {}
};

class NullStreams final : public WireStreamsService {
 public:
  absl::Status Down(CallContext&, const std::string&, int8_t,
                    ServerWriter<Scalars>&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<Containers> Up(CallContext&, ServerReader<Leaf>&) override {
    return Containers();
  }
  absl::Status Both(CallContext&, ServerReaderWriter<Tree, Scalars>& s) override {
    Scalars m;
    while (s.Read(&m)) {
    }
    return absl::OkStatus();
  }
  void Later(AsyncUnaryCall<LaterResult> call, int8_t, const std::string&) override {
    call.Reply(LaterResult{});
  }
  void LaterDown(AsyncServerStream<Leaf> call, int16_t) override {
    call.Finish(absl::OkStatus());
  }
  absl::Status Sink(CallContext&, ServerReader<Leaf>&) override {
    return absl::OkStatus();
  }
};

TEST(WireRangesTest, ServerRefusesOutOfRangeHandleAndStreamMessages) {
  Probe({{"n", 1, "PassRequest", "n: {}", Kind::kI16},
         {"tag", 1, "PassRequest", "c { tag: {} }", Kind::kI8}},
        absl::StatusCode::kInvalidArgument,
        [](const Position& p, const std::string& bytes) {
          NullHandles service;
          return DispatchBytes(service, p.method, bytes);
        });
  Probe({{"n", 1, "DownRequest", "n: {}", Kind::kI8},
         {"u16", 3, "Scalars", "u16: {}", Kind::kU16},
         {"x", 4, "LaterRequest", "x: {}", Kind::kI8},
         {"n", 5, "LaterDownRequest", "n: {}", Kind::kI16}},
        absl::StatusCode::kInvalidArgument,
        [](const Position& p, const std::string& bytes) {
          NullStreams service;
          auto call = std::make_shared<FakeServerStream>(std::vector<std::string>{bytes});
          service.StartCall(p.method, call);
          std::optional<absl::Status> status = call->status();
          return status.has_value() ? *status : absl::UnknownError("not ended");
        });
}

TEST(WireRangesTest, ClientRefusesOutOfRangeReplies) {
  const std::vector<Position> positions = {
      {"i8", 3, "AllOutResponse", "i8: {}", Kind::kI8},
      {"i16", 3, "AllOutResponse", "i16: {}", Kind::kI16},
      {"u8", 3, "AllOutResponse", "u8: {}", Kind::kU8},
      {"u16", 3, "AllOutResponse", "u16: {}", Kind::kU16},
      {"i8", 4, "InOutResponse", "i8: {}", Kind::kI8},
      {"y", 4, "InOutResponse", "y: {}", Kind::kI16},
      {"return value", 6, "SeqsResponse", "result: [{}]", Kind::kI8},
      {"u16s", 6, "SeqsResponse", "u16s: [1, {}]", Kind::kU16},
      {"key", 7, "MapsResponse", "result { key: {} value: 1 }", Kind::kI16},
      {"return value", 7, "MapsResponse", "result { key: 1 value: {} }", Kind::kU8},
      {"opt_u16", 5, "EchoContainersResponse", "result { opt_u16: {} }", Kind::kU16},
      {"u8", 5, "EchoContainersResponse", "result { scalars { u8: {} } }", Kind::kU8},
      {"weight", 9, "EchoTreeResponse", "result { root { kids { weight: {} } } }", Kind::kI16},
  };
  Probe(positions, absl::StatusCode::kInternal,
        [](const Position& p, const std::string& bytes) {
          WireClient client(ReplyingChannel(bytes));
          switch (p.method) {
            case 3: {
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
              return client.AllOut(&b, &i8, &i16, &i32, &i64, &u8, &u16, &u32, &u64,
                                   &f, &d, &s, &by, &c).status();
            }
            case 4: {
              int8_t i8 = 0;
              std::string s, by;
              Leaf leaf;
              std::vector<int32_t> xs;
              int16_t y;
              std::map<std::string, std::string> m;
              std::optional<int32_t> o;
              return client.InOut(&i8, 0, &s, &by, &leaf, &xs, &y, &m, &o).status();
            }
            case 5:
              return client.EchoContainers(Containers()).status();
            case 6: {
              std::vector<uint16_t> u16s;
              return client.Seqs({}, {}, {}, {}, {}, {}, {}, &u16s).status();
            }
            case 7: {
              std::map<uint64_t, std::string> e;
              return client.Maps({}, {}, {}, {}, &e).status();
            }
            case 9:
              return client.EchoTree(Tree()).status();
          }
          return absl::UnknownError("no such method");
        });
}

TEST(WireRangesTest, ClientRefusesOutOfRangeStreamMessages) {
  Probe({{"u16", 1, "Scalars", "u16: {}", Kind::kU16},
         {"weight", 3, "Tree", "root { weight: {} }", Kind::kI16},
         {"return value", 4, "LaterResponse", "result: {}", Kind::kI8}},
        absl::StatusCode::kInternal,
        [](const Position& p, const std::string& bytes) {
          auto channel = std::make_shared<CapturingChannel>();
          WireStreamsClient client(channel);
          if (p.method == 4) {
            channel->QueueReply(bytes);
            std::string note;
            return client.Later(0, &note).status();
          }
          channel->QueueStream({bytes});
          if (p.method == 1) {
            auto reader = client.Down("", 0);
            Scalars m;
            const bool got = reader.Read(&m);
            absl::Status status = reader.Finish();
            return got && status.ok() ? absl::OkStatus() : status;
          }
          auto both = client.Both();
          Tree m;
          const bool got = both.Read(&m);
          absl::Status status = both.Finish();
          return got && status.ok() ? absl::OkStatus() : status;
        });
}

}  // namespace
}  // namespace lpc::codegen::wire
