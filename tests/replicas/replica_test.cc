// Three replicas of a server, each in a network namespace of its own, behind
// one client target with gRPC's round_robin policy from the config. The
// test calls in a loop, kills one replica by its pid, and checks that calls
// keep succeeding on the two others; then it restarts the replica and
// measures how soon each client uses it again, with the reconnect backoff
// of the config and with gRPC's default.
//
// A second test cuts one replica off without closing its connections and
// checks that keepalive drops it; a third reaches the three through a DNS
// name.
//
// It prints "RESULT replicas ..." lines with the figures (docs/config.md).
// It needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root); without them it says so
// and skips. Every address it uses is in 198.18.0.0/15, inside namespaces
// that it creates and that the kernel removes when their processes exit.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/config.h"
#include "runtime/mutex.h"
#include "testing/status_matchers.h"
#include "tests/replicas/netns.h"
#include "tests/replicas/replica_service.h"
#include "transports/connect.h"

namespace lpc::replicas {
namespace {

int g_netns_errno = -1;  // Set by main: 0 when this process has its own.

constexpr int kReplicas = 3;
constexpr int kCallersPerChannel = 2;
constexpr absl::Duration kCallTimeout = absl::Seconds(1);
constexpr absl::Duration kPhaseLimit = absl::Seconds(15);
// Successful calls in a row, spread over the survivors, that count as
// traffic having settled.
constexpr int kSettledCalls = 100;

constexpr char kConfig[] = R"pb(
  # The configured client: round_robin over three addresses, and a reconnect
  # backoff that starts at 100 ms and never waits more than 500 ms.
  endpoint {
    service: "lpc.test.Replica"
    target: "grpc:ipv4:198.18.0.2:50051,198.18.1.2:50051,198.18.2.2:50051"
    default_timeout_ms: 1000
    grpc {
      lb_policy: "round_robin"
      reconnect { initial_backoff_ms: 100 max_backoff_ms: 500 }
    }
  }
  # The same with gRPC's default backoff (1 s, growing 1.6-fold to 120 s).
  endpoint {
    client: "default-backoff"
    target: "grpc:ipv4:198.18.0.2:50051,198.18.1.2:50051,198.18.2.2:50051"
    default_timeout_ms: 1000
    grpc { lb_policy: "round_robin" }
  }
)pb";

struct Sample {
  absl::Time start;
  absl::Time end;
  absl::StatusCode code;
  int replica;  // -1 when the call failed.
  std::string error;
};

// One client channel and the callers that call through it in a loop.
class Client {
 public:
  Client(std::string label, std::shared_ptr<Channel> channel)
      : label_(std::move(label)), channel_(std::move(channel)) {}
  ~Client() { StopCalling(); }

  void StartCalling() {
    for (int i = 0; i < kCallersPerChannel; ++i) {
      callers_.emplace_back([this] { CallLoop(); });
    }
  }
  void StopCalling() {
    stop_ = true;
    for (std::thread& t : callers_) t.join();
    callers_.clear();
  }

  std::vector<Sample> Samples() {
    MutexLock lock(&mu_);
    return samples_;
  }

  // Checks `done` on the samples every 10 ms until it holds or `limit`
  // passes; returns whether it held.
  bool WaitFor(const std::function<bool(const std::vector<Sample>&)>& done,
               absl::Duration limit) {
    absl::Time deadline = absl::Now() + limit;
    MutexLock lock(&mu_);
    while (!done(samples_)) {
      if (absl::Now() >= deadline) return false;
      cv_.WaitWithDeadline(&mu_, std::min(deadline, absl::Now() + absl::Milliseconds(10)));
    }
    return true;
  }

  const std::string& label() const { return label_; }

