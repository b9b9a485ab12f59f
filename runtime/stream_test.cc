// The typed streams of runtime/stream.h against fake byte-level streams.
#include "runtime/stream.h"

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The test's message type: a number, encoded in decimal.
struct Num {
  int64_t v = 0;
};
void EncodeNum(const Num& n, std::string* out) { *out = absl::StrCat(n.v); }
absl::Status DecodeNum(std::string_view in, Num* n) {
  if (!absl::SimpleAtoi(absl::string_view(in.data(), in.size()), &n->v)) {
    return absl::InvalidArgumentError(absl::StrCat("not a number: ", std::string(in)));
  }
  return absl::OkStatus();
}

using ReadResult = absl::StatusOr<std::optional<std::string>>;

// One direction of messages: reads complete from what was pushed, or wait
// for the next push or the end.
class Inbox {
 public:
  void Push(ReadResult r) {
    ReadCallback cb;
    {
      MutexLock lock(&mu_);
      if (pending_ == nullptr) {
        queue_.push_back(std::move(r));
        return;
      }
      cb = std::move(pending_);
      pending_ = nullptr;
    }
    cb(std::move(r));
  }
  void Read(ReadCallback done) {
    ReadResult r;
    {
      MutexLock lock(&mu_);
      if (queue_.empty()) {
        pending_ = std::move(done);
        return;
      }
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    done(std::move(r));
  }

 private:
  Mutex mu_;
  std::deque<ReadResult> queue_ ABSL_GUARDED_BY(mu_);
  ReadCallback pending_ ABSL_GUARDED_BY(mu_);
};

class FakeClientStream final : public ClientStream {
 public:
  FakeClientStream(CallContext* ctx, bool* destroyed)
      : ctx_(ctx), destroyed_(destroyed) {}
  ~FakeClientStream() override {
    // Touches the context: it must still be alive (ASan checks).
    (void)ctx_->IsCancelled();
    *destroyed_ = true;
  }
  CallContext& context() override { return *ctx_; }
  void Write(std::string message, WriteCallback done) override {
    {
      MutexLock lock(&mu_);
      if (writes_done_) {
        done(absl::FailedPreconditionError("after WritesDone"));
        return;
      }
      writes_.push_back(std::move(message));
    }
    done(absl::OkStatus());
  }
  void WritesDone() override {
    MutexLock lock(&mu_);
    writes_done_ = true;
  }
  void Read(ReadCallback done) override { inbox_.Read(std::move(done)); }
  void Finish(FinishCallback done) override { done(status_); }

  Inbox& inbox() { return inbox_; }
  void set_status(absl::Status s) { status_ = std::move(s); }
  std::vector<std::string> writes() {
    MutexLock lock(&mu_);
    return writes_;
  }
  bool writes_done() {
    MutexLock lock(&mu_);
    return writes_done_;
  }

 private:
  CallContext* const ctx_;
  bool* const destroyed_;
  Inbox inbox_;
  absl::Status status_;
  Mutex mu_;
  std::vector<std::string> writes_ ABSL_GUARDED_BY(mu_);
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
};

// A channel whose OpenStream returns a FakeClientStream the test can reach.
class FakeChannel final : public Channel {
 public:
  FakeChannel() : Channel(ChannelOptions{}) {}
  void StartCall(const InterfaceDescriptor&, const MethodDescriptor&,
                 CallContext*, std::string, ResponseCallback done) override {
    done(absl::UnimplementedError("fake"));
  }
  absl::Status SendOneway(const InterfaceDescriptor&, const MethodDescriptor&,
                          CallContext*, std::string) override {
    return absl::UnimplementedError("fake");
  }
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor&,
                                           const MethodDescriptor&,
                                           CallContext* ctx) override {
    auto s = std::make_shared<FakeClientStream>(ctx, &destroyed);
    last = s.get();
    return s;
  }
  std::string_view transport_name() const override { return "fake"; }

  FakeClientStream* last = nullptr;
  bool destroyed = false;
};

constexpr MethodDescriptor kMethods[] = {
    {"Watch", 1, false, MethodKind::kServerStreaming},
    {"Upload", 2, false, MethodKind::kClientStreaming},
    {"Process", 3, false, MethodKind::kBidiStreaming},
};
constexpr InterfaceDescriptor kIface{
    "lpc.test.Streams", "01234567-0123-4123-8123-0123456789ab", {1, 0},
    kMethods};

