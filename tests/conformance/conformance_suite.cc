// The conformance tests. See conformance_suite.h for how a transport joins.
#include "tests/conformance/conformance_suite.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "testing/status_matchers.h"
#include "tests/conformance/conformance.lpc.h"

namespace lpc::conformance {

void ConformanceTest::SetUp() {
  transport_ = GetParam().factory();
  ServerOptions server_options;
  server_options.max_message_size = kConformanceMaxMessageSize;
  server_options.shutdown_grace = absl::Seconds(1);
  ASSERT_OK(transport_->StartServer(server_options));
  ChannelOptions channel_options;
  channel_options.max_message_size = kConformanceMaxMessageSize;
  channel_options.default_timeout = absl::Seconds(20);
  ASSERT_OK_AND_ASSIGN(channel_, transport_->NewChannel(channel_options));
}

void ConformanceTest::TearDown() {
  channel_.reset();
  if (transport_ != nullptr) transport_->StopServer();
}

namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// How long the suite waits for an event it caused on the server (a oneway
// delivery, a cancellation reaching a handler) before failing.
constexpr absl::Duration kEventTimeout = absl::Seconds(10);

// Polls `done` until it is true or kEventTimeout passes.
template <typename Pred>
bool EventuallyTrue(Pred done) {
  absl::Time limit = absl::Now() + kEventTimeout;
  while (absl::Now() < limit) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return done();
}

bool SameMessage(const google::protobuf::Message& a,
                 const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

AllTypes MinValues() {
  AllTypes v;
  v.set_b(false);
  v.set_i8(std::numeric_limits<int8_t>::min());
  v.set_i16(std::numeric_limits<int16_t>::min());
  v.set_i32(std::numeric_limits<int32_t>::min());
  v.set_i64(std::numeric_limits<int64_t>::min());
  v.set_u8(0);
  v.set_u16(0);
  v.set_u32(0);
  v.set_u64(0);
  v.set_f(-std::numeric_limits<float>::max());
  v.set_d(-std::numeric_limits<double>::max());
  v.set_s("");
  v.set_by(std::string("\0\0\0", 3));
  v.set_maybe(std::numeric_limits<int32_t>::min());
  v.set_level(LOW);
  return v;
}

AllTypes MaxValues() {
  AllTypes v;
  v.set_b(true);
  v.set_i8(std::numeric_limits<int8_t>::max());
  v.set_i16(std::numeric_limits<int16_t>::max());
  v.set_i32(std::numeric_limits<int32_t>::max());
  v.set_i64(std::numeric_limits<int64_t>::max());
  v.set_u8(std::numeric_limits<uint8_t>::max());
  v.set_u16(std::numeric_limits<uint16_t>::max());
  v.set_u32(std::numeric_limits<uint32_t>::max());
  v.set_u64(std::numeric_limits<uint64_t>::max());
  v.set_f(std::numeric_limits<float>::denorm_min());
  v.set_d(std::numeric_limits<double>::infinity());
  v.set_s("h\xC3\xA9llo, \xE4\xB8\x96\xE7\x95\x8C");  // UTF-8.
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  v.set_by(all_bytes);
  for (int i = 0; i < 100; ++i) v.add_strings(absl::StrCat("item-", i));
  v.add_strings("");
  (*v.mutable_counts())[""] = std::numeric_limits<int64_t>::min();
  (*v.mutable_counts())["max"] = std::numeric_limits<int64_t>::max();
  v.set_maybe(0);  // Present but zero: must stay present.
  v.set_level(HIGH);
  v.mutable_inner()->set_name("inner");
  v.mutable_inner()->add_values(-1);
  v.mutable_inner()->add_values(std::numeric_limits<int32_t>::max());
  for (int i = 0; i < 3; ++i) {
    Inner* in = v.add_inners();
    in->set_name(absl::StrCat("n", i));
    for (int j = 0; j <= i; ++j) in->add_values(j);
  }
  (*v.mutable_inner_by_id())[0].set_name("zero");
  (*v.mutable_inner_by_id())[std::numeric_limits<uint32_t>::max()].set_name(
      "max");
  return v;
}

TEST_P(ConformanceTest, EchoesEveryTypeWithEdgeValues) {
  ConformanceClient client(channel_);
  for (const AllTypes& value : {AllTypes(), MinValues(), MaxValues()}) {
    absl::StatusOr<AllTypes> got = client.Echo(value);
    ASSERT_OK(got);
    EXPECT_TRUE(SameMessage(*got, value))
        << "sent " << value.ShortDebugString() << "\ngot "
        << got->ShortDebugString();
    EXPECT_EQ(got->has_maybe(), value.has_maybe());
  }
}

TEST_P(ConformanceTest, NanAndNegativeZeroSurvive) {
  ConformanceClient client(channel_);
  AllTypes v;
  v.set_d(std::numeric_limits<double>::quiet_NaN());
  v.set_f(-0.0f);
  ASSERT_OK_AND_ASSIGN(AllTypes got, client.Echo(v));
  EXPECT_TRUE(std::isnan(got.d()));
  EXPECT_TRUE(std::signbit(got.f()));
}

TEST_P(ConformanceTest, ScalarParametersKeepEdgeValues) {
  ConformanceClient client(channel_);
  struct Case {
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
  };
  const Case cases[] = {
      {false, 0, 0, 0, 0, 0, 0, 0, 0, 0.0f, 0.0},
      {true, -128, -32768, std::numeric_limits<int32_t>::min(),
       std::numeric_limits<int64_t>::min(), 255, 65535,
       std::numeric_limits<uint32_t>::max(),
       std::numeric_limits<uint64_t>::max(), 1.5f, -2.25},
      {true, 127, 32767, std::numeric_limits<int32_t>::max(),
       std::numeric_limits<int64_t>::max(), 1, 1, 1, 1,
       std::numeric_limits<float>::max(), std::numeric_limits<double>::min()},
  };
  for (const Case& c : cases) {
    uint64_t u64_out = 0;
    double d_out = 0;
    absl::StatusOr<int64_t> r =
        client.Scalars(c.b, c.i8, c.i16, c.i32, c.i64, c.u8, c.u16, c.u32,
                       c.u64, c.f, c.d, &u64_out, &d_out);
    ASSERT_OK(r);
    EXPECT_EQ(*r, c.i64 ^ (static_cast<int64_t>(c.i8) << 8) ^
                      (static_cast<int64_t>(c.i16) << 16) ^
                      (static_cast<int64_t>(c.i32) << 32));
    EXPECT_EQ(u64_out, c.u64 ^ (static_cast<uint64_t>(c.u8) << 8) ^
                           (static_cast<uint64_t>(c.u16) << 16) ^
                           (static_cast<uint64_t>(c.u32) << 32) ^
                           (c.b ? 1 : 0));
    EXPECT_EQ(d_out, c.d + static_cast<double>(c.f));
  }
}

TEST_P(ConformanceTest, InOutParametersAreUpdated) {
  ConformanceClient client(channel_);
  std::string a = "left";
  std::string b(1000, 'r');
  ASSERT_OK(client.Swap(&a, &b));
  EXPECT_EQ(a, std::string(1000, 'r'));
  EXPECT_EQ(b, "left");
}

TEST_P(ConformanceTest, OutParametersAreFilled) {
  ConformanceClient client(channel_);
  std::vector<std::string> words = {"stale"};
  int32_t count = -1;
  ASSERT_OK(client.Split("the quick  brown fox", &words, &count));
  EXPECT_THAT(words, ElementsAre("the", "quick", "brown", "fox"));
  EXPECT_EQ(count, 4);
}

TEST_P(ConformanceTest, AsyncAndFutureCallsComplete) {
  ConformanceClient client(channel_);
  std::future<absl::StatusOr<ConformanceClient::SplitResult>> f =
      client.SplitFuture("a b c");
  absl::StatusOr<ConformanceClient::SplitResult> r = f.get();
  ASSERT_OK(r);
  EXPECT_THAT(r->words, ElementsAre("a", "b", "c"));
  EXPECT_EQ(r->count, 3);

  std::mutex mu;
  std::condition_variable cv;
  int remaining = 16;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    client.EchoBytesAsync(std::string(i * 1000, 'x'),
                          [&, i](absl::StatusOr<ConformanceClient::EchoBytesResult> r) {
                            if (r.ok() && r->value == std::string(i * 1000, 'x')) {
                              ok.fetch_add(1);
                            }
                            std::lock_guard<std::mutex> lock(mu);
                            --remaining;
                            cv.notify_all();
                          });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20),
                          [&] { return remaining == 0; }));
  EXPECT_EQ(ok.load(), 16);
}