 private:
  void CallLoop() {
    const MethodDescriptor& who = kReplicaMethods[0];
    while (!stop_) {
      CallContext ctx;
      ctx.set_timeout(kCallTimeout);
      Sample s;
      s.start = absl::Now();
      absl::StatusOr<std::string> r =
          channel_->Call(ReplicaInterface(), who, &ctx, "");
      s.end = absl::Now();
      s.code = r.status().code();
      if (!r.ok()) s.error = std::string(r.status().message());
      s.replica = -1;
      if (r.ok() && r->size() == 2 && (*r)[0] == 'r') s.replica = (*r)[1] - '0';
      if (r.ok() && (s.replica < 0 || s.replica >= kReplicas)) {
        s.code = absl::StatusCode::kInternal;  // A reply from no replica.
        s.replica = -1;
      }
      {
        MutexLock lock(&mu_);
        samples_.push_back(s);
      }
      // Paced, so that the callers leave CPU for the replicas.
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  const std::string label_;
  const std::shared_ptr<Channel> channel_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> callers_;
  Mutex mu_;
  CondVar cv_;
  std::vector<Sample> samples_ ABSL_GUARDED_BY(mu_);
};

// Every replica has answered 20 calls: the client is in its steady state.
bool EveryReplicaAnswered(const std::vector<Sample>& samples) {
  int seen[kReplicas] = {};
  for (const Sample& s : samples) {
    if (s.replica >= 0) ++seen[s.replica];
  }
  for (int n : seen) {
    if (n < 20) return false;
  }
  return true;
}

// What one client saw around the kill of replica 0 at `killed`.
struct KillFigures {
  int failed = 0;
  std::map<absl::StatusCode, int> codes;
  absl::Time last_failure;  // `killed` when nothing failed.
  // From the kill until both survivors have answered a call that started
  // after the last failure.
  absl::Duration settle = absl::InfiniteDuration();
  int after[kReplicas] = {};  // Successes per replica after the last failure.
  bool settled = false;
};

KillFigures AnalyzeKill(const std::vector<Sample>& samples, absl::Time killed) {
  KillFigures f;
  f.last_failure = killed;
  for (const Sample& s : samples) {
    if (s.code == absl::StatusCode::kOk || s.end < killed) continue;
    ++f.failed;
    ++f.codes[s.code];
    f.last_failure = std::max(f.last_failure, s.end);
  }
  absl::Time first[kReplicas];
  for (absl::Time& t : first) t = absl::InfiniteFuture();
  for (const Sample& s : samples) {
    if (s.replica < 0 || s.start < f.last_failure) continue;
    ++f.after[s.replica];
    first[s.replica] = std::min(first[s.replica], s.end);
  }
  absl::Time both = std::max(first[1], first[2]);
  if (both != absl::InfiniteFuture()) f.settle = both - killed;
  // A call stuck on the dead replica would have ended by now.
  f.settled = f.after[1] + f.after[2] >= kSettledCalls && f.after[1] > 0 &&
              f.after[2] > 0 && absl::Now() - f.last_failure > kCallTimeout;
  return f;
}

std::string CodesText(const std::map<absl::StatusCode, int>& codes) {
  std::vector<std::string> parts;
  for (const auto& [code, n] : codes) {
    parts.push_back(absl::StrCat(n, " ", absl::StatusCodeToString(code)));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

// Starts the three replicas, or skips the test loudly when this process
// could not get namespaces of its own.
class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_netns_errno != 0) {
      std::string why = strerror(g_netns_errno);
      fprintf(stderr,
              "\n*************************************************************\n"
              "* replica_test NOT RUN: cannot create network and mount\n"
              "* namespaces (%s). It needs CAP_SYS_ADMIN and CAP_NET_ADMIN:\n"
              "* run it as root.\n"
              "*************************************************************\n\n",
              why.c_str());
      if (geteuid() == 0) {
        FAIL() << "running as root, yet unshare(CLONE_NEWNET | CLONE_NEWNS) "
               << "failed: " << why;
      }
      GTEST_SKIP() << "no namespaces without CAP_SYS_ADMIN: " << why;
    }
    // Before any connection: a thread left in the host's namespace would
    // send this test's traffic there.
    ASSERT_OK(AllThreadsInOneNetworkNamespace());
    std::string ip = FindIpBinary();
    ASSERT_NE(ip, "") << "iproute2's ip is not installed";
    const char* srcdir = getenv("TEST_SRCDIR");
    ASSERT_NE(srcdir, nullptr) << "run the test with bazel test";
    std::string server =
        absl::StrCat(srcdir, "/lpc/tests/replicas/replica_server");
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(std::make_unique<NetnsReplica>(i, ip, server));
      ASSERT_OK(replicas_.back()->Start());
    }
  }

  void TearDown() override {
    EXPECT_OK(AllThreadsInOneNetworkNamespace());
  }

  std::vector<std::unique_ptr<NetnsReplica>> replicas_;
};

TEST_F(ReplicaTest, KilledReplicaLeavesTrafficOnTheOthers) {
  std::vector<std::unique_ptr<NetnsReplica>>& replicas = replicas_;
  ASSERT_OK_AND_ASSIGN(config::Config config,
                       ParseConfig(kConfig, "replica_test.textproto"));
  std::vector<std::unique_ptr<Client>> clients;
  {
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> configured,
                         ConnectFromConfig(config, "lpc.test.Replica"));
    ASSERT_OK_AND_ASSIGN(
        std::shared_ptr<Channel> defaults,
        ConnectFromConfig(config, "lpc.test.Replica", "default-backoff"));
    clients.push_back(std::make_unique<Client>("configured backoff", configured));
    clients.push_back(std::make_unique<Client>("gRPC default backoff", defaults));
  }
  absl::Time started = absl::Now();
  for (auto& c : clients) c->StartCalling();

