// End-to-end tests of the gRPC transport: an lpc::Server serving the
// hand-written TestService through GrpcServerTransport, called through
// GrpcChannel over a Unix socket and over TCP on 127.0.0.1.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
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
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestMethod;
using ::lpc::grpc_test::TestMethodId;
using ::lpc::grpc_test::TestService;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(10);

MATCHER_P(IsOkAndHolds, value, "is OK and holds " + std::string(value)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  *result_listener << "value is '" << *arg << "'";
  return *arg == value;
}

// A Unix socket address under $TEST_TMPDIR. Socket paths are limited to 107
// bytes and Bazel's TEST_TMPDIR is long, so the tests run in TEST_TMPDIR
// (see main's environment below) and name sockets relative to it.
std::string UnixAddress(const std::string& name) {
  std::string path = absl::StrCat(name, ".sock");
  unlink(path.c_str());
  return absl::StrCat("unix:", path);
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

// The result of an asynchronous call, waited for with a bound.
class Result {
 public:
  ResponseCallback Callback() {
    return [this](absl::StatusOr<std::string> r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  std::optional<absl::StatusOr<std::string>> Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout),
                   [&] { return result_.has_value(); });
    return result_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  std::optional<absl::StatusOr<std::string>> result_;
};

class GrpcTransportTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void StartServer(std::string address, ServerOptions server_options = {},
                   GrpcServerOptions grpc_options = {}) {
    server_ = std::make_unique<Server>(server_options);
    ASSERT_OK(server_->RegisterService(&service_));
    grpc_options.listen_addresses = {std::move(address)};
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

  absl::StatusOr<std::string> Call(Channel& channel, TestMethodId id,
                                   std::string request,
                                   CallContext* ctx = nullptr) {
    CallContext local;
    if (ctx == nullptr) ctx = &local;
    if (!ctx->has_deadline()) ctx->set_timeout(kWait);
    return channel.Call(TestInterface(), TestMethod(id), ctx,
                        std::move(request));
  }

  TestService service_;
  std::unique_ptr<Server> server_;
  GrpcServerTransport* transport_ = nullptr;
};

TEST_F(GrpcTransportTest, RoundTripOverUnixSocket) {
  std::string address = UnixAddress("roundtrip");
  StartServer(address);
  EXPECT_EQ(transport_->target(), absl::StrCat("grpc:", address));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(channel->transport_name(), "grpc");
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "hello"),
              IsOkAndHolds("hello"));
  std::string binary("\0\x01\xff zero", 9);
  auto r = Call(*channel, grpc_test::kEcho, binary);
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, binary);
  r = Call(*channel, grpc_test::kEcho, "");
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, "");
}

TEST_F(GrpcTransportTest, RoundTripOverTcpWithChosenPort) {
  StartServer("127.0.0.1:0");
  ASSERT_EQ(transport_->ports().size(), 1u);
  int port = transport_->ports()[0];
  ASSERT_GT(port, 0);
  EXPECT_EQ(transport_->target(), absl::StrCat("grpc:127.0.0.1:", port));
  EXPECT_EQ(server_->targets(),
            std::vector<std::string>{transport_->target()});
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  std::string big(256 << 10, 'q');
  big[12345] = '\0';
  auto r = Call(*channel, grpc_test::kEcho, big);
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, big);
  // The explicit ipv4: form reaches the same server.
  auto direct = GrpcChannel::Create(absl::StrCat("ipv4:127.0.0.1:", port));
  ASSERT_OK(direct.status());
  EXPECT_THAT(Call(**direct, grpc_test::kEcho, "v4"),
              IsOkAndHolds("v4"));
}

