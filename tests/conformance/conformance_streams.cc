// The streaming conformance cases; see StreamConformanceTest in
// conformance_suite.h.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "testing/status_matchers.h"
#include "tests/conformance/conformance.lpc.h"
#include "tests/conformance/conformance_suite.h"

namespace lpc::conformance {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;

// Streams the concurrency case keeps open at once on one channel. Under
// ThreadSanitizer gRPC stops making progress with many hundreds of calls
// pending on one connection (tests/async/async_handlers_test.cc).
#if defined(__SANITIZE_THREAD__)
constexpr int kConcurrentStreams = 100;
#else
constexpr int kConcurrentStreams = 1000;
#endif

// The deadline of a stream that must expire mid-stream: long enough for its
// first items to arrive on a loaded machine (under ThreadSanitizer, gRPC
// takes hundreds of milliseconds to start a stream there).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr absl::Duration kMidStreamDeadline = absl::Seconds(5);
#else
constexpr absl::Duration kMidStreamDeadline = absl::Seconds(1);
#endif

// Polls `done` until it is true or 10 s pass.
template <typename Pred>
bool Eventually(Pred done) {
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (absl::Now() < limit) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return done();
}

Item MakeItem(uint32_t seq, size_t size) {
  Item item;
  item.set_seq(seq);
  item.set_data(std::string(size, 'c'));
  return item;
}

uint32_t EndsSeen(ConformanceClient& client) {
  absl::StatusOr<uint32_t> n = client.StreamEndsSeen();
  return n.ok() ? *n : 0;
}

TEST_P(StreamConformanceTest, ServerStreamKeepsOrder) {
  ConformanceClient client(channel_);
  ClientReader<Item> range = client.Range(1000, 16, 0);
  Item item;
  uint32_t n = 0;
  while (range.Read(&item)) {
    EXPECT_EQ(item.seq(), n);
    EXPECT_EQ(item.data().size(), 16u);
    ++n;
  }
  EXPECT_EQ(n, 1000u);
  EXPECT_THAT(range.Finish(), IsOk());
}

TEST_P(StreamConformanceTest, ServerEndsTheStreamWithAStatus) {
  ConformanceClient client(channel_);
  ClientReader<Item> range =
      client.Range(5, 0, static_cast<int32_t>(absl::StatusCode::kAborted));
  Item item;
  int n = 0;
  while (range.Read(&item)) ++n;
  EXPECT_EQ(n, 5);
  EXPECT_THAT(range.Finish(),
              StatusIs(absl::StatusCode::kAborted, "range ended"));
}

TEST_P(StreamConformanceTest, ClientHalfCloseEndsTheClientStream) {
  ConformanceClient client(channel_);
  ClientWriter<Item, Totals> total = client.Total();
  for (uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(total.Write(MakeItem(i, 10)));
  absl::StatusOr<Totals> totals = total.Finish();
  ASSERT_THAT(totals.status(), IsOk());
  EXPECT_EQ(totals->count(), 100u);
  EXPECT_EQ(totals->size(), 1000u);

  ClientWriter<Item, Totals> empty = client.Total();
  absl::StatusOr<Totals> none = empty.Finish();
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_EQ(none->count(), 0u);
}

TEST_P(StreamConformanceTest, BidiInterleavesAndHalfCloses) {
  ConformanceClient client(channel_);
  ClientReaderWriter<Item, Item> mirror = client.Mirror();
  for (uint32_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(mirror.Write(MakeItem(i, 4)));
    Item back;
    ASSERT_TRUE(mirror.Read(&back));
    EXPECT_EQ(back.seq(), i + 1000);
  }
  mirror.WritesDone();
  Item back;
  EXPECT_FALSE(mirror.Read(&back));
  EXPECT_THAT(mirror.Finish(), IsOk());
}

TEST_P(StreamConformanceTest, ServerFinishesWhileTheClientStillWrites) {
  ConformanceClient client(channel_);
  ClientReaderWriter<Item, Item> early = client.Early();
  ASSERT_TRUE(early.Write(MakeItem(1, 1)));
  Item back;
  EXPECT_FALSE(early.Read(&back));
  EXPECT_THAT(early.Finish(),
              StatusIs(absl::StatusCode::kOutOfRange, "enough"));
  EXPECT_FALSE(early.Write(MakeItem(2, 1)));
}

TEST_P(StreamConformanceTest, CancelMidStreamReachesTheHandler) {
  ConformanceClient client(channel_);
  ClientReader<Item> forever = client.Forever(16);
  Item item;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(forever.Read(&item));
  forever.Cancel();
  EXPECT_THAT(forever.Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(Eventually([&] { return EndsSeen(client) == 1; }));
}

TEST_P(StreamConformanceTest, DeadlineMidStreamReachesTheHandler) {
  ConformanceClient client(channel_);
  CallContext ctx;
  ctx.set_timeout(kMidStreamDeadline);
  ClientReader<Item> forever = client.Forever(16, &ctx);
  Item item;
  int n = 0;
  while (forever.Read(&item)) ++n;
  EXPECT_GT(n, 0);
  EXPECT_THAT(forever.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(Eventually([&] { return EndsSeen(client) == 1; }));
}

TEST_P(StreamConformanceTest, ClientGoingAwayReachesTheHandler) {
  ConformanceClient client(channel_);
  {
    ClientReader<Item> forever = client.Forever(16);
    Item item;
    ASSERT_TRUE(forever.Read(&item));
  }  // Dropped without Finish.
  EXPECT_TRUE(Eventually([&] { return EndsSeen(client) == 1; }));
}

TEST_P(StreamConformanceTest, AnOversizedStreamMessageEndsTheCall) {
  ConformanceClient client(channel_);
  ClientWriter<Item, Totals> total = client.Total();
  ASSERT_TRUE(total.Write(MakeItem(0, 10)));
  total.Write(MakeItem(1, kConformanceMaxMessageSize + 1));
  EXPECT_THAT(total.Finish().status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // The channel still works.
  EXPECT_THAT(client.Later(1).status(), IsOk());
}

TEST_P(StreamConformanceTest, ManyConcurrentStreamsOnOneChannel) {
  ConformanceClient client(channel_);
  std::vector<ClientReader<Item>> streams;
  streams.reserve(kConcurrentStreams);
  for (int i = 0; i < kConcurrentStreams; ++i) {
    streams.push_back(client.Range(3, 8, 0));
  }
  int complete = 0;
  for (ClientReader<Item>& s : streams) {
    Item item;
    int n = 0;
    while (s.Read(&item)) ++n;
    if (n == 3 && s.Finish().ok()) ++complete;
  }
  EXPECT_EQ(complete, kConcurrentStreams);
}

TEST_P(StreamConformanceTest, AnAsyncHandlerAnswersFromAnotherThread) {
  ConformanceClient client(channel_);
  absl::StatusOr<uint32_t> v = client.Later(41);
  ASSERT_THAT(v.status(), IsOk());
  EXPECT_EQ(*v, 42u);
}

}  // namespace
}  // namespace lpc::conformance
