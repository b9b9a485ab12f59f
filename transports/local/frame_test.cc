// Tests for the frame codec and the control-packet codec.
#include "transports/local/frame.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<std::byte> Record(const FrameHeader& h, size_t payload) {
  std::vector<std::byte> r(sizeof(h) + payload, std::byte{1});
  std::memcpy(r.data(), &h, sizeof(h));
  return r;
}

FrameHeader Request(uint32_t payload) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize + payload;
  h.type = static_cast<uint8_t>(MessageType::kRequest);
  h.message_id = 42;
  h.deadline_ns = 1000;
  h.interface_slot = 1;
  h.method_id = 3;
  h.payload_length = payload;
  return h;
}

TEST(FrameTest, ValidRequestDecodes) {
  ASSERT_OK_AND_ASSIGN(FrameHeader h, DecodeFrame(Record(Request(5), 5), {}));
  EXPECT_EQ(h.message_id, 42u);
  EXPECT_EQ(h.method_id, 3u);
}

TEST(FrameTest, EachBadFieldIsNamed) {
  struct Case {
    const char* field;
    void (*mutate)(FrameHeader&);
  };
  const Case cases[] = {
      {"record_size", [](FrameHeader& h) { h.record_size += 1; }},
      {"type", [](FrameHeader& h) { h.type = 0; }},
      {"type", [](FrameHeader& h) { h.type = 99; }},
      {"payload_mode", [](FrameHeader& h) { h.payload_mode = 3; }},
      {"flags", [](FrameHeader& h) { h.flags = 0x8000; }},
      {"handle_count", [](FrameHeader& h) { h.handle_count = 254; }},
      {"payload_length", [](FrameHeader& h) { h.payload_length = 4; }},
      {"payload_ref", [](FrameHeader& h) { h.payload_ref = 4; }},
      {"deadline_ns", [](FrameHeader& h) { h.deadline_ns = -5; }},
      {"status_code", [](FrameHeader& h) { h.status_code = 3; }},
  };
  for (const Case& c : cases) {
    FrameHeader h = Request(5);
    c.mutate(h);
    EXPECT_THAT(DecodeFrame(Record(h, 5), {}),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.field)))
        << c.field;
  }
}

TEST(FrameTest, HandleCountOnlyOnCallsAndReplies) {
  FrameHeader h = Request(5);
  h.handle_count = kMaxHandlesHardLimit;
  EXPECT_TRUE(DecodeFrame(Record(h, 5), {}).ok());
  h.type = static_cast<uint8_t>(MessageType::kCancel);
  h.payload_length = 0;
  h.record_size = kFrameHeaderSize;
  h.interface_slot = h.method_id = 0;
  h.deadline_ns = 0;
  EXPECT_THAT(DecodeFrame(Record(h, 0), {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("handle_count")));
  FrameHeader m = Request(5);
  m.type = static_cast<uint8_t>(MessageType::kStreamOpen);
  m.handle_count = 1;
  EXPECT_THAT(DecodeFrame(Record(m, 5), {}),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("stream records carry no descriptors")));
}

TEST(FrameTest, HandlesPacketRoundTripsAndChecksItsCount) {
  const std::string p = EncodeHandlesPacket(42, 3);
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p.data()),
                          p.size()),
      &body);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(*type, ControlType::kHandles);
  absl::StatusOr<HandlesBody> b = DecodeHandlesBody(body, 3);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->message_id, 42u);
  EXPECT_EQ(b->count, 3u);
  EXPECT_THAT(DecodeHandlesBody(body, 2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("announces 3")));
  EXPECT_THAT(DecodeHandlesBody(body.subspan(1), 3),
              StatusIs(absl::StatusCode::kDataLoss));
  const std::string zero = EncodeHandlesPacket(0, 1);
  ASSERT_TRUE(DecodeControlHeader(
                  absl::MakeConstSpan(
                      reinterpret_cast<const std::byte*>(zero.data()),
                      zero.size()),
                  &body)
                  .ok());
  EXPECT_THAT(DecodeHandlesBody(body, 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("id 0")));
}

