// The gRPC transport's production features through the C++ API: the health
// service, listeners that cannot bind, and TLS files that are missing or
// bad. (TLS and mTLS calls, reflection and the drain are exercised by
// //transports/grpc/interop:python_features_test with a stock client.)
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/raw_client_testing.h"
#include "transports/grpc/stream_test_service.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestService;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

MATCHER_P(IsOkAndHolds, value, "is OK and holds " + ::testing::PrintToString(value)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return *arg == value;
}

std::string TmpDir() {
  const char* dir = getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// Starts a Server with `service` on one gRPC transport; returns Start's
// status.
absl::Status StartServer(Server& server, TestService& service,
                         GrpcServerOptions options) {
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = server.AddTransport(MakeGrpcServerTransport(options));
  if (s.ok()) s = server.Start();
  return s;
}

// One unary call of `path` with raw request bytes; the reply's bytes or
// the gRPC error.
absl::StatusOr<std::string> RawCall(const std::string& target,
                                    const std::string& path,
                                    const std::string& request) {
  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::promise<grpc::Status> done;
  grpc::GenericStub(channel).UnaryCall(
      &ctx, path, grpc::StubOptions(), &request_buffer, &response,
      [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(s.begin(), s.end());
  return bytes;
}

// grpc.health.v1.Health/Check for `service`, with the request encoded by
// hand (field 1, a string) and the status decoded from the reply (field 1,
// a varint): 1 SERVING, 2 NOT_SERVING, or the gRPC error.
absl::StatusOr<int> HealthCheck(const std::string& target,
                                const std::string& service) {
  std::string request = {0x0a, static_cast<char>(service.size())};
  request += service;
  absl::StatusOr<std::string> bytes =
      RawCall(target, "/grpc.health.v1.Health/Check", request);
  if (!bytes.ok()) return bytes.status();
  if (bytes->empty()) return 0;  // UNKNOWN, the default.
  if (bytes->size() != 2 || (*bytes)[0] != 0x08) {
    return absl::InternalError("unexpected health reply");
  }
  return static_cast<int>((*bytes)[1]);
}

// A reflection list_services request (field 7, an empty string), sent as
// the one message of the bidi stream; the reply's bytes.
absl::StatusOr<std::string> ListServices(const std::string& target) {
  return RawCall(target,
                 "/grpc.reflection.v1alpha.ServerReflection/"
                 "ServerReflectionInfo",
                 std::string("\x3a\x00", 2));
}

TEST(GrpcReflectionTest, ListsTheInterfacesByDefault) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  ASSERT_OK(StartServer(server, service, options));
  std::string target = server.targets()[0].substr(strlen("grpc:"));
  absl::StatusOr<std::string> reply = ListServices(target);
  ASSERT_OK(reply.status());
  EXPECT_THAT(*reply, HasSubstr(std::string(TestInterface().full_name)));
  EXPECT_THAT(*reply, HasSubstr("lpc.introspection.Introspection"));
  server.Shutdown();
}

TEST(GrpcReflectionTest, OffWhenSwitchedOff) {
  // Even though Debian's libgrpc++_reflection, linked in, registers the
  // plugin for every server of the process.
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.reflection = false;
  ASSERT_OK(StartServer(server, service, options));
  std::string target = server.targets()[0].substr(strlen("grpc:"));
  EXPECT_THAT(ListServices(target),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("grpc.reflection.v1alpha")));
  server.Shutdown();
}

TEST(GrpcHealthTest, ServingForTheServerAndEachInterfaceByDefault) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  ASSERT_OK(StartServer(server, service, options));
  std::string target = server.targets()[0].substr(strlen("grpc:"));
  EXPECT_THAT(HealthCheck(target, ""), IsOkAndHolds(1));
  EXPECT_THAT(HealthCheck(target, std::string(TestInterface().full_name)),
              IsOkAndHolds(1));
  EXPECT_THAT(HealthCheck(target, "no.such.Service"),
              StatusIs(absl::StatusCode::kNotFound));
  server.Shutdown();
}

