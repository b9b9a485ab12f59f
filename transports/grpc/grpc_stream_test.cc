// Streams over the gRPC transport: an lpc::Server serving the hand-written
// StreamService (stream_test_service.h) through GrpcServerTransport, called
// through GrpcChannel::OpenStream, over a Unix socket and over TCP on
// 127.0.0.1. Every wait is bounded (testing/stream_waits.h).
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/interceptor.h"
#include "runtime/server.h"
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "testing/stream_waits.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/stream_test_service.h"

namespace lpc {
namespace {

using ::lpc::stream_test::StreamInterface;
using ::lpc::stream_test::StreamMethod;
using ::lpc::stream_test::StreamMethodId;
using ::lpc::stream_test::StreamService;
using ::lpc::testing::FinishBlocking;
using ::lpc::testing::IsOk;
using ::lpc::testing::ReadBlocking;
using ::lpc::testing::ReadResult;
using ::lpc::testing::StatusIs;
using ::lpc::testing::WriteBlocking;
using ::testing::Contains;
using ::testing::Not;
using ::testing::Pair;

// Under TSan (Debian's gRPC is uninstrumented: every byte it hands over is
// a suppressed race report) everything takes several times as long.
#if defined(__SANITIZE_THREAD__)
constexpr int kSlowdown = 5;
#else
constexpr int kSlowdown = 1;
#endif
constexpr absl::Duration kWait = absl::Seconds(20 * kSlowdown);

absl::Time Until() { return absl::Now() + kWait; }

MATCHER_P(HoldsMessage, value, "holds message " + std::string(value)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  if (!arg->has_value()) {
    *result_listener << "is the end of the stream";
    return false;
  }
  *result_listener << "holds '" << **arg << "'";
  return **arg == value;
}

MATCHER(IsEndOfStream, "is the end of the stream") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  if (arg->has_value()) *result_listener << "holds '" << **arg << "'";
  return !arg->has_value();
}

// Reads the messages "0" .. "n-1" of a counting stream (Count, FailAfter).
::testing::AssertionResult ReadsCount(ClientStream& stream, int n) {
  for (int i = 0; i < n; ++i) {
    ReadResult r = ReadBlocking(stream, Until());
    if (!r.ok() || !r->has_value() || **r != absl::StrCat(i)) {
      return ::testing::AssertionFailure()
             << "message " << i << ": "
             << (!r.ok() ? r.status().ToString()
                         : r->has_value() ? "'" + **r + "'" : "end");
    }
  }
  return ::testing::AssertionSuccess();
}

// The end of the server's messages, then an OK status.
void ExpectEndsOk(ClientStream& stream) {
  EXPECT_THAT(ReadBlocking(stream, Until()), IsEndOfStream());
  EXPECT_OK(FinishBlocking(stream, Until()));
}

class InTestTmpDir : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* dir = getenv("TEST_TMPDIR");
    ASSERT_NE(dir, nullptr) << "run the test with bazel test";
    ASSERT_EQ(chdir(dir), 0);
  }
};
const auto* const kInTestTmpDir =
    ::testing::AddGlobalTestEnvironment(new InTestTmpDir);

// The resident set of this process, in KiB.
int64_t RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      if (absl::SimpleAtoi(digits, &kib)) return kib;
    }
  }
  return -1;
}

// Runs over a Unix socket ("unix") and TCP on 127.0.0.1 ("tcp").
class GrpcStreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void StartServer(ServerOptions server_options = {},
                   std::shared_ptr<ServerInterceptor> interceptor = nullptr) {
    server_ = std::make_unique<Server>(server_options);
    ASSERT_OK(server_->RegisterService(&service_));
    if (interceptor != nullptr) {
      ASSERT_OK(server_->AddInterceptor(std::move(interceptor)));
    }
    GrpcServerOptions grpc_options;
    if (GetParam() == "unix") {
      unlink("streams.sock");
      grpc_options.listen_addresses = {"unix:streams.sock"};
    } else {
      grpc_options.listen_addresses = {"127.0.0.1:0"};
    }
    auto transport = MakeGrpcServerTransport(std::move(grpc_options));
    transport_ = transport.get();
    ASSERT_OK(server_->AddTransport(std::move(transport)));
    ASSERT_OK(server_->Start());
  }

  std::shared_ptr<Channel> Connect(ChannelOptions options = {}) {
    auto channel = CreateChannel(transport_->target(), {options, nullptr});
    EXPECT_OK(channel.status());
    return channel.ok() ? *channel : nullptr;
  }

  std::shared_ptr<ClientStream> Open(Channel& channel, StreamMethodId id,
                                     CallContext* ctx) {
    return channel.OpenStream(StreamInterface(), StreamMethod(id), ctx);
  }

  // Opens a call whose client sends one `request` and half-closes.
  std::shared_ptr<ClientStream> OpenWithRequest(Channel& channel,
                                                StreamMethodId id,
                                                CallContext* ctx,
                                                std::string request) {
    std::shared_ptr<ClientStream> stream = Open(channel, id, ctx);
    EXPECT_OK(WriteBlocking(*stream, std::move(request), Until()));
    stream->WritesDone();
    return stream;
  }

  // Opens a Hang call (the test's first) and waits until its handler runs.
  std::shared_ptr<ClientStream> OpenHang(Channel& channel, CallContext* ctx) {
    std::shared_ptr<ClientStream> stream =
        Open(channel, stream_test::kHang, ctx);
    EXPECT_OK(WriteBlocking(*stream, "x", Until()));
    EXPECT_TRUE(service_.WaitForHangs(1, 0, kWait));
    return stream;
  }

  StreamService service_;
  std::unique_ptr<Server> server_;
  GrpcServerTransport* transport_ = nullptr;
};