TEST(FrameTest, ShortRecordIsRejected) {
  std::vector<std::byte> r(20);
  EXPECT_THAT(DecodeFrame(r, {}), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(FrameTest, OutOfLinePayloadRules) {
  FrameHeader h = Request(0);
  h.payload_mode = static_cast<uint8_t>(PayloadMode::kDataArea);
  h.payload_length = 5000;
  h.payload_ref = 128;
  EXPECT_OK(DecodeFrame(Record(h, 0), {}).status());
  h.payload_length = 0;
  EXPECT_THAT(DecodeFrame(Record(h, 0), {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_length")));
  h.payload_length = 100 << 20;
  FrameLimits limits;
  limits.max_payload = 64 << 20;
  EXPECT_THAT(DecodeFrame(Record(h, 0), limits),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_length")));
}

TEST(FrameTest, ReplyRules) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize + 3;
  h.type = static_cast<uint8_t>(MessageType::kReply);
  h.status_code = 5;
  h.payload_length = 3;
  EXPECT_OK(DecodeFrame(Record(h, 3), {}).status());
  h.status_code = 17;
  EXPECT_THAT(DecodeFrame(Record(h, 3), {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("status_code")));
  h.status_code = 0;
  h.deadline_ns = 5;
  EXPECT_THAT(DecodeFrame(Record(h, 3), {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("deadline_ns")));
}

TEST(FrameTest, CancelCarriesNoPayload) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize + 1;
  h.type = static_cast<uint8_t>(MessageType::kCancel);
  h.payload_length = 1;
  EXPECT_THAT(DecodeFrame(Record(h, 1), {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_length")));
}

TEST(FrameTest, Directions) {
  EXPECT_TRUE(IsClientToServer(MessageType::kRequest));
  EXPECT_TRUE(IsClientToServer(MessageType::kCancel));
  EXPECT_FALSE(IsClientToServer(MessageType::kReply));
  EXPECT_FALSE(IsClientToServer(MessageType::kBindReply));
}

TEST(FrameTest, StreamDirections) {
  EXPECT_TRUE(IsClientToServer(MessageType::kStreamOpen));
  EXPECT_FALSE(IsServerToClient(MessageType::kStreamOpen));
  EXPECT_TRUE(IsClientToServer(MessageType::kHalfClose));
  EXPECT_FALSE(IsServerToClient(MessageType::kHalfClose));
  EXPECT_FALSE(IsClientToServer(MessageType::kStreamFinish));
  EXPECT_TRUE(IsServerToClient(MessageType::kStreamFinish));
  for (MessageType both : {MessageType::kStreamMessage,
                           MessageType::kWindowUpdate}) {
    EXPECT_TRUE(IsClientToServer(both));
    EXPECT_TRUE(IsServerToClient(both));
  }
}

FrameHeader StreamRecord(MessageType type, uint32_t payload) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize + payload;
  h.type = static_cast<uint8_t>(type);
  h.message_id = 7;
  h.payload_length = payload;
  return h;
}

TEST(FrameTest, StreamRecordRules) {
  // Valid forms.
  FrameHeader open = StreamRecord(MessageType::kStreamOpen, 16);
  open.interface_slot = 1;
  open.method_id = 2;
  open.deadline_ns = 1000;
  open.flags = kFlagMetadata;
  EXPECT_OK(DecodeFrame(Record(open, 16), {}).status());
  EXPECT_OK(DecodeFrame(Record(StreamRecord(MessageType::kStreamMessage, 0), 0),
                        {})
                .status());
  EXPECT_OK(
      DecodeFrame(Record(StreamRecord(MessageType::kHalfClose, 0), 0), {})
          .status());
  EXPECT_OK(
      DecodeFrame(Record(StreamRecord(MessageType::kWindowUpdate, 16), 16), {})
          .status());
  FrameHeader finish = StreamRecord(MessageType::kStreamFinish, 5);
  finish.status_code = 9;
  EXPECT_OK(DecodeFrame(Record(finish, 5), {}).status());

  struct Case {
    const char* field;
    FrameHeader h;
    size_t payload;
  };
  std::vector<Case> bad;
  bad.push_back({"payload_length", StreamRecord(MessageType::kStreamOpen, 8), 8});
  bad.push_back({"message_id", StreamRecord(MessageType::kStreamMessage, 3), 3});
  bad.back().h.message_id = 0;
  bad.push_back({"method_id", StreamRecord(MessageType::kStreamMessage, 3), 3});
  bad.back().h.method_id = 1;
  bad.push_back(
      {"interface_slot", StreamRecord(MessageType::kHalfClose, 0), 0});
  bad.back().h.interface_slot = 1;
  bad.push_back({"deadline_ns", StreamRecord(MessageType::kWindowUpdate, 16),
                 16});
  bad.back().h.deadline_ns = 1;
  bad.push_back({"payload_length", StreamRecord(MessageType::kHalfClose, 2), 2});
  bad.push_back(
      {"payload_length", StreamRecord(MessageType::kWindowUpdate, 17), 17});
  bad.push_back({"flags", StreamRecord(MessageType::kWindowUpdate, 16), 16});
  bad.back().h.flags = kFlagMetadata;
  bad.push_back({"flags", StreamRecord(MessageType::kHalfClose, 0), 0});
  bad.back().h.flags = kFlagMetadata;
  // A buffer travels only beside a REQUEST, ONEWAY or REPLY.
  bad.push_back({"flags", StreamRecord(MessageType::kStreamMessage, 0), 0});
  bad.back().h.flags = kFlagBuffer;
  bad.push_back({"status_code", StreamRecord(MessageType::kStreamMessage, 0), 0});
  bad.back().h.status_code = 2;
  bad.push_back(
      {"payload_length", StreamRecord(MessageType::kStreamFinish, 2000), 2000});
  bad.back().h.status_code = 2;
  bad.push_back({"payload_length", StreamRecord(MessageType::kStreamFinish, 4), 4});
  bad.push_back({"type", StreamRecord(MessageType::kStreamOpen, 16), 16});
  bad.back().h.type = 12;
  for (const Case& c : bad) {
    EXPECT_THAT(DecodeFrame(Record(c.h, c.payload), {}),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.field)))
        << c.field << " type " << int{c.h.type};
  }
}

TEST(FrameTest, StreamBodies) {
  std::string_view rest;
  std::string open = EncodeStreamOpenBody(64, 1 << 20) + "md";
  ASSERT_OK_AND_ASSIGN(StreamOpenBody b, DecodeStreamOpenBody(open, &rest));
  EXPECT_EQ(b.window_messages, 64u);
  EXPECT_EQ(b.window_bytes, 1u << 20);
  EXPECT_EQ(rest, "md");
  EXPECT_THAT(DecodeStreamOpenBody(EncodeStreamOpenBody(0, 5), &rest),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("window")));
  EXPECT_THAT(DecodeStreamOpenBody(EncodeStreamOpenBody(5, 0), &rest),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("window")));
  EXPECT_THAT(DecodeStreamOpenBody("short", &rest),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("short")));

  ASSERT_OK_AND_ASSIGN(WindowBody w,
                       DecodeWindowBody(EncodeWindowBody(kWindowCredits, 3, 9)));
  EXPECT_EQ(w.kind, kWindowCredits);
  EXPECT_EQ(w.messages, 3u);
  EXPECT_EQ(w.bytes, 9u);
  EXPECT_THAT(DecodeWindowBody(EncodeWindowBody(2, 3, 9)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("kind")));
  EXPECT_THAT(DecodeWindowBody("x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("size")));
}

TEST(ControlTest, StatusPacketRoundTrip) {
  std::string p = EncodeStatusPacket(ControlType::kRefused,
                                     absl::PermissionDeniedError("no uid 5"));
  absl::Span<const std::byte> body;
  ASSERT_OK_AND_ASSIGN(
      ControlType t,
      DecodeControlHeader(absl::MakeConstSpan(
                              reinterpret_cast<const std::byte*>(p.data()),
                              p.size()),
                          &body));
  EXPECT_EQ(t, ControlType::kRefused);
  EXPECT_THAT(DecodeStatusBody(body),
              StatusIs(absl::StatusCode::kPermissionDenied, "no uid 5"));
}

TEST(ControlTest, BadPacketsAreRejected) {
  std::string p = EncodeControl(ControlType::kHello, nullptr, 0);
  auto span = [](const std::string& s) {
    return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(s.data()),
                               s.size());
  };
  absl::Span<const std::byte> body;
  std::string bad = p;
  bad[0] ^= 1;
  EXPECT_THAT(DecodeControlHeader(span(bad), &body),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("magic")));
  bad = p;
  bad[4] = 77;
  EXPECT_THAT(DecodeControlHeader(span(bad), &body),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("type")));
  bad = p;
  bad[6] = 9;
  EXPECT_THAT(DecodeControlHeader(span(bad), &body),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("protocol version")));
  EXPECT_THAT(DecodeControlHeader(span(p.substr(0, 3)), &body),
              StatusIs(absl::StatusCode::kDataLoss));
  std::vector<std::byte> short_status(4);
  EXPECT_THAT(DecodeStatusBody(short_status),
              StatusIs(absl::StatusCode::kDataLoss));
}

absl::Span<const std::byte> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(s.data()),
                             s.size());
}

