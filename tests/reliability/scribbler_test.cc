// Item 6 of docs/reliability.md: a hostile client scribbles over its whole
// section (random bytes, and chosen bad values: indices past capacity,
// lengths near 2^32 and 2^64, offsets whose sum overflows) while it keeps
// calling; each time the server cuts it off it reconnects and goes on.
// Meanwhile an honest neighbour calls Echo. Reports: the server survived
// (it runs in this process: a crash fails the test), cut-offs with their
// logged reasons, the neighbour's success rate (must be 100%) and its p99
// against its own baseline measured just before.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
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
#include "transports/local/shared_word.h"

namespace lpc::reliability {
namespace {

using local::FrameHeader;

std::vector<double> Neighbour(Channel& ch, int calls, int* ok) {
  std::vector<double> us;
  *ok = 0;
  for (int i = 0; i < calls; ++i) {
    const std::string p = absl::StrCat("n", i, std::string(i % 200, 'x'));
    const absl::Time t0 = absl::Now();
    absl::StatusOr<std::string> r = CallRel(ch, EchoMethod(), p);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    *ok += r.ok() && *r == p;
  }
  return us;
}

// One scribble: random bytes somewhere in the section, or a chosen bad
// value in a control word or a record.
void Scribble(RawClient& c, std::mt19937_64& rng, uint32_t slot) {
  const local::SectionLayout& l = c.layout();
  std::byte* base = c.base();
  local::SectionControl* ctl = c.control();
  const uint64_t bad[] = {l.geometry.request_slots + 1ull,
                          UINT32_MAX,
                          uint64_t{1} << 32,
                          UINT64_MAX,
                          UINT64_MAX - 63,
                          uint64_t{1} << 63,
                          l.geometry.c2s_data_bytes - 1,
                          rng()};
  const uint64_t v = bad[rng() % (sizeof(bad) / sizeof(bad[0]))];
  switch (rng() % 8) {
    case 0: {  // Random bytes anywhere in the section.
      const uint64_t off = rng() % (c.size() - 64);
      for (int i = 0; i < 64; ++i) base[off + i] = std::byte(rng() & 0xff);
      break;
    }
    case 1:
      local::SharedStore<uint64_t>(
          ctl->request.producer_index,
          local::SharedLoad(ctl->request.consumer_index) + v);
      c.Ring();
      break;
    case 2:
      local::SharedStore<uint64_t>(ctl->reply.consumer_index, v);
      break;
    case 3:
      local::SharedStore<uint64_t>(ctl->s2c.released, v);
      break;
    case 4: {  // A record whose length claims near 2^32.
      FrameHeader h = RequestHeader(c.NextId(), slot, EchoMethod().id, 4);
      h.record_size = static_cast<uint32_t>(v);
      h.payload_length = static_cast<uint32_t>(v >> 1);
      c.SendRaw(MakeRecord(h, "abcd"));
      break;
    }
    case 5: {  // Data-area reference whose offset + length overflows.
      FrameHeader h = RequestHeader(c.NextId(), slot, EchoMethod().id, 0);
      h.record_size = 48;
      h.payload_mode = 1;
      h.payload_ref = static_cast<uint32_t>(v);
      h.payload_length = UINT32_MAX - static_cast<uint32_t>(v) + 1;
      c.SendRaw(MakeRecord(h));
      break;
    }
    case 6: {  // Random bytes over the request ring, then publish.
      std::byte* ring = base + l.request_ring_offset;
      const uint64_t n = uint64_t{l.geometry.request_slots} * 64;
      for (int i = 0; i < 256; ++i) ring[rng() % n] = std::byte(rng() & 0xff);
      c.PublishRaw();
      break;
    }
    case 7:  // Running words and padding: harmless values, must stay so.
      local::SharedStore<uint32_t>(ctl->client.running, static_cast<uint32_t>(v));
      local::SharedStore<uint32_t>(ctl->request.consumer_sleeping,
                                   static_cast<uint32_t>(v));
      c.Ring();
      break;
  }
}

TEST(ScribblerTest, ServerSurvivesNeighbourUnaffected) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  const int calls = static_cast<int>(Scaled(2000, 50000));
  int base_ok = 0;
  Neighbour(**ch, 200, &base_ok);  // Warm-up.
  std::vector<double> base_us = Neighbour(**ch, calls, &base_ok);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> sessions{0}, scribbles{0}, cut_offs{0}, hostile_calls_ok{0};
  std::mutex mu;
  std::map<std::string, int> reasons;  // mu
  std::thread hostile([&] {
    std::mt19937_64 rng(7);
    const absl::Time end = absl::Now() + absl::Seconds(Scaled(60, 1200));
    while (!stop.load() && absl::Now() < end) {
      auto c = RawClient::Connect(dir.path() + "/p");
      if (!c.ok()) continue;
      sessions.fetch_add(1);
      absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
      if (!slot.ok()) continue;
      for (int i = 0; i < 1000 && !stop.load(); ++i) {
        Scribble(**c, rng, *slot);
        scribbles.fetch_add(1);
        // And a call through the same (now damaged) section.
        FrameHeader h = RequestHeader(1000000 + i, *slot, EchoMethod().id, 4);
        (*c)->SendRaw(MakeRecord(h, "ping"));
        if (std::optional<std::string> why =
                (*c)->WaitCutOff(absl::Milliseconds(1))) {
          cut_offs.fetch_add(1);
          std::string key = why->substr(0, why->find('('));
          std::lock_guard<std::mutex> lock(mu);
          ++reasons[key];
          break;
        }
      }
    }
  });
  // The neighbour calls until the hostile client has been through enough
  // sessions (each ends in a cut-off), for at least as many calls as the
  // baseline.
  const int64_t target_sessions = Scaled(300, 10000);
  const absl::Time limit = absl::Now() + absl::Seconds(Scaled(40, 1200));
  int during_ok = 0, during_calls = 0;
  std::vector<double> during_us;
  while (during_calls < calls ||
         (sessions.load() < target_sessions && absl::Now() < limit)) {
    int ok = 0;
    std::vector<double> us = Neighbour(**ch, 500, &ok);
    during_us.insert(during_us.end(), us.begin(), us.end());
    during_ok += ok;
    during_calls += 500;
  }
  stop = true;
  hostile.join();
  // The server still serves a brand-new client.
  auto fresh = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(fresh.ok());
  const bool alive = CallRel(**fresh, EchoMethod(), "alive").ok();

