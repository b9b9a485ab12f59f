// Tests of the lpc <-> gRPC mapping functions.
#include "transports/grpc/mapping.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::grpc_transport {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(StatusMappingTest, EveryCanonicalCodeRoundTripsWithItsMessage) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status original(static_cast<absl::StatusCode>(code),
                          absl::StrCat("message ", code));
    grpc::Status g = ToGrpcStatus(original);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), absl::StrCat("message ", code));
    EXPECT_EQ(FromGrpcStatus(g), original);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusMappingTest, OutOfRangeCodesBecomeUnknown) {
  grpc::Status g(static_cast<grpc::StatusCode>(99), "odd");
  EXPECT_THAT(FromGrpcStatus(g), StatusIs(absl::StatusCode::kUnknown, "odd"));
  absl::Status a(static_cast<absl::StatusCode>(42), "odd");
  EXPECT_EQ(ToGrpcStatus(a).error_code(), grpc::StatusCode::UNKNOWN);
}

TEST(MetadataTest, ReservedKeys) {
  EXPECT_TRUE(IsReservedMetadataKey("lpc-interface-uuid"));
  EXPECT_TRUE(IsReservedMetadataKey("grpc-timeout"));
  EXPECT_TRUE(IsReservedMetadataKey(":authority"));
  EXPECT_TRUE(IsReservedMetadataKey("user-agent"));
  EXPECT_TRUE(IsReservedMetadataKey("content-type"));
  EXPECT_TRUE(IsReservedMetadataKey(""));
  EXPECT_FALSE(IsReservedMetadataKey("x-user"));
  EXPECT_FALSE(IsReservedMetadataKey("trace-bin"));
}

TEST(MetadataTest, Validation) {
  EXPECT_OK(ValidateMetadataEntry("x-user_1.a", "alice smith"));
  EXPECT_OK(ValidateMetadataEntry("trace-bin", std::string("\0\xff\n", 3)));
  EXPECT_THAT(ValidateMetadataEntry("X-User", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("X-User")));
  EXPECT_THAT(ValidateMetadataEntry("a b", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateMetadataEntry("", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateMetadataEntry("x-user", "line\nbreak"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-bin")));
}

TEST(VersionTest, FormatAndParse) {
  EXPECT_EQ(FormatVersion({1, 2}), "1.2");
  auto v = ParseVersion("1.2");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 1u);
  EXPECT_EQ(v->minor, 2u);
  v = ParseVersion("4294967295.0");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 4294967295u);
  for (const char* bad : {"", "1", "1.", ".2", "1.2.3", "a.b", "-1.2", "1.-2",
                          "4294967296.0", "99999999999.1", " 1.2"}) {
    EXPECT_FALSE(ParseVersion(bad).has_value()) << bad;
  }
}

TEST(MethodPathTest, Parse) {
  auto p = ParseMethodPath("/example.calc.Calculator/Add");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->interface_name, "example.calc.Calculator");
  EXPECT_EQ(p->method_name, "Add");
  for (const char* bad : {"", "/", "//", "/a/", "//b", "a/b", "/a/b/c", "/ab"}) {
    EXPECT_FALSE(ParseMethodPath(bad).has_value()) << bad;
  }
}

TEST(ByteBufferTest, RoundTripWithoutLoss) {
  std::string bytes("a\0b\xff", 4);
  grpc::ByteBuffer buffer = ToByteBuffer(bytes);
  std::string out = "stale";
  ASSERT_OK(FromByteBuffer(buffer, &out));
  EXPECT_EQ(out, bytes);
  grpc::ByteBuffer empty = ToByteBuffer("");
  ASSERT_OK(FromByteBuffer(empty, &out));
  EXPECT_EQ(out, "");
}

// Large messages travel without a copy (the slice holds the string), small
// ones copied; received messages in several slices are joined in order.
TEST(ByteBufferTest, LargeAndMultiSliceBuffers) {
  std::string large(1 << 20, 'x');
  large[12345] = '\0';
  large.back() = 'y';
  grpc::ByteBuffer buffer = ToByteBuffer(large);
  EXPECT_EQ(buffer.Length(), large.size());
  std::string out;
  ASSERT_OK(FromByteBuffer(buffer, &out));
  EXPECT_EQ(out, large);

  grpc::Slice parts[] = {grpc::Slice("ab", 2), grpc::Slice(std::string(5000, 'c')),
                         grpc::Slice("d", 1)};
  grpc::ByteBuffer multi(parts, 3);
  ASSERT_OK(FromByteBuffer(multi, &out));
  EXPECT_EQ(out, "ab" + std::string(5000, 'c') + "d");
}

// A writer that fills its bytes with a pattern, and may name a buffer field.
class PatternWriter final : public MessageWriter {
 public:
  explicit PatternWriter(size_t size, Buffer* buffer = nullptr)
      : size_(size) {
    if (buffer != nullptr) field_ = BufferField{7, buffer};
  }
  size_t size() const override { return size_; }
  void WriteTo(uint8_t* dst) const override {
    for (size_t i = 0; i < size_; ++i) dst[i] = static_cast<uint8_t>(i * 7);
  }
  const BufferField* buffer() const override {
    return field_.buffer != nullptr ? &field_ : nullptr;
  }

 private:
  size_t size_;
  BufferField field_;
};

// The message writes itself into one slice of exactly its size, small or
// large; a buffer field is appended as the serialized form has it.
TEST(ByteBufferTest, WritersFillOneSlice) {
  for (size_t size : {size_t{0}, size_t{5}, size_t{64}, size_t{100000}}) {
    PatternWriter writer(size);
    grpc::ByteBuffer buffer = WriteToByteBuffer(writer);
    grpc::Slice slice;
    ASSERT_TRUE(buffer.TrySingleSlice(&slice).ok()) << size;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(slice.begin()),
                          slice.size()),
              SerializeToString(writer))
        << size;
  }
  Buffer extra = Buffer::Heap(3);
  extra.data()[0] = 'x';
  PatternWriter with_buffer(10, &extra);
  grpc::ByteBuffer buffer = WriteToByteBuffer(with_buffer);
  std::string out;
  ASSERT_OK(FromByteBuffer(buffer, &out));
  EXPECT_EQ(out, SerializeToString(with_buffer));
  EXPECT_EQ(out.size(), 10u + 2u + 3u);  // Tag, length, bytes.
}

