// Server interceptors in the runtime's dispatch (unary and StartCall),
// client interceptors through InterceptChannel (over the in-process
// transport), the registry, and the access_log and metrics interceptors.
#include "runtime/interceptor.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/interceptors.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"
#include "testing/stream_waits.h"

namespace lpc {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records every hook as a line.
class Recorder {
 public:
  void Add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

template <typename Base>
class Recording final : public Base {
 public:
  Recording(std::string name, Recorder* rec,
            absl::Status reject = absl::OkStatus())
      : name_(std::move(name)), rec_(rec), reject_(std::move(reject)) {}
  absl::Status OnStart(const InterceptedCall& call, CallContext& ctx) override {
    rec_->Add(absl::StrCat(name_, " start ", std::string(call.method_path),
                           ctx.has_deadline() ? " deadline" : " no-deadline"));
    ctx.metadata().emplace("x-added-by", name_);
    return reject_;
  }
  void OnMessage(const InterceptedCall&, CallContext&, MessageDirection d,
                 std::string_view message) override {
    rec_->Add(absl::StrCat(name_, d == MessageDirection::kClientToServer
                                      ? " in "
                                      : " out ",
                           std::string(message)));
  }
  void OnFinish(const InterceptedCall&, CallContext&, const absl::Status& s,
                const CallStats& stats) override {
    rec_->Add(absl::StrCat(name_, " finish ",
                           absl::StatusCodeToString(s.code()), " ",
                           stats.request_messages, "/", stats.request_bytes,
                           " ", stats.response_messages, "/",
                           stats.response_bytes));
  }

 private:
  const std::string name_;
  Recorder* const rec_;
  const absl::Status reject_;
};

// Method 1 echoes the request followed by the "x-added-by" metadata the
// handler saw; method 2 runs through StartCall: it reads every message and
// writes each back twice, then finishes OK; method 3 is oneway.
constexpr MethodDescriptor kMethods[] = {
    {"Echo", 1, false},
    {"Twice", 2, false, MethodKind::kBidiStreaming},
    {"Note", 3, true}};
const InterfaceDescriptor& Descriptor() {
  static const InterfaceDescriptor d{"lpc.test.Icpt",
                                     "11111111-2222-4333-8444-555555555555",
                                     {1, 0},
                                     kMethods};
  return d;
}

class IcptService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override { return Descriptor(); }
  absl::Status Dispatch(uint32_t, CallContext& ctx, std::string_view request,
                        std::string* response) override {
    ++handled;
    std::vector<std::string> added;
    auto [b, e] = ctx.metadata().equal_range("x-added-by");
    for (auto it = b; it != e; ++it) added.push_back(it->second);
    *response = absl::StrCat(std::string(request), "|", absl::StrJoin(added, ","));
    return absl::OkStatus();
  }
  bool UsesStartCall(uint32_t id) const override { return id == 2; }
  void StartCall(uint32_t, std::shared_ptr<ServerStream> call) override {
    ++handled;
    ReadNext(std::move(call));
  }
  int handled = 0;

 private:
  static void ReadNext(std::shared_ptr<ServerStream> call) {
    call->Read([call](absl::StatusOr<std::optional<std::string>> r) {
      if (!r.ok()) return call->Finish(r.status());
      if (!r->has_value()) return call->Finish(absl::OkStatus());
      call->Write(**r, [](absl::Status) {});
      call->Write(**r, [](absl::Status) {});
      ReadNext(call);
    });
  }
};

// A server stream fed from a list, recording what the handler wrote.
class FakeStream final : public ServerStream {
 public:
  explicit FakeStream(std::deque<std::string> in) : in_(std::move(in)) {}
  CallContext& context() override { return ctx_; }
  void Read(ReadCallback done) override {
    if (in_.empty()) return done(std::optional<std::string>());
    std::string m = std::move(in_.front());
    in_.pop_front();
    done(std::optional<std::string>(std::move(m)));
  }
  void Write(std::string message, WriteCallback done) override {
    out.push_back(std::move(message));
    done(absl::OkStatus());
  }
  void Finish(absl::Status status) override {
    if (!finished.has_value()) finished = std::move(status);
  }
  std::vector<std::string> out;
  std::optional<absl::Status> finished;

