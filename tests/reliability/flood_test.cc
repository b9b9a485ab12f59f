// Item 10 of docs/reliability.md: floods against a server in a child
// process, each while an honest neighbour calls Echo:
//   none         no flood: the control, whose ratios show the noise;
//   oneway       ONEWAY Note calls as fast as the ring takes them, from a
//                raw client that retries a full ring every millisecond;
//   oneway_channel  the same flood through lpc's own client (a buggy
//                application, not a hostile one): its SendOneway waits
//                for room on the ring's futex, up to 10 ms at a time;
//   slow_oneway  ONEWAY Sleep(1000 ms) calls with 32 KiB payloads (each
//                holds a worker for a second), and the same inline (900 B);
//   no_read      Echo requests whose replies are never read;
//   connections  connections up to the limit (the server runs with
//                max_connections 64) and beyond;
//   doorbell     the eventfd rung in a tight loop with nothing published.
// Reports per flood: server RSS (baseline, peak), whether and when the
// offender was cut off or throttled (its send rate after the first second),
// how often a raw flooder waited for room on its ring, and the neighbour's
// success rate, throughput, p50 and p99 against its baseline. The machine
// is shared and noisy, so each flood's baseline is measured just before it
// and again just after it, each for as long as the flood phase, and the
// ratios compare the flood with the mean of the two. Each flood has a
// server process of its own. The long mode (LPC_RELIABILITY_LONG=1) runs
// 15 trials of each flood and reports their medians.
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/neighbour.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/doorbell.h"