// Watch sends the status at once and then its change; Shutdown sends
// NOT_SERVING when it starts draining and ends every Watch with
// UNAVAILABLE, also one whose client has read nothing. An unknown name is
// SERVICE_UNKNOWN and does not change.
TEST(GrpcHealthTest, WatchSendsTheChangeAndEndsAtShutdown) {
  using grpc_test::HealthRequest;
  using grpc_test::HealthStatus;
  using grpc_test::RawStream;
  TestService service;
  ServerOptions server_options;
  server_options.shutdown_grace = absl::Seconds(30);
  Server server(server_options);
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  ASSERT_OK(StartServer(server, service, options));
  const std::string target = server.targets()[0].substr(strlen("grpc:"));
  auto channel = grpc_test::RawChannel(target);
  const std::string kWatch = "/grpc.health.v1.Health/Watch";
  RawStream all(channel, kWatch, HealthRequest(""));
  RawStream unknown(channel, kWatch, HealthRequest("no.such.Service"));
  RawStream unread(channel, kWatch,
                   HealthRequest(std::string(TestInterface().full_name)));
  std::optional<std::string> message = all.Read();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(HealthStatus(*message), 1);  // SERVING
  message = unknown.Read();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(HealthStatus(*message), 3);  // SERVICE_UNKNOWN

  // A held call keeps the server draining until it is released.
  std::string held;
  std::thread hold([&] {
    EXPECT_TRUE(grpc_test::RawUnary(channel, "/lpc.test.TestService/Hold", "",
                                    &held)
                    .ok());
  });
  ASSERT_TRUE(service.WaitForHolds(1, absl::Seconds(10)));
  std::thread stop([&] { server.Shutdown(); });
  message = all.Read();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(HealthStatus(*message), 2);  // NOT_SERVING
  EXPECT_THAT(HealthCheck(target, ""), IsOkAndHolds(2));
  service.ReleaseHolds();
  hold.join();
  stop.join();
  EXPECT_EQ(held, "held");

  EXPECT_FALSE(all.Read().has_value());
  grpc::Status ended = all.Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(unknown.Read().has_value());
  EXPECT_EQ(unknown.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  // The client that read nothing gets both statuses, then the end.
  for (int expected : {1, 2}) {
    message = unread.Read();
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(HealthStatus(*message), expected);
  }
  EXPECT_FALSE(unread.Read().has_value());
  EXPECT_EQ(unread.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// A Watch beyond max_health_watches ends at once with RESOURCE_EXHAUSTED,
// whatever its client does; a Watch that ends frees its place.
TEST(GrpcHealthTest, WatchesBeyondTheCapEndAtOnce) {
  using grpc_test::HealthRequest;
  using grpc_test::HealthStatus;
  using grpc_test::RawStream;
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.max_health_watches = 2;
  ASSERT_OK(StartServer(server, service, options));
  const std::string target = server.targets()[0].substr(strlen("grpc:"));
  auto channel = grpc_test::RawChannel(target);
  const std::string kWatch = "/grpc.health.v1.Health/Watch";
  auto first = std::make_unique<RawStream>(channel, kWatch, HealthRequest(""));
  RawStream second(channel, kWatch, HealthRequest(""));
  for (RawStream* s : {first.get(), &second}) {
    std::optional<std::string> message = s->Read();
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(HealthStatus(*message), 1);  // SERVING
  }
  {
    RawStream third(channel, kWatch, HealthRequest(""));
    EXPECT_FALSE(third.Read().has_value());
    grpc::Status ended = third.Finish();
    EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(ended.error_message(), HasSubstr("too many health watches"));
  }
  // Check is not capped.
  EXPECT_THAT(HealthCheck(target, ""), IsOkAndHolds(1));

  // The server learns of the cancel on its own time; once it has, a new
  // Watch gets the freed place (and until then, RESOURCE_EXHAUSTED).
  first->Cancel();
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
  first.reset();
  bool admitted = false;
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (!admitted && absl::Now() < limit) {
    RawStream again(channel, kWatch, HealthRequest(""));
    std::optional<std::string> message = again.Read();
    if (message.has_value()) {
      EXPECT_EQ(HealthStatus(*message), 1);
      admitted = true;
      again.Cancel();
      again.Finish();
    } else {
      ASSERT_EQ(again.Finish().error_code(),
                grpc::StatusCode::RESOURCE_EXHAUSTED);
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  EXPECT_TRUE(admitted);
  server.Shutdown();
  // The Watch that stayed: NOT_SERVING at the drain, then the end.
  std::optional<std::string> last = second.Read();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(HealthStatus(*last), 2);
  EXPECT_FALSE(second.Read().has_value());
  EXPECT_EQ(second.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(GrpcHealthTest, ACapOfZeroWatchesIsRefused) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.max_health_watches = 0;
  EXPECT_THAT(StartServer(server, service, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_health_watches")));
}

TEST(GrpcHealthTest, OffWhenSwitchedOff) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.health_service = false;
  ASSERT_OK(StartServer(server, service, options));
  std::string target = server.targets()[0].substr(strlen("grpc:"));
  // The generic service answers unknown paths, naming them.
  EXPECT_THAT(HealthCheck(target, ""),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("grpc.health.v1.Health")));
  server.Shutdown();
}

// A client stream to a path no interface has, never half-closed: its
// status, which the server can only send without reading the stream.
grpc::Status UnknownClientStream(const std::string& target) {
  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      grpc::GenericStub(channel).PrepareCall(&ctx, "/no.such.Service/Upload",
                                             &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  grpc::Slice chunk(std::string(1000, 'x'));
  grpc::ByteBuffer message(&chunk, 1);
  call->Write(message, reinterpret_cast<void*>(2));
  EXPECT_TRUE(cq.Next(&tag, &ok));  // Either way: the server may be done.
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(tag, reinterpret_cast<void*>(3));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// The paths that reach the generic service: served on the completion
// queue for a server whose methods are all there, and by gRPC's callback
// generic service for one with streams (`streams`). Both answer the same.
void ExpectGenericPathsAnswered(Server& server) {
  std::string target = server.targets()[0].substr(strlen("grpc:"));
  grpc::Status status = UnknownClientStream(target);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("no.such.Service"));
  EXPECT_THAT(RawCall(target, "/lpc.Lease/Renew", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("lpc-lease")));
  EXPECT_THAT(RawCall(target, "/lpc.Lease/Release", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("lpc-lease")));
  EXPECT_THAT(RawCall(target, "/no.such.Service/Call", "x"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("unknown interface no.such.Service")));
}

TEST(GrpcGenericTest, UnknownPathsAndLeasesWithUnaryMethodsOnly) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  ASSERT_OK(StartServer(server, service, options));
  ExpectGenericPathsAnswered(server);
  server.Shutdown();
}

TEST(GrpcGenericTest, UnknownPathsAndLeasesWithStreams) {
  stream_test::StreamService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  ASSERT_OK(server.RegisterService(&service));
  ASSERT_OK(server.AddTransport(MakeGrpcServerTransport(options)));
  ASSERT_OK(server.Start());
  ExpectGenericPathsAnswered(server);
  server.Shutdown();
}

TEST(GrpcListenTest, AddressInUseNamesTheReason) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {address};
  EXPECT_THAT(StartServer(server, service, options),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat("could not listen on ", address,
                                              ": Address already in use"))));
  close(fd);
}

TEST(GrpcListenTest, MissingDirectoryNamesTheReason) {
  // Relative: Bazel's TEST_TMPDIR is too long for a socket path.
  ASSERT_EQ(chdir(TmpDir().c_str()), 0);
  std::string address = "unix:no-such-dir/x.sock";
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {address};
  EXPECT_THAT(StartServer(server, service, options),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat(address,
                                              ": No such file or directory"))));
}

TEST(GrpcListenTest, LongSocketPathNamesTheReason) {
  std::string address = absl::StrCat("unix:/tmp/", std::string(120, 'x'));
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {address};
  EXPECT_THAT(StartServer(server, service, options),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("socket path longer than 107 bytes")));
}

