// Item 2 of docs/reliability.md: a client killed (SIGKILL) at each step of
// a call, over and over, against a server in this process. Afterwards the
// server's open fds and section mappings must be back at their baseline,
// its RSS close to it, and every handler of a dead client must have seen
// its cancellation; the test reports the time from the kill to that.
//
// Steps (reliability_peer rawstep): hold_slot (a record written, not
// published), half_record (half a record written), published_no_wake
// (published, doorbell not rung), in_handler (its Hold handler running),
// reply_writing (24 x 200 KiB echoes whose replies it never reads).
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

const char* const kSteps[] = {"hold_slot", "half_record", "published_no_wake",
                              "in_handler", "reply_writing"};

TEST(ClientKillTest, ServerReturnsToBaselineAfterEveryStep) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  const pid_t self = ::getpid();

  const int per_step = static_cast<int>(Scaled(40, 200));
  const absl::Time time_limit = absl::Now() + absl::Seconds(Scaled(40, 900));
  std::vector<double> cancel_ms;
  int cycles = 0, handler_cycles = 0, not_cleaned = 0;

  auto cycle = [&](const std::string& step) {
    const int64_t cancels_before = server.service().holds_cancelled();
    const int running_before = server.service().running();
    ChildProcess client({PeerBinary(), "rawstep", dir.path(), "p", step});
    if (client.ReadLine(absl::Seconds(20)) != "AT") {
      ADD_FAILURE() << "client did not reach step " << step;
      return;
    }
    if (step == "in_handler") {
      // Kill it while its handler runs.
      if (!WaitFor([&] { return server.service().running() > running_before; })) {
        ADD_FAILURE() << "handler did not start";
      }
    }
    const int64_t kill_ns = MonoNs();
    client.Kill();
    if (step == "in_handler") {
      ++handler_cycles;
      if (WaitFor([&] {
            return server.service().holds_cancelled() > cancels_before;
          })) {
        const int64_t seen = server.service().CancelSeenNs(std::string(100, 'p'));
        cancel_ms.push_back(static_cast<double>(seen - kill_ns) / 1e6);
      } else {
        ADD_FAILURE() << "the handler never saw its cancellation";
      }
    }
    if (!WaitFor([&] {
          return server.local()->stats().connections_open == 0 &&
                 server.service().running() == 0;
        })) {
      ++not_cleaned;
    }
    ++cycles;
  };

  // Warm-up: one cycle of each step, so lazily created threads and arenas
  // exist before the baseline.
  for (const char* step : kSteps) cycle(step);
  // Idle: no connection, and the last one's section and fds released (that
  // happens when its last handler returns, just after the close).
  ASSERT_TRUE(WaitFor([&] {
    return server.local()->stats().connections_open == 0 &&
           server.service().running() == 0 &&
           CountMaps(self, "lpc-section") == 0;
  }));
  // Descriptors of the warm-up's last child process (its pipes) may still
  // be closing: the baseline is taken once the count has held still for
  // 100 ms (at most 5 s), so that it is never inflated.
  {
    int last = CountFds(self), stable_for = 0;
    for (absl::Time limit = absl::Now() + absl::Seconds(5);
         stable_for < 5 && absl::Now() < limit;) {
      absl::SleepFor(absl::Milliseconds(20));
      int now = CountFds(self);
      stable_for = now == last ? stable_for + 1 : 0;
      last = now;
    }
  }
  const int fds0 = CountFds(self);
  const int sections0 = CountMaps(self, "lpc-section");
  const int payloads0 = CountMaps(self, "lpc-payload");
  const int maps0 = CountAllMaps(self);
  const int64_t rss0 = RssKib(self);

  for (int i = 0; i < per_step && absl::Now() < time_limit; ++i) {
    for (const char* step : kSteps) cycle(step);
  }
  // Let the last connection's resources go (the I/O thread closes it).
  WaitFor([&] {
    return server.local()->stats().connections_open == 0 &&
           CountFds(self) <= fds0 && CountMaps(self, "lpc-section") <= sections0;
  });
  const int fds1 = CountFds(self);
  const int sections1 = CountMaps(self, "lpc-section");
  const int payloads1 = CountMaps(self, "lpc-payload");
  const int maps1 = CountAllMaps(self);
  const int64_t rss1 = RssKib(self);
  const local::LocalServerStats stats = server.local()->stats();

  Report("client_kill",
         absl::StrFormat(
             "cycles=%d fds=%d->%d section_maps=%d->%d payload_maps=%d->%d "
             "all_maps=%d->%d rss_kib=%lld->%lld not_cleaned=%d "
             "handler_cancel_ms_p50=%.2f p99=%.2f max=%.2f (n=%d) "
             "accepted=%llu cut_off=%llu",
             cycles, fds0, fds1, sections0, sections1, payloads0, payloads1,
             maps0, maps1, static_cast<long long>(rss0),
             static_cast<long long>(rss1), not_cleaned,
             Quantile(cancel_ms, 0.5), Quantile(cancel_ms, 0.99),
             Quantile(cancel_ms, 1.0), static_cast<int>(cancel_ms.size()),
             static_cast<unsigned long long>(stats.connections_accepted),
             static_cast<unsigned long long>(stats.clients_cut_off)));
  EXPECT_EQ(not_cleaned, 0);
  EXPECT_EQ(fds1, fds0);
  EXPECT_EQ(sections1, sections0);
  EXPECT_EQ(payloads1, payloads0);
  EXPECT_EQ(static_cast<int>(cancel_ms.size()), handler_cycles);
  // Every section is 2 MiB; a leak of one per cycle would show as hundreds
  // of MiB. Allocator noise stays far below this bound.
  if (RssIsMeaningful()) {
    EXPECT_LT(rss1 - rss0, 32 * 1024);
  }
  // Sanitizer allocators map memory lazily; count mappings only without.
  if (RssIsMeaningful()) {
    EXPECT_LE(maps1, maps0 + 16);
  }
  EXPECT_EQ(stats.connections_open, 0u);
}

}  // namespace
}  // namespace lpc::reliability
