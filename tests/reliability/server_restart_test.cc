// Item 3 of docs/reliability.md: a server killed (SIGKILL) and started
// again on the same port name. The new server must start although the old
// one left its socket file behind, and every client's next call must
// succeed; the test reports the time from the kill to each client's first
// successful call after it (the restart itself included).
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

TEST(ServerRestartTest, EveryClientRecoversAfterRestart) {
  TempDir dir;
  const int clients = 16;
  const int restarts = static_cast<int>(Scaled(5, 50));
  std::vector<std::shared_ptr<Channel>> chs;
  for (int i = 0; i < clients; ++i) {
    auto ch = MakeChannel("local:p", dir.path());
    ASSERT_TRUE(ch.ok()) << ch.status();
    chs.push_back(*ch);
  }
  std::vector<double> recover_ms, restart_ms;
  int start_failures = 0, never_recovered = 0;
  auto server = std::make_unique<ChildProcess>(
      std::vector<std::string>{PeerBinary(), "server", dir.path(), "p", "0"});
  ASSERT_EQ(server->ReadLine(), "READY");
  for (int r = 0; r < restarts; ++r) {
    // Every client is connected and working.
    for (auto& ch : chs) {
      ASSERT_TRUE(CallRel(*ch, EchoMethod(), "before").ok());
    }
    const int64_t kill_ns = MonoNs();
    server->Kill();
    // Clients keep calling from the moment of the kill.
    std::vector<int64_t> first_ok(clients, 0);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] {
        const absl::Time end = absl::Now() + absl::Seconds(20);
        while (!stop.load() && absl::Now() < end) {
          if (CallRel(*chs[i], EchoMethod(), "after", absl::Milliseconds(200))
                  .ok()) {
            first_ok[i] = MonoNs();
            return;
          }
          absl::SleepFor(absl::Milliseconds(1));
        }
      });
    }
    server = std::make_unique<ChildProcess>(
        std::vector<std::string>{PeerBinary(), "server", dir.path(), "p", "0"});
    if (server->ReadLine() != "READY") {
      ++start_failures;
      stop = true;
    } else {
      restart_ms.push_back(static_cast<double>(MonoNs() - kill_ns) / 1e6);
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < clients; ++i) {
      if (first_ok[i] == 0) {
        ++never_recovered;
      } else {
        recover_ms.push_back(static_cast<double>(first_ok[i] - kill_ns) / 1e6);
      }
    }
    if (start_failures > 0) break;
  }
  Report("server_restart",
         absl::StrFormat("restarts=%d clients=%d start_failures=%d "
                         "never_recovered=%d restart_ms_p50=%.1f "
                         "recover_ms_p50=%.1f p99=%.1f max=%.1f",
                         restarts, clients, start_failures, never_recovered,
                         Quantile(restart_ms, 0.5), Quantile(recover_ms, 0.5),
                         Quantile(recover_ms, 0.99), Quantile(recover_ms, 1.0)));
  EXPECT_EQ(start_failures, 0);
  EXPECT_EQ(never_recovered, 0);
}

}  // namespace
}  // namespace lpc::reliability
