// A server whose interfaces have only synchronous unary methods registers
// no service on gRPC's callback API (docs/grpc-transport.md, "Threads"):
// its unary calls, the health service (Check and Watch), unknown paths and
// the lease calls are all served on the transport's completion queue.
//
// gRPC 1.51 starts the threads of its process-wide callback queue, named
// "nexting_thread", when the first server registers a callback service (or
// a client uses the callback API: this test's clients use the asynchronous
// API only, and it runs in a process of its own). The test calls each kind
// of path and then looks for those threads; last, it checks that a server
// with a streaming method does start them, so that the check can fail.
#include <dirent.h>

#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/raw_client_testing.h"
#include "transports/grpc/stream_test_service.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::HealthRequest;
using ::lpc::grpc_test::HealthStatus;
using ::lpc::grpc_test::RawChannel;
using ::lpc::grpc_test::RawStream;
using ::lpc::grpc_test::RawUnary;

// Threads of this process named like gRPC's callback threads.
int CallbackThreads() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name +
                       "/comm");
    std::string name;
    std::getline(comm, name);
    if (name == "nexting_thread") ++n;
  }
  closedir(dir);
  return n;
}

GrpcServerOptions Options() {
  GrpcServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  return options;  // Health and reflection on, as by default.
}

TEST(GrpcCallbackFreeTest, UnaryServerStartsNoCallbackThreads) {
  grpc_test::TestService service;
  Server server;
  ASSERT_OK(server.RegisterService(&service));
  ASSERT_OK(server.AddTransport(MakeGrpcServerTransport(Options())));
  ASSERT_OK(server.Start());
  auto channel = RawChannel(server.targets()[0].substr(strlen("grpc:")));

  std::string reply;
  ASSERT_TRUE(RawUnary(channel, "/lpc.test.TestService/Echo", "hi", &reply)
                  .ok());
  EXPECT_EQ(reply, "hi");
  ASSERT_TRUE(RawUnary(channel, "/grpc.health.v1.Health/Check",
                       HealthRequest(""), &reply)
                  .ok());
  EXPECT_EQ(HealthStatus(reply), 1);  // SERVING
  {
    RawStream watch(channel, "/grpc.health.v1.Health/Watch",
                    HealthRequest("lpc.test.TestService"));
    std::optional<std::string> first = watch.Read();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(HealthStatus(*first), 1);
    watch.Cancel();
    EXPECT_EQ(watch.Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_EQ(RawUnary(channel, "/no.such.Service/Call", "x", &reply)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(RawUnary(channel, "/lpc.Lease/Renew", "", &reply,
                       {{"lpc-lease", std::string(32, 'a')}})
                  .ok());
  // Reflection, gRPC's synchronous service, lists the health service.
  {
    RawStream list(channel,
                   "/grpc.reflection.v1alpha.ServerReflection/"
                   "ServerReflectionInfo",
                   std::string("\x3a\x00", 2));
    std::optional<std::string> services = list.Read();
    ASSERT_TRUE(services.has_value());
    EXPECT_NE(services->find("grpc.health.v1.Health"), std::string::npos);
  }

  EXPECT_EQ(CallbackThreads(), 0);
  server.Shutdown();
  EXPECT_EQ(CallbackThreads(), 0);

  // The control: a streaming method is served through gRPC's callback API,
  // which starts the threads the check above looks for.
  stream_test::StreamService streams;
  Server stream_server;
  ASSERT_OK(stream_server.RegisterService(&streams));
  ASSERT_OK(stream_server.AddTransport(MakeGrpcServerTransport(Options())));
  ASSERT_OK(stream_server.Start());
  // gRPC's threads name themselves once running: wait for that.
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (CallbackThreads() == 0 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_GT(CallbackThreads(), 0);
  stream_server.Shutdown();
}

}  // namespace
}  // namespace lpc