TEST(ClientReaderTest, SendsTheRequestReadsAndFinishes) {
  auto channel = std::make_shared<FakeChannel>();
  Num request{7};
  std::string bytes;
  EncodeNum(request, &bytes);
  auto reader = ClientReader<Num>::Start(channel, kIface, kMethods[0], nullptr,
                                         bytes, &DecodeNum);
  FakeClientStream* s = channel->last;
  EXPECT_THAT(s->writes(), ElementsAre("7"));
  EXPECT_TRUE(s->writes_done());
  s->inbox().Push(std::optional<std::string>("1"));
  s->inbox().Push(std::optional<std::string>("2"));
  s->inbox().Push(std::optional<std::string>());
  s->set_status(absl::NotFoundError("gone"));
  Num n;
  ASSERT_TRUE(reader.Read(&n));
  EXPECT_EQ(n.v, 1);
  ASSERT_TRUE(reader.Read(&n));
  EXPECT_EQ(n.v, 2);
  EXPECT_FALSE(reader.Read(&n));
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kNotFound, "gone"));
  EXPECT_FALSE(reader.context().IsCancelled());
}

TEST(ClientReaderTest, AMessageThatDoesNotDecodeFailsTheCall) {
  auto channel = std::make_shared<FakeChannel>();
  CallContext ctx;
  auto reader = ClientReader<Num>::Start(channel, kIface, kMethods[0], &ctx,
                                         std::string("1"), &DecodeNum);
  channel->last->inbox().Push(std::optional<std::string>("x"));
  Num n;
  EXPECT_FALSE(reader.Read(&n));
  EXPECT_TRUE(ctx.WasCancelledExplicitly());
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("not a number: x")));
}

TEST(ClientReaderTest, ARequestThatDidNotEncodeEndsTheCall) {
  auto channel = std::make_shared<FakeChannel>();
  auto reader = ClientReader<Num>::Start(channel, kIface, kMethods[0], nullptr,
                                         absl::InternalError("cannot encode"),
                                         &DecodeNum);
  EXPECT_TRUE(channel->last->writes().empty());
  EXPECT_THAT(reader.Finish(),
              StatusIs(absl::StatusCode::kInternal, "cannot encode"));
}

TEST(ClientReaderTest, DroppingTheHandleDropsTheStreamBeforeItsContext) {
  auto channel = std::make_shared<FakeChannel>();
  {
    auto reader = ClientReader<Num>::Start(channel, kIface, kMethods[0],
                                           nullptr, std::string("1"),
                                           &DecodeNum);
    auto moved = std::move(reader);
    EXPECT_FALSE(channel->destroyed);
  }
  EXPECT_TRUE(channel->destroyed);
}

TEST(ClientReaderTest, ReadAsyncDeliversLaterMessages) {
  auto channel = std::make_shared<FakeChannel>();
  auto reader = ClientReader<Num>::Start(channel, kIface, kMethods[0], nullptr,
                                         std::string("1"), &DecodeNum);
  std::optional<Num> got;
  bool called = false;
  reader.ReadAsync([&](std::optional<Num> n) {
    got = n;
    called = true;
  });
  EXPECT_FALSE(called);
  std::thread t([&] { channel->last->inbox().Push(std::optional<std::string>("42")); });
  t.join();
  ASSERT_TRUE(called);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->v, 42);
}

TEST(ClientWriterTest, WritesThenFinishReturnsTheReply) {
  auto channel = std::make_shared<FakeChannel>();
  auto writer = ClientWriter<Num, Num>::Start(channel, kIface, kMethods[1],
                                              nullptr, &EncodeNum, &DecodeNum);
  FakeClientStream* s = channel->last;
  EXPECT_TRUE(writer.Write(Num{1}));
  EXPECT_TRUE(writer.Write(Num{2}));
  s->inbox().Push(std::optional<std::string>("3"));
  absl::StatusOr<Num> reply = writer.Finish();
  ASSERT_THAT(reply.status(), IsOk());
  EXPECT_EQ(reply->v, 3);
  EXPECT_THAT(s->writes(), ElementsAre("1", "2"));
  EXPECT_TRUE(s->writes_done());
  EXPECT_FALSE(writer.Write(Num{4}));  // After the half-close.
}

TEST(ClientWriterTest, OkWithoutAReplyIsInternal) {
  auto channel = std::make_shared<FakeChannel>();
  auto writer = ClientWriter<Num, Num>::Start(channel, kIface, kMethods[1],
                                              nullptr, &EncodeNum, &DecodeNum);
  channel->last->inbox().Push(std::optional<std::string>());
  EXPECT_THAT(writer.Finish().status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("no reply")));
}