TEST_P(GrpcStreamTest, ServerStreamArrivesInOrderWithInitialMetadata) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream = OpenWithRequest(*channel, stream_test::kCount, &ctx, "100");
  ASSERT_TRUE(ReadsCount(*stream, 100));
  ExpectEndsOk(*stream);
  EXPECT_THAT(ctx.response_metadata(), Contains(Pair("x-count", "100")));
}

TEST_P(GrpcStreamTest, ClientStreamEndsWithHalfClose) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream = Open(*channel, stream_test::kSum, &ctx);
  for (int i = 1; i <= 100; ++i) {
    ASSERT_OK(WriteBlocking(*stream, absl::StrCat(i), Until()));
  }
  stream->WritesDone();
  EXPECT_THAT(WriteBlocking(*stream, "1", Until()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ReadBlocking(*stream, Until()), HoldsMessage("5050"));
  ExpectEndsOk(*stream);
  EXPECT_THAT(ctx.response_metadata(), Contains(Pair("x-sum", "5050")));
}

TEST_P(GrpcStreamTest, BidiEchoesInOrderBothInterleavedAndAhead) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream = Open(*channel, stream_test::kEcho, &ctx);
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(WriteBlocking(*stream, absl::StrCat("m", i), Until()));
    ASSERT_THAT(ReadBlocking(*stream, Until()),
                HoldsMessage(absl::StrCat("m", i)));
  }
  // Writes ahead of the reads: the windows hold them back, nothing is lost.
  for (int i = 0; i < 300; ++i) {
    ASSERT_OK(WriteBlocking(*stream, absl::StrCat("a", i), Until()));
  }
  stream->WritesDone();
  for (int i = 0; i < 300; ++i) {
    ASSERT_THAT(ReadBlocking(*stream, Until()),
                HoldsMessage(absl::StrCat("a", i)));
  }
  ExpectEndsOk(*stream);
}

TEST_P(GrpcStreamTest, ServerEndsStreamEarlyWithStatus) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream =
      OpenWithRequest(*channel, stream_test::kFailAfter, &ctx, "3:9:enough");
  ASSERT_TRUE(ReadsCount(*stream, 3));
  EXPECT_THAT(ReadBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "enough"));
  EXPECT_THAT(FinishBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "enough"));
}

// Moves each call's deadline into the past before its handler runs.
class PastDeadline final : public ServerInterceptor {
 public:
  absl::Status OnStart(const InterceptedCall& /*call*/,
                       CallContext& ctx) override {
    ctx.set_deadline(absl::Now() - absl::Milliseconds(1));
    return absl::OkStatus();
  }
};

// A handler that finishes its stream once its context's deadline has
// passed answers DEADLINE_EXCEEDED, not its own status (gRPC's copy of the
// deadline on the server can come a moment before the client's). The
// client's deadline is far off, so only the server's answer can give it.
TEST_P(GrpcStreamTest, FinishPastTheDeadlineIsDeadlineExceeded) {
  StartServer({}, std::make_shared<PastDeadline>());
  auto channel = Connect();
  CallContext ctx;
  ctx.set_timeout(kWait);
  auto stream =
      OpenWithRequest(*channel, stream_test::kFailAfter, &ctx, "0:9:enough");
  EXPECT_THAT(FinishBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now(), ctx.deadline());
}

