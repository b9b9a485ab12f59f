// Item 15 of docs/reliability.md: lost wake-ups. Many more calling threads
// than cores (plus threads that only burn CPU, to force preemption at any
// point of the sleep protocol) make Echo calls through one local channel
// each; every call is two hand-offs (request, reply). With spin = 0 on both
// sides every hand-off that finds its peer asleep goes through the
// sleeping-flag/doorbell protocol; with the default spin, through the mix.
// A lost wake-up shows as a call that takes over a second (the bounded
// sleeps would then be the only thing that rescues it). Reports hand-offs,
// stalls > 1 s (must be 0) and the slowest call. Meant to run under TSan.
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

void RunHandOffs(const std::string& name, absl::Duration spin) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  o.local.spin = spin;
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  const int threads_n = 8;
  const int64_t handoffs = Scaled(200000, 10000000);
  const int64_t per_thread = handoffs / 2 / threads_n;
  const absl::Time limit = absl::Now() + absl::Seconds(Scaled(45, 3000));
  std::atomic<int64_t> calls{0}, stalls{0}, failures{0}, worst_us{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> burners;
  for (int i = 0; i < 2; ++i) {
    burners.emplace_back([&] {
      uint64_t x = 1;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 10000; ++k) x = x * 6364136223846793005ull + 1;
        if (x == 42) std::this_thread::yield();
      }
    });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      local::LocalChannelOptions lo;
      lo.spin = spin;
      auto ch = MakeChannel("local:p", dir.path(), {}, lo);
      if (!ch.ok()) return;
      const std::string p = absl::StrCat("w", t);
      for (int64_t i = 0; i < per_thread && absl::Now() < limit; ++i) {
        const int64_t t0 = MonoNs();
        absl::StatusOr<std::string> r =
            CallRel(**ch, EchoMethod(), p, absl::Seconds(30));
        const int64_t us = (MonoNs() - t0) / 1000;
        int64_t w = worst_us.load();
        while (us > w && !worst_us.compare_exchange_weak(w, us)) {
        }
        if (us > 1000000) stalls.fetch_add(1);
        if (!r.ok() || *r != p) failures.fetch_add(1);
        calls.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  for (auto& t : burners) t.join();
  Report(absl::StrCat("wakeups_", name),
         absl::StrFormat("threads=%d cores=%u hand_offs=%lld stalls_over_1s=%lld "
                         "worst_call_ms=%.1f failures=%lld",
                         threads_n + 2, std::thread::hardware_concurrency(),
                         static_cast<long long>(2 * calls.load()),
                         static_cast<long long>(stalls.load()),
                         worst_us.load() / 1000.0,
                         static_cast<long long>(failures.load())));
  EXPECT_EQ(stalls.load(), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(calls.load(), 0);
}

TEST(WakeupTest, NoSpinEveryHandOffSleeps) {
  RunHandOffs("nospin", absl::ZeroDuration());
}

TEST(WakeupTest, DefaultSpin) { RunHandOffs("spin", absl::Microseconds(20)); }

}  // namespace
}  // namespace lpc::reliability