  // Round robin reaches all three (connecting may cost the first calls
  // their deadline on a slow build) ...
  for (auto& c : clients) {
    ASSERT_TRUE(c->WaitFor(EveryReplicaAnswered, kPhaseLimit))
        << c->label() << ": not every replica answered within "
        << absl::FormatDuration(kPhaseLimit);
  }
  // ... and once connected, nothing fails while all are up.
  absl::Time connected = absl::Now();
  for (auto& c : clients) {
    auto steady = [&](const std::vector<Sample>& samples) {
      int n = 0;
      for (const Sample& s : samples) n += s.start >= connected;
      return n >= 20 * kReplicas;
    };
    ASSERT_TRUE(c->WaitFor(steady, kPhaseLimit));
  }
  absl::Time killed = absl::Now();
  ASSERT_OK(replicas[0]->Kill());
  for (auto& c : clients) {
    int connecting_failures = 0;
    for (const Sample& s : c->Samples()) {
      if (s.end >= killed || s.code == absl::StatusCode::kOk) continue;
      ASSERT_LT(s.start, connected)
          << c->label() << ": a call failed while all replicas were up, "
          << absl::FormatDuration(s.start - started) << " after the start: "
          << s.error;
      ++connecting_failures;
    }
    if (connecting_failures > 0) {
      printf("RESULT replicas connect (%s): %d calls failed while connecting\n",
             c->label().c_str(), connecting_failures);
    }
  }

  // Calls keep succeeding on the two survivors.
  std::vector<KillFigures> kill_figures;
  for (auto& c : clients) {
    bool settled = c->WaitFor(
        [&](const std::vector<Sample>& s) { return AnalyzeKill(s, killed).settled; },
        kPhaseLimit);
    KillFigures f = AnalyzeKill(c->Samples(), killed);
    kill_figures.push_back(f);
    printf("RESULT replicas kill (%s): %d calls failed while the replica was "
           "killed (%s); traffic settled on the 2 survivors %lld ms after the "
           "kill; then %d and %d successful calls on r1 and r2\n",
           c->label().c_str(), f.failed, CodesText(f.codes).c_str(),
           static_cast<long long>(absl::ToInt64Milliseconds(f.settle)),
           f.after[1], f.after[2]);
    ASSERT_TRUE(settled) << c->label() << ": traffic did not settle on the "
                         << "survivors within "
                         << absl::FormatDuration(kPhaseLimit);
    for (const auto& [code, n] : f.codes) {
      EXPECT_TRUE(code == absl::StatusCode::kUnavailable ||
                  code == absl::StatusCode::kDeadlineExceeded)
          << n << " calls failed with " << absl::StatusCodeToString(code);
    }
    // Each caller had at most one call in flight on the dead replica, and
    // gRPC stops picking it once the connection is gone.
    EXPECT_LE(f.failed, 10 * kCallersPerChannel);
    // round_robin alternates between the two survivors.
    int total = f.after[1] + f.after[2];
    EXPECT_GE(f.after[1] * 4, total) << "r1 served too few calls";
    EXPECT_GE(f.after[2] * 4, total) << "r2 served too few calls";
  }

  // The replica comes back at the same address; each client connects to it
  // again on its own backoff schedule.
  ASSERT_OK(replicas[0]->Start());
  absl::Time restarted = absl::Now();
  for (auto& c : clients) {
    auto back = [&](const std::vector<Sample>& samples) {
      for (const Sample& s : samples) {
        if (s.replica == 0 && s.start > killed) return true;
      }
      return false;
    };
    ASSERT_TRUE(c->WaitFor(back, absl::Seconds(30)))
        << c->label() << ": the restarted replica got no call within 30 s";
    absl::Time first = absl::InfiniteFuture();
    for (const Sample& s : c->Samples()) {
      if (s.replica == 0 && s.start > killed) first = std::min(first, s.end);
    }
    printf("RESULT replicas restart (%s): the replica, down for %lld ms, "
           "served again %lld ms after it was ready\n",
           c->label().c_str(),
           static_cast<long long>(absl::ToInt64Milliseconds(restarted - killed)),
           static_cast<long long>(
               absl::ToInt64Milliseconds(std::max(first - restarted, absl::ZeroDuration()))));
  }
  for (auto& c : clients) c->StopCalling();
  fflush(stdout);
}