TEST_F(GrpcTransportTest, CreateChannelUnderstandsTheGrpcScheme) {
  std::vector<std::string> schemes = RegisteredSchemes();
  EXPECT_THAT(schemes, ::testing::Contains("grpc"));
  EXPECT_THAT(CreateChannel("grpc:"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  GrpcChannelOptions bad;
  bad.tls_root_certs_path = "/nonexistent/roots.pem";
  EXPECT_THAT(CreateChannel("grpc:127.0.0.1:1", {{}, &bad}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("roots.pem")));
}

TEST_F(GrpcTransportTest, EveryStatusCodeMapsOneToOneWithItsMessage) {
  StartServer(UnixAddress("codes"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  for (int code = 1; code <= 16; ++code) {
    std::string message = absl::StrCat("failure number ", code, " \xce\xbb");
    auto r = Call(*channel, grpc_test::kFail, absl::StrCat(code, ":", message));
    EXPECT_THAT(r, StatusIs(static_cast<absl::StatusCode>(code), message))
        << "code " << code;
  }
}

TEST_F(GrpcTransportTest, DeadlineExceededReachesTheHandler) {
  StartServer(UnixAddress("deadline"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  // A call whose deadline passes while still queued is never run, so on a
  // loaded machine each attempt doubles the deadline until one reaches the
  // handler.
  bool started = false;
  for (int attempt = 0; attempt < 6 && !started; ++attempt) {
    CallContext ctx;
    ctx.set_timeout(absl::Milliseconds(300) * (1 << attempt));
    EXPECT_THAT(Call(*channel, grpc_test::kBlock, "", &ctx),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
    started = service_.WaitForBlockStarted(1, absl::ZeroDuration());
  }
  ASSERT_TRUE(started) << "no attempt reached the handler";
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
}

// gRPC's server-side deadline is a millisecond-rounded copy of the
// client's and may come a little before it. A handler that ends after its
// context's deadline has passed answers DEADLINE_EXCEEDED, whatever it
// returned: here the handler moves its own deadline well before the
// client's, so only the server's answer can give that code.
TEST_F(GrpcTransportTest, HandlerEndingPastItsDeadlineAnswersDeadlineExceeded) {
  service_.set_on_block_started([](CallContext& ctx) {
    ctx.set_timeout(absl::Milliseconds(20));
  });
  StartServer(UnixAddress("own_deadline"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kWait);
  // Block returns CANCELLED ("Block saw the cancellation") at its deadline.
  EXPECT_THAT(Call(*channel, grpc_test::kBlock, "", &ctx),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
  EXPECT_LT(absl::Now(), ctx.deadline());
}

TEST_F(GrpcTransportTest, ServerSeesTheClientDeadline) {
  StartServer(UnixAddress("deadline2"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  auto r = Call(*channel, grpc_test::kInspect, "");
  ASSERT_OK(r.status());
  EXPECT_THAT(*r, HasSubstr("has_deadline=1\n"));
  EXPECT_THAT(*r, HasSubstr("path=/lpc.test.TestService/Inspect\n"));
}

TEST_F(GrpcTransportTest, ExpiredDeadlineFailsBeforeSending) {
  StartServer(UnixAddress("expired"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_deadline(absl::Now() - absl::Seconds(1));
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "x", &ctx),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(server_->calls_dispatched(), 0u);
}

TEST_F(GrpcTransportTest, ClientCancellationReachesTheHandler) {
  StartServer(UnixAddress("cancel"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kWait);
  Result result;
  channel->StartCall(TestInterface(), TestMethod(grpc_test::kBlock), &ctx, "",
                     result.Callback());
  ASSERT_TRUE(service_.WaitForBlockStarted(1, kWait));
  ctx.Cancel();
  auto r = result.Wait(kWait);
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
  EXPECT_EQ(result.calls(), 1);
}

// Channel::Call waits on the calling thread; a Cancel() from another
// thread ends the gRPC call, and the handler sees it.
TEST_F(GrpcTransportTest, CancellingABlockingCallEndsItAndReachesTheHandler) {
  StartServer(UnixAddress("cancelsync"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kWait);
  std::thread canceller([&] {
    if (service_.WaitForBlockStarted(1, kWait)) ctx.Cancel();
  });
  EXPECT_THAT(Call(*channel, grpc_test::kBlock, "", &ctx),
              StatusIs(absl::StatusCode::kCancelled));
  canceller.join();
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, kWait));
}

TEST_F(GrpcTransportTest, CancelBeforeStartFailsAtOnce) {
  StartServer(UnixAddress("cancel0"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.Cancel();
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "x", &ctx),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(GrpcTransportTest, UnknownMethodOrInterfaceIsUnimplemented) {
  StartServer(UnixAddress("unknown"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  static constexpr MethodDescriptor kMissing[] = {{"Missing", 99, false}};
  InterfaceDescriptor same_name = TestInterface();
  same_name.methods = kMissing;
  CallContext ctx1;
  ctx1.set_timeout(kWait);
  EXPECT_THAT(channel->Call(same_name, kMissing[0], &ctx1, ""),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("Missing"),
                             HasSubstr("lpc.test.TestService"))));
  InterfaceDescriptor other = same_name;
  other.full_name = "lpc.test.Nobody";
  CallContext ctx2;
  ctx2.set_timeout(kWait);
  EXPECT_THAT(channel->Call(other, kMissing[0], &ctx2, ""),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("lpc.test.Nobody")));
  // The connection is fine afterwards.
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "ok"), IsOk());
}

TEST_F(GrpcTransportTest, VersionMismatchIsFailedPrecondition) {
  StartServer(UnixAddress("version"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  InterfaceDescriptor newer = TestInterface();
  newer.version = {2, 0};
  CallContext ctx;
  ctx.set_timeout(kWait);
  EXPECT_THAT(
      channel->Call(newer, TestMethod(grpc_test::kEcho), &ctx, "x"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("2.0"), HasSubstr("1.2"))));

  InterfaceDescriptor other_uuid = TestInterface();
  other_uuid.uuid = "00000000-0000-0000-0000-000000000000";
  CallContext ctx2;
  ctx2.set_timeout(kWait);
  EXPECT_THAT(
      channel->Call(other_uuid, TestMethod(grpc_test::kEcho), &ctx2, "x"),
      StatusIs(absl::StatusCode::kFailedPrecondition));

  // A different minor version binds.
  InterfaceDescriptor minor = TestInterface();
  minor.version = {1, 7};
  CallContext ctx3;
  ctx3.set_timeout(kWait);
  EXPECT_THAT(channel->Call(minor, TestMethod(grpc_test::kEcho), &ctx3, "m"),
              IsOkAndHolds("m"));
  EXPECT_EQ(server_->calls_dispatched(), 1u);
}

// gRPC 1.51 keeps the server's side of a call whose message broke the size
// limit until the call's deadline, and the gRPC server's destructor waits
// for it; the oversized calls below get a short deadline so that TearDown
// does not wait for long.
constexpr absl::Duration kOversizedDeadline = absl::Seconds(3);

// Small limits keep the tests quick under the sanitizers.
constexpr size_t kLimit = 64 << 10;
constexpr size_t kOver = 128 << 10;

TEST_F(GrpcTransportTest, OversizedRequestIsResourceExhaustedOnTheServer) {
  ServerOptions options;
  options.max_message_size = kLimit;
  StartServer(UnixAddress("bigreq"), options);
  auto channel = Connect();  // The client allows 64 MiB.
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kOversizedDeadline);
  EXPECT_THAT(
      Call(*channel, grpc_test::kEcho, std::string(kOver, 'a'), &ctx),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("larger")));
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "still usable"),
              IsOkAndHolds("still usable"));
}

TEST_F(GrpcTransportTest, OversizedReplyIsResourceExhaustedOnTheServer) {
  ServerOptions options;
  options.max_message_size = kLimit;
  StartServer(UnixAddress("bigrep"), options);
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  EXPECT_THAT(Call(*channel, grpc_test::kSized, absl::StrCat(kOver)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("maximum message size")));
  EXPECT_THAT(Call(*channel, grpc_test::kSized, "3"),
              IsOkAndHolds("xxx"));
}

TEST_F(GrpcTransportTest, OversizedMessagesAreResourceExhaustedOnTheClient) {
  StartServer(UnixAddress("bigclient"));
  ChannelOptions options;
  options.max_message_size = kLimit;
  auto channel = Connect(options);
  ASSERT_NE(channel, nullptr);
  // The request never leaves the client.
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, std::string(kOver, 'a')),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("exceeds the maximum message size")));
  EXPECT_EQ(server_->calls_dispatched(), 0u);
  // The reply is refused by the client once it arrives.
  EXPECT_THAT(Call(*channel, grpc_test::kSized, absl::StrCat(kOver)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr(absl::StrCat("reply of ", kOver, " bytes exceeds"))));
  EXPECT_THAT(Call(*channel, grpc_test::kSized, absl::StrCat(kLimit)),
              IsOk());
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "small"),
              IsOkAndHolds("small"));
}

TEST_F(GrpcTransportTest, MetadataTravelsBothWays) {
  StartServer(UnixAddress("metadata"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  std::string binary("\0\x01\xfe", 3);
  ctx.metadata().emplace("x-user", "alice");
  ctx.metadata().emplace("x-multi", "one");
  ctx.metadata().emplace("x-multi", "two");
  ctx.metadata().emplace("trace-bin", binary);
  ctx.metadata().emplace("lpc-secret", "must not cross");
  auto r = Call(*channel, grpc_test::kInspect, "", &ctx);
  ASSERT_OK(r.status());
  EXPECT_THAT(*r, HasSubstr("md:x-user=alice\n"));
  EXPECT_THAT(*r, HasSubstr("md:x-multi=one\n"));
  EXPECT_THAT(*r, HasSubstr("md:x-multi=two\n"));
  EXPECT_THAT(*r, Not(HasSubstr("lpc-")));
  EXPECT_THAT(*r, Not(HasSubstr("user-agent")));
  EXPECT_THAT(*r, Not(HasSubstr("grpc-")));

  const Metadata& reply = ctx.response_metadata();
  auto user = reply.find("echo-x-user");
  ASSERT_NE(user, reply.end());
  EXPECT_EQ(user->second, "alice");
  EXPECT_EQ(reply.count("echo-x-multi"), 2u);
  auto trace = reply.find("echo-trace-bin");
  ASSERT_NE(trace, reply.end());
  EXPECT_EQ(trace->second, binary);
  for (const auto& [key, value] : reply) {
    EXPECT_THAT(key, Not(StartsWith("grpc-")));
    EXPECT_THAT(key, Not(StartsWith("lpc-")));
  }
}

TEST_F(GrpcTransportTest, MalformedMetadataIsInvalidArgument) {
  StartServer(UnixAddress("badmd"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.metadata().emplace("Not Valid", "x");
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "x", &ctx),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Not Valid")));
  CallContext ctx2;
  ctx2.metadata().emplace("x-text", std::string("a\0b", 3));
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "x", &ctx2),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(server_->calls_dispatched(), 0u);
}

TEST_F(GrpcTransportTest, PeerAddressOverTcp) {
  StartServer("127.0.0.1:0");
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  auto r = Call(*channel, grpc_test::kInspect, "");
  ASSERT_OK(r.status());
  EXPECT_THAT(*r, HasSubstr("transport=grpc\n"));
  EXPECT_THAT(*r, HasSubstr("address=ipv4:127.0.0.1:"));
}

TEST_F(GrpcTransportTest, PeerAddressOverUnixSocket) {
  StartServer(UnixAddress("peer"));
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  auto r = Call(*channel, grpc_test::kInspect, "");
  ASSERT_OK(r.status());
  EXPECT_THAT(*r, HasSubstr("transport=grpc\n"));
  EXPECT_THAT(*r, HasSubstr("address=unix:"));
}

TEST_F(GrpcTransportTest, OnewayIsDeliveredAndNeverLeaks) {
  StartServer(UnixAddress("oneway"));
  {
    auto channel = Connect();
    ASSERT_NE(channel, nullptr);
    for (int i = 0; i < 3; ++i) {
      CallContext ctx;
      ctx.set_timeout(kWait);
      ASSERT_OK(channel->SendOneway(TestInterface(),
                                    TestMethod(grpc_test::kNotify), &ctx,
                                    absl::StrCat("ping", i)));
    }
    // The channel goes away with the messages possibly still in flight.
  }
  ASSERT_TRUE(service_.WaitForNotifies(3, kWait));
  EXPECT_THAT(service_.notifies(),
              ::testing::UnorderedElementsAre("ping0", "ping1", "ping2"));
}

TEST_F(GrpcTransportTest, OnewayToAnAbsentServerStillReturnsPromptly) {
  auto channel = GrpcChannel::Create(UnixAddress("nobody"));
  ASSERT_OK(channel.status());
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(2));
  EXPECT_OK((*channel)->SendOneway(TestInterface(),
                                   TestMethod(grpc_test::kNotify), &ctx, "x"));
  // The destructor waits for the message's call to end (it fails at once).
}

TEST_F(GrpcTransportTest, AbsentServerIsUnavailable) {
  auto channel = GrpcChannel::Create(UnixAddress("absent"));
  ASSERT_OK(channel.status());
  EXPECT_THAT(Call(**channel, grpc_test::kEcho, "x"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(GrpcTransportTest, ConcurrentCallsFromManyThreads) {
  StartServer("127.0.0.1:0");
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::string request = absl::StrCat("t", t, "-", i);
        auto r = Call(*channel, grpc_test::kEcho, request);
        if (r.ok() && *r == request) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
}

TEST_F(GrpcTransportTest, ShutdownDrainsInFlightCallsWithinGrace) {
  ServerOptions options;
  options.shutdown_grace = kWait;
  StartServer(UnixAddress("drain"), options);
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kWait);
  Result held;
  channel->StartCall(TestInterface(), TestMethod(grpc_test::kHold), &ctx, "",
                     held.Callback());
  ASSERT_TRUE(service_.WaitForHolds(1, kWait));

  std::thread shutdown([&] { server_->Shutdown(); });
  // New calls are refused once shutdown has begun.
  absl::Status refused;
  absl::Time limit = absl::Now() + kWait;
  for (int i = 0; i < 10000 && absl::Now() < limit; ++i) {
    CallContext c;
    c.set_timeout(absl::Seconds(2));
    auto r = Call(*channel, grpc_test::kEcho, "late", &c);
    if (!r.ok()) {
      refused = r.status();
      break;
    }
  }
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kUnavailable));
  // The call in flight still completes.
  service_.ReleaseHolds();
  auto r = held.Wait(kWait);
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, IsOkAndHolds("held"));
  shutdown.join();
}

TEST_F(GrpcTransportTest, ShutdownFailsCallsStillRunningAfterGrace) {
  ServerOptions options;
  options.shutdown_grace = absl::Milliseconds(300);
  StartServer(UnixAddress("grace"), options);
  auto channel = Connect();
  ASSERT_NE(channel, nullptr);
  CallContext ctx;
  ctx.set_timeout(kWait);
  Result blocked;
  channel->StartCall(TestInterface(), TestMethod(grpc_test::kBlock), &ctx, "",
                     blocked.Callback());
  ASSERT_TRUE(service_.WaitForBlockStarted(1, kWait));
  server_->Shutdown();
  // Shutdown returned: the handler has returned, having seen the cancel.
  EXPECT_TRUE(service_.WaitForBlockCancelled(1, absl::ZeroDuration()));
  auto r = blocked.Wait(kWait);
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, StatusIs(absl::StatusCode::kUnavailable,
                           HasSubstr("shut down")));
  // And the server is gone.
  EXPECT_THAT(Call(*channel, grpc_test::kEcho, "x"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(GrpcServerTransportTest, StartFailsWithoutAddressOrWhenPortIsTaken) {
  TestService service;
  {
    Server server;
    ASSERT_OK(server.RegisterService(&service));
    ASSERT_OK(server.AddTransport(MakeGrpcServerTransport({})));
    EXPECT_THAT(server.Start(), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  Server first;
  ASSERT_OK(first.RegisterService(&service));
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  auto transport = MakeGrpcServerTransport(options);
  GrpcServerTransport* t = transport.get();
  ASSERT_OK(first.AddTransport(std::move(transport)));
  ASSERT_OK(first.Start());
  Server second;
  ASSERT_OK(second.RegisterService(&service));
  options.listen_addresses = {absl::StrCat("127.0.0.1:", t->ports()[0])};
  ASSERT_OK(second.AddTransport(MakeGrpcServerTransport(options)));
  EXPECT_THAT(second.Start(), StatusIs(absl::StatusCode::kUnavailable,
                                       HasSubstr("127.0.0.1")));
  first.Shutdown();
}

}  // namespace
}  // namespace lpc