 private:
  CallContext ctx_;
  std::deque<std::string> in_;
};

std::shared_ptr<ServerInterceptor> ServerRecording(
    std::string name, Recorder* rec, absl::Status reject = absl::OkStatus()) {
  return std::make_shared<Recording<ServerInterceptor>>(std::move(name), rec,
                                                        std::move(reject));
}
std::shared_ptr<ClientInterceptor> ClientRecording(
    std::string name, Recorder* rec, absl::Status reject = absl::OkStatus()) {
  return std::make_shared<Recording<ClientInterceptor>>(std::move(name), rec,
                                                        std::move(reject));
}

// A server with IcptService registered; tests add interceptors, then call
// it directly (Echo, Twice) or start it on an in-process transport.
class InterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(server_.RegisterService(&service_), IsOk());
  }

  void Intercept(std::shared_ptr<ServerInterceptor> interceptor) {
    ASSERT_THAT(server_.AddInterceptor(std::move(interceptor)), IsOk());
  }

  // Starts the server on an in-process transport named `name`; returns a
  // channel to it through `interceptors`.
  std::shared_ptr<Channel> StartAndConnect(
      std::string name,
      std::vector<std::shared_ptr<ClientInterceptor>> interceptors = {}) {
    auto transport = std::make_unique<InProcessTransport>(std::move(name));
    transport_ = transport.get();
    EXPECT_THAT(server_.AddTransport(std::move(transport)), IsOk());
    EXPECT_THAT(server_.Start(), IsOk());
    return InterceptChannel(transport_->NewChannel(), std::move(interceptors));
  }

  // Echo (method 1) through the runtime's dispatch on this thread.
  absl::Status CallEcho(CallContext& ctx, std::string_view request,
                        std::string* response) {
    const BoundInterface* iface = server_.Bind("lpc.test.Icpt");
    if (iface == nullptr) return absl::NotFoundError("not bound");
    return server_.DispatchBound(*iface, *iface->FindMethod(1), ctx, request,
                                 response);
  }

  // Twice (method 2) through StartCall, over a FakeStream fed `in`.
  std::shared_ptr<FakeStream> StartTwice(std::deque<std::string> in) {
    auto stream = std::make_shared<FakeStream>(std::move(in));
    const BoundInterface* iface = server_.Bind("lpc.test.Icpt");
    EXPECT_NE(iface, nullptr);
    if (iface != nullptr) {
      server_.StartCall(*iface, *iface->FindMethod(2), stream);
    }
    return stream;
  }

  IcptService service_;
  Server server_;
  InProcessTransport* transport_ = nullptr;
};

TEST_F(InterceptorTest, UnaryCallsPassThroughEveryHook) {
  Recorder rec;
  Intercept(ServerRecording("a", &rec));
  Intercept(ServerRecording("b", &rec));
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  std::string response;
  ASSERT_THAT(CallEcho(ctx, "hi", &response), IsOk());
  EXPECT_EQ(response, "hi|a,b");  // The handler saw both additions.
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Echo deadline",
                          "b start /lpc.test.Icpt/Echo deadline", "a in hi",
                          "b in hi", "a out hi|a,b", "b out hi|a,b",
                          "b finish OK 1/2 1/6", "a finish OK 1/2 1/6"));
  // The string-keyed Dispatch goes through them too.
  CallContext ctx2;
  ASSERT_THAT(server_.Dispatch("lpc.test.Icpt", 1, ctx2, "x", &response),
              IsOk());
  EXPECT_EQ(rec.lines().size(), 16u);
}

TEST_F(InterceptorTest, OnewayCallsHaveNoReply) {
  Recorder rec;
  Intercept(ServerRecording("a", &rec));
  Recorder client_rec;
  std::shared_ptr<Channel> channel =
      StartAndConnect("icpt-oneway", {ClientRecording("c", &client_rec)});
  CallContext ctx;
  ASSERT_THAT(channel->SendOneway(Descriptor(), kMethods[2], &ctx, "note"),
              IsOk());
  EXPECT_THAT(client_rec.lines(),
              ElementsAre("c start /lpc.test.Icpt/Note deadline", "c in note",
                          "c finish OK 1/4 0/0"));
  // The handler runs on a worker: wait for its three hooks.
  EXPECT_TRUE(testing::WaitFor([&] { return rec.lines().size() >= 3; }));
  server_.Shutdown();
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Note deadline", "a in note",
                          "a finish OK 1/4 0/0"));
}