TEST(ControlTest, CancelPacketRoundTrip) {
  for (uint64_t id : {uint64_t{1}, uint64_t{42}, ~uint64_t{0}}) {
    const std::string p = EncodeCancelPacket(id);
    EXPECT_EQ(p.size(), sizeof(ControlHeader) + sizeof(CancelBody));
    absl::Span<const std::byte> body;
    ASSERT_OK_AND_ASSIGN(ControlType t, DecodeControlHeader(Bytes(p), &body));
    EXPECT_EQ(t, ControlType::kCancel);
    ASSERT_OK_AND_ASSIGN(uint64_t got, DecodeCancelBody(body));
    EXPECT_EQ(got, id);
  }
  // The wire layout: header {magic, type 6, version 1}, then the id (LE).
  const std::string p = EncodeCancelPacket(0x0102030405060708);
  ControlHeader h;
  std::memcpy(&h, p.data(), sizeof(h));
  EXPECT_EQ(h.magic, kControlMagic);
  EXPECT_EQ(h.type, 6);
  EXPECT_EQ(h.version, kProtocolVersion);
  EXPECT_EQ(static_cast<uint8_t>(p[8]), 0x08);
  EXPECT_EQ(static_cast<uint8_t>(p[15]), 0x01);
}

TEST(ControlTest, BadCancelBodiesAreRejected) {
  const std::string good = EncodeCancelPacket(7);
  const std::string body = good.substr(sizeof(ControlHeader));
  // Every size but 8, including empty and one byte too many.
  for (size_t n : {size_t{0}, size_t{1}, size_t{4}, size_t{7}}) {
    EXPECT_THAT(DecodeCancelBody(Bytes(body.substr(0, n))),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("CANCEL body")))
        << n;
  }
  EXPECT_THAT(DecodeCancelBody(Bytes(body + "x")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("9 bytes")));
  EXPECT_THAT(DecodeCancelBody(Bytes(body + body)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("CANCEL body")));
  // Id 0 never names a call.
  const std::string zero(sizeof(CancelBody), '\0');
  EXPECT_THAT(DecodeCancelBody(Bytes(zero)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("id 0")));
  // A type past kPoolReturn is still unknown.
  std::string next = good;
  next[4] = 12;
  absl::Span<const std::byte> b;
  EXPECT_THAT(DecodeControlHeader(Bytes(next), &b),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("type 12")));
}

