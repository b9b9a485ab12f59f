// Streams on the local transport (docs/local-transport.md, "Streams"): a
// real port, asynchronous handlers in this process (stream_test_service.h)
// and clients in this process or, for a client that dies, in a child
// process (local_test_peer). Every wait is on a condition with a deadline.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "testing/stream_waits.h"
#include "transports/local/local_transport.h"
#include "transports/local/stream_test_service.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::lpc::testing::StreamsDescriptor;
using ::lpc::testing::StreamsService;
using ::lpc::testing::FinishBlocking;
using ::lpc::testing::ReadBlocking;
using ::lpc::testing::WaitFor;
using ::lpc::testing::WriteBlocking;
using ::testing::HasSubstr;

const MethodDescriptor& M(int id) { return StreamsDescriptor().methods[id - 1]; }

template <typename T>
using Result = ::lpc::testing::CallbackResult<T>;

using ::lpc::testing::ReadResult;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lpc-stream-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class StreamTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions so = {}, LocalPortOptions po = {}) {
    so.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(so);
    ASSERT_OK(server_->RegisterService(&service_));
    po.runtime_dir = dir_.path();
    auto t = MakeLocalServerTransport("streams", po);
    ASSERT_OK(t.status());
    transport_ = t->get();
    ASSERT_OK(server_->AddTransport(std::move(*t)));
    ASSERT_OK(server_->Start());
  }
  std::shared_ptr<Channel> NewChannel(ChannelOptions co = {}) {
    LocalChannelOptions lo;
    lo.runtime_dir = dir_.path();
    auto ch = CreateLocalChannel("streams", co, lo);
    EXPECT_OK(ch.status());
    return *ch;
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  TempDir dir_;
  StreamsService service_;
  std::unique_ptr<Server> server_;
  LocalServerTransport* transport_ = nullptr;
};

TEST_F(StreamTest, ServerStreamArrivesInOrder) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(1), &ctx);
  ASSERT_OK(WriteBlocking(*s, "500 10"));
  s->WritesDone();
  for (int i = 0; i < 500; ++i) {
    ReadResult r = ReadBlocking(*s);
    ASSERT_OK(r.status());
    ASSERT_TRUE(r->has_value()) << i;
    EXPECT_EQ((*r)->substr(0, (*r)->find(':')), absl::StrCat(i));
  }
  ReadResult end = ReadBlocking(*s);
  ASSERT_OK(end.status());
  EXPECT_FALSE(end->has_value());
  EXPECT_OK(FinishBlocking(*s));
  EXPECT_EQ(transport_->stats().streams_opened, 1u);
}

TEST_F(StreamTest, ClientStreamAndHalfCloseFromTheClient) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(2), &ctx);
  for (int i = 0; i < 300; ++i) {
    ASSERT_OK(WriteBlocking(*s, std::string(i, 'a')));
  }
  s->WritesDone();
  ReadResult r = ReadBlocking(*s);
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, absl::StrCat(300, ":", 299 * 300 / 2));
  EXPECT_OK(FinishBlocking(*s));
  // Writes after WritesDone fail.
  EXPECT_THAT(WriteBlocking(*s, "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(StreamTest, BidiEchoesInOrderWithLargeMessages) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(3), &ctx);
  // Inline, data area and memfd payloads.
  const size_t sizes[] = {0, 10, 900, 70000, 3 << 20};
  for (int round = 0; round < 3; ++round) {
    for (size_t size : sizes) {
      std::string m(size, static_cast<char>('a' + round));
      if (!m.empty()) m[0] = static_cast<char>(size % 251);
      ASSERT_OK(WriteBlocking(*s, m));
      ReadResult r = ReadBlocking(*s);
      ASSERT_OK(r.status());
      ASSERT_TRUE(r->has_value());
      EXPECT_EQ(**r, m);
    }
  }
  s->WritesDone();
  ReadResult end = ReadBlocking(*s);
  ASSERT_OK(end.status());
  EXPECT_FALSE(end->has_value());
  EXPECT_OK(FinishBlocking(*s));
}

TEST_F(StreamTest, ServerFinishesEarlyWithStatus) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(4), &ctx);
  ASSERT_OK(WriteBlocking(*s, "hi"));
  ReadResult r = ReadBlocking(*s);
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "bye");
  // The server's half ended: end of stream, then its status.
  ReadResult end = ReadBlocking(*s);
  ASSERT_OK(end.status());
  EXPECT_FALSE(end->has_value());
  EXPECT_THAT(FinishBlocking(*s), StatusIs(absl::StatusCode::kPermissionDenied,
                                       HasSubstr("early")));
  // The client's half is still open, but writing into a finished call
  // fails; the connection is fine.
  EXPECT_FALSE(WriteBlocking(*s, "more").ok());
  CallContext unary;
  auto echoed =
      ch->Call(StreamsDescriptor(), M(8), &unary, std::string("still here"));
  ASSERT_OK(echoed.status());
  EXPECT_EQ(*echoed, "still here");
}

