// Server interceptors in the runtime's dispatch (unary and StartCall),
// client interceptors through InterceptChannel (over the in-process
// transport), the registry, and the access_log and metrics interceptors.
#include "runtime/interceptor.h"

#include <algorithm>
#include <deque>
#include <future>
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

TEST(ServerInterceptorTest, UnaryCallsPassThroughEveryHook) {
  IcptService service;
  Recorder rec;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  ASSERT_THAT(server.AddInterceptor(
                  std::make_shared<Recording<ServerInterceptor>>("a", &rec)),
              IsOk());
  ASSERT_THAT(server.AddInterceptor(
                  std::make_shared<Recording<ServerInterceptor>>("b", &rec)),
              IsOk());
  const BoundInterface* iface = server.Bind("lpc.test.Icpt");
  ASSERT_NE(iface, nullptr);
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  std::string response;
  ASSERT_THAT(server.DispatchBound(*iface, *iface->FindMethod(1), ctx, "hi",
                                   &response),
              IsOk());
  EXPECT_EQ(response, "hi|a,b");  // The handler saw both additions.
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Echo deadline",
                          "b start /lpc.test.Icpt/Echo deadline", "a in hi",
                          "b in hi", "a out hi|a,b", "b out hi|a,b",
                          "b finish OK 1/2 1/6", "a finish OK 1/2 1/6"));
  // The string-keyed Dispatch goes through them too.
  CallContext ctx2;
  ASSERT_THAT(server.Dispatch("lpc.test.Icpt", 1, ctx2, "x", &response), IsOk());
  EXPECT_EQ(rec.lines().size(), 16u);
}

TEST(ServerInterceptorTest, OnewayCallsHaveNoReply) {
  IcptService service;
  Recorder rec;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  ASSERT_THAT(server.AddInterceptor(
                  std::make_shared<Recording<ServerInterceptor>>("a", &rec)),
              IsOk());
  auto transport = std::make_unique<InProcessTransport>("icpt-oneway");
  InProcessTransport* t = transport.get();
  ASSERT_THAT(server.AddTransport(std::move(transport)), IsOk());
  ASSERT_THAT(server.Start(), IsOk());
  Recorder client_rec;
  std::shared_ptr<Channel> channel = InterceptChannel(
      t->NewChannel(),
      {std::make_shared<Recording<ClientInterceptor>>("c", &client_rec)});
  CallContext ctx;
  ASSERT_THAT(channel->SendOneway(Descriptor(), kMethods[2], &ctx, "note"),
              IsOk());
  EXPECT_THAT(client_rec.lines(),
              ElementsAre("c start /lpc.test.Icpt/Note deadline", "c in note",
                          "c finish OK 1/4 0/0"));
  // The handler runs on a worker: wait (10 s at most) for its three hooks.
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (rec.lines().size() < 3 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  server.Shutdown();
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Note deadline", "a in note",
                          "a finish OK 1/4 0/0"));
}

TEST(ServerInterceptorTest, ARejectionStopsTheCall) {
  IcptService service;
  Recorder rec;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  server.AddInterceptor(std::make_shared<Recording<ServerInterceptor>>("a", &rec))
      .IgnoreError();
  server
      .AddInterceptor(std::make_shared<Recording<ServerInterceptor>>(
          "deny", &rec, absl::PermissionDeniedError("no tenant")))
      .IgnoreError();
  server.AddInterceptor(std::make_shared<Recording<ServerInterceptor>>("c", &rec))
      .IgnoreError();
  const BoundInterface* iface = server.Bind("lpc.test.Icpt");
  CallContext ctx;
  std::string response;
  EXPECT_THAT(server.DispatchBound(*iface, *iface->FindMethod(1), ctx, "hi",
                                   &response),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(service.handled, 0);
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Echo no-deadline",
                          "deny start /lpc.test.Icpt/Echo no-deadline",
                          "deny finish PERMISSION_DENIED 1/2 0/0",
                          "a finish PERMISSION_DENIED 1/2 0/0"));
  EXPECT_EQ(server.calls_failed(), 1u);

  // The same on the StartCall path: the call is finished with the status.
  auto stream = std::make_shared<FakeStream>(std::deque<std::string>{"m"});
  server.StartCall(*iface, *iface->FindMethod(2), stream);
  ASSERT_TRUE(stream->finished.has_value());
  EXPECT_THAT(*stream->finished, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(service.handled, 0);
}

