// Calls every method of the code lpcc generates for testdata/test_streams.idl
// through the in-process transport: the three streaming kinds with
// synchronous and [async] handlers, an [async] unary method replied to from
// another thread, cancellation, and the checks on stream messages (narrow
// integers out of range, on either side).
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "codegen/streams_test_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::streams_test {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kWait = std::chrono::seconds(10);

class StreamingInProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(server_.RegisterService(&impl_), IsOk());
    auto transport = std::make_unique<InProcessTransport>("streams_test");
    InProcessTransport* raw = transport.get();
    ASSERT_THAT(server_.AddTransport(std::move(transport)), IsOk());
    ASSERT_THAT(server_.Start(), IsOk());
    channel_ = raw->NewChannel();
  }
  void TearDown() override { server_.Shutdown(); }

  StreamsImpl impl_;
  Server server_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(StreamingInProcessTest, ServerStreamingReadsEveryMessageInOrder) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("k", 3);
  std::vector<std::string> keys;
  s::Change c;
  while (watch.Read(&c)) {
    keys.push_back(c.key());
    EXPECT_EQ(c.value(), "v:" + c.key());
  }
  EXPECT_THAT(keys, ElementsAre("k0", "k1", "k2"));
  EXPECT_THAT(watch.Finish(), IsOk());
}

TEST_F(StreamingInProcessTest, ServerStreamingHandlerStatusEndsTheStream) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("fail", 1);
  s::Change c;
  ASSERT_TRUE(watch.Read(&c));
  EXPECT_EQ(c.key(), "fail0");
  EXPECT_FALSE(watch.Read(&c));
  EXPECT_THAT(watch.Finish(),
              StatusIs(absl::StatusCode::kNotFound, "no more under fail"));
}

TEST_F(StreamingInProcessTest, StreamMessageOutOfRangeFailsTheClient) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("bad", 2);
  s::Change c;
  EXPECT_FALSE(watch.Read(&c));
  EXPECT_THAT(watch.Finish(),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("malformed reply from "
                                 "lpc.codegen.streams.Streams.Watch: "
                                 "message.kind: value out of range for uint8")));
}

TEST_F(StreamingInProcessTest, CancelReachesAServerStreamingHandler) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("forever", 0);
  s::Change c;
  ASSERT_TRUE(watch.Read(&c));
  ASSERT_TRUE(watch.Read(&c));
  watch.Cancel();
  EXPECT_THAT(watch.Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(WaitFor([&] { return impl_.watch_saw_end.load(); }));
}

TEST_F(StreamingInProcessTest, ServerStreamingOfAnImportedStruct) {
  s::StreamsClient client(channel_);
  ClientReader<tt::Tag> tags = client.Tags();
  tt::Tag t;
  std::vector<std::string> keys;
  while (tags.Read(&t)) keys.push_back(t.key());
  EXPECT_THAT(keys, ElementsAre("tag0", "tag1"));
  EXPECT_THAT(tags.Finish(), IsOk());
}

TEST_F(StreamingInProcessTest, ClientStreamingSumsTheSamples) {
  s::StreamsClient client(channel_);
  ClientWriter<s::Sample, s::Summary> upload = client.Upload();
  for (int i = 1; i <= 4; ++i) {
    s::Sample sample;
    sample.set_value(i);
    sample.set_weight(2);
    ASSERT_TRUE(upload.Write(sample));
  }
  absl::StatusOr<s::Summary> summary = upload.Finish();
  ASSERT_THAT(summary.status(), IsOk());
  EXPECT_EQ(summary->count(), 4u);
  EXPECT_EQ(summary->total(), 20.0);
}

TEST_F(StreamingInProcessTest, ClientStreamMessageOutOfRangeFailsTheCall) {
  s::StreamsClient client(channel_);
  ClientWriter<s::Sample, s::Summary> upload = client.Upload();
  s::Sample sample;
  sample.set_weight(40000);  // int16 in the IDL.
  upload.Write(sample);
  EXPECT_THAT(upload.Finish().status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("message.weight: value out of range for "
                                 "int16")));
}

TEST_F(StreamingInProcessTest, VoidClientStreamingReplies) {
  s::StreamsClient client(channel_);
  ClientWriter<s::Frame, s::StreamsClient::DrainResult> drain = client.Drain();
  ASSERT_TRUE(drain.Write(MakeFrame(1, "abc")));
  ASSERT_TRUE(drain.Write(MakeFrame(2, "de")));
  EXPECT_THAT(drain.Finish().status(), IsOk());
  EXPECT_EQ(impl_.drained.load(), 5u);
}