TEST_F(StreamTest, CancelMidStreamIsSeenByBothSides) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(5), &ctx);
  ASSERT_OK(WriteBlocking(*s, "first"));
  ASSERT_TRUE(WaitFor([&] { return service_.got_first() == 1; }));
  Result<ReadResult> pending;
  s->Read(pending.Callback());
  ctx.Cancel();
  std::optional<ReadResult> r = pending.Get();
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(r->status(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(FinishBlocking(*s), StatusIs(absl::StatusCode::kCancelled));
  // The handler's pending Read failed, and its context was cancelled.
  ASSERT_TRUE(WaitFor([&] { return service_.hold_ends().size() == 1; }));
  EXPECT_THAT(service_.hold_ends()[0],
              StatusIs(absl::StatusCode::kCancelled));
  // The handler's own cancel callback runs on the cancelling thread after
  // the transport's (which failed the Read), so it may come a moment later.
  EXPECT_TRUE(WaitFor([&] { return service_.cancels_seen() == 1; }));
}

TEST_F(StreamTest, DeadlineMidStreamIsSeenByBothSides) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(300));
  auto s = ch->OpenStream(StreamsDescriptor(), M(5), &ctx);
  ASSERT_OK(WriteBlocking(*s, "first"));
  ASSERT_TRUE(WaitFor([&] { return service_.got_first() == 1; }));
  // Either side may see the deadline first: the client ends the call
  // itself, or the server's DEADLINE_EXCEEDED ends it (end of stream).
  ReadResult r = ReadBlocking(*s);
  if (r.ok()) {
    EXPECT_FALSE(r->has_value());
  } else {
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
  EXPECT_THAT(FinishBlocking(*s),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(WaitFor([&] { return service_.hold_ends().size() == 1; }));
  EXPECT_THAT(service_.hold_ends()[0],
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Writes after the end fail with the call's status.
  EXPECT_THAT(WriteBlocking(*s, "x"),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // The deadline timer runs the transport's callback (which ends the
  // stream) before the handler's, so the handler's may come a moment after
  // its Read failed.
  EXPECT_TRUE(WaitFor([&] { return service_.cancels_seen() == 1; }));
}

TEST_F(StreamTest, SlowReaderHoldsTheServerBackAtTheWindow) {
  StartServer();
  ChannelOptions co;
  co.stream_window.messages = 8;
  co.stream_window.bytes = 1 << 20;
  auto ch = NewChannel(co);
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(1), &ctx);
  ASSERT_OK(WriteBlocking(*s, "200 65536"));  // 12.5 MiB in all.
  // The reader reads nothing yet: the server's writes stop at the window.
  ASSERT_TRUE(WaitFor([&] { return service_.writes_done() >= 8; }));
  const LocalServerStats before = transport_->stats();
  EXPECT_EQ(service_.writes_done(), 8u);
  // Nothing piles up in the server either.
  EXPECT_LE(before.queued_reply_bytes, uint64_t{8} * 65600);
  for (int i = 0; i < 200; ++i) {
    ReadResult r = ReadBlocking(*s);
    ASSERT_OK(r.status());
    ASSERT_TRUE(r->has_value());
    // Never more than a window ahead of the reader.
    EXPECT_LE(service_.writes_done(), static_cast<uint64_t>(i) + 1 + 8);
  }
  EXPECT_OK(FinishBlocking(*s));
}

TEST_F(StreamTest, SlowServerReaderHoldsTheClientBackAtTheWindow) {
  ServerOptions so;
  so.stream_window.messages = 8;
  so.stream_window.bytes = 1 << 20;
  StartServer(so);
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(6), &ctx);  // Gate.
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < 100; ++i) {
      if (!WriteBlocking(*s, std::string(1000, 'w')).ok()) return;
      written.fetch_add(1);
    }
    s->WritesDone();
  });
  struct JoinAtEnd {
    StreamsService& service;
    std::thread& t;
    ~JoinAtEnd() {
      service.OpenGate();
      if (t.joinable()) t.join();
    }
  } join_at_end{service_, writer};
  ASSERT_TRUE(WaitFor([&] { return written.load() >= 8; }));
  // The server buffers the eight messages, charged to its request budget,
  // and reads none: the ninth write waits for credits.
  EXPECT_TRUE(WaitFor(
      [&] { return transport_->stats().request_bytes >= 8 * 1000; }));
  EXPECT_EQ(written.load(), 8);
  service_.OpenGate();
  writer.join();
  EXPECT_EQ(written.load(), 100);
  ReadResult r = ReadBlocking(*s);
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "100");
  EXPECT_OK(FinishBlocking(*s));
  // What the handler took is no longer charged.
  EXPECT_TRUE(WaitFor([&] { return transport_->stats().request_bytes == 0; }));
}

