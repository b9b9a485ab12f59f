// The call model on the in-process transport, with a hand-written service
// over runtime/stream.h: the three stream kinds, flow-control windows,
// half-close either way, early finish, deadline and cancel mid-stream, the
// client going away, and asynchronous handlers (10,000 pending on two
// workers while other calls complete).
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "runtime/stream.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

// Messages are numbers in decimal, optionally padded with spaces to a size.
struct Num {
  int64_t v = 0;
  size_t pad = 0;
};
void EncodeNum(const Num& n, std::string* out) {
  *out = absl::StrCat(n.v);
  if (n.pad > out->size()) out->append(n.pad - out->size(), ' ');
}
absl::Status DecodeNum(std::string_view in, Num* n) {
  while (!in.empty() && in.back() == ' ') in.remove_suffix(1);
  if (!absl::SimpleAtoi(absl::string_view(in.data(), in.size()), &n->v)) {
    return absl::InvalidArgumentError("not a number");
  }
  return absl::OkStatus();
}
std::string Enc(int64_t v) {
  std::string s;
  EncodeNum(Num{v}, &s);
  return s;
}

enum Method : uint32_t {
  kAdd = 1,         // [async] unary: parks the call; see Release()
  kEcho = 2,        // plain unary
  kCount = 3,       // server-streaming: request n >= 0 writes 0..n-1;
                    // n < 0 writes until a Write fails
  kSum = 4,         // client-streaming
  kTimes10 = 5,     // bidi
  kPark = 6,        // async server-streaming: parks the stream
  kEarly = 7,       // bidi: reads one message, finishes OUT_OF_RANGE
  kAsyncBidi = 8,   // async bidi: parks without reading
  kAsyncEcho = 9,   // async bidi: echoes every message, then finishes OK
};

constexpr MethodDescriptor kMethods[] = {
    {"Add", kAdd, false, MethodKind::kUnary},
    {"Echo", kEcho, false, MethodKind::kUnary},
    {"Count", kCount, false, MethodKind::kServerStreaming},
    {"Sum", kSum, false, MethodKind::kClientStreaming},
    {"Times10", kTimes10, false, MethodKind::kBidiStreaming},
    {"Park", kPark, false, MethodKind::kServerStreaming},
    {"Early", kEarly, false, MethodKind::kBidiStreaming},
    {"AsyncBidi", kAsyncBidi, false, MethodKind::kBidiStreaming},
    {"AsyncEcho", kAsyncEcho, false, MethodKind::kBidiStreaming},
};
constexpr InterfaceDescriptor kIface{
    "lpc.test.Streams", "a1b2c3d4-0000-4000-8000-000000000001", {1, 0},
    kMethods};
const MethodDescriptor& M(Method id) { return *kIface.FindMethod(id); }