TEST(ClientWriterTest, FinishAsyncReportsTheServersStatus) {
  auto channel = std::make_shared<FakeChannel>();
  auto writer = ClientWriter<Num, Num>::Start(channel, kIface, kMethods[1],
                                              nullptr, &EncodeNum, &DecodeNum);
  channel->last->set_status(absl::AbortedError("no"));
  std::optional<absl::StatusOr<Num>> result;
  writer.FinishAsync([&](absl::StatusOr<Num> r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value());  // The reply has not come.
  channel->last->inbox().Push(absl::AbortedError("no"));
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(result->status(), StatusIs(absl::StatusCode::kAborted, "no"));
}

TEST(ClientReaderWriterTest, WriteAsyncAndFinishAsync) {
  auto channel = std::make_shared<FakeChannel>();
  auto rw = ClientReaderWriter<Num, Num>::Start(
      channel, kIface, kMethods[2], nullptr, &EncodeNum, &DecodeNum);
  bool wrote = false;
  rw.WriteAsync(Num{5}, [&](bool ok) { wrote = ok; });
  EXPECT_TRUE(wrote);
  rw.WritesDone();
  EXPECT_THAT(channel->last->writes(), ElementsAre("5"));
  absl::Status finished = absl::UnknownError("not yet");
  rw.FinishAsync([&](absl::Status s) { finished = s; });
  EXPECT_THAT(finished, IsOk());
}

// ---------------------------------------------------------------- server

class FakeServerStream final : public ServerStream {
 public:
  CallContext& context() override { return ctx_; }
  void Read(ReadCallback done) override { inbox_.Read(std::move(done)); }
  void Write(std::string message, WriteCallback done) override {
    {
      MutexLock lock(&mu_);
      if (!ended_) {
        writes_.push_back(std::move(message));
      }
    }
    done(ended() ? absl::CancelledError("ended") : absl::OkStatus());
  }
  void Finish(absl::Status status) override {
    MutexLock lock(&mu_);
    ++finish_calls_;
    if (ended_) return;
    ended_ = true;
    status_ = std::move(status);
  }

  // The client went away.
  void End() {
    {
      MutexLock lock(&mu_);
      ended_ = true;
      status_ = absl::CancelledError("client went away");
    }
    ctx_.Cancel();
    inbox_.Push(absl::CancelledError("client went away"));
  }
  Inbox& inbox() { return inbox_; }
  bool ended() {
    MutexLock lock(&mu_);
    return ended_;
  }
  absl::Status status() {
    MutexLock lock(&mu_);
    return status_;
  }
  int finish_calls() {
    MutexLock lock(&mu_);
    return finish_calls_;
  }
  std::vector<std::string> writes() {
    MutexLock lock(&mu_);
    return writes_;
  }

 private:
  CallContext ctx_;
  Inbox inbox_;
  Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  int finish_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> writes_ ABSL_GUARDED_BY(mu_);
};

TEST(ServeServerStreamingTest, ReadsTheRequestAndFinishesWithTheHandlers) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("3"));
  ServeServerStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum,
      [](CallContext&, Num& req, ServerWriter<Num>& w) {
        for (int64_t i = 0; i < req.v; ++i) {
          if (!w.Write(Num{i})) return absl::InternalError("write failed");
        }
        return absl::OutOfRangeError("done");
      });
  EXPECT_THAT(call->writes(), ElementsAre("0", "1", "2"));
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kOutOfRange, "done"));
}

TEST(ServeServerStreamingTest, AMissingOrBadRequestIsInvalidArgument) {
  for (ReadResult r : {ReadResult(std::optional<std::string>()),
                       ReadResult(std::optional<std::string>("x"))}) {
    auto call = std::make_shared<FakeServerStream>();
    call->inbox().Push(r);
    bool ran = false;
    ServeServerStreaming<Num, Num>(
        call, &DecodeNum, &EncodeNum,
        [&](CallContext&, Num&, ServerWriter<Num>&) {
          ran = true;
          return absl::OkStatus();
        });
    EXPECT_FALSE(ran);
    EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(ServeClientStreamingTest, SumsUntilTheHalfClose) {
  auto call = std::make_shared<FakeServerStream>();
  for (const char* m : {"1", "2", "3"}) {
    call->inbox().Push(std::optional<std::string>(m));
  }
  call->inbox().Push(std::optional<std::string>());
  ServeClientStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum,
      [](CallContext&, ServerReader<Num>& r) -> absl::StatusOr<Num> {
        Num sum, n;
        while (r.Read(&n)) sum.v += n.v;
        return sum;
      });
  EXPECT_THAT(call->writes(), ElementsAre("6"));
  EXPECT_THAT(call->status(), IsOk());
}

TEST(ServeClientStreamingTest, ABadMessageEndsTheCallWithInvalidArgument) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("1"));
  call->inbox().Push(std::optional<std::string>("zz"));
  ServeClientStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum,
      [](CallContext&, ServerReader<Num>& r) -> absl::StatusOr<Num> {
        Num n;
        int count = 0;
        while (r.Read(&n)) ++count;
        EXPECT_EQ(count, 1);
        return Num{99};
      });
  EXPECT_TRUE(call->writes().empty());
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("not a number: zz")));
}