TEST_F(InterceptorTest, ARejectionStopsTheCall) {
  Recorder rec;
  Intercept(ServerRecording("a", &rec));
  Intercept(
      ServerRecording("deny", &rec, absl::PermissionDeniedError("no tenant")));
  Intercept(ServerRecording("c", &rec));
  CallContext ctx;
  std::string response;
  EXPECT_THAT(CallEcho(ctx, "hi", &response),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(service_.handled, 0);
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Echo no-deadline",
                          "deny start /lpc.test.Icpt/Echo no-deadline",
                          "deny finish PERMISSION_DENIED 1/2 0/0",
                          "a finish PERMISSION_DENIED 1/2 0/0"));
  EXPECT_EQ(server_.calls_failed(), 1u);

  // The same on the StartCall path: the call is finished with the status.
  std::shared_ptr<FakeStream> stream = StartTwice({"m"});
  ASSERT_TRUE(stream->finished.has_value());
  EXPECT_THAT(*stream->finished, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(service_.handled, 0);
}

TEST_F(InterceptorTest, StreamsShowEachMessageAndTheFinish) {
  Recorder rec;
  Intercept(ServerRecording("a", &rec));
  std::shared_ptr<FakeStream> stream = StartTwice({"one", "two"});
  ASSERT_TRUE(stream->finished.has_value());
  EXPECT_THAT(*stream->finished, IsOk());
  EXPECT_THAT(stream->out, ElementsAre("one", "one", "two", "two"));
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Twice no-deadline", "a in one",
                          "a out one", "a out one", "a in two", "a out two",
                          "a out two", "a finish OK 2/6 4/12"));
}