// Waits (with a deadline) until `pred` holds.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration limit = absl::Seconds(60)) {
  const absl::Time until = absl::Now() + limit;
  while (!pred()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class StreamsService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override { return kIface; }

  bool UsesStartCall(uint32_t id) const override { return id == kAdd; }

  absl::Status Dispatch(uint32_t id, CallContext&, std::string_view request,
                        std::string* response) override {
    if (id != kEcho) return absl::UnimplementedError("not unary");
    response->assign(request);
    return absl::OkStatus();
  }

  void StartCall(uint32_t id, std::shared_ptr<ServerStream> call) override {
    switch (id) {
      case kAdd:
        ServeAsyncUnary<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [this](AsyncUnaryCall<Num> c, Num& n) {
              MutexLock lock(&mu_);
              parked_adds_.emplace_back(std::move(c), n.v);
            });
        return;
      case kCount:
        ServeServerStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [this](CallContext& ctx, Num& n, ServerWriter<Num>& w) {
              for (int64_t i = 0; n.v < 0 || i < n.v; ++i) {
                writes_started_.fetch_add(1);
                if (!w.Write(Num{i, static_cast<size_t>(pad_.load())})) {
                  handler_saw_cancel_.store(ctx.IsCancelled());
                  handler_done_.store(true);
                  return absl::InternalError("write failed");
                }
                writes_done_.fetch_add(1);
              }
              handler_done_.store(true);
              return absl::OkStatus();
            });
        return;
      case kSum:
        ServeClientStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [](CallContext&, ServerReader<Num>& r) -> absl::StatusOr<Num> {
              Num sum, n;
              while (r.Read(&n)) sum.v += n.v;
              return sum;
            });
        return;
      case kTimes10:
        ServeBidiStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [](CallContext&, ServerReaderWriter<Num, Num>& s) {
              Num n;
              while (s.Read(&n)) {
                if (!s.Write(Num{n.v * 10})) break;
              }
              return absl::OkStatus();
            });
        return;
      case kPark:
        ServeAsyncServerStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [this](AsyncServerStream<Num> c, Num&) {
              c.context().AddCancelCallback([this] { cancels_.fetch_add(1); });
              MutexLock lock(&mu_);
              parked_streams_.push_back(std::move(c));
            });
        return;
      case kEarly:
        ServeBidiStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [](CallContext&, ServerReaderWriter<Num, Num>& s) {
              Num n;
              s.Read(&n);
              return absl::OutOfRangeError("enough");
            });
        return;
      case kAsyncBidi:
        ServeAsyncBidiStreaming<Num, Num>(
            std::move(call), &DecodeNum, &EncodeNum,
            [this](AsyncServerReaderWriter<Num, Num> c) {
              MutexLock lock(&mu_);
              parked_bidi_.push_back(std::move(c));
            });
        return;
    }
    if (id == kAsyncEcho) {
      ServeAsyncBidiStreaming<Num, Num>(
          std::move(call), &DecodeNum, &EncodeNum,
          [](AsyncServerReaderWriter<Num, Num> c) { EchoNext(c); });
      return;
    }
    Service::StartCall(id, std::move(call));
  }

  // Reads the next message, writes it back, and goes on; finishes at the
  // client's half-close.
  static void EchoNext(AsyncServerReaderWriter<Num, Num> c) {
    c.Read([c](std::optional<Num> n) {
      if (!n.has_value()) {
        c.Finish(absl::OkStatus());
        return;
      }
      c.Write(*n, [c](bool ok) {
        if (ok) EchoNext(c);
      });
    });
  }

  size_t parked_adds() {
    MutexLock lock(&mu_);
    return parked_adds_.size();
  }
  // Replies a + 1 to every parked Add, or drops them.
  void ReleaseAdds(bool reply) {
    std::deque<std::pair<AsyncUnaryCall<Num>, int64_t>> adds;
    {
      MutexLock lock(&mu_);
      adds.swap(parked_adds_);
    }
    if (reply) {
      for (auto& [c, v] : adds) c.Reply(Num{v + 1});
    }
  }
  std::vector<AsyncServerStream<Num>> TakeStreams() {
    MutexLock lock(&mu_);
    return std::move(parked_streams_);
  }
  std::vector<AsyncServerReaderWriter<Num, Num>> TakeBidi() {
    MutexLock lock(&mu_);
    return std::move(parked_bidi_);
  }
  size_t parked_streams() {
    MutexLock lock(&mu_);
    return parked_streams_.size() + parked_bidi_.size();
  }

  std::atomic<int> writes_started_{0}, writes_done_{0}, cancels_{0};
  std::atomic<int> pad_{0};
  std::atomic<bool> handler_done_{false}, handler_saw_cancel_{false};

 private:
  Mutex mu_;
  std::deque<std::pair<AsyncUnaryCall<Num>, int64_t>> parked_adds_
      ABSL_GUARDED_BY(mu_);
  std::vector<AsyncServerStream<Num>> parked_streams_ ABSL_GUARDED_BY(mu_);
  std::vector<AsyncServerReaderWriter<Num, Num>> parked_bidi_
      ABSL_GUARDED_BY(mu_);
};

class InProcessStreamTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}, int workers = 2,
                   ChannelOptions channel_options = {}) {
    options.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(options);
    ASSERT_THAT(server_->RegisterService(&service_), IsOk());
    auto t = std::make_unique<InProcessTransport>(
        "inprocess_stream_test",
        InProcessOptions{.min_workers = workers, .max_workers = workers});
    transport_ = t.get();
    ASSERT_THAT(server_->AddTransport(std::move(t)), IsOk());
    ASSERT_THAT(server_->Start(), IsOk());
    channel_ = transport_->NewChannel(channel_options);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  StreamsService service_;
  std::unique_ptr<Server> server_;
  InProcessTransport* transport_ = nullptr;
  std::shared_ptr<Channel> channel_;
};

TEST_F(InProcessStreamTest, ServerStreamingKeepsOrder) {
  StartServer();
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), nullptr,
                                         Enc(1000), &DecodeNum);
  Num n;
  int64_t expected = 0;
  while (reader.Read(&n)) EXPECT_EQ(n.v, expected++);
  EXPECT_EQ(expected, 1000);
  EXPECT_THAT(reader.Finish(), IsOk());
}