TEST_F(StreamTest, ThousandConcurrentStreamsOnOneConnection) {
  StartServer();
  auto ch = NewChannel();
  constexpr int kStreams = 1000;
  std::vector<CallContext> ctxs(kStreams);
  std::vector<std::shared_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(ch->OpenStream(StreamsDescriptor(), M(3), &ctxs[i]));
  }
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_OK(WriteBlocking(*streams[i], absl::StrCat("m", i)));
  }
  ASSERT_TRUE(WaitFor([&] { return service_.started() == kStreams; }));
  EXPECT_EQ(transport_->stats().connections_open, 1u);
  for (int i = kStreams - 1; i >= 0; --i) {
    ReadResult r = ReadBlocking(*streams[i]);
    ASSERT_OK(r.status());
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, absl::StrCat("m", i));
    streams[i]->WritesDone();
  }
  for (auto& s : streams) EXPECT_OK(FinishBlocking(*s));
  EXPECT_EQ(transport_->stats().streams_opened, static_cast<uint64_t>(kStreams));
}

// A client that opens many streams before it reads anything is not taken
// for one that does not read: each stream's window announce and finish may
// queue past max_queued_replies (here 8, with 256-slot rings); only the
// streams' messages are held back at half of it.
TEST_F(StreamTest, ManyStreamsOpenedBeforeAnyReadAreNotCutOff) {
  LocalPortOptions po;
  po.max_queued_replies = 8;
  StartServer({}, po);
  auto ch = NewChannel();
  constexpr int kStreams = 600;
  std::vector<CallContext> ctxs(kStreams);
  std::vector<std::shared_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(ch->OpenStream(StreamsDescriptor(), M(1), &ctxs[i]));
    ASSERT_OK(WriteBlocking(*streams.back(), "2 10"));
    streams.back()->WritesDone();
  }
  ASSERT_TRUE(WaitFor([&] { return service_.started() == kStreams; }));
  for (int i = 0; i < kStreams; ++i) {
    for (int n = 0; n < 2; ++n) {
      ReadResult r = ReadBlocking(*streams[i]);
      ASSERT_OK(r.status()) << "stream " << i;
      ASSERT_TRUE(r->has_value()) << "stream " << i;
    }
    ReadResult end = ReadBlocking(*streams[i]);
    ASSERT_OK(end.status());
    EXPECT_FALSE(end->has_value());
    EXPECT_OK(FinishBlocking(*streams[i])) << "stream " << i;
  }
  EXPECT_EQ(transport_->stats().connections_open, 1u);
  EXPECT_EQ(transport_->stats().clients_cut_off, 0u);
}