TEST_F(InterceptorTest, AddedOnlyBeforeStart) {
  EXPECT_THAT(server_.AddInterceptor(nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  StartAndConnect("icpt-start");
  EXPECT_THAT(server_.AddInterceptor(std::make_shared<MetricsInterceptor>()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(InterceptorTest, ClientInterceptorsSeeAndChangeTheCall) {
  Recorder rec;
  std::shared_ptr<Channel> channel =
      StartAndConnect("icpt-client", {ClientRecording("c", &rec)});
  EXPECT_EQ(channel->transport_name(), "inprocess");

  CallContext ctx;  // No deadline: the interceptor sees the default one.
  absl::StatusOr<std::string> r =
      channel->Call(Descriptor(), kMethods[0], &ctx, "hey");
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(*r, "hey|c");  // The metadata the interceptor added arrived.
  EXPECT_THAT(rec.lines(),
              ElementsAre("c start /lpc.test.Icpt/Echo deadline", "c in hey",
                          "c out hey|c", "c finish OK 1/3 1/5"));

  // StartCall, rejected by a second interceptor: nothing reaches the server.
  Recorder rec2;
  std::shared_ptr<Channel> denying = InterceptChannel(
      transport_->NewChannel(),
      {ClientRecording("c", &rec2),
       ClientRecording("deny", &rec2, absl::UnauthenticatedError("no token"))});
  const int handled = service_.handled;
  CallContext ctx2;
  std::optional<absl::Status> got;
  denying->StartCall(Descriptor(), kMethods[0], &ctx2, "x",
                     [&](absl::StatusOr<std::string> r) { got = r.status(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_THAT(*got, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(service_.handled, handled);
  EXPECT_THAT(rec2.lines(),
              ElementsAre("c start /lpc.test.Icpt/Echo deadline",
                          "deny start /lpc.test.Icpt/Echo deadline",
                          "deny finish UNAUTHENTICATED 0/0 0/0",
                          "c finish UNAUTHENTICATED 0/0 0/0"));
  // No interceptors: the channel itself.
  std::shared_ptr<Channel> plain = transport_->NewChannel();
  EXPECT_EQ(InterceptChannel(plain, {}), plain);
}

// A bidi stream through the in-process transport, intercepted on both
// sides: each side sees every message once, and the call's end.
TEST_F(InterceptorTest, StreamsAreInterceptedOnBothSides) {
  Recorder server_rec;
  Intercept(ServerRecording("s", &server_rec));
  Recorder client_rec;
  std::shared_ptr<Channel> channel =
      StartAndConnect("icpt-stream", {ClientRecording("c", &client_rec)});
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  std::shared_ptr<ClientStream> stream =
      channel->OpenStream(Descriptor(), kMethods[1], &ctx);
  const absl::Time until = absl::Now() + absl::Seconds(10);
  for (const char* m : {"ab", "cde"}) {
    ASSERT_THAT(testing::WriteBlocking(*stream, m, until), IsOk());
  }
  stream->WritesDone();
  std::vector<std::string> got;
  for (;;) {
    testing::ReadResult r = testing::ReadBlocking(*stream, until);
    ASSERT_THAT(r.status(), IsOk());
    if (!r->has_value()) break;
    got.push_back(**r);
  }
  EXPECT_THAT(got, ElementsAre("ab", "ab", "cde", "cde"));
  EXPECT_THAT(testing::FinishBlocking(*stream, until), IsOk());
  EXPECT_THAT(client_rec.lines(),
              ElementsAre("c start /lpc.test.Icpt/Twice deadline", "c in ab",
                          "c in cde", "c out ab", "c out ab", "c out cde",
                          "c out cde", "c finish OK 2/5 4/10"));
  stream.reset();
  server_.Shutdown();
  const std::vector<std::string> lines = server_rec.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "s start /lpc.test.Icpt/Twice deadline");
  EXPECT_EQ(lines.back(), "s finish OK 2/5 4/10");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "s in ab"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "s out cde"), 2);
}

TEST_F(InterceptorTest, AccessLogWritesOneQuotedLinePerCall) {
  std::vector<std::string> lines;
  std::mutex mu;
  Intercept(std::make_shared<AccessLogInterceptor>([&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  }));
  Recorder rec;
  Intercept(
      ServerRecording("deny", &rec, absl::NotFoundError("gone\n\"forged\"")));
  CallContext ctx;
  PeerIdentity peer;
  peer.transport = "grpc";
  peer.address = "ipv4:127.0.0.1:1\naccess /forged";
  ctx.set_peer(peer);
  std::string response;
  CallEcho(ctx, "abc", &response).IgnoreError();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("access /lpc.test.Icpt/Echo peer=\"grpc "
                                  "ipv4:127.0.0.1:1\\x0aaccess /forged\" "
                                  "status=NOT_FOUND duration_us="));
  EXPECT_THAT(lines[0], HasSubstr(" in=1/3B out=0/0B msg=\"gone\\x0a\\\"forged\\\"\""));
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
}

TEST_F(InterceptorTest, MetricsCountPerMethodAndTheServerReportsThem) {
  auto metrics = std::make_shared<MetricsInterceptor>();
  Intercept(metrics);
  for (int i = 0; i < 5; ++i) {
    CallContext ctx;
    std::string response;
    ASSERT_THAT(CallEcho(ctx, "x", &response), IsOk());
  }
  {
    CallContext ctx;  // Cancelled: the handler's OK is reported as CANCELLED.
    ctx.Cancel();
    std::string response;
    CallEcho(ctx, "x", &response).IgnoreError();
  }
  StartTwice({"s"});
  std::vector<MetricsInterceptor::MethodStats> snap = metrics->Snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].method, "/lpc.test.Icpt/Echo");
  EXPECT_EQ(snap[0].calls, 6u);
  EXPECT_EQ(snap[0].errors, 1u);
  EXPECT_EQ(snap[0].by_code["OK"], 5u);
  EXPECT_EQ(snap[0].by_code["CANCELLED"], 1u);
  uint64_t in_buckets = 0;
  for (uint64_t n : snap[0].buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, 6u);
  EXPECT_EQ(snap[1].method, "/lpc.test.Icpt/Twice");
  EXPECT_EQ(snap[1].calls, 1u);
  const std::string report = server_.Metrics();
  EXPECT_THAT(report, HasSubstr("metrics /lpc.test.Icpt/Echo calls=6 errors=1"));
  EXPECT_THAT(report, HasSubstr("codes CANCELLED=1 OK=5"));
  EXPECT_THAT(report, HasSubstr("metrics /lpc.test.Icpt/Twice calls=1 errors=0"));
  EXPECT_THAT(report, HasSubstr("latency_us <"));
}

TEST(InterceptorRegistryTest, BuiltinsByNameAndUnknownNamesExplained) {
  EXPECT_THAT(MakeServerInterceptor("access_log").status(), IsOk());
  absl::StatusOr<std::shared_ptr<ServerInterceptor>> m =
      MakeServerInterceptor("metrics");
  ASSERT_THAT(m.status(), IsOk());
  EXPECT_NE(dynamic_cast<MetricsInterceptor*>(m->get()), nullptr);
  EXPECT_THAT(MakeServerInterceptor("acess_log").status(),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("registered: access_log, metrics")));
  ASSERT_THAT(RegisterServerInterceptor(
                  "test_custom",
                  []() -> absl::StatusOr<std::shared_ptr<ServerInterceptor>> {
                    return std::make_shared<MetricsInterceptor>();
                  }),
              IsOk());
  EXPECT_THAT(MakeServerInterceptor("test_custom").status(), IsOk());
  EXPECT_THAT(RegisterServerInterceptor(
                  "metrics",
                  []() -> absl::StatusOr<std::shared_ptr<ServerInterceptor>> {
                    return nullptr;
                  }),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace lpc
