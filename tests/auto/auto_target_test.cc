// The auto:<port>@<grpc-target> scheme picks the local port when the server
// is on this host, and gRPC when it is not.
//
// "Not on this host" is a server in a network namespace that the test
// creates, joined to this one by a veth pair with addresses from
// 198.18.0.0/15, and with a private mount namespace over the port
// directory, so that neither its local port socket nor its loopback is
// visible here: it stands in for another machine. Creating namespaces needs
// root; the test says so and skips otherwise.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/config.pb.h"
#include "testing/server_process.h"
#include "testing/status_matchers.h"
#include "tests/conformance/conformance.lpc.h"
#include "transports/connect.h"

namespace lpc {
namespace {

using ::testing::HasSubstr;

std::string ServerBinary() {
  return absl::StrCat(std::getenv("TEST_SRCDIR"),
                      "/lpc/tests/conformance/conformance_server");
}

int RunShell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

using ::lpc::testing::ServerProcess;

class AutoTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/lpc-auto.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { RunShell(absl::StrCat("rm -rf '", dir_, "'")); }

  // Calls the server through `target` and returns the transport used.
  std::string CallThrough(const std::string& target) {
    config::Endpoint e;
    e.mutable_local()->set_runtime_dir(dir_);
    e.set_default_timeout_ms(10000);
    absl::StatusOr<std::shared_ptr<Channel>> channel = ConnectTarget(target, &e);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return "";
    conformance::ConformanceClient client(*channel);
    absl::StatusOr<std::string> echo = client.EchoBytes("through " + target);
    EXPECT_TRUE(echo.ok()) << echo.status();
    if (echo.ok()) {
      EXPECT_EQ(*echo, "through " + target);
    }
    return std::string((*channel)->transport_name());
  }

  std::string dir_;
};

TEST_F(AutoTargetTest, PicksTheLocalPortWhenTheServerIsOnThisHost) {
  ServerProcess server;
  ASSERT_OK(server.Start({ServerBinary(), "--local_port=auto-here",
                          absl::StrCat("--runtime_dir=", dir_),
                          "--grpc=127.0.0.1:0"}));
  // "ready local:auto-here grpc:127.0.0.1:PORT"
  std::string line = server.ready_line();
  std::string grpc = line.substr(line.find("grpc:") + 5);
  grpc = grpc.substr(0, grpc.find_first_of(" \n"));
  EXPECT_EQ(CallThrough(absl::StrCat("auto:auto-here@", grpc)), "local");
  // The same server over its gRPC listener, for comparison.
  EXPECT_EQ(CallThrough(absl::StrCat("grpc:", grpc)), "grpc");
}

TEST_F(AutoTargetTest, FallsBackToGrpcWhenNoLocalPortExists) {
  ServerProcess server;
  ASSERT_OK(server.Start({ServerBinary(), "--grpc=127.0.0.1:0"}));
  std::string line = server.ready_line();
  std::string grpc = line.substr(line.find("grpc:") + 5);
  grpc = grpc.substr(0, grpc.find_first_of(" \n"));
  EXPECT_EQ(CallThrough(absl::StrCat("auto:nobody-listens@", grpc)), "grpc");
}

// A handle method through auto: when auto: chose gRPC fails at once, and
// says why the local transport was not used.
TEST_F(AutoTargetTest, AHandleMethodOverTheGrpcFallbackSaysWhy) {
  static constexpr MethodDescriptor kMethods[] = {
      {"Give", 1, false, MethodKind::kUnary, /*handles=*/true}};
  static constexpr InterfaceDescriptor kInterface = {
      "lpc.test.Handles", "5c0ffee0-1234-4abc-8def-0123456789fb", {1, 0},
      absl::Span<const MethodDescriptor>(kMethods)};
  config::Endpoint e;
  e.mutable_local()->set_runtime_dir(dir_);
  absl::StatusOr<std::shared_ptr<Channel>> channel =
      ConnectTarget("auto:nobody-listens@127.0.0.1:1", &e);
  ASSERT_OK(channel.status());
  EXPECT_EQ((*channel)->transport_name(), "grpc");
  CallContext ctx;
  absl::StatusOr<std::string> r = (*channel)->Call(kInterface, kMethods[0], &ctx, "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("method /lpc.test.Handles/Give carries handles (file "
                        "descriptors); handles need the local transport; "
                        "auto:nobody-listens@127.0.0.1:1 chose gRPC because local "
                        "port 'nobody-listens' did not answer"));
}

TEST_F(AutoTargetTest, PicksGrpcWhenTheServerIsOnAnotherHost) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "creating a network namespace needs root";
  }
  const std::string ns = absl::StrCat("lpc-auto-", getpid());
  const std::string veth_host = absl::StrCat("lpa", getpid() % 100000);
  const std::string veth_peer = absl::StrCat("lpb", getpid() % 100000);
  // A /30 of 198.18.0.0/15 of this run's own: two runs at once (say
  // --runs_per_test) must not route to each other's namespace.
  const uint32_t net = (198u << 24 | 18u << 16) + (getpid() % 32768u) * 4u;
  auto ip = [](uint32_t a) {
    return absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255,
                        ".", a & 255);
  };
  const std::string host_ip = ip(net + 1), peer_ip = ip(net + 2);
  const std::string grpc_addr = absl::StrCat(peer_ip, ":7600");
  ASSERT_EQ(RunShell(absl::StrCat("ip netns add ", ns)), 0) << "ip netns add failed";
  struct Cleanup {
    std::string ns, veth;
    ~Cleanup() {
      RunShell(absl::StrCat("ip link del ", veth, " 2>/dev/null"));
      RunShell(absl::StrCat("ip netns del ", ns));
    }
  } cleanup{ns, veth_host};
  ASSERT_EQ(RunShell(absl::StrCat("ip link add ", veth_host, " type veth peer name ",
                             veth_peer, " && ip link set ", veth_peer,
                             " netns ", ns, " && ip addr add ", host_ip, "/30 dev ",
                             veth_host, " && ip link set ", veth_host, " up",
                             " && ip -n ", ns, " addr add ", peer_ip, "/30 dev ",
                             veth_peer, " && ip -n ", ns, " link set ",
                             veth_peer, " up && ip -n ", ns,
                             " link set lo up")),
            0);
  // The server: in the namespace, with a private tmpfs over the port
  // directory, listening on the same port name and on gRPC at peer_ip.
  ServerProcess server;
  ASSERT_OK(server.Start(
      {"ip", "netns", "exec", ns, "unshare", "--mount", "--propagation",
       "private", "sh", "-c",
       absl::StrCat("mount -t tmpfs lpc-other-host '", dir_, "' && exec '",
                    ServerBinary(), "' --local_port=auto-there --runtime_dir='",
                    dir_, "' --grpc=", grpc_addr)}));
  EXPECT_THAT(server.ready_line(), HasSubstr("local:auto-there"));
  // The port's socket is not visible on this host...
  EXPECT_NE(access(absl::StrCat(dir_, "/auto-there").c_str(), F_OK), 0);
  // ...so the same kind of target that chose local above now chooses gRPC.
  EXPECT_EQ(CallThrough(absl::StrCat("auto:auto-there@", grpc_addr)), "grpc");
}

}  // namespace
}  // namespace lpc
