// Synchronous streaming handlers on the local transport run on the
// runtime's handler pool, not on the workers that read rings and run unary
// calls (docs/local-transport.md, "Streams"): a server with two workers
// keeps answering unary calls while many such handlers block mid-stream,
// and its shutdown cancels and joins them; the pool's size and the streams
// per connection come from the options or the config file. Every wait is on a condition
// with a deadline.
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/config.h"
#include "runtime/server.h"
#include "runtime/service.h"
#include "runtime/stream.h"
#include "testing/status_matchers.h"
#include "testing/stream_waits.h"
#include "transports/connect.h"
#include "transports/local/local_transport.h"
#include "transports/local/stream_test_service.h"
#include "testing/temp_dir.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;

constexpr MethodDescriptor kMethods[] = {
    {"Hold", 1, false, MethodKind::kBidiStreaming},
    {"Echo", 2, false, MethodKind::kUnary},
};

const InterfaceDescriptor& HeldDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Held", "6a1e0d0c-0b0a-4908-8706-050403020102", {1, 0},
      kMethods};
  return d;
}

void EncodeBytes(const std::string& in, std::string* out) { *out = in; }
absl::Status DecodeBytes(std::string_view in, std::string* out) {
  out->assign(in);
  return absl::OkStatus();
}

// Hold (synchronous bidi): reads one message, answers "held", then reads
// until the client's half-close or the end of the call, and returns. The
// service counts the handlers that started and returned, and those that
// saw their call cancelled.
class HeldService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return HeldDescriptor();
  }
  bool UsesStartCall(uint32_t method_id) const override {
    return method_id == 1;
  }
  // (StartCallBlocks keeps its default, true: Hold blocks.)
  absl::Status Dispatch(uint32_t method_id, CallContext&,
                        std::string_view request,
                        std::string* response) override {
    if (method_id != 2) return absl::UnimplementedError("not unary");
    response->assign(request);
    return absl::OkStatus();
  }
  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override {
    if (method_id != 1) {
      Service::StartCall(method_id, std::move(call));
      return;
    }
    ServeBidiStreaming<std::string, std::string>(
        std::move(call), &DecodeBytes, &EncodeBytes,
        [this](CallContext& ctx,
               ServerReaderWriter<std::string, std::string>& stream) {
          std::string msg;
          if (!stream.Read(&msg)) return absl::CancelledError("no message");
          Note([this] { ++started_; });
          stream.Write("held");
          while (stream.Read(&msg)) {
          }
          const bool cancelled = ctx.IsCancelled();
          Note([this, cancelled] {
            ++returned_;
            if (cancelled) ++cancelled_;
          });
          return absl::OkStatus();
        });
  }

  // Waits until `pred` holds over (started, returned, cancelled), for at
  // most 20 s.
  bool WaitUntil(std::function<bool(int, int, int)> pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      return pred(started_, returned_, cancelled_);
    });
  }

 private:
  void Note(const std::function<void()>& change) {
    std::lock_guard<std::mutex> lock(mu_);
    change();
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  int returned_ = 0;
  int cancelled_ = 0;
};

template <typename T>
using Result = ::lpc::testing::CallbackResult<T>;
using ::lpc::testing::FinishBlocking;
using ::lpc::testing::ReadBlocking;
using ::lpc::testing::ReadResult;
using ::lpc::testing::WriteBlocking;

using ::lpc::testing::TempDir;

class StreamPoolTest : public ::testing::Test {
 protected:
  static constexpr int kStreams = 8;

