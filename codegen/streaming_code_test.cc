// Compiles the code lpcc generates for testdata/test_streams.idl and calls
// every method through the in-process transport: the three streaming kinds
// with synchronous and [async] handlers, an [async] unary method, the
// generated descriptor and StartCall routing, and the checks on stream
// messages (narrow integers out of range, on either side).
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "codegen/testdata/test_streams.lpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc::codegen {
namespace {

namespace s = ::lpc::codegen::streams;
namespace tt = ::lpc::codegen::testtypes;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kWait = std::chrono::seconds(10);

s::Change MakeChange(const std::string& key, uint32_t kind) {
  s::Change c;
  c.set_key(key);
  c.set_value("v:" + key);
  c.set_kind(kind);
  return c;
}

s::Frame MakeFrame(uint64_t seq, const std::string& data) {
  s::Frame f;
  f.set_seq(seq);
  f.set_data(data);
  return f;
}

std::string Reversed(std::string s) { return std::string(s.rbegin(), s.rend()); }

// Waits until `done()` holds, up to 10 s; returns whether it did.
template <typename Fn>
bool WaitFor(Fn done) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class StreamsImpl : public s::StreamsService {
 public:
  ~StreamsImpl() override {
    std::vector<std::thread> threads;
    {
      MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  absl::Status Watch(CallContext& ctx, const std::string& prefix,
                     uint32_t limit,
                     ServerWriter<s::Change>& writer) override {
    if (prefix == "forever") {
      // Writes until the call ends (the client cancels).
      for (uint64_t i = 0;; ++i) {
        if (!writer.Write(MakeChange(prefix + std::to_string(i), 1))) break;
      }
      watch_saw_end = true;
      return absl::OkStatus();
    }
    for (uint32_t i = 0; i < limit; ++i) {
      uint32_t kind = prefix == "bad" ? 300 : i;
      if (!writer.Write(MakeChange(prefix + std::to_string(i), kind))) {
        return absl::OkStatus();
      }
    }
    if (prefix == "fail") return absl::NotFoundError("no more under fail");
    return absl::OkStatus();
  }

  absl::StatusOr<s::Summary> Upload(CallContext& ctx,
                                    ServerReader<s::Sample>& samples) override {
    s::Summary out;
    s::Sample sample;
    while (samples.Read(&sample)) {
      out.set_count(out.count() + 1);
      out.set_total(out.total() + sample.value() * sample.weight());
    }
    if (ctx.IsCancelled()) return absl::CancelledError("upload ended");
    return out;
  }

  absl::Status Process(CallContext& ctx,
                       ServerReaderWriter<s::Frame, s::Frame>& frames) override {
    s::Frame f;
    while (frames.Read(&f)) {
      if (!frames.Write(MakeFrame(f.seq(), Reversed(f.data())))) break;
    }
    return absl::OkStatus();
  }

  absl::Status Tags(CallContext& ctx,
                    ServerWriter<tt::Tag>& writer) override {
    for (int i = 0; i < 2; ++i) {
      tt::Tag t;
      t.set_key("tag" + std::to_string(i));
      t.set_weight(-i);
      writer.Write(t);
    }
    return absl::OkStatus();
  }

  absl::Status Drain(CallContext& ctx,
                     ServerReader<s::Frame>& frames) override {
    s::Frame f;
    while (frames.Read(&f)) drained += f.data().size();
    return absl::OkStatus();
  }

  // [async] unary: parked until the test replies from its own thread.
  void Add(AsyncUnaryCall<AddResult> call, int64_t a, int64_t b) override {
    if (a < 0) return;  // Drops the call.
    MutexLock lock(&mu_);
    pending_adds_.push_back({std::move(call), a + b});
  }
  // Replies to every parked Add from a new thread; returns how many.
  size_t ReplyToAdds() {
    std::vector<std::pair<AsyncUnaryCall<AddResult>, int64_t>> adds;
    {
      MutexLock lock(&mu_);
      adds.swap(pending_adds_);
    }
    size_t n = adds.size();
    std::thread t([adds = std::move(adds)] {
      for (const auto& [call, sum] : adds) {
        AddResult r;
        r.value = sum;
        call.Reply(r);
      }
    });
    t.join();
    return n;
  }
  size_t PendingAdds() {
    MutexLock lock(&mu_);
    return pending_adds_.size();
  }

  // [async] server-streaming: a thread of its own writes and finishes.
  void Tail(AsyncServerStream<s::Change> call,
            const std::string& prefix) override {
    MutexLock lock(&mu_);
    threads_.emplace_back([call, prefix] {
      for (int i = 0; i < 3; ++i) {
        std::promise<bool> written;
        call.Write(MakeChange(prefix + std::to_string(i), i),
                   [&written](bool ok) { written.set_value(ok); });
        if (!written.get_future().get()) return;
      }
      call.Finish(absl::OkStatus());
    });
  }

  // [async] client-streaming: reads through callbacks, then replies.
  void Collect(AsyncServerReader<s::Sample, s::Summary> call) override {
    auto summary = std::make_shared<s::Summary>();
    ReadAll(call, summary);
  }
  static void ReadAll(AsyncServerReader<s::Sample, s::Summary> call,
                      std::shared_ptr<s::Summary> summary) {
    call.Read([call, summary](std::optional<s::Sample> sample) {
      if (!sample.has_value()) {
        if (!call.context().IsCancelled()) call.Reply(*summary);
        return;
      }
      summary->set_count(summary->count() + 1);
      summary->set_total(summary->total() + sample->value());
      ReadAll(call, summary);
    });
  }

  // [async] bidi: each frame back, then OK at the end of the client's.
  void Echo(AsyncServerReaderWriter<s::Frame, s::Frame> call) override {
    EchoNext(std::move(call));
  }
  static void EchoNext(AsyncServerReaderWriter<s::Frame, s::Frame> call) {
    call.Read([call](std::optional<s::Frame> frame) {
      if (!frame.has_value()) {
        call.Finish(absl::OkStatus());
        return;
      }
      call.Write(*frame, [call](bool ok) {
        if (ok) EchoNext(call);
      });
    });
  }

  absl::Status Names(CallContext& ctx_, const std::string& writer,
                     const std::string& ctx,
                     ServerWriter<s::Change>& writer_) override {
    writer_.Write(MakeChange(writer + "/" + ctx, 0));
    return absl::OkStatus();
  }

  void Calls(AsyncUnaryCall<CallsResult> call_, int32_t call,
             const std::string& note) override {
    CallsResult r;
    r.value = call * 2;
    r.note = note + "!";
    call_.Reply(r);
  }

  absl::StatusOr<int32_t> Count(CallContext& ctx,
                                const std::string& prefix) override {
    return static_cast<int32_t>(prefix.size());
  }

  std::atomic<bool> watch_saw_end{false};
  std::atomic<size_t> drained{0};

 private:
  Mutex mu_;
  std::vector<std::pair<AsyncUnaryCall<AddResult>, int64_t>> pending_adds_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

class StreamingCodeTest : public ::testing::Test {
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

TEST_F(StreamingCodeTest, DescriptorCarriesEachMethodsKind) {
  const InterfaceDescriptor& d = s::StreamsClient::Descriptor();
  EXPECT_EQ(&d, &s::StreamsService::Descriptor());
  auto kind = [&](std::string_view name) {
    const MethodDescriptor* m = d.FindMethodByName(name);
    EXPECT_NE(m, nullptr) << name;
    return m == nullptr ? MethodKind::kUnary : m->kind;
  };
  EXPECT_EQ(kind("Watch"), MethodKind::kServerStreaming);
  EXPECT_EQ(kind("Upload"), MethodKind::kClientStreaming);
  EXPECT_EQ(kind("Process"), MethodKind::kBidiStreaming);
  EXPECT_EQ(kind("Drain"), MethodKind::kClientStreaming);
  EXPECT_EQ(kind("Add"), MethodKind::kUnary);
  EXPECT_EQ(kind("Echo"), MethodKind::kBidiStreaming);
  EXPECT_EQ(kind("Count"), MethodKind::kUnary);
}

TEST_F(StreamingCodeTest, StreamingAndAsyncMethodsUseStartCall) {
  const InterfaceDescriptor& d = impl_.descriptor();
  for (const MethodDescriptor& m : d.methods) {
    EXPECT_EQ(impl_.UsesStartCall(m.id), m.name != "Count") << m.name;
  }
  EXPECT_FALSE(impl_.UsesStartCall(999));
  // Dispatch refuses them: they need StartCall.
  CallContext ctx;
  std::string response;
  EXPECT_THAT(impl_.Dispatch(d.FindMethodByName("Watch")->id, ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("StartCall")));
  EXPECT_THAT(impl_.Dispatch(d.FindMethodByName("Add")->id, ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("StartCall")));
}

TEST_F(StreamingCodeTest, ServerStreamingReadsEveryMessageInOrder) {
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

TEST_F(StreamingCodeTest, ServerStreamingHandlerStatusEndsTheStream) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("fail", 1);
  s::Change c;
  ASSERT_TRUE(watch.Read(&c));
  EXPECT_EQ(c.key(), "fail0");
  EXPECT_FALSE(watch.Read(&c));
  EXPECT_THAT(watch.Finish(),
              StatusIs(absl::StatusCode::kNotFound, "no more under fail"));
}

TEST_F(StreamingCodeTest, StreamMessageOutOfRangeFailsTheClient) {
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

TEST_F(StreamingCodeTest, CancelReachesAServerStreamingHandler) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> watch = client.Watch("forever", 0);
  s::Change c;
  ASSERT_TRUE(watch.Read(&c));
  ASSERT_TRUE(watch.Read(&c));
  watch.Cancel();
  EXPECT_THAT(watch.Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(WaitFor([&] { return impl_.watch_saw_end.load(); }));
}

TEST_F(StreamingCodeTest, ServerStreamingOfAnImportedStruct) {
  s::StreamsClient client(channel_);
  ClientReader<tt::Tag> tags = client.Tags();
  tt::Tag t;
  std::vector<std::string> keys;
  while (tags.Read(&t)) keys.push_back(t.key());
  EXPECT_THAT(keys, ElementsAre("tag0", "tag1"));
  EXPECT_THAT(tags.Finish(), IsOk());
}

TEST_F(StreamingCodeTest, ClientStreamingSumsTheSamples) {
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

TEST_F(StreamingCodeTest, ClientStreamMessageOutOfRangeFailsTheCall) {
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

TEST_F(StreamingCodeTest, VoidClientStreamingReplies) {
  s::StreamsClient client(channel_);
  ClientWriter<s::Frame, s::StreamsClient::DrainResult> drain = client.Drain();
  ASSERT_TRUE(drain.Write(MakeFrame(1, "abc")));
  ASSERT_TRUE(drain.Write(MakeFrame(2, "de")));
  EXPECT_THAT(drain.Finish().status(), IsOk());
  EXPECT_EQ(impl_.drained.load(), 5u);
}

TEST_F(StreamingCodeTest, BidiStreamingInterleaves) {
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

TEST_F(StreamingCodeTest, AsyncUnaryRepliesFromAnotherThread) {
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

TEST_F(StreamingCodeTest, AsyncUnaryDroppedCallIsInternal) {
  s::StreamsClient client(channel_);
  EXPECT_THAT(client.Add(-1, 0).status(),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("handler dropped the call")));
}

TEST_F(StreamingCodeTest, AsyncServerStreaming) {
  s::StreamsClient client(channel_);
  ClientReader<s::Change> tail = client.Tail("t");
  std::vector<std::string> keys;
  s::Change c;
  while (tail.Read(&c)) keys.push_back(c.key());
  EXPECT_THAT(keys, ElementsAre("t0", "t1", "t2"));
  EXPECT_THAT(tail.Finish(), IsOk());
}

TEST_F(StreamingCodeTest, AsyncClientStreaming) {
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

TEST_F(StreamingCodeTest, AsyncBidiStreaming) {
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

TEST_F(StreamingCodeTest, ParametersNamedLikeTheGeneratedOnes) {
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

TEST_F(StreamingCodeTest, UnaryMethodBesideStreamsStillDispatches) {
  s::StreamsClient client(channel_);
  absl::StatusOr<int32_t> n = client.Count("xyz");
  ASSERT_THAT(n.status(), IsOk());
  EXPECT_EQ(*n, 3);
}

}  // namespace
}  // namespace lpc::codegen