TEST_F(StreamTest, OversizedMessagesEndOnlyTheirStream) {
  ServerOptions so;
  so.max_message_size = 64 << 10;
  StartServer(so);
  ChannelOptions co;
  co.max_message_size = 16 << 20;
  auto ch = NewChannel(co);
  {
    // Client to server: the server ends the stream.
    CallContext ctx;
    auto s = ch->OpenStream(StreamsDescriptor(), M(3), &ctx);
    EXPECT_OK(WriteBlocking(*s, std::string(1 << 20, 'o')));
    EXPECT_THAT(FinishBlocking(*s),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         HasSubstr("maximum message size")));
  }
  {
    // Server to client: the client ends it.
    ChannelOptions small;
    small.max_message_size = 1000;
    auto ch2 = NewChannel(small);
    CallContext ctx;
    auto s = ch2->OpenStream(StreamsDescriptor(), M(1), &ctx);
    ASSERT_OK(WriteBlocking(*s, "1 5000"));
    ReadResult r = ReadBlocking(*s);
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_THAT(FinishBlocking(*s),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  {
    // A Write over the writer's own limit sends nothing and ends the
    // stream: on the client,
    ChannelOptions small;
    small.max_message_size = 1000;
    auto ch2 = NewChannel(small);
    CallContext ctx;
    auto s = ch2->OpenStream(StreamsDescriptor(), M(3), &ctx);
    EXPECT_THAT(WriteBlocking(*s, std::string(5000, 'c')),
                StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_THAT(FinishBlocking(*s),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  {
    // and on the server (its limit is 64 KiB).
    CallContext ctx;
    auto s = ch->OpenStream(StreamsDescriptor(), M(1), &ctx);
    ASSERT_OK(WriteBlocking(*s, "1 100000"));
    EXPECT_THAT(FinishBlocking(*s),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         HasSubstr("maximum message size")));
  }
  // The connections survive.
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(3), &ctx);
  ASSERT_OK(WriteBlocking(*s, "small"));
  ReadResult r = ReadBlocking(*s);
  ASSERT_OK(r.status());
  EXPECT_EQ(**r, "small");
  s->WritesDone();
  EXPECT_OK(FinishBlocking(*s));
  EXPECT_EQ(transport_->stats().clients_cut_off, 0u);
}

TEST_F(StreamTest, PlainUnaryMethodThroughAStream) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  auto s = ch->OpenStream(StreamsDescriptor(), M(8), &ctx);  // Plain.
  ASSERT_OK(WriteBlocking(*s, "one request"));
  s->WritesDone();
  ReadResult r = ReadBlocking(*s);
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "one request");
  ReadResult end = ReadBlocking(*s);
  ASSERT_OK(end.status());
  EXPECT_FALSE(end->has_value());
  EXPECT_OK(FinishBlocking(*s));
  // Two requests are refused.
  CallContext ctx2;
  auto s2 = ch->OpenStream(StreamsDescriptor(), M(8), &ctx2);
  ASSERT_OK(WriteBlocking(*s2, "a"));
  ASSERT_OK(WriteBlocking(*s2, "b"));
  EXPECT_THAT(FinishBlocking(*s2), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("one request")));
}

TEST_F(StreamTest, AsyncUnaryHandlersHoldNoWorker) {
  LocalPortOptions po;
  po.concurrency = 1;
  po.max_workers = 2;
  StartServer({}, po);
  auto ch = NewChannel();
  constexpr int kCalls = 500;
  std::vector<CallContext> ctxs(kCalls);
  std::vector<std::unique_ptr<Result<absl::StatusOr<std::string>>>> results;
  // Several connections: each keeps at most max_in_flight calls unread.
  std::vector<std::shared_ptr<Channel>> channels;
  for (int i = 0; i < 4; ++i) channels.push_back(NewChannel());
  for (int i = 0; i < kCalls; ++i) {
    results.push_back(std::make_unique<Result<absl::StatusOr<std::string>>>());
    channels[i % 4]->StartCall(StreamsDescriptor(), M(7), &ctxs[i],
                               absl::StrCat(i), results.back()->Callback());
  }
  ASSERT_TRUE(WaitFor([&] { return service_.pending() == kCalls; }));
  // Two workers, 500 calls pending: another call still runs.
  CallContext plain;
  auto r = ch->Call(StreamsDescriptor(), M(8), &plain, std::string("p"));
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, "p");
  // Finished later, from this thread.
  for (auto& call : service_.TakePending()) {
    call->Read([call](ReadResult req) {
      call->Write(absl::StrCat("+", **req), [](absl::Status) {});
      call->Finish(absl::OkStatus());
    });
  }
  for (int i = 0; i < kCalls; ++i) {
    std::optional<absl::StatusOr<std::string>> v = results[i]->Get();
    ASSERT_TRUE(v.has_value());
    ASSERT_OK(v->status());
    EXPECT_EQ(**v, absl::StrCat("+", i));
  }
}