  // Two workers: before synchronous streaming handlers ran on the handler
  // pool, two blocked streams took both.
  void StartServer(LocalPortOptions po = {}) {
    ServerOptions so;
    so.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(so);
    ASSERT_OK(server_->RegisterService(&service_));
    po.runtime_dir = dir_.path();
    po.concurrency = 1;
    po.max_workers = 2;
    auto t = MakeLocalServerTransport("held", po);
    ASSERT_OK(t.status());
    ASSERT_OK(server_->AddTransport(std::move(*t)));
    ASSERT_OK(server_->Start());
  }
  std::shared_ptr<Channel> NewChannel() {
    LocalChannelOptions lo;
    lo.runtime_dir = dir_.path();
    auto ch = CreateLocalChannel("held", ChannelOptions{}, lo);
    EXPECT_OK(ch.status());
    return *ch;
  }
  // Opens a Hold stream on `ch` and sends its first message.
  std::shared_ptr<ClientStream> OpenHold(Channel& ch, CallContext* ctx) {
    std::shared_ptr<ClientStream> s =
        ch.OpenStream(HeldDescriptor(), kMethods[0], ctx);
    EXPECT_OK(WriteBlocking(*s, "go"));
    return s;
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  TempDir dir_{"lpc-stream-pool-"};
  HeldService service_;
  std::unique_ptr<Server> server_;
};

TEST_F(StreamPoolTest, UnaryCallsCompleteWhileStreamHandlersBlock) {
  StartServer();
  std::shared_ptr<Channel> streams_ch = NewChannel();
  std::vector<std::unique_ptr<CallContext>> ctxs;
  std::vector<std::shared_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    ctxs.push_back(std::make_unique<CallContext>());
    streams.push_back(OpenHold(*streams_ch, ctxs.back().get()));
  }
  // Every handler runs, blocked in its next Read, each on a thread of its
  // own: four times the workers.
  ASSERT_TRUE(service_.WaitUntil(
      [](int started, int, int) { return started == kStreams; }));
  for (auto& s : streams) {
    ReadResult r = ReadBlocking(*s);
    ASSERT_OK(r.status());
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, "held");
  }
  // Another connection's unary calls still run on the workers.
  std::shared_ptr<Channel> unary_ch = NewChannel();
  for (int i = 0; i < 50; ++i) {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(20));
    absl::StatusOr<std::string> reply = unary_ch->Call(
        HeldDescriptor(), kMethods[1], &ctx, absl::StrCat("call ", i));
    ASSERT_OK(reply.status());
    EXPECT_EQ(*reply, absl::StrCat("call ", i));
  }
  // So do the streams' own connection's.
  {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(20));
    absl::StatusOr<std::string> reply =
        streams_ch->Call(HeldDescriptor(), kMethods[1], &ctx, "same");
    ASSERT_OK(reply.status());
    EXPECT_EQ(*reply, "same");
  }
  // The half-close ends each handler's loop; it finishes the call.
  for (auto& s : streams) {
    s->WritesDone();
    ReadResult end = ReadBlocking(*s);
    ASSERT_OK(end.status());
    EXPECT_FALSE(end->has_value());
    EXPECT_OK(FinishBlocking(*s));
  }
  EXPECT_TRUE(service_.WaitUntil([](int, int returned, int cancelled) {
    return returned == kStreams && cancelled == 0;
  }));
}

TEST_F(StreamPoolTest, ShutdownCancelsAndJoinsBlockedStreamHandlers) {
  StartServer();
  std::shared_ptr<Channel> ch = NewChannel();
  std::vector<std::unique_ptr<CallContext>> ctxs;
  std::vector<std::shared_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    ctxs.push_back(std::make_unique<CallContext>());
    streams.push_back(OpenHold(*ch, ctxs.back().get()));
  }
  ASSERT_TRUE(service_.WaitUntil(
      [](int started, int, int) { return started == kStreams; }));
  // The clients stay: shutdown waits out its grace, then cancels the
  // handlers and waits for them to return.
  server_->Shutdown();
  EXPECT_TRUE(service_.WaitUntil([](int, int returned, int cancelled) {
    return returned == kStreams && cancelled == kStreams;
  }));
  for (auto& s : streams) {
    absl::Status st = FinishBlocking(*s);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  }
  server_.reset();
}