// A received message in one slice is viewed where it is (the slice keeps
// it); one in several slices is copied into one string, in order.
TEST(ByteBufferTest, ReceivedMessagesViewOneSliceAndJoinSeveral) {
  grpc::Slice one("hello", 5);
  grpc::ByteBuffer single(&one, 1);
  grpc::Slice held;
  ReceivedMessage message;
  ASSERT_OK(ReceiveByteBuffer(single, &held, &message));
  EXPECT_EQ(message.bytes(), "hello");
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(message.bytes().data()),
            held.begin());
  // Retaining a view without an owner copies the bytes.
  std::shared_ptr<const void> kept = message.Retain();
  EXPECT_NE(kept, nullptr);
  EXPECT_EQ(message.bytes(), "hello");
  EXPECT_NE(reinterpret_cast<const uint8_t*>(message.bytes().data()),
            held.begin());

  grpc::Slice parts[] = {grpc::Slice("ab", 2), grpc::Slice("cd", 2)};
  grpc::ByteBuffer multi(parts, 2);
  ReceivedMessage joined;
  ASSERT_OK(ReceiveByteBuffer(multi, &held, &joined));
  EXPECT_EQ(joined.bytes(), "abcd");
}

TEST(DeadlineTest, InfiniteAndFinite) {
  EXPECT_EQ(ToGrpcDeadline(absl::InfiniteFuture()),
            std::chrono::system_clock::time_point::max());
  EXPECT_EQ(FromGrpcDeadline(std::chrono::system_clock::time_point::max()),
            absl::InfiniteFuture());
  absl::Time t = absl::FromUnixMillis(1700000000123);
  EXPECT_EQ(FromGrpcDeadline(ToGrpcDeadline(t)), t);
}

}  // namespace
}  // namespace lpc::grpc_transport