TEST_F(InProcessStreamTest, ClientStreamingSums) {
  StartServer();
  auto writer = ClientWriter<Num, Num>::Start(channel_, kIface, M(kSum),
                                              nullptr, &EncodeNum, &DecodeNum);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(writer.Write(Num{i}));
  absl::StatusOr<Num> sum = writer.Finish();
  ASSERT_THAT(sum.status(), IsOk());
  EXPECT_EQ(sum->v, 5050);
}

TEST_F(InProcessStreamTest, BidiAndClientHalfClose) {
  StartServer();
  auto rw = ClientReaderWriter<Num, Num>::Start(
      channel_, kIface, M(kTimes10), nullptr, &EncodeNum, &DecodeNum);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(rw.Write(Num{i}));
    Num n;
    ASSERT_TRUE(rw.Read(&n));
    EXPECT_EQ(n.v, i * 10);
  }
  rw.WritesDone();  // The handler reads the end and returns OK.
  Num n;
  EXPECT_FALSE(rw.Read(&n));
  EXPECT_THAT(rw.Finish(), IsOk());
  EXPECT_FALSE(rw.Write(Num{1}));
}

TEST_F(InProcessStreamTest, ServerFinishesEarlyWhileTheClientWrites) {
  StartServer();
  auto rw = ClientReaderWriter<Num, Num>::Start(
      channel_, kIface, M(kEarly), nullptr, &EncodeNum, &DecodeNum);
  ASSERT_TRUE(rw.Write(Num{1}));
  Num n;
  EXPECT_FALSE(rw.Read(&n));  // The server's half: finished.
  EXPECT_THAT(rw.Finish(), StatusIs(absl::StatusCode::kOutOfRange, "enough"));
  EXPECT_FALSE(rw.Write(Num{2}));
}

TEST_F(InProcessStreamTest, ASlowReaderHoldsTheServerAtTheWindow) {
  ChannelOptions copts;
  copts.stream_window.messages = 4;
  StartServer({}, 2, copts);
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), nullptr,
                                         Enc(-1), &DecodeNum);
  // Four messages fit the window; the fifth is held back in Write.
  ASSERT_TRUE(Eventually([&] { return service_.writes_started_.load() == 5; }));
  EXPECT_EQ(service_.writes_done_.load(), 4);
  Num n;
  ASSERT_TRUE(reader.Read(&n));
  EXPECT_EQ(n.v, 0);
  ASSERT_TRUE(Eventually([&] { return service_.writes_started_.load() == 6; }));
  EXPECT_EQ(service_.writes_done_.load(), 5);
  reader.Cancel();
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kCancelled));
  ASSERT_TRUE(Eventually([&] { return service_.handler_done_.load(); }));
  EXPECT_TRUE(service_.handler_saw_cancel_.load());
}

TEST_F(InProcessStreamTest, TheByteWindowBoundsLargeMessages) {
  ChannelOptions copts;
  copts.stream_window.bytes = 2500;
  StartServer({}, 2, copts);
  service_.pad_ = 1000;
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), nullptr,
                                         Enc(-1), &DecodeNum);
  // Two 1000-byte messages fit in 2500 bytes; the third is held back.
  ASSERT_TRUE(Eventually([&] { return service_.writes_started_.load() == 3; }));
  EXPECT_EQ(service_.writes_done_.load(), 2);
}

TEST_F(InProcessStreamTest, TheServersWindowHoldsBackTheClient) {
  ServerOptions options;
  options.stream_window.messages = 2;
  StartServer(options);
  CallContext ctx;
  std::shared_ptr<ClientStream> stream =
      channel_->OpenStream(kIface, M(kAsyncBidi), &ctx);
  std::atomic<int> written{0};
  for (int i = 0; i < 3; ++i) {
    stream->Write(Enc(i), [&](absl::Status s) {
      EXPECT_THAT(s, IsOk());
      written.fetch_add(1);
    });
    if (i < 2) {
      EXPECT_EQ(written.load(), i + 1);
    }
  }
  EXPECT_EQ(written.load(), 2);  // Nobody read: the third waits.
  ASSERT_TRUE(Eventually([&] { return service_.parked_streams() == 1; }));
  auto bidi = service_.TakeBidi();
  std::optional<Num> got;
  bidi[0].Read([&](std::optional<Num> n) { got = n; });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->v, 0);
  EXPECT_EQ(written.load(), 3);  // The read made room.
  bidi[0].Finish(absl::OkStatus());
  stream.reset();
}

TEST_F(InProcessStreamTest, DeadlineMidStreamIsSeenByBothSides) {
  StartServer();
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(300));
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), &ctx,
                                         Enc(-1), &DecodeNum);
  Num n;
  int reads = 0;
  while (reader.Read(&n)) ++reads;  // Until the deadline ends the call.
  EXPECT_GT(reads, 0);
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(Eventually([&] { return service_.handler_done_.load(); }));
  EXPECT_TRUE(service_.handler_saw_cancel_.load());
}