TEST_P(GrpcStreamTest, CancelMidStreamIsSeenByBothSides) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream = OpenHang(*channel, &ctx);
  ctx.Cancel();
  EXPECT_THAT(ReadBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(FinishBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(WriteBlocking(*stream, "y", Until()), Not(IsOk()));
  ASSERT_TRUE(service_.WaitForHangs(1, 1, kWait));
  EXPECT_THAT(service_.last_hang_status(),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_P(GrpcStreamTest, DeadlineMidStreamIsSeenByBothSides) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  // Long enough for the handler to start first.
  ctx.set_timeout(absl::Seconds(2 * kSlowdown));
  auto stream = OpenHang(*channel, &ctx);
  EXPECT_THAT(ReadBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(FinishBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(service_.WaitForHangs(1, 1, kWait));
  // The server's deadline comes from gRPC's timeout header, which is
  // rounded and counted from when the header arrived: the client's cancel
  // at its own deadline may reach the handler first.
  EXPECT_THAT(service_.last_hang_status().code(),
              ::testing::AnyOf(absl::StatusCode::kDeadlineExceeded,
                               absl::StatusCode::kCancelled));
}

TEST_P(GrpcStreamTest, DroppingTheStreamCancelsTheServerSide) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  auto stream = OpenHang(*channel, &ctx);
  stream.reset();
  EXPECT_TRUE(service_.WaitForHangs(1, 1, kWait));
}

// A client that reads nothing holds the server back: what the server has
// written beyond what the client read stays bounded (gRPC's HTTP/2 window,
// the socket buffers and the client's read-ahead window), and so does the
// process's memory, while 128 MiB pass through.
TEST_P(GrpcStreamTest, SlowReaderBoundsTheWriterAndMemory) {
  StartServer();
  ChannelOptions options;
  options.stream_window = {4, size_t{1} << 20};
  auto channel = Connect(options);
#if defined(__SANITIZE_THREAD__)
  // Under TSan every byte Debian's uninstrumented gRPC hands over is a
  // (suppressed) race report, so a 1 MiB message takes seconds: TSan runs
  // the same flow with small messages for its races; the bounds are the
  // default and ASan builds' to check.
  constexpr bool kCheckBounds = false;
  constexpr int kMessages = 16;
  constexpr size_t kSize = size_t{16} << 10;
#else
  constexpr bool kCheckBounds = true;
  constexpr int kMessages = 128;
  constexpr size_t kSize = size_t{1} << 20;
#endif
  const int64_t rss_before = RssKib();
  int64_t rss_peak = rss_before;
  int64_t most_ahead = 0;
  CallContext ctx;
  auto stream = OpenWithRequest(*channel, stream_test::kFlood, &ctx,
                                absl::StrCat(kMessages, ":", kSize));
  for (int i = 0; i < kMessages; ++i) {
    // Let the writer run until it waits in a Write; then see how far ahead
    // of this reader it got.
    std::optional<int64_t> written = service_.WaitForFloodBlocked(kWait);
    ASSERT_TRUE(written.has_value());
    most_ahead = std::max(most_ahead, *written - i);
    rss_peak = std::max(rss_peak, RssKib());
    ReadResult r = ReadBlocking(*stream, Until());
    ASSERT_TRUE(r.ok() && r->has_value())
        << "message " << i << ": " << r.status() << " (the server wrote "
        << service_.flood_completed() << ")";
    ASSERT_EQ((*r)->size(), kSize);
    ASSERT_TRUE((*r)->starts_with(absl::StrCat(i, ":")));
  }
  ExpectEndsOk(*stream);
  RecordProperty("most_messages_ahead", static_cast<int>(most_ahead));
  RecordProperty("rss_growth_kib",
                 static_cast<int>(rss_peak - rss_before));
  if (kCheckBounds) {
    // Unbounded, the writer would be all 128 messages ahead.
    EXPECT_LE(most_ahead, 40);
#if !defined(__SANITIZE_ADDRESS__)
    // (ASan's quarantine keeps freed memory resident: not a bound there.)
    EXPECT_LT(rss_peak - rss_before, 96 * 1024);
#endif
  }
}

TEST_P(GrpcStreamTest, ThousandConcurrentStreamsOnOneChannel) {
  StartServer();
  auto channel = Connect();
#if defined(__SANITIZE_THREAD__)
  constexpr int kStreams = 100;  // TSan: the same flow, fewer streams.
#else
  constexpr int kStreams = 1000;
#endif
  std::vector<std::unique_ptr<CallContext>> contexts;
  std::vector<std::shared_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    streams.push_back(
        Open(*channel, stream_test::kEcho, contexts.back().get()));
    ASSERT_OK(WriteBlocking(*streams.back(), absl::StrCat("s", i), Until()));
  }
  // Every stream is open at once; each answers in turn.
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_THAT(ReadBlocking(*streams[i], Until()),
                HoldsMessage(absl::StrCat("s", i)));
  }
  for (int i = 0; i < kStreams; ++i) streams[i]->WritesDone();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_THAT(ReadBlocking(*streams[i], Until()), IsEndOfStream());
    ASSERT_OK(FinishBlocking(*streams[i], Until()));
  }
}