TEST(ServerInterceptorTest, StreamsShowEachMessageAndTheFinish) {
  IcptService service;
  Recorder rec;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  ASSERT_THAT(server.AddInterceptor(
                  std::make_shared<Recording<ServerInterceptor>>("a", &rec)),
              IsOk());
  const BoundInterface* iface = server.Bind("lpc.test.Icpt");
  auto stream =
      std::make_shared<FakeStream>(std::deque<std::string>{"one", "two"});
  server.StartCall(*iface, *iface->FindMethod(2), stream);
  ASSERT_TRUE(stream->finished.has_value());
  EXPECT_THAT(*stream->finished, IsOk());
  EXPECT_THAT(stream->out, ElementsAre("one", "one", "two", "two"));
  EXPECT_THAT(rec.lines(),
              ElementsAre("a start /lpc.test.Icpt/Twice no-deadline", "a in one",
                          "a out one", "a out one", "a in two", "a out two",
                          "a out two", "a finish OK 2/6 4/12"));
}

TEST(ServerInterceptorTest, AddedOnlyBeforeStart) {
  Server server;
  EXPECT_THAT(server.AddInterceptor(nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  testing::RawService raw;
  ASSERT_THAT(server.RegisterService(&raw), IsOk());
  ASSERT_THAT(server.AddTransport(std::make_unique<InProcessTransport>(
                  "icpt-start")),
              IsOk());
  ASSERT_THAT(server.Start(), IsOk());
  EXPECT_THAT(server.AddInterceptor(std::make_shared<MetricsInterceptor>()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  server.Shutdown();
}

TEST(InterceptChannelTest, ClientInterceptorsSeeAndChangeTheCall) {
  IcptService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  auto transport = std::make_unique<InProcessTransport>("icpt-client");
  InProcessTransport* t = transport.get();
  ASSERT_THAT(server.AddTransport(std::move(transport)), IsOk());
  ASSERT_THAT(server.Start(), IsOk());
  Recorder rec;
  std::shared_ptr<Channel> channel = InterceptChannel(
      t->NewChannel(), {std::make_shared<Recording<ClientInterceptor>>("c", &rec)});
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
      t->NewChannel(),
      {std::make_shared<Recording<ClientInterceptor>>("c", &rec2),
       std::make_shared<Recording<ClientInterceptor>>(
           "deny", &rec2, absl::UnauthenticatedError("no token"))});
  const int handled = service.handled;
  CallContext ctx2;
  std::optional<absl::Status> got;
  denying->StartCall(Descriptor(), kMethods[0], &ctx2, "x",
                     [&](absl::StatusOr<std::string> r) { got = r.status(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_THAT(*got, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(service.handled, handled);
  EXPECT_THAT(rec2.lines(),
              ElementsAre("c start /lpc.test.Icpt/Echo deadline",
                          "deny start /lpc.test.Icpt/Echo deadline",
                          "deny finish UNAUTHENTICATED 0/0 0/0",
                          "c finish UNAUTHENTICATED 0/0 0/0"));
  // No interceptors: the channel itself.
  std::shared_ptr<Channel> plain = t->NewChannel();
  EXPECT_EQ(InterceptChannel(plain, {}), plain);
  server.Shutdown();
}

// A bidi stream through the in-process transport, intercepted on both
// sides: each side sees every message once, and the call's end.
TEST(InterceptChannelTest, StreamsAreInterceptedOnBothSides) {
  IcptService service;
  Recorder server_rec;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  ASSERT_THAT(server.AddInterceptor(
                  std::make_shared<Recording<ServerInterceptor>>("s", &server_rec)),
              IsOk());
  auto transport = std::make_unique<InProcessTransport>("icpt-stream");
  InProcessTransport* t = transport.get();
  ASSERT_THAT(server.AddTransport(std::move(transport)), IsOk());
  ASSERT_THAT(server.Start(), IsOk());
  Recorder client_rec;
  std::shared_ptr<Channel> channel = InterceptChannel(
      t->NewChannel(),
      {std::make_shared<Recording<ClientInterceptor>>("c", &client_rec)});
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  std::shared_ptr<ClientStream> stream =
      channel->OpenStream(Descriptor(), kMethods[1], &ctx);
  // Blocking helpers over the callback API, each bounded by the deadline.
  auto wait = [](std::shared_ptr<std::promise<void>> p) {
    return p->get_future().wait_for(std::chrono::seconds(10)) ==
           std::future_status::ready;
  };
  for (const char* m : {"ab", "cde"}) {
    auto p = std::make_shared<std::promise<void>>();
    stream->Write(m, [p](absl::Status) { p->set_value(); });
    ASSERT_TRUE(wait(p));
  }
  stream->WritesDone();
  std::vector<std::string> got;
  for (;;) {
    auto p = std::make_shared<std::promise<void>>();
    std::optional<std::string> msg;
    stream->Read([p, &msg](absl::StatusOr<std::optional<std::string>> r) {
      if (r.ok()) msg = std::move(*r);
      p->set_value();
    });
    ASSERT_TRUE(wait(p));
    if (!msg.has_value()) break;
    got.push_back(*msg);
  }
  EXPECT_THAT(got, ElementsAre("ab", "ab", "cde", "cde"));
  auto p = std::make_shared<std::promise<void>>();
  absl::Status final_status;
  stream->Finish([p, &final_status](absl::Status s) {
    final_status = s;
    p->set_value();
  });
  ASSERT_TRUE(wait(p));
  EXPECT_THAT(final_status, IsOk());
  EXPECT_THAT(client_rec.lines(),
              ElementsAre("c start /lpc.test.Icpt/Twice deadline", "c in ab",
                          "c in cde", "c out ab", "c out ab", "c out cde",
                          "c out cde", "c finish OK 2/5 4/10"));
  stream.reset();
  server.Shutdown();
  const std::vector<std::string> lines = server_rec.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "s start /lpc.test.Icpt/Twice deadline");
  EXPECT_EQ(lines.back(), "s finish OK 2/5 4/10");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "s in ab"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "s out cde"), 2);
}

TEST(BuiltinInterceptorTest, AccessLogWritesOneQuotedLinePerCall) {
  std::vector<std::string> lines;
  std::mutex mu;
  IcptService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  ASSERT_THAT(server.AddInterceptor(std::make_shared<AccessLogInterceptor>(
                  [&](std::string_view line) {
                    std::lock_guard<std::mutex> lock(mu);
                    lines.emplace_back(line);
                  })),
              IsOk());
  Recorder rec;
  ASSERT_THAT(server.AddInterceptor(std::make_shared<Recording<ServerInterceptor>>(
                  "deny", &rec, absl::NotFoundError("gone\n\"forged\""))),
              IsOk());
  const BoundInterface* iface = server.Bind("lpc.test.Icpt");
  CallContext ctx;
  PeerIdentity peer;
  peer.transport = "grpc";
  peer.address = "ipv4:127.0.0.1:1\naccess /forged";
  ctx.set_peer(peer);
  std::string response;
  server.DispatchBound(*iface, *iface->FindMethod(1), ctx, "abc", &response)
      .IgnoreError();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("access /lpc.test.Icpt/Echo peer=\"grpc "
                                  "ipv4:127.0.0.1:1\\x0aaccess /forged\" "
                                  "status=NOT_FOUND duration_us="));
  EXPECT_THAT(lines[0], HasSubstr(" in=1/3B out=0/0B msg=\"gone\\x0a\\\"forged\\\"\""));
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
}

TEST(BuiltinInterceptorTest, MetricsCountPerMethodAndTheServerReportsThem) {
  IcptService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  auto metrics = std::make_shared<MetricsInterceptor>();
  ASSERT_THAT(server.AddInterceptor(metrics), IsOk());
  const BoundInterface* iface = server.Bind("lpc.test.Icpt");
  for (int i = 0; i < 5; ++i) {
    CallContext ctx;
    std::string response;
    ASSERT_THAT(server.DispatchBound(*iface, *iface->FindMethod(1), ctx, "x",
                                     &response),
                IsOk());
  }
  {
    CallContext ctx;  // Cancelled: the handler's OK is reported as CANCELLED.
    ctx.Cancel();
    std::string response;
    server.DispatchBound(*iface, *iface->FindMethod(1), ctx, "x", &response)
        .IgnoreError();
  }
  auto stream = std::make_shared<FakeStream>(std::deque<std::string>{"s"});
  server.StartCall(*iface, *iface->FindMethod(2), stream);
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
  const std::string report = server.Metrics();
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