TEST_F(StreamingInProcessTest, BidiStreamingInterleaves) {
  s::StreamsClient client(channel_);
  ClientReaderWriter<s::Frame, s::Frame> process = client.Process();
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(process.Write(MakeFrame(i, "ab" + std::to_string(i))));
    s::Frame back;
    ASSERT_TRUE(process.Read(&back));
    EXPECT_EQ(back.seq(), i);
    EXPECT_EQ(back.data(), std::to_string(i) + "ba");
  }
  process.WritesDone();
  s::Frame back;
  EXPECT_FALSE(process.Read(&back));
  EXPECT_THAT(process.Finish(), IsOk());
}

TEST_F(StreamingInProcessTest, AsyncUnaryRepliesFromAnotherThread) {
  s::StreamsClient client(channel_);
  auto first = client.AddFuture(2, 3);
  auto second = client.AddFuture(10, 20);
  // Both calls are parked in the handler; nothing holds a worker.
  ASSERT_TRUE(WaitFor([&] { return impl_.PendingAdds() == 2; }));
  EXPECT_EQ(first.wait_for(std::chrono::milliseconds(0)),
            std::future_status::timeout);
  absl::StatusOr<int32_t> n = client.Count("abcd");  // Others complete.
  ASSERT_THAT(n.status(), IsOk());
  EXPECT_EQ(*n, 4);
  EXPECT_EQ(impl_.ReplyToAdds(), 2u);
  ASSERT_EQ(first.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<s::StreamsClient::AddResult> r = first.get();
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->value, 5);
  absl::StatusOr<s::StreamsClient::AddResult> r2 = second.get();
  ASSERT_THAT(r2.status(), IsOk());
  EXPECT_EQ(r2->value, 30);
}

TEST_F(StreamingInProcessTest, AsyncUnaryDroppedCallIsInternal) {
  s::StreamsClient client(channel_);
  EXPECT_THAT(client.Add(-1, 0).status(),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("handler dropped the call")));
}

TEST_F(StreamingInProcessTest, AsyncServerStreaming) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> tail = client.Tail("t");
  std::vector<std::string> keys;
  s::Change c;
  while (tail.Read(&c)) keys.push_back(c.key());
  EXPECT_THAT(keys, ElementsAre("t0", "t1", "t2"));
  EXPECT_THAT(tail.Finish(), IsOk());
}

TEST_F(StreamingInProcessTest, AsyncClientStreaming) {
  s::StreamsClient client(channel_);
  ClientWriter<s::Sample, s::Summary> collect = client.Collect();
  for (int i = 1; i <= 3; ++i) {
    s::Sample sample;
    sample.set_value(i);
    ASSERT_TRUE(collect.Write(sample));
  }
  absl::StatusOr<s::Summary> summary = collect.Finish();
  ASSERT_THAT(summary.status(), IsOk());
  EXPECT_EQ(summary->count(), 3u);
  EXPECT_EQ(summary->total(), 6.0);
}

TEST_F(StreamingInProcessTest, AsyncBidiStreaming) {
  s::StreamsClient client(channel_);
  ClientReaderWriter<s::Frame, s::Frame> echo = client.Echo();
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(echo.Write(MakeFrame(i, "x")));
    s::Frame back;
    ASSERT_TRUE(echo.Read(&back));
    EXPECT_EQ(back.seq(), i);
  }
  echo.WritesDone();
  s::Frame back;
  EXPECT_FALSE(echo.Read(&back));
  EXPECT_THAT(echo.Finish(), IsOk());
}

TEST_F(StreamingInProcessTest, ParametersNamedLikeTheGeneratedOnes) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> names = client.Names("w", "c");
  s::Change c;
  ASSERT_TRUE(names.Read(&c));
  EXPECT_EQ(c.key(), "w/c");
  EXPECT_FALSE(names.Read(&c));
  EXPECT_THAT(names.Finish(), IsOk());
  // [async] with an [in, out] parameter: an input of the handler, an
  // output of its reply.
  std::string note = "hi";
  absl::StatusOr<int32_t> doubled = client.Calls(21, &note);
  ASSERT_THAT(doubled.status(), IsOk());
  EXPECT_EQ(*doubled, 42);
  EXPECT_EQ(note, "hi!");
}

TEST_F(StreamingInProcessTest, UnaryMethodBesideStreamsStillDispatches) {
  s::StreamsClient client(channel_);
  absl::StatusOr<int32_t> n = client.Count("xyz");
  ASSERT_THAT(n.status(), IsOk());
  EXPECT_EQ(*n, 3);
}

}  // namespace
}  // namespace lpc::codegen::streams_test