TEST_F(StreamPoolTest, StreamsBeyondTheQueueEndResourceExhausted) {
  LocalPortOptions po;
  po.max_stream_handler_threads = 1;
  po.max_queued_stream_handlers = 1;
  StartServer(po);
  std::shared_ptr<Channel> ch = NewChannel();
  CallContext first_ctx;
  std::shared_ptr<ClientStream> first = OpenHold(*ch, &first_ctx);
  ASSERT_TRUE(service_.WaitUntil(
      [](int started, int, int) { return started == 1; }));
  // The one thread is taken: of the next two streams, one waits for it
  // and the other ends at once.
  CallContext ctx2, ctx3;
  std::shared_ptr<ClientStream> second =
      ch->OpenStream(HeldDescriptor(), kMethods[0], &ctx2);
  std::shared_ptr<ClientStream> third =
      ch->OpenStream(HeldDescriptor(), kMethods[0], &ctx3);
  EXPECT_OK(WriteBlocking(*second, "go"));
  EXPECT_OK(WriteBlocking(*third, "go"));
  second->WritesDone();
  third->WritesDone();
  // The two final statuses, as they come.
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::Status> ends[2];
  auto ended = [&](int i) {
    return [&, i](absl::Status st) {
      std::lock_guard<std::mutex> lock(mu);
      ends[i] = st;
      cv.notify_all();
    };
  };
  second->Finish(ended(0));
  third->Finish(ended(1));
  auto wait_ends = [&](int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] {
      return int{ends[0].has_value()} + int{ends[1].has_value()} >= n;
    });
  };
  // Exactly one of them is refused (which one depends on which worker
  // handed its stream to the pool first); the other waits for the thread
  // that the first handler holds.
  ASSERT_TRUE(wait_ends(1));
  int refused = -1;
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_NE(ends[0].has_value(), ends[1].has_value());
    refused = ends[0].has_value() ? 0 : 1;
    EXPECT_THAT(*ends[refused], StatusIs(absl::StatusCode::kResourceExhausted));
  }
  first->WritesDone();
  EXPECT_OK(FinishBlocking(*first));
  ASSERT_TRUE(wait_ends(2));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_OK(*ends[1 - refused]);
  }
  EXPECT_TRUE(service_.WaitUntil([](int started, int returned, int) {
    return started == 2 && returned == 2;
  }));
}

// server.max_streams_per_connection in the config file reaches the port:
// two open streams where the default would allow 4096.
TEST_F(StreamPoolTest, StreamsPerConnectionFromTheConfigFile) {
  absl::StatusOr<config::Config> cfg = ParseConfig(
      absl::StrCat("server { name: \"s\" local_port: \"held\" runtime_dir: \"",
                   dir_.path(),
                   "\" max_streams_per_connection: 2 "
                   "max_stream_handler_threads: 2 }"),
      "streams.textproto");
  ASSERT_OK(cfg.status());
  server_ = std::make_unique<Server>();
  ASSERT_OK(server_->RegisterService(&service_));
  ASSERT_OK(AddListenersFromConfig(server_.get(), cfg->server(0)));
  ASSERT_OK(server_->Start());
  std::shared_ptr<Channel> ch = NewChannel();
  CallContext ctx1, ctx2, ctx3;
  std::shared_ptr<ClientStream> first = OpenHold(*ch, &ctx1);
  std::shared_ptr<ClientStream> second = OpenHold(*ch, &ctx2);
  ASSERT_TRUE(service_.WaitUntil(
      [](int started, int, int) { return started == 2; }));
  std::shared_ptr<ClientStream> third =
      ch->OpenStream(HeldDescriptor(), kMethods[0], &ctx3);
  EXPECT_THAT(FinishBlocking(*third),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       ::testing::HasSubstr("at most 2")));
  for (auto* s : {first.get(), second.get()}) {
    s->WritesDone();
    EXPECT_OK(FinishBlocking(*s));
  }
}

TEST(StreamPoolOptionsTest, NeedsAStreamHandlerThread) {
  LocalPortOptions po;
  po.runtime_dir = "/tmp";
  po.max_stream_handler_threads = 0;
  EXPECT_THAT(MakeLocalServerTransport("held", po).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  po.max_stream_handler_threads = 4097;
  EXPECT_THAT(MakeLocalServerTransport("held", po).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace lpc::local