TEST_P(ConformanceTest, OnewayCallsArriveWithoutReply) {
  ConformanceClient client(channel_);
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(client.Record(absl::StrCat("event-", i)));
  }
  std::vector<std::string> seen;
  EXPECT_TRUE(EventuallyTrue([&] {
    absl::StatusOr<std::vector<std::string>> r = client.Recorded();
    if (!r.ok()) return false;
    seen = *r;
    return seen.size() >= 10;
  }));
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(seen, Contains(absl::StrCat("event-", i)));
  }
}

TEST_P(ConformanceTest, DeadlineExceededReachesCallerAndHandler) {
  ConformanceClient client(channel_);
  // Connect first, so that the short deadline below is spent in the handler
  // and not in connection set-up (slow under sanitizers).
  ASSERT_OK(client.EchoBytes("connect").status());
  // A call whose deadline passes while it is still queued is never run (the
  // caller has its answer already), so on a loaded machine a short deadline
  // may expire before the handler starts. Each attempt doubles the deadline
  // until one reaches the handler; every attempt must end DEADLINE_EXCEEDED.
  bool handler_ran = false;
  for (int attempt = 0; attempt < 6 && !handler_ran; ++attempt) {
    const std::string tag = absl::StrCat("deadline-", attempt);
    CallContext ctx;
    ctx.set_timeout(absl::Milliseconds(100) * (1 << attempt));
    absl::Time start = absl::Now();
    absl::StatusOr<bool> r = client.WaitForCancel(tag, 15000, &ctx);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded));
    // Not a speed assertion: the handler would block 15 s without the
    // deadline, so finishing well before that shows the deadline ended it.
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    absl::StatusOr<std::vector<std::string>> seen = client.Recorded();
    ASSERT_OK(seen.status());
    handler_ran = std::find(seen->begin(), seen->end(), "waiting:" + tag) !=
                  seen->end();
  }
  ASSERT_TRUE(handler_ran) << "no attempt reached the handler";
  EXPECT_TRUE(EventuallyTrue([&] {
    absl::StatusOr<uint32_t> n = client.CancellationsSeen();
    return n.ok() && *n >= 1;
  })) << "the handler never saw its deadline pass";
}

