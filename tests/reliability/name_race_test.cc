// Ownership of a port name (docs/reliability.md, "Hostile servers, names
// and identity"). Two
// servers race for one name, started at once (concurrent) and one after the
// other (sequential): exactly one wins every time, the loser gets
// ALREADY_EXISTS, and the loser's teardown leaves the winner's socket
// alone, so that a new client reaches the winner every time. A server
// started on a squatter's name (a listener with a full backlog) fails with
// ALREADY_EXISTS at once instead of hanging.
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/unique_fd.h"

namespace lpc::reliability {
namespace {

using local::UniqueFd;

TestServerOptions Options(const std::string& dir) {
  TestServerOptions o;
  o.dir = dir;
  o.local_name = "race";
  o.local.concurrency = 1;
  o.local.max_workers = 2;
  return o;
}

// A new channel's first call to the port "race".
bool NewClientReaches(const std::string& dir) {
  auto ch = MakeChannel("local:race", dir);
  if (!ch.ok()) return false;
  return CallRel(**ch, EchoMethod(), "hi", absl::Seconds(5)).ok();
}

TEST(NameRaceTest, ConcurrentStartsHaveOneWinnerThatStaysReachable) {
  TempDir dir;
  const int rounds = static_cast<int>(Scaled(200, 1000));
  int one_winner = 0, loser_already_exists = 0, reachable = 0;
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<TestServer> servers[2];
    std::atomic<int> ready{0};
    std::thread racers[2];
    for (int i = 0; i < 2; ++i) {
      racers[i] = std::thread([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }  // Both start at once.
        servers[i] = std::make_unique<TestServer>(Options(dir.path()));
      });
    }
    for (std::thread& t : racers) t.join();
    const bool ok0 = servers[0]->start_status().ok();
    const bool ok1 = servers[1]->start_status().ok();
    if (ok0 != ok1) ++one_winner;
    const int loser = ok0 ? 1 : 0;
    if (absl::IsAlreadyExists(servers[loser]->start_status())) {
      ++loser_already_exists;
    } else {
      ADD_FAILURE() << "round " << round << ": "
                    << servers[loser]->start_status();
    }
    // The loser goes first: its teardown must leave the name alone.
    servers[loser].reset();
    if (NewClientReaches(dir.path())) ++reachable;
    servers[1 - loser].reset();
  }
  EXPECT_EQ(one_winner, rounds);
  EXPECT_EQ(loser_already_exists, rounds);
  EXPECT_EQ(reachable, rounds);
  Report("name_race_concurrent",
         absl::StrFormat("rounds=%d one_winner=%d loser_already_exists=%d "
                         "winner_reachable_after_loser_gone=%d",
                         rounds, one_winner, loser_already_exists, reachable));
}

TEST(NameRaceTest, SequentialStartsNeverDisturbTheLiveServer) {
  TempDir dir;
  TestServer winner(Options(dir.path()));
  ASSERT_TRUE(winner.start_status().ok()) << winner.start_status();
  const int rounds = static_cast<int>(Scaled(200, 1000));
  int already_exists = 0, reachable = 0;
  for (int round = 0; round < rounds; ++round) {
    {
      TestServer second(Options(dir.path()));
      if (absl::IsAlreadyExists(second.start_status())) ++already_exists;
    }
    if (NewClientReaches(dir.path())) ++reachable;
  }
  EXPECT_EQ(already_exists, rounds);
  EXPECT_EQ(reachable, rounds);
  Report("name_race_sequential",
         absl::StrFormat("rounds=%d loser_already_exists=%d "
                         "winner_reachable=%d",
                         rounds, already_exists, reachable));
}

TEST(NameRaceTest, AServerOnASquattedNameFailsAtOnce) {
  TempDir dir;
  const std::string path = dir.path() + "/race";
  UniqueFd squatter(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(squatter.get(), reinterpret_cast<sockaddr*>(&addr),
                   sizeof(addr)),
            0);
  ASSERT_EQ(::listen(squatter.get(), 0), 0);
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 64; ++i) {
    UniqueFd c(
        ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr),
                  sizeof(addr)) != 0) {
      break;
    }
    queued.push_back(std::move(c));
  }
  const absl::Time start = absl::Now();
  TestServer server(Options(dir.path()));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsAlreadyExists(server.start_status()))
      << server.start_status();
  EXPECT_LT(took, absl::Seconds(2));
  Report("name_race_squatter",
         absl::StrFormat("start_on_squatted_name_took_ms=%.1f status=%d",
                         absl::ToDoubleMilliseconds(took),
                         static_cast<int>(server.start_status().code())));
}

}  // namespace
}  // namespace lpc::reliability