TEST_P(GrpcStreamTest, OversizedMessagesEndTheStream) {
  ServerOptions server_options;
  server_options.max_message_size = 64 << 10;
  StartServer(server_options);
  {
    // The client's own limit: refused before it is sent.
    ChannelOptions small;
    small.max_message_size = 64 << 10;
    auto channel = Connect(small);
    CallContext ctx;
    auto stream = Open(*channel, stream_test::kEcho, &ctx);
    EXPECT_THAT(WriteBlocking(*stream, std::string(100 << 10, 'x'), Until()),
                StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_THAT(FinishBlocking(*stream, Until()),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  auto channel = Connect();
  {
    // The server's limit, enforced by gRPC on receipt. (gRPC 1.51 keeps the
    // server side of such a call until its deadline: keep it short.)
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(2 * kSlowdown));
    auto stream = Open(*channel, stream_test::kEcho, &ctx);
    ASSERT_OK(WriteBlocking(*stream, "fits", Until()));
    ASSERT_THAT(ReadBlocking(*stream, Until()), HoldsMessage("fits"));
    (void)WriteBlocking(*stream, std::string(100 << 10, 'x'), Until());
    EXPECT_THAT(FinishBlocking(*stream, Until()),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  {
    // A handler's message over the server's limit.
    CallContext ctx;
    auto stream = OpenWithRequest(*channel, stream_test::kFlood, &ctx,
                                  absl::StrCat(1, ":", 100 << 10));
    EXPECT_THAT(ReadBlocking(*stream, Until()),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  // The connection stays usable.
  CallContext ctx;
  auto stream = OpenWithRequest(*channel, stream_test::kCount, &ctx, "2");
  EXPECT_TRUE(ReadsCount(*stream, 2));
  EXPECT_THAT(ReadBlocking(*stream, Until()), IsEndOfStream());
}

TEST_P(GrpcStreamTest, AsyncUnaryHandlerServesThePlainUnaryPath) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  absl::StatusOr<std::string> r =
      channel->Call(StreamInterface(), StreamMethod(stream_test::kReverse),
                    &ctx, "abc");
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, "cba");
}

TEST_P(GrpcStreamTest, ShutdownEndsOpenStreamsWithUnavailable) {
  ServerOptions server_options;
  server_options.shutdown_grace = absl::Milliseconds(100);
  StartServer(server_options);
  auto channel = Connect();
  CallContext ctx;
  auto stream = OpenHang(*channel, &ctx);
  server_->Shutdown();
  EXPECT_THAT(FinishBlocking(*stream, Until()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(service_.WaitForHangs(1, 1, kWait));
}

// A stream that ended is no call in flight, even while its handle is held:
// destroying the channel does not wait for the handle (or the deadline).
TEST_P(GrpcStreamTest, EndedStreamDoesNotHoldItsChannel) {
  StartServer();
  auto channel = Connect();
  CallContext ctx;
  ctx.set_timeout(absl::Minutes(10));
  auto stream = OpenWithRequest(*channel, stream_test::kCount, &ctx, "1");
  ASSERT_TRUE(ReadsCount(*stream, 1));
  ASSERT_THAT(ReadBlocking(*stream, Until()), IsEndOfStream());
  ASSERT_OK(FinishBlocking(*stream, Until()));
  std::mutex mu;
  std::condition_variable cv;
  bool destroyed = false;
  std::thread destroyer([&] {
    channel.reset();
    std::lock_guard<std::mutex> lock(mu);
    destroyed = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_until(lock, absl::ToChronoTime(Until()),
                              [&] { return destroyed; }));
  }
  stream.reset();  // Lets a waiting destructor go on if the check failed.
  destroyer.join();
}

INSTANTIATE_TEST_SUITE_P(Transports, GrpcStreamTest,
                         ::testing::Values("unix", "tcp"));

}  // namespace
}  // namespace lpc