namespace lpc::reliability {
namespace {

struct NeighbourFigures {
  int calls = 0, ok = 0;
  double per_sec = 0, p50_us = 0, p99_us = 0;
};

NeighbourFigures RunNeighbour(Channel& ch, absl::Duration d) {
  NeighbourFigures f;
  std::vector<double> us;
  const absl::Time start = absl::Now(), end = start + d;
  while (absl::Now() < end && f.calls < 200000000) {
    const absl::Time t0 = absl::Now();
    // A long deadline: under a flood a call may wait; only failures count.
    absl::StatusOr<std::string> r =
        CallRel(ch, EchoMethod(), "neighbour", absl::Seconds(30));
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    ++f.calls;
    f.ok += r.ok() && *r == "neighbour";
  }
  f.per_sec = f.calls / absl::ToDoubleSeconds(absl::Now() - start);
  // About a million samples a 1 s phase: sorted once.
  absl::c_sort(us);
  f.p50_us = SortedQuantile(us, 0.5);
  f.p99_us = SortedQuantile(us, 0.99);
  return f;
}

struct Offender {
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> sent_after_1s{0};
  std::atomic<int64_t> cut_off_ms{-1};
  std::atomic<int64_t> refused{0};
  // Times a raw flooder found its ring full and waited for room.
  std::atomic<int64_t> waits{0};
};

TEST(FloodTest, ServerBoundedNeighboursKeepServing) {
  TempDir dir;
  // The long mode runs each flood 15 times, each trial with a server of
  // its own, and reports every trial and the medians. The host moves this
  // machine between faster and slower placements for seconds at a time,
  // and a move within a trial's three phases passes for an effect of the
  // flood: the control, with no flood at all, read 87-107% in trials of
  // 30 s phases and 77-118% in trials of 6 s phases. Trials of 1 s phases
  // are disturbed less often, and the median of many sets the disturbed
  // ones aside.
  const int trials = static_cast<int>(Scaled(1, 15));
  const absl::Duration phase = absl::Seconds(1);
  int neighbour_failures = 0;
  bool server_died = false;
  // The port the current flood's server listens on (its socket's path, and
  // its name in the runtime directory); the attacks read them.
  std::string port, port_name;
  int floods = 0;

  // Each flood (each trial of it) gets a server process of its own: what
  // an earlier flood left behind (a slow flood's oneway calls run to the
  // end, a second each) must not weigh on the next flood's baseline.
  // LPC_FLOOD_ONLY=name[,name...] runs only those floods (to study one).
  // A name that is no flood fails the test: a typo must not pass by
  // running nothing.
  const char* only_env = std::getenv("LPC_FLOOD_ONLY");
  const std::string only = only_env == nullptr ? "" : only_env;
  static const char* const kFloods[] = {"none", "oneway",  "oneway_channel",
                                        "slow_oneway",
                                        "slow_oneway_inline", "no_read",
                                        "connections", "doorbell"};
  if (!only.empty()) {
    for (absl::string_view name : absl::StrSplit(only, ',')) {
      ASSERT_TRUE(absl::c_linear_search(kFloods, name))
          << "LPC_FLOOD_ONLY names no flood \"" << name
          << "\"; the floods: none, oneway, oneway_channel, slow_oneway, "
             "slow_oneway_inline, no_read, connections, doorbell";
    }
  }
  // One trial of a flood: its figures, reported under `report_name`.
  struct Trial {
    double throughput = 0, p99 = 0;  // Against the mean baseline.
    int64_t cut_off_ms = -1;
  };
  using Attack = std::function<void(Offender&, std::atomic<bool>&)>;
  auto trial = [&](const std::string& name, const std::string& report_name,
                   const Attack& attack) {
    Trial t;
    const std::string short_name = absl::StrCat("p", floods++);
    port_name = short_name;
    port = dir.path() + "/" + short_name;
    ChildProcess server(
        {PeerBinary(), "server", dir.path(), short_name, "0", "-", "64"});
    EXPECT_EQ(server.ReadLine(), "READY") << name;
    const pid_t spid = server.pid();
    auto ch = MakeChannel("local:" + short_name, dir.path());
    EXPECT_TRUE(ch.ok()) << name;
    if (!ch.ok()) return t;
    RunNeighbour(**ch, absl::Milliseconds(300));  // Warm-up.
    const int64_t rss0 = RssKib(spid);
    const NeighbourFigures base = RunNeighbour(**ch, phase);
    Offender off;
    std::atomic<bool> stop{false};
    std::thread attacker([&] { attack(off, stop); });
    const NeighbourFigures f = RunNeighbour(**ch, phase);
    stop = true;
    attacker.join();
    // The kernel's high-water mark, not a sampling thread: a thread that
    // woke every 10 ms during the flood phase only (reading /proc each
    // time) took CPU from the neighbour in that phase alone, and a sample
    // could miss a short peak.
    const int64_t rss_peak = PeakRssKib(spid);
    const int64_t rss_end = RssKib(spid);
    // The baseline again, after the flood: the host moves this machine's
    // two CPUs between faster and slower placements now and then (the
    // same neighbour measures 650,000 or 1,050,000 calls/s for seconds at
    // a time), and a move between the phases would pass for the flood's
    // effect. The flood is judged against the mean of both baselines.
    RunNeighbour(**ch, absl::Milliseconds(100));  // Settle.
    const NeighbourFigures after = RunNeighbour(**ch, phase);
    const double base_per_sec = (base.per_sec + after.per_sec) / 2;
    const double base_p99_us = (base.p99_us + after.p99_us) / 2;
    neighbour_failures += f.calls - f.ok + after.calls - after.ok;
    server_died |= ::kill(spid, 0) != 0;
    t.throughput = 100.0 * f.per_sec / base_per_sec;
    t.p99 = base_p99_us > 0 ? f.p99_us / base_p99_us : 0;
    t.cut_off_ms = off.cut_off_ms.load();
    absl::StatusOr<local::LocalServerStats> blocked = ChildBlockedStats(server);
    EXPECT_TRUE(blocked.ok()) << name << ": " << blocked.status();
    if (blocked.ok()) {
      EXPECT_LT(LongestBlockedMs(*blocked),
                BlockedBoundMs())
          << name;
    }
    Report(report_name,
           absl::StrFormat(
               "offender_sent=%lld sent_after_1s=%lld cut_off_ms=%lld "
               "refused=%lld waits=%lld server_rss_kib=%lld peak=%lld end=%lld "
               "neighbour_ok=%d/%d throughput=%.0f%% of %.0f/s "
               "(before %.0f, after %.0f) p50_us=%.1f (of %.1f, %.1f) "
               "p99_us=%.1f (x%.2f of %.1f, %.1f) %s",
               static_cast<long long>(off.sent.load()),
               static_cast<long long>(off.sent_after_1s.load()),
               static_cast<long long>(off.cut_off_ms.load()),
               static_cast<long long>(off.refused.load()),
               static_cast<long long>(off.waits.load()),
               static_cast<long long>(rss0),
               static_cast<long long>(rss_peak),
               static_cast<long long>(rss_end), f.ok, f.calls, t.throughput,
               base_per_sec, base.per_sec, after.per_sec, f.p50_us,
               base.p50_us, after.p50_us, f.p99_us, t.p99, base.p99_us,
               after.p99_us,
               blocked.ok() ? BlockedSummary(*blocked) : std::string()));
    // The server stays within a fixed memory budget for any flood: its
    // per-connection bounds (in-flight calls, queued replies, sections).
    if (RssIsMeaningful()) {
      EXPECT_LT(rss_peak - rss0, 256 * 1024) << name;
    }
    return t;
  };
  // Every trial of a flood, and in long mode their medians. Returns the
  // latest cut-off over the trials, or -1 if any trial's offender was not
  // cut off.
  auto run = [&](const std::string& name, const Attack& attack) {
    if (!only.empty() &&
        !absl::c_linear_search(absl::StrSplit(only, ','), name)) {
      return int64_t{0};
    }
    if (trials == 1) return trial(name, "flood_" + name, attack).cut_off_ms;
    std::vector<double> throughput, p99;
    int64_t cut_off_ms = 0;
    for (int i = 0; i < trials; ++i) {
      const Trial t =
          trial(name, absl::StrCat("flood_", name, "_", i + 1), attack);
      throughput.push_back(t.throughput);
      p99.push_back(t.p99);
      cut_off_ms = t.cut_off_ms < 0 || cut_off_ms < 0
                       ? -1
                       : std::max(cut_off_ms, t.cut_off_ms);
    }
    std::string each;
    for (int i = 0; i < trials; ++i) {
      absl::StrAppendFormat(&each, "%s%.0f%% x%.2f", i == 0 ? "" : ", ",
                            throughput[i], p99[i]);
    }
    Report("flood_" + name,
           absl::StrFormat("median throughput=%.0f%% p99=x%.2f over %d "
                           "trials (%s)",
                           Quantile(throughput, 0.5), Quantile(p99, 0.5),
                           trials, each));
    return cut_off_ms;
  };

  // A raw client flooding `m` (encoded honestly) until cut off or stopped;
  // with `until_cut_off` it goes on after the phase until it is cut off (at
  // most 20 s).
  auto flood = [&](local::OutgoingMessage m, bool read_replies,
                   bool until_cut_off = false) {
    return [&, m, read_replies, until_cut_off](Offender& off,
                                               std::atomic<bool>& stop) {
      auto c = RawClient::Connect(port);
      if (!c.ok()) return;
      absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
      if (!slot.ok()) return;
      const int64_t t0 = MonoNs();
      local::OutgoingMessage msg = m;
      msg.interface_slot = *slot;
      auto go_on = [&] {
        return until_cut_off ? MonoNs() - t0 < int64_t{20} * 1000000000
                             : !stop.load();
      };
      for (int64_t i = 0; go_on() && i < 100000000; ++i) {
        msg.message_id = (*c)->NextId();
        msg.deadline_ns = local::MonotonicNowNs() + int64_t{30} * 1000000000;
        absl::StatusOr<bool> ok = (*c)->endpoint().TrySend(msg);
        if (!ok.ok()) break;
        if (*ok) {
          (*c)->endpoint().Flush();
          off.sent.fetch_add(1);
          if (MonoNs() - t0 > 1000000000) off.sent_after_1s.fetch_add(1);
        } else {
          off.waits.fetch_add(1);
          (*c)->endpoint().WaitForRoom(absl::Milliseconds(1));
        }
        if (!read_replies && (i & 63) == 0) {
          if ((*c)->WaitCutOff(absl::ZeroDuration())) {
            off.cut_off_ms = (MonoNs() - t0) / 1000000;
            return;
          }
        }
      }
      if (std::optional<std::string> why = (*c)->WaitCutOff(absl::ZeroDuration())) {
        off.cut_off_ms = (MonoNs() - t0) / 1000000;
      }
    };
  };

  // The control: no flood at all. Its ratios are the noise between two
  // phases of the same neighbour on this machine, the yardstick for the
  // floods' ratios below.
  run("none", [](Offender&, std::atomic<bool>&) {});

  local::OutgoingMessage note;
  note.type = local::MessageType::kOneway;
  note.method_id = NoteMethod().id;
  note.payload = "note";
  run("oneway", flood(note, false));

  run("oneway_channel", [&](Offender& off, std::atomic<bool>& stop) {
    auto ch = MakeChannel("local:" + port_name, dir.path());
    if (!ch.ok()) return;
    const int64_t t0 = MonoNs();
    for (int64_t i = 0; !stop.load() && i < 100000000; ++i) {
      CallContext ctx;
      ctx.set_timeout(absl::Seconds(5));
      const absl::Status s =
          (*ch)->SendOneway(RelDescriptor(), NoteMethod(), &ctx, "note");
      // A send that found no room for 5 s was held back (counted with
      // "refused"); any other error is a failure of the client library.
      if (absl::IsDeadlineExceeded(s)) {
        off.refused.fetch_add(1);
        continue;
      }
      if (!s.ok()) {
        ADD_FAILURE() << "oneway_channel: " << s;
        return;
      }
      off.sent.fetch_add(1);
      if (MonoNs() - t0 > 1000000000) off.sent_after_1s.fetch_add(1);
    }
  });

  static const std::string slow_payload = "1000" + std::string(32 << 10, ' ');
  local::OutgoingMessage slow;
  slow.type = local::MessageType::kOneway;
  slow.method_id = SleepMethod().id;
  slow.payload = slow_payload;
  run("slow_oneway", flood(slow, false));

  static const std::string slow_inline_payload = "1000" + std::string(900, ' ');
  local::OutgoingMessage slow_inline;
  slow_inline.type = local::MessageType::kOneway;
  slow_inline.method_id = SleepMethod().id;
  slow_inline.payload = slow_inline_payload;
  run("slow_oneway_inline", flood(slow_inline, false));

  static const std::string echo_payload(512, 'e');
  local::OutgoingMessage echo;
  echo.type = local::MessageType::kRequest;
  echo.method_id = EchoMethod().id;
  echo.payload = echo_payload;
  const int64_t no_read_cut_ms = run("no_read", flood(echo, false, true));
  // A client that never reads its replies is cut off (reply_stall_timeout
  // or max_queued_replies, whichever comes first). Throttled meanwhile
  // (contended_cpu_share), it may take longer than the phase to get there.
  EXPECT_GE(no_read_cut_ms, 0);

  run("connections", [&](Offender& off, std::atomic<bool>& stop) {
    std::vector<std::unique_ptr<RawClient>> conns;
    for (int i = 0; i < 200 && !stop.load(); ++i) {
      auto c = RawClient::Connect(port);
      if (c.ok()) {
        conns.push_back(std::move(*c));
        off.sent.fetch_add(1);
      } else {
        off.refused.fetch_add(1);
      }
    }
    while (!stop.load()) absl::SleepFor(absl::Milliseconds(5));
  });

  const int64_t doorbell_cut_ms = run("doorbell", [&](Offender& off,
                                                    std::atomic<bool>& stop) {
    auto c = RawClient::Connect(port);
    if (!c.ok()) return;
    const int64_t t0 = MonoNs();
    for (int64_t i = 0; !stop.load() && i < 1000000000; ++i) {
      local::SignalEventFd((*c)->eventfd());
      off.sent.fetch_add(1);
      if (MonoNs() - t0 > 1000000000) off.sent_after_1s.fetch_add(1);
      if ((i & 1023) == 0 && (*c)->WaitCutOff(absl::ZeroDuration())) {
        off.cut_off_ms = (MonoNs() - t0) / 1000000;
        return;
      }
    }
  });

  EXPECT_FALSE(server_died);
  EXPECT_EQ(neighbour_failures, 0);
  // A client ringing with nothing published is cut off within a second.
  EXPECT_GE(doorbell_cut_ms, 0);
  EXPECT_LE(doorbell_cut_ms, 1000);
}

}  // namespace
}  // namespace lpc::reliability