TEST(GrpcListenTest, PermissionDeniedNamesTheReason) {
  if (geteuid() == 0) GTEST_SKIP() << "root may bind anywhere";
  ASSERT_EQ(chdir(TmpDir().c_str()), 0);
  mkdir("read-only", 0500);
  chmod("read-only", 0500);
  std::string address = "unix:read-only/x.sock";
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {address};
  EXPECT_THAT(StartServer(server, service, options),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat(address,
                                              ": Permission denied"))));
}

std::string WriteFile(const std::string& name, const std::string& contents) {
  std::string path = TmpDir() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

constexpr char kGarbagePem[] =
    "-----BEGIN CERTIFICATE-----\nnot a certificate\n"
    "-----END CERTIFICATE-----\n";

absl::Status StartWithTls(GrpcServerTlsOptions tls) {
  TestService service;
  Server server;
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.tls = std::move(tls);
  return StartServer(server, service, options);
}

TEST(GrpcTlsTest, MissingFileIsNamed) {
  std::string missing = TmpDir() + "/missing.pem";
  EXPECT_THAT(StartWithTls({missing, missing, "", false}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat(
                           "cannot read TLS certificate chain '", missing,
                           "': No such file or directory"))));
}

TEST(GrpcTlsTest, UnreadableFileIsNamed) {
  std::string dir = TmpDir();
  EXPECT_THAT(StartWithTls({dir, dir, "", false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("'", dir, "': Is a directory"))));
}

TEST(GrpcTlsTest, GarbageCertificateIsNamed) {
  std::string garbage = WriteFile("garbage.pem", kGarbagePem);
  EXPECT_THAT(StartWithTls({garbage, garbage, "", false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("TLS certificate chain '",
                                              garbage,
                                              "' holds no valid PEM "
                                              "certificate"))));
  std::string empty = WriteFile("empty.pem", "");
  EXPECT_THAT(StartWithTls({empty, empty, "", false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("'", empty, "' is empty"))));
}

TEST(GrpcTlsTest, IncompleteSettingsAreRefused) {
  EXPECT_THAT(StartWithTls({"a.pem", "", "", false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs both a certificate chain file and a "
                                 "private key file")));
  EXPECT_THAT(StartWithTls({"a.pem", "a.key", "", true}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs a client CA file")));
}

TEST(GrpcTlsTest, ChannelTlsFilesAreChecked) {
  std::string garbage = WriteFile("garbage.pem", kGarbagePem);
  GrpcChannelOptions o;
  o.tls_root_certs_path = garbage;
  EXPECT_THAT(GrpcChannel::Create("127.0.0.1:1", {}, o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("TLS root certificates '",
                                              garbage,
                                              "' holds no valid PEM "
                                              "certificate"))));
  o.tls_cert_chain_path = garbage;
  EXPECT_THAT(GrpcChannel::Create("127.0.0.1:1", {}, o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs both a certificate chain file and a "
                                 "private key file")));
  GrpcChannelOptions no_roots;
  no_roots.tls_cert_chain_path = garbage;
  no_roots.tls_private_key_path = garbage;
  EXPECT_THAT(GrpcChannel::Create("127.0.0.1:1", {}, no_roots).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("root certificates file")));
}

}  // namespace
}  // namespace lpc