TEST_P(ConformanceTest, CancellationReachesCallerAndHandler) {
  ConformanceClient client(channel_);
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  std::optional<absl::StatusOr<bool>> result;
  std::thread caller([&] { result = client.WaitForCancel("cancel", 20000, &ctx); });
  // Cancel only once the handler runs, so the cancel has something to reach.
  bool started = EventuallyTrue([&] {
    absl::StatusOr<std::vector<std::string>> r = client.Recorded();
    return r.ok() && std::find(r->begin(), r->end(), "waiting:cancel") != r->end();
  });
  ctx.Cancel();
  caller.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(EventuallyTrue([&] {
    absl::StatusOr<uint32_t> n = client.CancellationsSeen();
    return n.ok() && *n >= 1;
  })) << "the handler never saw the cancellation";
}

TEST_P(ConformanceTest, CancelledBeforeStartFailsAtOnce) {
  ConformanceClient client(channel_);
  CallContext ctx;
  ctx.Cancel();
  EXPECT_THAT(client.EchoBytes("x", &ctx),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_P(ConformanceTest, UnknownMethodIsUnimplemented) {
  static constexpr MethodDescriptor kMissing{"NoSuchMethod", 9999, false};
  CallContext ctx;
  absl::StatusOr<std::string> r =
      channel_->Call(ConformanceClient::Descriptor(), kMissing, &ctx, "");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnimplemented));
  // The connection survives the unknown method.
  ConformanceClient client(channel_);
  EXPECT_OK(client.EchoBytes("after").status());
}

TEST_P(ConformanceTest, HandlerErrorsReachCallerUnchanged) {
  ConformanceClient client(channel_);
  for (int code = 1; code <= 16; ++code) {
    std::string message = absl::StrCat("failure number ", code, " \xE2\x9C\x93");
    absl::Status s = client.Fail(code, message);
    EXPECT_EQ(static_cast<int>(s.code()), code) << s;
    EXPECT_EQ(s.message(), message);
  }
  // The connection is still good after sixteen failed calls.
  EXPECT_OK(client.EchoBytes("still alive").status());
}