TEST(ServeBidiStreamingTest, Echoes) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("4"));
  call->inbox().Push(std::optional<std::string>("5"));
  call->inbox().Push(std::optional<std::string>());
  ServeBidiStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum,
      [](CallContext&, ServerReaderWriter<Num, Num>& s) {
        Num n;
        while (s.Read(&n)) s.Write(Num{n.v * 10});
        return absl::OkStatus();
      });
  EXPECT_THAT(call->writes(), ElementsAre("40", "50"));
  EXPECT_THAT(call->status(), IsOk());
}

TEST(AsyncUnaryCallTest, RepliesLaterFromAnotherThread) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("20"));
  std::optional<AsyncUnaryCall<Num>> kept;
  Num seen;
  ServeAsyncUnary<Num, Num>(call, &DecodeNum, &EncodeNum,
                            [&](AsyncUnaryCall<Num> c, Num& req) {
                              seen = req;
                              kept = c;
                            });
  EXPECT_EQ(seen.v, 20);
  EXPECT_FALSE(call->ended());
  std::thread t([c = *kept] { c.Reply(Num{21}); });
  t.join();
  kept.reset();
  EXPECT_THAT(call->writes(), ElementsAre("21"));
  EXPECT_THAT(call->status(), IsOk());
}

TEST(AsyncUnaryCallTest, DroppingEveryCopyEndsTheCallWithInternal) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("1"));
  std::optional<AsyncUnaryCall<Num>> a, b;
  ServeAsyncUnary<Num, Num>(call, &DecodeNum, &EncodeNum,
                            [&](AsyncUnaryCall<Num> c, Num&) {
                              a = c;
                              b = c;
                            });
  a.reset();
  EXPECT_FALSE(call->ended());  // b still holds the call.
  b.reset();
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kInternal,
                                       "handler dropped the call"));
}

TEST(AsyncUnaryCallTest, FailWithOkIsInternal) {
  auto call = std::make_shared<FakeServerStream>();
  AsyncUnaryCall<Num> c(call, &EncodeNum);
  c.Fail(absl::OkStatus());
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kInternal));
}

TEST(AsyncServerStreamTest, UseAfterTheClientWentAwayIsHarmless) {
  auto call = std::make_shared<FakeServerStream>();
  call->inbox().Push(std::optional<std::string>("1"));
  std::optional<AsyncServerStream<Num>> kept;
  ServeAsyncServerStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum,
      [&](AsyncServerStream<Num> c, Num&) { kept = c; });
  bool first = false;
  kept->Write(Num{1}, [&](bool ok) { first = ok; });
  EXPECT_TRUE(first);
  call->End();
  EXPECT_TRUE(kept->context().IsCancelled());
  bool second = true;
  kept->Write(Num{2}, [&](bool ok) { second = ok; });
  EXPECT_FALSE(second);
  kept->Finish(absl::OkStatus());
  kept.reset();
  EXPECT_THAT(call->writes(), ElementsAre("1"));
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kCancelled));
}

TEST(AsyncServerReaderTest, ReadsUntilTheEndThenReplies) {
  auto call = std::make_shared<FakeServerStream>();
  struct Loop {
    static void Next(AsyncServerReader<Num, Num> c, std::shared_ptr<Num> sum) {
      c.Read([c, sum](std::optional<Num> n) {
        if (!n.has_value()) {
          c.Reply(*sum);
          return;
        }
        sum->v += n->v;
        Next(c, sum);
      });
    }
  };
  ServeAsyncClientStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum, [](AsyncServerReader<Num, Num> c) {
        Loop::Next(c, std::make_shared<Num>());
      });
  EXPECT_FALSE(call->ended());  // Waiting for messages.
  call->inbox().Push(std::optional<std::string>("5"));
  call->inbox().Push(std::optional<std::string>("6"));
  call->inbox().Push(std::optional<std::string>());
  EXPECT_THAT(call->writes(), ElementsAre("11"));
  EXPECT_THAT(call->status(), IsOk());
}

TEST(AsyncServerReaderWriterTest, ABadMessageEndsTheCall) {
  auto call = std::make_shared<FakeServerStream>();
  std::optional<Num> got = Num{};
  ServeAsyncBidiStreaming<Num, Num>(
      call, &DecodeNum, &EncodeNum, [&](AsyncServerReaderWriter<Num, Num> c) {
        c.Read([&got](std::optional<Num> n) { got = n; });
      });
  call->inbox().Push(std::optional<std::string>("??"));
  EXPECT_FALSE(got.has_value());
  EXPECT_THAT(call->status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace lpc