TEST_F(StreamTest, AsyncCallWhoseClientLeftIsCancelledAndHarmless) {
  StartServer();
  {
    auto ch = NewChannel();
    CallContext ctx;
    Result<absl::StatusOr<std::string>> result;
    ch->StartCall(StreamsDescriptor(), M(7), &ctx, "x", result.Callback());
    ASSERT_TRUE(WaitFor([&] { return service_.pending() == 1; }));
    ctx.Cancel();
    ASSERT_TRUE(result.Get().has_value());
  }
  std::vector<std::shared_ptr<ServerStream>> calls = service_.TakePending();
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_TRUE(WaitFor([&] { return calls[0]->context().IsCancelled(); }));
  Result<absl::Status> wrote;
  calls[0]->Write("late", wrote.Callback());
  calls[0]->Finish(absl::OkStatus());
  std::optional<absl::Status> w = wrote.Get();
  ASSERT_TRUE(w.has_value());
}

TEST_F(StreamTest, DroppingAnAsyncCallEndsItWithInternal) {
  StartServer();
  auto ch = NewChannel();
  CallContext ctx;
  Result<absl::StatusOr<std::string>> result;
  ch->StartCall(StreamsDescriptor(), M(7), &ctx, "x", result.Callback());
  ASSERT_TRUE(WaitFor([&] { return service_.pending() == 1; }));
  service_.TakePending().clear();  // Every copy dropped, unfinished.
  std::optional<absl::StatusOr<std::string>> v = result.Get();
  ASSERT_TRUE(v.has_value());
  EXPECT_THAT(v->status(), StatusIs(absl::StatusCode::kInternal,
                                    HasSubstr("dropped")));
}

// runtime/call.h: a server stream stays valid while anyone holds it, even
// past its server's shutdown and destruction. Two async calls, one ended by
// its deadline and one still open at shutdown, are held until after the
// server is gone; using and releasing them then frees their connection,
// whose endpoint and charges reach the server's budgets (ASan sees it).
TEST_F(StreamTest, StreamsHeldPastTheServerAreHarmless) {
  StartServer();
  auto ch = NewChannel();
  CallContext timed, open;
  timed.set_deadline(absl::Now() + absl::Milliseconds(100));
  Result<absl::StatusOr<std::string>> timed_result, open_result;
  ch->StartCall(StreamsDescriptor(), M(7), &timed, "x", timed_result.Callback());
  ch->StartCall(StreamsDescriptor(), M(7), &open, "y", open_result.Callback());
  ASSERT_TRUE(WaitFor([&] { return service_.pending() == 2; }));
  std::optional<absl::StatusOr<std::string>> t = timed_result.Get();
  ASSERT_TRUE(t.has_value());
  EXPECT_THAT(t->status(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  std::vector<std::shared_ptr<ServerStream>> calls = service_.TakePending();
  ASSERT_EQ(calls.size(), 2u);
  server_->Shutdown();
  server_.reset();  // The local server is freed; the calls are not.
  transport_ = nullptr;
  std::optional<absl::StatusOr<std::string>> o = open_result.Get();
  ASSERT_TRUE(o.has_value());
  EXPECT_THAT(o->status(), StatusIs(absl::StatusCode::kUnavailable));
  for (auto& call : calls) {
    EXPECT_TRUE(call->context().IsCancelled());
    Result<absl::Status> wrote;
    call->Write(std::string(1 << 20, 'z'), wrote.Callback());
    call->Finish(absl::OkStatus());
    std::optional<absl::Status> w = wrote.Get();
    ASSERT_TRUE(w.has_value());
    EXPECT_FALSE(w->ok());
  }
  calls.clear();  // The last references: the connection goes now.
}

TEST_F(StreamTest, ClientDyingMidStreamCancelsTheHandler) {
  StartServer();
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    const std::string dir = dir_.path();
    char* argv[] = {const_cast<char*>("transports/local/local_test_peer"),
                    const_cast<char*>("stream"), const_cast<char*>(dir.c_str()),
                    const_cast<char*>("streams"), nullptr};
    ::execv(argv[0], argv);
    _exit(127);
  }
  ::close(out[1]);
  ASSERT_TRUE(WaitFor([&] { return service_.got_first() == 1; }));
  EXPECT_EQ(transport_->stats().connections_open, 1u);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(out[0]);
  ASSERT_TRUE(WaitFor([&] { return service_.hold_ends().size() == 1; }));
  EXPECT_THAT(service_.hold_ends()[0],
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(WaitFor([&] { return service_.cancels_seen() == 1; }));
  // Nothing is left of the client: its connection, section and budget.
  EXPECT_TRUE(
      WaitFor([&] { return transport_->stats().connections_open == 0; }));
  EXPECT_EQ(transport_->stats().request_bytes, 0u);
  EXPECT_EQ(transport_->stats().queued_reply_bytes, 0u);
}

}  // namespace
}  // namespace lpc::local