TEST_F(InProcessStreamTest, WritersHeldBackByTheWindowEndAtTheDeadline) {
  ServerOptions options;
  options.stream_window.messages = 1;
  ChannelOptions copts;
  copts.stream_window.messages = 1;
  StartServer(options, 2, copts);
  // The server's writer: the client never reads.
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(300));
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), &ctx,
                                         Enc(-1), &DecodeNum);
  // The client's writer: the handler never reads.
  CallContext ctx2;
  ctx2.set_timeout(absl::Milliseconds(300));
  auto rw = ClientReaderWriter<Num, Num>::Start(
      channel_, kIface, M(kAsyncBidi), &ctx2, &EncodeNum, &DecodeNum);
  EXPECT_TRUE(rw.Write(Num{1}));   // Fits the window.
  EXPECT_FALSE(rw.Write(Num{2}));  // Held back until the deadline.
  EXPECT_THAT(rw.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(Eventually([&] { return service_.handler_done_.load(); }));
  EXPECT_TRUE(service_.handler_saw_cancel_.load());
  EXPECT_EQ(service_.writes_done_.load(), 1);
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(InProcessStreamTest, AnOversizedStreamMessageEndsTheCall) {
  ServerOptions options;
  options.max_message_size = 1000;
  StartServer(options);
  auto writer = ClientWriter<Num, Num>::Start(channel_, kIface, M(kSum),
                                              nullptr, &EncodeNum, &DecodeNum);
  EXPECT_TRUE(writer.Write(Num{1}));
  EXPECT_FALSE(writer.Write(Num{2, 2000}));
  EXPECT_THAT(writer.Finish().status(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("server's maximum message size")));
}

TEST_F(InProcessStreamTest, AStreamOnAPlainUnaryMethodAndUnknownMethods) {
  StartServer();
  auto rw = ClientReaderWriter<Num, Num>::Start(
      channel_, kIface, M(kEcho), nullptr, &EncodeNum, &DecodeNum);
  ASSERT_TRUE(rw.Write(Num{42}));
  rw.WritesDone();
  Num n;
  ASSERT_TRUE(rw.Read(&n));
  EXPECT_EQ(n.v, 42);
  EXPECT_FALSE(rw.Read(&n));
  EXPECT_THAT(rw.Finish(), IsOk());

  MethodDescriptor unknown{"Nope", 99, false, MethodKind::kBidiStreaming};
  auto none = ClientReaderWriter<Num, Num>::Start(
      channel_, kIface, unknown, nullptr, &EncodeNum, &DecodeNum);
  EXPECT_FALSE(none.Read(&n));
  EXPECT_THAT(none.Finish(), StatusIs(absl::StatusCode::kUnimplemented,
                                      HasSubstr("unknown method 99")));
}

// A client and a server that both complete every operation from the other
// side's callbacks: a long ping-pong must not nest callbacks without bound.
TEST_F(InProcessStreamTest, AsyncPingPongOnBothSides) {
  StartServer();
  constexpr int kRounds = 20000;
  auto rw = std::make_shared<ClientReaderWriter<Num, Num>>(
      ClientReaderWriter<Num, Num>::Start(channel_, kIface, M(kAsyncEcho),
                                          nullptr, &EncodeNum, &DecodeNum));
  Mutex mu;
  CondVar cv;
  bool done = false;
  int rounds = 0;
  std::function<void(int)> round = [&](int i) {
    if (i == kRounds) {
      rw->WritesDone();
      MutexLock lock(&mu);
      rounds = i;
      done = true;
      cv.SignalAll();
      return;
    }
    rw->WriteAsync(Num{i}, [&, i](bool ok) {
      if (!ok) return;
      rw->ReadAsync([&, i](std::optional<Num> n) {
        if (n.has_value() && n->v == i) round(i + 1);
      });
    });
  };
  round(0);
  {
    MutexLock lock(&mu);
    const absl::Time limit = absl::Now() + absl::Seconds(120);
    while (!done && absl::Now() < limit) cv.WaitWithDeadline(&mu, limit);
    EXPECT_EQ(rounds, kRounds);
  }
  EXPECT_THAT(rw->Finish(), IsOk());
}

// Issue item: 10,000 calls pending in async handlers on a server with two
// workers, while other calls still complete.
TEST_F(InProcessStreamTest, TenThousandPendingAsyncCallsOnTwoWorkers) {
  StartServer({}, 2);
  constexpr int kCalls = 10000;
  std::vector<std::unique_ptr<CallContext>> contexts;
  std::atomic<int> completed{0}, correct{0};
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    contexts.back()->set_timeout(absl::Minutes(5));
    channel_->StartCall(kIface, M(kAdd), contexts.back().get(), Enc(i),
                        [&, i](absl::StatusOr<std::string> r) {
                          Num n;
                          if (r.ok() && DecodeNum(*r, &n).ok() && n.v == i + 1) {
                            correct.fetch_add(1);
                          }
                          completed.fetch_add(1);
                        });
  }
  ASSERT_TRUE(Eventually([&] { return service_.parked_adds() == kCalls; }));
  EXPECT_EQ(completed.load(), 0);
  // Both workers are free: plain calls and streams still complete.
  for (int i = 0; i < 20; ++i) {
    CallContext ctx;
    absl::StatusOr<std::string> echo =
        channel_->Call(kIface, M(kEcho), &ctx, "still here");
    ASSERT_THAT(echo.status(), IsOk());
    EXPECT_EQ(*echo, "still here");
  }
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kCount), nullptr,
                                         Enc(10), &DecodeNum);
  Num n;
  int reads = 0;
  while (reader.Read(&n)) ++reads;
  EXPECT_EQ(reads, 10);
  EXPECT_THAT(reader.Finish(), IsOk());

  std::thread releaser([&] { service_.ReleaseAdds(/*reply=*/true); });
  releaser.join();
  ASSERT_TRUE(Eventually([&] { return completed.load() == kCalls; }));
  EXPECT_EQ(correct.load(), kCalls);
}