TEST(ControlTest, PoolBodiesRoundTripAndBadOnesAreRejected) {
  const auto body_of = [](const std::string& packet) {
    absl::Span<const std::byte> body;
    EXPECT_TRUE(DecodeControlHeader(Bytes(packet), &body).ok());
    return body;
  };
  const std::string pool = EncodePoolPacket(PoolBody{1 << 20, 8, 0});
  ASSERT_TRUE(DecodePoolBody(body_of(pool), 1, 1).ok());
  EXPECT_EQ(DecodePoolBody(body_of(pool), 1, 1)->chunk_count, 8u);
  EXPECT_FALSE(DecodePoolBody(body_of(pool), 0, 1).ok());
  for (PoolBody bad : {PoolBody{1000, 8, 0}, PoolBody{4096, 7, 0},
                       PoolBody{4096, 0, 0}, PoolBody{4096, 2048, 0},
                       PoolBody{uint64_t{1} << 62, 16, 0},
                       PoolBody{4096, 2, 1}}) {
    EXPECT_THAT(DecodePoolBody(body_of(EncodePoolPacket(bad)), 1, 1),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  const std::string pb = EncodePoolBufferPacket(PoolBufferBody{7, 3, 1, 99});
  ASSERT_TRUE(DecodePoolBufferBody(body_of(pb), 0).ok());
  EXPECT_EQ(DecodePoolBufferBody(body_of(pb), 0)->chunk, 1u);
  EXPECT_FALSE(DecodePoolBufferBody(body_of(pb), 1).ok());
  for (PoolBufferBody bad : {PoolBufferBody{0, 3, 1, 99},
                             PoolBufferBody{7, 0, 1, 99},
                             PoolBufferBody{7, 3, 1, 0}}) {
    EXPECT_FALSE(
        DecodePoolBufferBody(body_of(EncodePoolBufferPacket(bad)), 0).ok());
  }
  const uint32_t chunks[] = {4, 5};
  const std::string ret = EncodePoolReturnPacket(chunks);
  ASSERT_TRUE(DecodePoolReturnBody(body_of(ret), 0).ok());
  EXPECT_EQ(*DecodePoolReturnBody(body_of(ret), 0),
            (std::vector<uint32_t>{4, 5}));
  EXPECT_FALSE(DecodePoolReturnBody(body_of(ret), 1).ok());
  std::string cut = ret.substr(0, ret.size() - 1);
  EXPECT_FALSE(DecodePoolReturnBody(body_of(cut), 0).ok());
  EXPECT_FALSE(
      DecodePoolReturnBody(body_of(EncodePoolReturnPacket({})), 0).ok());
}

TEST(ControlTest, BufferBodiesRoundTripAndBadOnesAreRejected) {
  BufferBody in{};
  in.message_id = 5;
  in.field_number = 2;
  in.offset = 4096;
  in.length = 100;
  const std::string packet = EncodeBufferPacket(in);
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(Bytes(packet), &body);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(*type, ControlType::kBuffer);
  ASSERT_OK_AND_ASSIGN(BufferBody out, DecodeBufferBody(body, 1));
  EXPECT_EQ(out.message_id, 5u);
  EXPECT_EQ(out.field_number, 2u);
  EXPECT_EQ(out.offset, 4096u);
  EXPECT_EQ(out.length, 100u);
  EXPECT_THAT(DecodeBufferBody(body, 0),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("0 descriptors")));
  EXPECT_THAT(DecodeBufferBody(body, 2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("2 descriptors")));
  EXPECT_THAT(DecodeBufferBody(body.subspan(1), 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("31 bytes")));
  const auto bad = [](BufferBody b) {
    const std::string p = EncodeBufferPacket(b);
    absl::Span<const std::byte> bb;
    EXPECT_TRUE(DecodeControlHeader(Bytes(p), &bb).ok());
    return DecodeBufferBody(bb, 1).status();
  };
  BufferBody b = in;
  b.message_id = 0;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("id 0")));
  b = in;
  b.reserved = 1;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("reserved")));
  b = in;
  b.field_number = 0;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("field")));
  b.field_number = uint32_t{1} << 29;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("field")));
  b = in;
  b.length = 0;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("range")));
  b.length = 2;
  b.offset = UINT64_MAX;
  EXPECT_THAT(bad(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("range")));
}

TEST(BindTest, RoundTripAndBadLengths) {
  BindRequest r{"calc.Calculator", "0123-uuid", 2, 1};
  const std::string enc = EncodeBindRequest(r);
  ASSERT_OK_AND_ASSIGN(BindRequest d, DecodeBindRequest(enc));
  EXPECT_EQ(d.full_name, r.full_name);
  EXPECT_EQ(d.uuid, r.uuid);
  EXPECT_EQ(d.major, 2u);
  EXPECT_EQ(d.minor, 1u);
  EXPECT_THAT(DecodeBindRequest(enc.substr(0, enc.size() - 1)),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeBindRequest("abc"), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace lpc::local
