// The introspection service over the local port: the connections a server
// lists (a client in this process and one in another, with their uid, pid,
// calls and bytes), a server in another process describing itself, the
// descriptors and health.
//
// Port sockets live in a fresh directory under /tmp (the Unix socket path
// limit rules out Bazel's long $TEST_TMPDIR).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "runtime/introspection.lpc.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"
#include "transports/local/local_transport.h"
#include "testing/temp_dir.h"

namespace lpc::local {
namespace {

using ::lpc::introspection::ConnectionInfo;
using ::lpc::introspection::IntrospectionClient;
using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::RawService;
using ::lpc::testing::StatusIs;
using ::testing::Contains;

using ::lpc::testing::TempDir;

// local_test_peer in a child process; killed on destruction.
class Peer {
 public:
  explicit Peer(std::vector<std::string> args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::string bin = "transports/local/local_test_peer";
      std::vector<char*> argv = {bin.data()};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~Peer() {
    Kill();
    if (out_ >= 0) ::close(out_);
  }
  // One line of the child's stdout, waiting at most 10 s.
  std::string ReadLine() {
    std::string line;
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      struct pollfd p = {out_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

template <typename Pred>
bool WaitFor(Pred pred, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return pred();
}

std::shared_ptr<Channel> Connect(const std::string& dir,
                                 const std::string& name) {
  LocalChannelOptions lo;
  lo.runtime_dir = dir;
  auto ch = CreateLocalChannel(name, {}, lo);
  EXPECT_OK(ch.status());
  return ch.ok() ? *ch : nullptr;
}

// A server in this process serving lpc.test.Raw on port `name`.
class LocalServerFixture : public ::testing::Test {
 protected:
  void StartServer(const std::string& name) {
    ServerOptions so;
    so.shutdown_grace = absl::Milliseconds(200);
    server_ = std::make_unique<Server>(so);
    ASSERT_OK(server_->RegisterService(&service_));
    LocalPortOptions po;
    po.runtime_dir = dir_.path();
    auto t = MakeLocalServerTransport(name, po);
    ASSERT_OK(t.status());
    ASSERT_OK(server_->AddTransport(std::move(*t)));
    ASSERT_OK(server_->Start());
  }

  TempDir dir_{"lpc-intro-"};
  RawService service_;
  std::unique_ptr<Server> server_;
};

TEST_F(LocalServerFixture, ListsThisClientWithItsCallsAndBytes) {
  StartServer("counts");
  const int64_t before_ms = absl::ToUnixMillis(absl::Now());
  std::shared_ptr<Channel> ch = Connect(dir_.path(), "counts");
  ASSERT_NE(ch, nullptr);
  const std::string payload(1000, 'x');
  for (int i = 0; i < 3; ++i) {
    CallContext ctx;
    ASSERT_OK(ch->Call(RawDescriptor(), RawDescriptor().methods[0], &ctx,
                       payload));
  }
  IntrospectionClient client(ch);
  std::map<std::string, uint64_t> cutoffs;
  absl::StatusOr<std::vector<ConnectionInfo>> conns =
      client.ListConnections(&cutoffs);
  ASSERT_OK(conns);
  ASSERT_EQ(conns->size(), 1u);
  const ConnectionInfo& c = (*conns)[0];
  EXPECT_EQ(c.transport(), "local");
  ASSERT_TRUE(c.has_peer_uid());
  EXPECT_EQ(c.peer_uid(), ::getuid());
  ASSERT_TRUE(c.has_peer_pid());
  EXPECT_EQ(c.peer_pid(), ::getpid());
  // Three Echo calls and this one, which is still running.
  EXPECT_EQ(c.calls(), 4u);
  EXPECT_GE(c.calls_in_flight(), 1u);
  EXPECT_GE(c.bytes_in(), 3 * payload.size());
  EXPECT_GE(c.bytes_out(), 3 * payload.size());
  EXPECT_LT(c.bytes_in(), 3 * payload.size() + 1000);
  EXPECT_EQ(c.context_handles(), 0u);
  EXPECT_GE(c.connected_unix_ms(), before_ms);
  EXPECT_LE(c.connected_unix_ms(), absl::ToUnixMillis(absl::Now()));
  EXPECT_TRUE(cutoffs.empty());

  absl::StatusOr<introspection::ServerInfo> info = client.GetServerInfo();
  ASSERT_OK(info);
  EXPECT_EQ(info->connections(), 1u);
  EXPECT_THAT(info->targets(), Contains("local:counts"));
  std::map<std::string, uint64_t> counters;
  for (const auto& counter : info->counters()) {
    counters[counter.name()] = counter.value();
  }
  EXPECT_EQ(counters["local.connections_accepted"], 1u);
  EXPECT_EQ(counters["local.connections_open"], 1u);
  EXPECT_EQ(counters["local.calls_started"], 5u);
}

TEST_F(LocalServerFixture, ListsAClientInAnotherProcess) {
  StartServer("peer");
  std::shared_ptr<Channel> ch = Connect(dir_.path(), "peer");
  ASSERT_NE(ch, nullptr);
  IntrospectionClient client(ch);
  Peer peer({"block", dir_.path(), "peer"});
  ASSERT_EQ(peer.ReadLine(), "CALLING");
  ASSERT_TRUE(WaitFor([&] { return service_.blocked() >= 1; }));

  std::map<std::string, uint64_t> cutoffs;
  absl::StatusOr<std::vector<ConnectionInfo>> conns =
      client.ListConnections(&cutoffs);
  ASSERT_OK(conns);
  ASSERT_EQ(conns->size(), 2u);
  const ConnectionInfo* other = nullptr;
  for (const ConnectionInfo& c : *conns) {
    if (c.peer_pid() == peer.pid()) other = &c;
  }
  ASSERT_NE(other, nullptr) << "no connection from pid " << peer.pid();
  EXPECT_EQ(other->peer_uid(), ::getuid());
  EXPECT_EQ(other->calls(), 1u);
  EXPECT_EQ(other->calls_in_flight(), 1u);
  EXPECT_NE((*conns)[0].id(), (*conns)[1].id());

  // Gone once the peer dies.
  peer.Kill();
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<std::vector<ConnectionInfo>> now =
        client.ListConnections(&cutoffs);
    return now.ok() && now->size() == 1u && (*now)[0].peer_pid() == ::getpid();
  }));
}

TEST(IntrospectionLocalTest, ServerInAnotherProcessDescribesItself) {
  TempDir dir{"lpc-intro-"};
  Peer server({"server", dir.path(), "remote"});
  ASSERT_EQ(server.ReadLine(), "READY");
  std::shared_ptr<Channel> ch = Connect(dir.path(), "remote");
  ASSERT_NE(ch, nullptr);
  IntrospectionClient client(ch);

  absl::StatusOr<introspection::ServerInfo> info = client.GetServerInfo();
  ASSERT_OK(info);
  EXPECT_EQ(info->pid(), static_cast<uint32_t>(server.pid()));
  EXPECT_EQ(info->uid(), ::getuid());
  EXPECT_THAT(info->targets(), Contains("local:remote"));
  std::vector<std::string> names;
  for (const auto& i : info->interfaces()) names.push_back(i.name());
  EXPECT_THAT(names, ::testing::ElementsAre("lpc.test.Raw",
                                            "lpc.introspection.Introspection"));
  EXPECT_EQ(info->interfaces(0).uuid(), RawDescriptor().uuid);
  EXPECT_EQ(info->interfaces(0).methods_size(), 5);

  absl::StatusOr<std::string> health = client.Check("");
  ASSERT_OK(health);
  EXPECT_EQ(*health, "SERVING");
  EXPECT_THAT(client.Check("no.such.Service"),
              StatusIs(absl::StatusCode::kNotFound));

  absl::StatusOr<std::string> fds =
      client.GetFileDescriptorSet("lpc.introspection.Introspection");
  ASSERT_OK(fds);
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(*fds));
  ASSERT_GE(set.file_size(), 1);
  EXPECT_EQ(set.file(set.file_size() - 1).service(0).name(), "Introspection");
}

}  // namespace
}  // namespace lpc::local