// A replica cut off without its connections being closed (its link goes
// down) is noticed only by keepalive: the client with keepalive pings every
// second drops it and settles on the two others, while the one without
// keeps sending it a third of its calls, which time out.
TEST_F(ReplicaTest, KeepaliveDropsACutOffReplica) {
  ASSERT_OK_AND_ASSIGN(
      config::Config config,
      ParseConfig(R"pb(
                    endpoint {
                      service: "lpc.test.Replica"
                      target: "grpc:ipv4:198.18.0.2:50051,198.18.1.2:50051,198.18.2.2:50051"
                      default_timeout_ms: 1000
                      grpc {
                        lb_policy: "round_robin"
                        keepalive_time_ms: 1000
                        keepalive_timeout_ms: 1000
                      }
                    }
                    endpoint {
                      client: "no-keepalive"
                      target: "grpc:ipv4:198.18.0.2:50051,198.18.1.2:50051,198.18.2.2:50051"
                      default_timeout_ms: 1000
                      grpc { lb_policy: "round_robin" }
                    }
                  )pb",
                  "keepalive.textproto"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> with,
                       ConnectFromConfig(config, "lpc.test.Replica"));
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<Channel> without,
      ConnectFromConfig(config, "lpc.test.Replica", "no-keepalive"));
  Client keepalive("keepalive 1 s", with);
  Client plain("no keepalive", without);
  keepalive.StartCalling();
  plain.StartCalling();
  ASSERT_TRUE(keepalive.WaitFor(EveryReplicaAnswered, kPhaseLimit));
  ASSERT_TRUE(plain.WaitFor(EveryReplicaAnswered, kPhaseLimit));

  absl::Time cut = absl::Now();
  ASSERT_OK(replicas_[0]->SetLinkUp(false));
  bool settled = keepalive.WaitFor(
      [&](const std::vector<Sample>& s) { return AnalyzeKill(s, cut).settled; },
      kPhaseLimit);
  absl::Time window_end = absl::Now();
  keepalive.StopCalling();
  plain.StopCalling();
  EXPECT_OK(replicas_[0]->SetLinkUp(true));
  KillFigures f = AnalyzeKill(keepalive.Samples(), cut);
  printf("RESULT replicas cut-off (keepalive 1 s, timeout 1 s): %d calls "
         "failed (%s); traffic settled on the 2 others %lld ms after the cut\n",
         f.failed, CodesText(f.codes).c_str(),
         static_cast<long long>(absl::ToInt64Milliseconds(f.settle)));
  KillFigures g = AnalyzeKill(plain.Samples(), cut);
  printf("RESULT replicas cut-off (no keepalive): %d calls failed (%s) in the "
         "same %lld ms; settled: %s\n",
         g.failed, CodesText(g.codes).c_str(),
         static_cast<long long>(absl::ToInt64Milliseconds(window_end - cut)),
         g.settled ? "yes" : "no");
  ASSERT_TRUE(settled) << "keepalive did not drop the cut-off replica within "
                       << absl::FormatDuration(kPhaseLimit);
}

// A DNS name with three addresses, resolved by gRPC, reaches all three
// replicas under round_robin. The name is in this test's own /etc/hosts,
// read through getaddrinfo: gRPC's native resolver (main selects it), since
// c-ares 1.18 returns only the first /etc/hosts line for a name.
TEST_F(ReplicaTest, DnsNameReachesEveryReplica) {
  const char* tmpdir = getenv("TEST_TMPDIR");
  ASSERT_NE(tmpdir, nullptr) << "run the test with bazel test";
  ASSERT_OK(OverrideHostsFile("198.18.0.2 replicas.lpc.test\n"
                              "198.18.1.2 replicas.lpc.test\n"
                              "198.18.2.2 replicas.lpc.test\n",
                              tmpdir));
  ASSERT_OK_AND_ASSIGN(
      config::Config config,
      ParseConfig(R"pb(
                    endpoint {
                      service: "lpc.test.Replica"
                      target: "grpc:dns:///replicas.lpc.test:50051"
                      default_timeout_ms: 1000
                      grpc { lb_policy: "round_robin" }
                    }
                  )pb",
                  "dns.textproto"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> channel,
                       ConnectFromConfig(config, "lpc.test.Replica"));
  Client client("dns", channel);
  client.StartCalling();
  bool all = client.WaitFor(EveryReplicaAnswered, kPhaseLimit);
  client.StopCalling();
  int served[kReplicas] = {};
  int failed = 0;
  for (const Sample& s : client.Samples()) {
    // Only while connecting, on a slow build.
    if (s.replica < 0) {
      ++failed;
      continue;
    }
    ++served[s.replica];
  }
  printf("RESULT replicas dns: calls answered by r0, r1, r2: %d, %d, %d; "
         "%d failed while connecting\n",
         served[0], served[1], served[2], failed);
  EXPECT_TRUE(all) << "not every replica answered within "
                   << absl::FormatDuration(kPhaseLimit);
}

}  // namespace
}  // namespace lpc::replicas

int main(int argc, char** argv) {
  // First, while this is the only thread: every thread and process started
  // later lives in these namespaces.
  lpc::replicas::g_netns_errno = lpc::replicas::EnterOwnNamespaces();
  // getaddrinfo, which reads every /etc/hosts line for a name.
  setenv("GRPC_DNS_RESOLVER", "native", 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
