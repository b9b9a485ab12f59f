// Every connection ends (docs/reliability.md, "Hostile clients:
// connections, fds and floods"). Each attack runs while an honest neighbour calls Echo in a loop,
// and reports the neighbour's p99 against its baseline, the server's RSS
// and fd count, and the time to cut the offender off:
//  - silent clients that connect and never read WELCOME (handshake
//    timeout);
//  - a client that sends its own socket end as a payload fd and goes away
//    (stashed-fd age limit);
//  - fd floods up to the per-connection and server-wide stash limits;
//  - a server under a low RLIMIT_NOFILE whose fd table an attacker fills:
//    accepting pauses without spinning, and new clients get in once the
//    flood ends;
//  - the per-uid connection cap.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/neighbour.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/memfd.h"
#include "transports/local/unique_fd.h"

namespace lpc::reliability {
namespace {

// A connected socket that never reads anything.
local::UniqueFd ConnectSilently(const std::string& path) {
  local::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    fd.Reset();
  }
  return fd;
}

// Whether the server has hung up `fd` (after whatever it sent).
bool HungUp(int fd) {
  struct pollfd p = {fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
}

// The figures every test reports about a server in a child process.
std::string ServerFigures(pid_t pid, int fds_before, int fds_peak) {
  return absl::StrFormat("server_rss_mib=%.1f peak=%.1f server_fds=%d->%d->%d",
                         RssKib(pid) / 1024.0, PeakRssKib(pid) / 1024.0,
                         fds_before, fds_peak, CountFds(pid));
}

TEST(EndingTest, SilentConnectionsAreReaped) {
  TempDir dir;
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "0", "-", "0",
                       "handshake_ms=300,per_uid=0"});
  ASSERT_EQ(server.ReadLine(), "READY");
  const std::string path = dir.path() + "/p";
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  Neighbour neighbour(*ch);
  neighbour.MeasureBaseline(static_cast<int>(Scaled(1000, 20000)));
  const int fds_before = CountFds(server.pid());
  neighbour.Start();

