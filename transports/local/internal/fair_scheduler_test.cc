// FairScheduler with a fake clock: turns, caps, shares, token buckets,
// parking times, and a simulated flood beside a light client. No sleeps,
// no threads: every time is given.
#include "transports/local/internal/fair_scheduler.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace lpc::local::internal {
namespace {

using Client = FairScheduler::Client;
constexpr int64_t kMs = 1000 * 1000;
constexpr int64_t kUs = 1000;

class FakeClock : public Clock {
 public:
  int64_t NowNs() override { return now_ns; }
  int64_t now_ns = 1000 * kMs;
};

FairScheduler::Options Opts(int concurrency, int max_workers,
                            int max_handlers, double share) {
  FairScheduler::Options o;
  o.concurrency = concurrency;
  o.max_workers = max_workers;
  o.max_handlers_per_connection = max_handlers;
  o.contended_cpu_share = share;
  return o;
}

TEST(FairSchedulerTest, ClientsTakeTurnsOneCallEach) {
  FakeClock clock;
  FairScheduler s(Opts(4, 8, 4, 0.05), &clock);
  Client a, b;
  s.AddCalls(a, 3, clock.now_ns);
  s.AddCalls(b, 1, clock.now_ns);
  EXPECT_EQ(s.queued_calls(), 4u);
  EXPECT_EQ(s.active_clients(), 2);
  EXPECT_EQ(s.TakeCall(), &a);
  EXPECT_EQ(s.TakeCall(), &b);
  // a's second handler: the pool is under its limit (4) and a under its
  // even part of it (4 / 2 clients = 2).
  EXPECT_EQ(s.TakeCall(), &a);
  // A third would pass a's part: nobody may start.
  EXPECT_EQ(s.TakeCall(), nullptr);
  EXPECT_FALSE(s.AnyCallMayStart());
  EXPECT_EQ(s.running(), 3);
  EXPECT_EQ(a.running(), 2);
  EXPECT_EQ(a.waiting(), 1u);
  s.CallDone(a);
  EXPECT_TRUE(s.AnyCallMayStart());
  EXPECT_EQ(s.TakeCall(), &a);
  EXPECT_EQ(s.queued_calls(), 0u);
  EXPECT_EQ(s.TakeCall(), nullptr);
}

TEST(FairSchedulerTest, AClientWithNothingRunningStartsPastTheLimit) {
  FakeClock clock;
  FairScheduler s(Opts(1, 3, 1, 0.05), &clock);
  Client a, b, c, d;
  for (Client* x : {&a, &b, &c, &d}) s.AddCalls(*x, 2, clock.now_ns);
  EXPECT_EQ(s.TakeCall(), &a);
  // Past the concurrency limit (1), clients with no handler still start,
  // up to max_workers (3); their second calls do not.
  EXPECT_EQ(s.TakeCall(), &b);
  EXPECT_EQ(s.TakeCall(), &c);
  EXPECT_EQ(s.running(), 3);
  EXPECT_EQ(s.TakeCall(), nullptr);
  EXPECT_FALSE(s.CanStart(d));
  s.CallDone(b);
  EXPECT_EQ(s.TakeCall(), &d);
}

TEST(FairSchedulerTest, HandlersPerConnectionCap) {
  FakeClock clock;
  FairScheduler s(Opts(4, 8, 2, 0.05), &clock);
  Client a;
  s.AddCalls(a, 4, clock.now_ns);
  EXPECT_EQ(s.TakeCall(), &a);
  EXPECT_EQ(s.TakeCall(), &a);
  EXPECT_EQ(s.TakeCall(), nullptr);  // max_handlers_per_connection = 2.
  EXPECT_EQ(a.waiting(), 2u);
}

// Two ticks 10 ms apart; `a` and `b` were busy for the given times.
void TwoTicks(FairScheduler& s, FakeClock& clock, Client& a, int64_t a_busy,
              uint32_t a_pending, Client& b, int64_t b_busy,
              uint32_t b_pending) {
  const FairScheduler::Sample first[] = {{&a, 0, a_pending},
                                         {&b, 0, b_pending}};
  s.Tick(first, clock.now_ns);
  clock.now_ns += 10 * kMs;
  const FairScheduler::Sample second[] = {{&a, a_busy, a_pending},
                                          {&b, b_busy, b_pending}};
  s.Tick(second, clock.now_ns);
}

TEST(FairSchedulerTest, TickMeasuresSharesAndRefillRate) {
  FakeClock clock;
  FairScheduler s(Opts(2, 4, 2, 0.05), &clock);
  Client flood, light;
  s.AddCalls(flood, 10, clock.now_ns);
  s.AddCalls(light, 1, clock.now_ns);
  // The light client was busy 0.5 ms of 10: share 0.5 x 0 + 0.5 x 0.05.
  TwoTicks(s, clock, flood, 8 * kMs, 10, light, kMs / 2, 1);
  EXPECT_DOUBLE_EQ(flood.share(), 0.4);
  EXPECT_DOUBLE_EQ(light.share(), 0.025);
  EXPECT_TRUE(s.accounting());
  // Refill: 1 - 4 x the light share.
  EXPECT_DOUBLE_EQ(s.refill_share(), 0.9);
  EXPECT_TRUE(flood.contended());   // Queued up, a light client busy.
  EXPECT_FALSE(light.contended());
}

TEST(FairSchedulerTest, NoLightClientNoContention) {
  FakeClock clock;
  FairScheduler s(Opts(2, 4, 2, 0.05), &clock);
  Client a, b;
  s.AddCalls(a, 10, clock.now_ns);
  s.AddCalls(b, 10, clock.now_ns);
  TwoTicks(s, clock, a, 5 * kMs, 10, b, 5 * kMs, 10);
  EXPECT_TRUE(s.accounting());
  EXPECT_FALSE(a.contended());  // Both queued up: not limited.
  EXPECT_FALSE(b.contended());
  EXPECT_FALSE(s.Charge(a, kMs, clock.now_ns));
  EXPECT_EQ(a.tokens_ns(), FairScheduler::kShareBurstNs);
}

TEST(FairSchedulerTest, ChargeThrottleParkAndUnparkAtExactTimes) {
  FakeClock clock;
  FairScheduler s(Opts(2, 4, 2, 0.25), &clock);
  Client flood, light;
  s.AddCalls(flood, 10, clock.now_ns);
  s.AddCalls(light, 1, clock.now_ns);
  // The light client used the whole 10 ms: share 0.5, so the refill rate
  // is the floor, 0.25.
  TwoTicks(s, clock, flood, 0, 10, light, 10 * kMs, 1);
  ASSERT_TRUE(flood.contended());
  EXPECT_DOUBLE_EQ(s.refill_share(), 0.25);
  const int64_t t = clock.now_ns;
  // Each call is charged at most kMaxChargeNs (1 ms): 2 ms, 1 ms, 0.
  EXPECT_FALSE(s.Charge(flood, 5 * kMs, t));
  EXPECT_EQ(flood.tokens_ns(), 1 * kMs);
  EXPECT_FALSE(s.Charge(flood, kMs, t));
  EXPECT_EQ(flood.tokens_ns(), 0);
  EXPECT_FALSE(flood.throttled());
  // Below zero: throttled, once.
  EXPECT_TRUE(s.Charge(flood, kMs, t));
  EXPECT_TRUE(flood.throttled());
  EXPECT_EQ(flood.tokens_ns(), -kMs);
  // The debt is bounded at kMaxShareDebtNs.
  EXPECT_FALSE(s.Charge(flood, kMs, t));
  EXPECT_EQ(flood.tokens_ns(), -kMs);

  // The light client's call is taken; the flood's turn parks it: 3 ms
  // missing at 0.25 refill = 12 ms.
  EXPECT_EQ(s.TakeCall(), &light);
  EXPECT_EQ(s.TakeCall(), nullptr);
  EXPECT_TRUE(flood.parked());
  EXPECT_EQ(s.queued_calls(), 0u);
  EXPECT_EQ(s.parked_calls(), 10u);
  EXPECT_EQ(s.next_resume_ns(), t + 12 * kMs);
  // New calls of a parked client wait parked.
  s.AddCalls(flood, 2, t);
  EXPECT_EQ(s.parked_calls(), 12u);
  EXPECT_EQ(s.queued_calls(), 0u);

  // 1 ms early: refilled to 1.75 ms, still parked; due 1 ms later.
  s.Unpark(t + 11 * kMs);
  EXPECT_TRUE(flood.parked());
  EXPECT_EQ(flood.tokens_ns(), 1750 * kUs);
  EXPECT_EQ(s.next_resume_ns(), t + 12 * kMs);
  // On time: the bucket is full, the client back in the round.
  s.Unpark(t + 12 * kMs);
  EXPECT_FALSE(flood.parked());
  EXPECT_FALSE(flood.throttled());
  EXPECT_EQ(flood.tokens_ns(), FairScheduler::kShareBurstNs);
  EXPECT_EQ(s.next_resume_ns(), 0);
  EXPECT_EQ(s.queued_calls(), 12u);
  EXPECT_EQ(s.parked_calls(), 0u);
  EXPECT_EQ(s.TakeCall(), &flood);
}

TEST(FairSchedulerTest, ThrottledClientRefilledAtItsTurnRunsWithoutParking) {
  FakeClock clock;
  FairScheduler s(Opts(2, 4, 2, 0.25), &clock);
  Client flood, light;
  s.AddCalls(flood, 10, clock.now_ns);
  s.AddCalls(light, 1, clock.now_ns);
  TwoTicks(s, clock, flood, 0, 10, light, 10 * kMs, 1);
  const int64_t t = clock.now_ns;
  s.Charge(flood, kMs, t);
  s.Charge(flood, kMs, t);
  ASSERT_TRUE(s.Charge(flood, kMs, t));
  // 12 ms later its bucket is full when its turn comes (TakeCall reads the
  // injected clock).
  clock.now_ns = t + 12 * kMs;
  EXPECT_EQ(s.TakeCall(), &flood);
  EXPECT_FALSE(flood.throttled());
  EXPECT_FALSE(flood.parked());
}

TEST(FairSchedulerTest, RemoveDropsQueuedAndParkedCalls) {
  FakeClock clock;
  FairScheduler s(Opts(4, 8, 4, 0.25), &clock);
  Client flood, light;
  s.AddCalls(flood, 10, clock.now_ns);
  s.AddCalls(light, 3, clock.now_ns);
  TwoTicks(s, clock, flood, 0, 10, light, 10 * kMs, 1);
  for (int i = 0; i < 3; ++i) s.Charge(flood, kMs, clock.now_ns);
  EXPECT_EQ(s.TakeCall(), &light);  // flood parked on the way.
  ASSERT_TRUE(flood.parked());
  EXPECT_EQ(s.TakeCall(), &light);
  s.Remove(flood);
  EXPECT_EQ(s.parked_calls(), 0u);
  EXPECT_FALSE(s.any_parked());
  s.Remove(light);
  EXPECT_EQ(s.queued_calls(), 0u);
  EXPECT_EQ(s.active_clients(), 0);
  EXPECT_EQ(s.TakeCall(), nullptr);
}

TEST(FairSchedulerTest, IdleClientBecomesInactiveAfterTheWindow) {
  FakeClock clock;
  FairScheduler s(Opts(2, 4, 2, 0.05), &clock);
  Client a;
  s.AddCalls(a, 1, clock.now_ns);
  ASSERT_EQ(s.TakeCall(), &a);
  s.CallDone(a);
  const FairScheduler::Sample sample[] = {{&a, 0, 0}};
  clock.now_ns += FairScheduler::kActiveWindowNs;
  s.Tick(sample, clock.now_ns);
  EXPECT_TRUE(a.active());  // Exactly the window: still active.
  clock.now_ns += 1;
  s.Tick(sample, clock.now_ns);
  EXPECT_FALSE(a.active());
  EXPECT_EQ(s.active_clients(), 0);
}

// One worker serves a flood (100 us calls, always 10 waiting) and a light
// client (10 us calls, one at a time) for a simulated second, with a tick
// every 10 ms, charging as the pool does. Returns the flood's fraction of
// the worker's time.
double SimulateFlood(double share, int* light_calls) {
  FakeClock clock;
  FairScheduler s(Opts(1, 2, 1, share), &clock);
  Client flood, light;
  int64_t flood_busy = 0, light_busy = 0, flood_time = 0;
  const int64_t start = clock.now_ns;
  int64_t next_tick = start;
  s.AddCalls(flood, 10, start);
  s.AddCalls(light, 1, start);
  *light_calls = 0;
  while (clock.now_ns - start < 1000 * kMs) {
    if (clock.now_ns >= next_tick) {
      const FairScheduler::Sample samples[] = {
          {&flood, flood_busy,
           static_cast<uint32_t>(flood.waiting() + flood.running())},
          {&light, light_busy,
           static_cast<uint32_t>(light.waiting() + light.running())}};
      s.Tick(samples, clock.now_ns);
      next_tick += 10 * kMs;
    }
    if (s.next_resume_ns() != 0 && clock.now_ns >= s.next_resume_ns()) {
      s.Unpark(clock.now_ns);
    }
    Client* c = s.TakeCall();
    if (c == nullptr) {
      clock.now_ns += 10 * kUs;  // Idle until the light client calls again.
      continue;
    }
    const int64_t ns = c == &flood ? 100 * kUs : 10 * kUs;
    clock.now_ns += ns;
    if (s.accounting()) {
      (c == &flood ? flood_busy : light_busy) += ns;
      s.Charge(*c, ns, clock.now_ns);
    }
    s.CallDone(*c);
    if (c == &flood) {
      flood_time += ns;
      if (flood.waiting() < 10) s.AddCalls(flood, 1, clock.now_ns);
    } else {
      ++*light_calls;
      s.AddCalls(light, 1, clock.now_ns);  // Its next call, at once.
    }
  }
  return static_cast<double>(flood_time) /
         static_cast<double>(clock.now_ns - start);
}

TEST(FairSchedulerTest, FloodIsHeldNearTheFloorBesideALightClient) {
  int light_off = 0, light_on = 0;
  // Without the share, round-robin gives the flood 100 us per 10 us of the
  // light client's: 10/11 of the worker.
  const double off = SimulateFlood(0, &light_off);
  EXPECT_GT(off, 0.9);
  // With a floor of 0.25, the flood gets about a quarter, and the light
  // client the rest.
  const double on = SimulateFlood(0.25, &light_on);
  EXPECT_GT(on, 0.15);
  EXPECT_LT(on, 0.35);
  EXPECT_GT(light_on, 5 * light_off);
}

}  // namespace
}  // namespace lpc::local::internal