// Issue item: a call left unfinished when its client goes away is
// cancelled, and its completion object is then harmless.
TEST_F(InProcessStreamTest, ClientGoingAwayCancelsAnUnfinishedAsyncCall) {
  StartServer();
  {
    auto reader = ClientReader<Num>::Start(channel_, kIface, M(kPark), nullptr,
                                           Enc(0), &DecodeNum);
    ASSERT_TRUE(Eventually([&] { return service_.parked_streams() == 1; }));
  }  // The client drops its stream without finishing.
  std::vector<AsyncServerStream<Num>> parked = service_.TakeStreams();
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_TRUE(parked[0].context().IsCancelled());
  EXPECT_EQ(service_.cancels_.load(), 1);
  std::optional<bool> wrote;
  parked[0].Write(Num{1}, [&](bool ok) { wrote = ok; });
  ASSERT_TRUE(wrote.has_value());
  EXPECT_FALSE(*wrote);
  parked[0].Finish(absl::OkStatus());
  parked.clear();  // The last copy goes: nothing happens.

  // The same for an async unary call whose client cancelled.
  CallContext ctx;
  std::optional<absl::StatusOr<std::string>> result;
  channel_->StartCall(kIface, M(kAdd), &ctx, Enc(1),
                      [&](absl::StatusOr<std::string> r) { result = r; });
  ASSERT_TRUE(Eventually([&] { return service_.parked_adds() == 1; }));
  ctx.Cancel();
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kCancelled));
  service_.ReleaseAdds(/*reply=*/true);  // Replies to nobody.
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(InProcessStreamTest, AnAsyncCallDroppedUnfinishedIsInternal) {
  StartServer();
  CallContext ctx;
  std::atomic<bool> done{false};
  absl::Status status;
  channel_->StartCall(kIface, M(kAdd), &ctx, Enc(1),
                      [&](absl::StatusOr<std::string> r) {
                        status = r.status();
                        done = true;
                      });
  ASSERT_TRUE(Eventually([&] { return service_.parked_adds() == 1; }));
  service_.ReleaseAdds(/*reply=*/false);
  ASSERT_TRUE(done.load());
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal,
                               "handler dropped the call"));
}

TEST_F(InProcessStreamTest, ShutdownEndsPendingAsyncCalls) {
  StartServer();
  auto reader = ClientReader<Num>::Start(channel_, kIface, M(kPark), nullptr,
                                         Enc(0), &DecodeNum);
  ASSERT_TRUE(Eventually([&] { return service_.parked_streams() == 1; }));
  server_->Shutdown();
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kUnavailable));
  std::vector<AsyncServerStream<Num>> parked = service_.TakeStreams();
  EXPECT_TRUE(parked[0].context().IsCancelled());
  parked[0].Finish(absl::OkStatus());  // Harmless after shutdown.
  auto late = ClientReader<Num>::Start(channel_, kIface, M(kCount), nullptr,
                                       Enc(1), &DecodeNum);
  EXPECT_THAT(late.Finish(), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace lpc