  std::string reason_text;
  for (auto& [r, n] : reasons) absl::StrAppend(&reason_text, "\"", r, "\":", n, " ");
  const double p99_base = Quantile(base_us, 0.99);
  const double p99_during = Quantile(during_us, 0.99);
  const local::LocalServerStats st = server.local()->stats();
  Report("scribbler",
         absl::StrFormat(
             "hostile_sessions=%lld scribbles=%lld cut_offs=%lld "
             "server_alive=%d neighbour_ok=%d/%d baseline_ok=%d/%d "
             "neighbour_p50_us=%.0f->%.0f p99_us=%.0f->%.0f (x%.2f) "
             "server_cut_offs=%llu %s",
             static_cast<long long>(sessions.load()),
             static_cast<long long>(scribbles.load()),
             static_cast<long long>(cut_offs.load()), alive ? 1 : 0, during_ok,
             during_calls, base_ok, calls, Quantile(base_us, 0.5),
             Quantile(during_us, 0.5), p99_base, p99_during,
             p99_base > 0 ? p99_during / p99_base : 0,
             static_cast<unsigned long long>(st.clients_cut_off),
             BlockedSummary(st)));
  Report("scribbler_reasons", reason_text);
  EXPECT_TRUE(alive);
  EXPECT_EQ(during_ok, during_calls);
  EXPECT_EQ(base_ok, calls);
  EXPECT_GT(cut_offs.load(), 0);
  EXPECT_LT(LongestBlockedMs(st), BlockedBoundMs());
}

}  // namespace
}  // namespace lpc::reliability