TEST_P(ConformanceTest, OversizedRequestIsResourceExhausted) {
  ConformanceClient client(channel_);
  std::string big(kConformanceMaxMessageSize + 1, 'b');
  EXPECT_THAT(client.EchoBytes(big),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(std::string small, client.EchoBytes("small"));
  EXPECT_EQ(small, "small");
}

TEST_P(ConformanceTest, OversizedReplyIsResourceExhausted) {
  ConformanceClient client(channel_);
  EXPECT_THAT(client.MakeBytes(kConformanceMaxMessageSize + 1),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(std::string ok, client.MakeBytes(1000));
  EXPECT_EQ(ok.size(), 1000u);
}

TEST_P(ConformanceTest, LargePayloadsRoundTrip) {
  ConformanceClient client(channel_);
#if defined(__SANITIZE_THREAD__)
  // Under TSan, Debian's uninstrumented gRPC moves a 1 MiB message over a
  // Unix socket in tens of seconds; the default and ASan builds cover the
  // largest size, TSan the concurrency.
  constexpr size_t kLargest = 65536 + 1;
#else
  constexpr size_t kLargest = kConformanceMaxMessageSize - 64;
#endif
  for (size_t size : {size_t{0}, size_t{1}, size_t{63}, size_t{64},
                      size_t{4096}, size_t{65536}, kLargest}) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 + size);
    ASSERT_OK_AND_ASSIGN(std::string got, client.EchoBytes(data));
    EXPECT_EQ(got, data) << "payload of " << size << " bytes";
  }
}

TEST_P(ConformanceTest, MetadataTravelsBothWays) {
  ConformanceClient client(channel_);
  CallContext ctx;
  ctx.metadata().emplace("x-request-id", "42");
  ctx.metadata().emplace("x-user", "ada");
  ASSERT_OK_AND_ASSIGN(auto seen, client.EchoMetadata(&ctx));
  EXPECT_EQ(seen["x-request-id"], "42");
  EXPECT_EQ(seen["x-user"], "ada");
  auto it = ctx.response_metadata().find("echo-reply");
  ASSERT_NE(it, ctx.response_metadata().end());
  EXPECT_EQ(it->second, "yes");
}

TEST_P(ConformanceTest, HandlerSeesPeerIdentity) {
  ConformanceClient client(channel_);
  ASSERT_OK_AND_ASSIGN(std::string peer, client.Peer());
  EXPECT_FALSE(peer.empty());
  if (transport_->HasKernelCredentials()) {
    EXPECT_THAT(peer, HasSubstr(absl::StrCat("uid=", getuid())));
    EXPECT_THAT(peer, HasSubstr(absl::StrCat("pid=", getpid())));
  }
}

TEST_P(ConformanceTest, MajorVersionMismatchIsRefusedNamingBothVersions) {
  InterfaceDescriptor newer = ConformanceClient::Descriptor();
  newer.version.major += 1;
  CallContext ctx;
  const MethodDescriptor* m = newer.FindMethodByName("EchoBytes");
  ASSERT_NE(m, nullptr);
  absl::StatusOr<std::string> r = channel_->Call(newer, *m, &ctx, "");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition,
                          HasSubstr("2.0")));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition,
                          HasSubstr("1.0")));
}

TEST_P(ConformanceTest, NewerMinorVersionStillWorks) {
  InterfaceDescriptor newer = ConformanceClient::Descriptor();
  newer.version.minor += 3;
  CallContext ctx;
  const MethodDescriptor* m = newer.FindMethodByName("EchoBytes");
  ASSERT_NE(m, nullptr);
  EXPECT_OK(channel_->Call(newer, *m, &ctx, "").status());
}

TEST_P(ConformanceTest, ConcurrentCallersGetTheirOwnReplies) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 50;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ConformanceClient client(channel_);
      for (int i = 0; i < kCalls; ++i) {
        std::string payload = absl::StrCat("thread ", t, " call ", i,
                                           std::string(i * 37, 'p'));
        absl::StatusOr<std::string> r = client.EchoBytes(payload);
        if (!r.ok()) {
          failures.fetch_add(1);
        } else if (*r != payload) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace lpc::conformance