  const int silent_count = 600;
  std::vector<local::UniqueFd> silent;
  for (int i = 0; i < silent_count; ++i) {
    silent.push_back(ConnectSilently(path));
    ASSERT_TRUE(silent.back()) << "connect " << i << ": " << std::strerror(errno);
  }
  const absl::Time flooded = absl::Now();
  int fds_peak = CountFds(server.pid());
  // A new client gets in while they are there.
  auto fresh = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(fresh.ok());
  absl::StatusOr<std::string> r = CallRel(**fresh, EchoMethod(), "new");
  EXPECT_TRUE(r.ok()) << r.status();
  // Every silent one is dropped by the handshake timeout.
  EXPECT_TRUE(WaitFor(
      [&] {
        fds_peak = std::max(fds_peak, CountFds(server.pid()));
        for (auto& s : silent) {
          if (!HungUp(s.get())) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  const double reaped_ms = absl::ToDoubleMilliseconds(absl::Now() - flooded);
  // Their server-side fds are gone too (the neighbour's and the new
  // client's stay).
  EXPECT_TRUE(WaitFor([&] { return CountFds(server.pid()) <= fds_before + 16; }));
  neighbour.Stop();
  absl::StatusOr<local::LocalServerStats> blocked = ChildBlockedStats(server);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  Report("silent_connections",
         absl::StrFormat("silent=%d all_reaped_after_ms=%.0f "
                         "(handshake_timeout 300 ms) new_client_ok=%d %s %s %s",
                         silent_count, reaped_ms, r.ok() ? 1 : 0,
                         ServerFigures(server.pid(), fds_before, fds_peak),
                         BlockedSummary(*blocked), neighbour.Summary()));
  EXPECT_EQ(neighbour.failed(), 0);
  EXPECT_LT(LongestBlockedMs(*blocked),
            BlockedBoundMs());
}

TEST(EndingTest, SelfReferencingFdIsReaped) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  o.local.stashed_fd_timeout = absl::Milliseconds(200);
  o.local.max_connections_per_uid = 0;  // The test's clients share a uid.
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  Neighbour neighbour(*ch);
  neighbour.MeasureBaseline(static_cast<int>(Scaled(1000, 20000)));
  neighbour.Start();
  const int clients = static_cast<int>(Scaled(50, 1000));
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < clients; ++i) {
    auto c = RawClient::Connect(dir.path() + "/p");
    ASSERT_TRUE(c.ok()) << c.status();
    // Its own socket end, as a payload fd; then it goes away (closes all
    // its descriptors, as an exit would). Only the server's stash keeps
    // the socket open.
    ASSERT_TRUE(SendPayloadFdPacket(**c, 0, 4096, (*c)->socket()).ok());
  }
  const uint64_t open_peak = server.local()->stats().connections_open;
  // Only the neighbour's connection stays.
  const bool reaped = WaitFor(
      [&] { return server.local()->stats().connections_open == 1; },
      absl::Seconds(20));
  const double reaped_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  neighbour.Stop();
  const local::LocalServerStats s = server.local()->stats();
  Report("self_referencing_fd",
         absl::StrFormat("clients=%d open_peak=%llu open_after=%llu "
                         "all_reaped_after_ms=%.0f (stashed_fd_timeout 200 ms) "
                         "cut_off=%llu stashed_fds=%llu %s %s",
                         clients, static_cast<unsigned long long>(open_peak),
                         static_cast<unsigned long long>(s.connections_open),
                         reaped_ms,
                         static_cast<unsigned long long>(s.clients_cut_off),
                         static_cast<unsigned long long>(s.stashed_fds),
                         BlockedSummary(s), neighbour.Summary()));
  EXPECT_TRUE(reaped);
  EXPECT_LT(LongestBlockedMs(s), BlockedBoundMs());
  EXPECT_EQ(s.stashed_fds, 0u);
  EXPECT_EQ(neighbour.failed(), 0);
}

TEST(EndingTest, FdFloodStaysUnderTheLimits) {
  TempDir dir;
  const int stash_budget = 1024;
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "0", "-", "0",
                       absl::StrCat("stash_ms=500,stashed_fds=", stash_budget)});
  ASSERT_EQ(server.ReadLine(), "READY");
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  Neighbour neighbour(*ch);
  neighbour.MeasureBaseline(static_cast<int>(Scaled(1000, 20000)));
  const int fds_before = CountFds(server.pid());
  neighbour.Start();
  absl::StatusOr<local::UniqueFd> memfd = local::CreateSealedMemfd("f", 65536);
  ASSERT_TRUE(memfd.ok());
  // Eight clients send fds without the records that would claim them, in
  // turn: 200 each (under the 272 = request slots + 16 one connection may
  // stash), 1,600 in all against a server-wide budget of 1,024. One more
  // client sends 300 alone, past its own limit.
  const int attackers = 9;
  const int per_attacker = 200;
  int fds_peak = fds_before;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int a = 0; a < attackers; ++a) {
    auto c = RawClient::Connect(dir.path() + "/p");
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(std::move(*c));
  }
  const absl::Time t0 = absl::Now();
  // The server's descriptors, sampled all along: a stash released to the
  // closer while more fds arrive is a peak that lasts milliseconds.
  std::atomic<bool> sampling{true};
  std::atomic<int> sampled_peak{fds_before};
  std::thread sampler([&] {
    while (sampling.load()) {
      const int n = CountFds(server.pid());
      if (n > sampled_peak.load()) sampled_peak.store(n);
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  std::vector<bool> gone(attackers, false);
  for (int i = 0; i < per_attacker; ++i) {
    for (int a = 0; a + 1 < attackers; ++a) {
      if (!gone[a]) {
        gone[a] = !SendPayloadFdPacket(*clients[a], i, 65536, memfd->get()).ok();
      }
    }
    if (i % 16 == 0) fds_peak = std::max(fds_peak, CountFds(server.pid()));
  }
  for (int i = 0; i < 300; ++i) {
    if (!SendPayloadFdPacket(*clients.back(), i, 65536, memfd->get()).ok()) break;
  }
  int cut = 0;
  std::map<std::string, int> reasons;
  for (auto& c : clients) {
    std::optional<std::string> why = c->WaitCutOff(absl::Seconds(10));
    fds_peak = std::max(fds_peak, CountFds(server.pid()));
    if (why.has_value()) {
      ++cut;
      ++reasons[why->substr(0, why->find(':'))];
    }
  }
  std::string reason_text;
  for (auto& [r, n] : reasons) absl::StrAppend(&reason_text, "\"", r, "\":", n, " ");
  const double cut_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  clients.clear();
  EXPECT_TRUE(WaitFor([&] { return CountFds(server.pid()) <= fds_before + 8; }));
  sampling.store(false);
  sampler.join();
  fds_peak = std::max(fds_peak, sampled_peak.load());
  neighbour.Stop();
  absl::StatusOr<local::LocalServerStats> blocked = ChildBlockedStats(server);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  Report("fd_flood",
         absl::StrFormat("attackers=%d fds_sent_each=%d cut_off=%d/%d "
                         "all_cut_after_ms=%.0f stash_budget=%d reasons=%s"
                         "%s %s %s",
                         attackers, per_attacker, cut, attackers, cut_ms,
                         stash_budget, reason_text,
                         ServerFigures(server.pid(), fds_before, fds_peak),
                         BlockedSummary(*blocked), neighbour.Summary()));
  EXPECT_LT(LongestBlockedMs(*blocked),
            BlockedBoundMs());
  EXPECT_EQ(cut, attackers);
  // The stash budget, each connection's socket and eventfd, and slack for
  // the threads' own.
  EXPECT_LE(fds_peak, fds_before + stash_budget + 2 * attackers + 16);
  EXPECT_EQ(neighbour.failed(), 0);
}

TEST(EndingTest, LowNofileNoSpinAndRecovery) {
  TempDir dir;
  const int nofile = 256;
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "0", "-", "0",
                       absl::StrCat("nofile=", nofile, ",stash_ms=60000")});
  ASSERT_EQ(server.ReadLine(), "READY");
  const std::string path = dir.path() + "/p";
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  // Paced, so that the server's CPU time measures the flood, not the
  // neighbour.
  Neighbour neighbour(*ch, absl::Milliseconds(2));
  neighbour.MeasureBaseline(static_cast<int>(Scaled(300, 3000)));
  const int fds_before = CountFds(server.pid());
  neighbour.Start();
  absl::StatusOr<local::UniqueFd> memfd = local::CreateSealedMemfd("f", 65536);
  ASSERT_TRUE(memfd.ok());
  // Fill the server's fd table with stashed fds, one at a time, until it
  // is full.
  std::vector<std::unique_ptr<RawClient>> attackers;
  for (int a = 0; a < 2; ++a) {
    auto c = RawClient::Connect(path);
    ASSERT_TRUE(c.ok()) << c.status();
    attackers.push_back(std::move(*c));
  }
  int sent = 0;
  for (int i = 0; i < 2 * 250 && CountFds(server.pid()) < nofile; ++i) {
    RawClient& c = *attackers[i % 2];
    const int before = CountFds(server.pid());
    if (!SendPayloadFdPacket(c, i / 2, 65536, memfd->get()).ok()) break;
    ++sent;
    WaitFor([&] { return CountFds(server.pid()) > before; },
            absl::Milliseconds(200));
  }
  const int fds_full = CountFds(server.pid());
  // Clients keep connecting while the table is full.
  const int64_t cpu0 = CpuTimeNs(server.pid());
  const absl::Time w0 = absl::Now();
  std::vector<local::UniqueFd> waiting;
  const absl::Duration window = absl::Milliseconds(Scaled(1000, 10000));
  while (absl::Now() - w0 < window) {
    if (waiting.size() < 64) waiting.push_back(ConnectSilently(path));
    absl::SleepFor(absl::Milliseconds(10));
  }
  const double cpu_share =
      static_cast<double>(CpuTimeNs(server.pid()) - cpu0) /
      static_cast<double>(absl::ToInt64Nanoseconds(absl::Now() - w0));
  const size_t connects = waiting.size();
  // The flood ends: a new client gets in.
  attackers.clear();
  waiting.clear();
  const absl::Time e0 = absl::Now();
  absl::Status last;
  const bool recovered = WaitFor(
      [&] {
        auto fresh = MakeChannel("local:p", dir.path());
        if (!fresh.ok()) return false;
        absl::StatusOr<std::string> r = CallRel(**fresh, EchoMethod(), "in");
        last = r.status();
        return r.ok();
      },
      absl::Seconds(20));
  const double recovered_ms = absl::ToDoubleMilliseconds(absl::Now() - e0);
  neighbour.Stop();
  absl::StatusOr<local::LocalServerStats> blocked = ChildBlockedStats(server);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  Report("low_nofile",
         absl::StrFormat("rlimit_nofile=%d fds_sent=%d server_fds_full=%d "
                         "connects_while_full=%zu server_cpu_while_full=%.0f%% "
                         "new_client_in_after_ms=%.0f %s %s %s",
                         nofile, sent, fds_full, connects,
                         100 * cpu_share, recovered_ms,
                         ServerFigures(server.pid(), fds_before, fds_full),
                         BlockedSummary(*blocked), neighbour.Summary()));
  EXPECT_LT(LongestBlockedMs(*blocked),
            BlockedBoundMs());
  EXPECT_TRUE(recovered) << last;
  EXPECT_GE(fds_full, nofile - 2);
  // A loop spinning on the listener takes a whole CPU.
  EXPECT_LT(cpu_share, 0.5);
  EXPECT_EQ(neighbour.failed(), 0);
}

TEST(EndingTest, PerUidCap) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  o.local.max_connections_per_uid = 3;
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  std::vector<std::unique_ptr<RawClient>> in;
  for (int i = 0; i < 3; ++i) {
    auto c = RawClient::Connect(dir.path() + "/p");
    ASSERT_TRUE(c.ok()) << c.status();
    in.push_back(std::move(*c));
  }
  auto refused = RawClient::Connect(dir.path() + "/p");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("from uid"), std::string::npos);
  in.pop_back();  // One leaves: the next one gets in.
  EXPECT_TRUE(WaitFor([&] {
    return server.local()->stats().connections_open == 2;
  }));
  auto again = RawClient::Connect(dir.path() + "/p");
  EXPECT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace lpc::reliability
