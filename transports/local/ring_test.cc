// Tests for the SPSC record ring: records, wrap-around, validation of peer
// indices and record lengths, and a threaded stress test (run it under
// --config=tsan) that also checks the sleep/wake protocol loses no wake-up.
#include "transports/local/ring.h"

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/doorbell.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kStressCount = 200000;
#else
constexpr uint64_t kStressCount = 1000000;
#endif

struct TestRing {
  explicit TestRing(uint32_t slots, uint32_t max_record_slots = 4)
      : control(new RingControl()),
        memory(size_t{slots} * kSlotSize),
        producer(control.get(), memory.data(), slots, max_record_slots),
        consumer(control.get(), memory.data(), slots, max_record_slots) {}
  std::unique_ptr<RingControl> control;
  std::vector<std::byte> memory;
  RingProducer producer;
  RingConsumer consumer;
};

// A record: 4-byte length, 4-byte sequence number, then filler bytes.
std::vector<std::byte> MakeRecord(uint32_t length, uint32_t seq) {
  std::vector<std::byte> r(length);
  std::memcpy(r.data(), &length, 4);
  if (length >= 8) std::memcpy(r.data() + 4, &seq, 4);
  for (uint32_t i = 8; i < length; ++i) r[i] = std::byte(seq + i);
  return r;
}

bool CheckRecord(absl::Span<const std::byte> r, uint32_t seq) {
  uint32_t got;
  std::memcpy(&got, r.data() + 4, 4);
  if (got != seq) return false;
  for (uint32_t i = 8; i < r.size(); ++i) {
    if (r[i] != std::byte(seq + i)) return false;
  }
  return true;
}

TEST(RingTest, RecordsRoundTripAcrossWrap) {
  TestRing ring(16);
  uint32_t next_write = 0, next_read = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3; ++i) {
      const uint32_t len = 8 + (next_write * 37) % 240;
      auto rec = MakeRecord(len, next_write);
      ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
      ASSERT_TRUE(ok);
      ++next_write;
    }
    ring.producer.Publish();
    ASSERT_OK_AND_ASSIGN(uint64_t avail, ring.consumer.Poll());
    EXPECT_GT(avail, 0u);
    for (;;) {
      ASSERT_OK_AND_ASSIGN(auto rec, ring.consumer.Next(8));
      if (rec.empty()) break;
      EXPECT_TRUE(CheckRecord(rec, next_read)) << next_read;
      ++next_read;
    }
    ring.consumer.Release();
  }
  EXPECT_EQ(next_read, next_write);
}

TEST(RingTest, HeadAndBodyAreConcatenated) {
  TestRing ring(8);
  std::vector<std::byte> head(8), body(100, std::byte{9});
  const uint32_t total = 108;
  std::memcpy(head.data(), &total, 4);
  ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(head, body));
  ASSERT_TRUE(ok);
  ring.producer.Publish();
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK_AND_ASSIGN(auto rec, ring.consumer.Next());
  ASSERT_EQ(rec.size(), 108u);
  EXPECT_EQ(rec[107], std::byte{9});
}

TEST(RingTest, FullRingRefusesUntilReleased) {
  TestRing ring(8);
  auto rec = MakeRecord(64, 0);
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
    ASSERT_TRUE(ok);
  }
  ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
  EXPECT_FALSE(ok);
  ring.producer.Publish();
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK(ring.consumer.Next().status());
  ring.consumer.Release();
  ASSERT_OK_AND_ASSIGN(ok, ring.producer.TryWrite(rec, {}));
  EXPECT_TRUE(ok);
}

TEST(RingTest, BatchedReleaseWaitsForAQuarterOfTheRing) {
  TestRing ring(16, 8);
  auto rec = MakeRecord(64, 0);
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
    ASSERT_TRUE(ok);
    ring.producer.Publish();
    ASSERT_OK(ring.consumer.Poll().status());
    ASSERT_OK_AND_ASSIGN(auto got, ring.consumer.Next());
    ASSERT_FALSE(got.empty());
    // Below a quarter (4 slots) nothing is published; the fourth releases.
    EXPECT_EQ(ring.consumer.ReleaseBatched(), false);
    EXPECT_EQ(SharedLoad(ring.control->consumer_index), i < 3 ? 0u : 4u) << i;
  }
}

TEST(RingTest, BatchedReleaseLeavesRoomForTheLargestRecord) {
  // After every drain, a record of the largest size (half the ring) fits,
  // whatever the release batching left unreleased.
  TestRing ring(16, 8);
  auto small = MakeRecord(64, 0);
  auto large = MakeRecord(8 * 64, 0);
  for (int round = 0; round < 40; ++round) {
    const auto& rec = round % 3 == 0 ? large : small;
    ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
    ASSERT_TRUE(ok) << round;
    ring.producer.Publish();
    ASSERT_OK(ring.consumer.Poll().status());
    for (;;) {
      ASSERT_OK_AND_ASSIGN(auto got, ring.consumer.Next());
      if (got.empty()) break;
    }
    ring.consumer.ReleaseBatched();
    ASSERT_OK_AND_ASSIGN(bool room, ring.producer.HasRoom(8));
    EXPECT_TRUE(room) << round;
  }
}

TEST(RingTest, BatchedReleaseReleasesForAWaitingProducer) {
  TestRing ring(16, 8);
  auto rec = MakeRecord(64, 0);
  ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
  ASSERT_TRUE(ok);
  ring.producer.Publish();
  ring.producer.SetWaiting(true);
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK(ring.consumer.Next().status());
  EXPECT_TRUE(ring.consumer.ReleaseBatched());  // The producer must be woken.
  EXPECT_EQ(SharedLoad(ring.control->consumer_index), 1u);
}

TEST(RingTest, WaitingProducerIsWokenOnceHalfTheRingIsFree) {
  TestRing ring(16, 8);
  auto rec = MakeRecord(64, 0);
  for (int i = 0; i < 16; ++i) {
    ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(rec, {}));
    ASSERT_TRUE(ok);
  }
  ring.producer.Publish();
  ring.producer.SetWaiting(true);
  ASSERT_OK(ring.consumer.Poll().status());
  for (int consumed = 1; consumed <= 8; ++consumed) {
    ASSERT_OK(ring.consumer.Next().status());
    // Every release publishes the index; the wake waits for 8 free slots.
    EXPECT_EQ(ring.consumer.Release(), consumed == 8) << consumed;
    EXPECT_EQ(SharedLoad(ring.control->consumer_index), uint64_t(consumed));
    EXPECT_EQ(SharedLoad(ring.control->producer_waiting), consumed < 8 ? 1u : 0u)
        << consumed;
  }
  // Woken, the producer finds room for a record of the largest size.
  ASSERT_OK_AND_ASSIGN(bool room, ring.producer.HasRoom(8));
  EXPECT_TRUE(room);
}

TEST(RingTest, WokenProducerFindsRoomForTheLargestRecord) {
  // 9 of 16 slots in use and a record of 8 slots to write: the producer
  // waits. The first release that leaves 8 free wakes it, and it fits.
  TestRing ring(16, 8);
  auto small = MakeRecord(64, 0);
  auto large = MakeRecord(8 * 64, 1);
  for (int i = 0; i < 9; ++i) {
    ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(small, {}));
    ASSERT_TRUE(ok);
  }
  ASSERT_OK_AND_ASSIGN(bool ok, ring.producer.TryWrite(large, {}));
  ASSERT_FALSE(ok);
  ring.producer.Publish();
  ring.producer.SetWaiting(true);
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK(ring.consumer.Next().status());
  EXPECT_TRUE(ring.consumer.Release());
  ASSERT_OK_AND_ASSIGN(ok, ring.producer.TryWrite(large, {}));
  EXPECT_TRUE(ok);
}

TEST(RingTest, OversizedRecordIsRefusedByProducer) {
  TestRing ring(8, 2);
  auto rec = MakeRecord(129, 0);
  EXPECT_THAT(ring.producer.TryWrite(rec, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RingTest, ProducerIndexPastCapacityIsDataLoss) {
  TestRing ring(8);
  SharedStore<uint64_t>(ring.control->producer_index, 9);
  EXPECT_THAT(ring.consumer.Poll(),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("ring index past capacity")));
  SharedStore<uint64_t>(ring.control->producer_index, ~uint64_t{0});
  EXPECT_THAT(ring.consumer.Poll(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(RingTest, ProducerIndexBehindConsumerIsDataLoss) {
  TestRing ring(8);
  auto rec = MakeRecord(64, 0);
  ASSERT_TRUE(*ring.producer.TryWrite(rec, {}));
  ring.producer.Publish();
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK(ring.consumer.Next().status());
  SharedStore<uint64_t>(ring.control->producer_index, 0);
  EXPECT_THAT(ring.consumer.Poll(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("behind")));
}

TEST(RingTest, BadRecordLengthsAreDataLoss) {
  for (uint32_t bad : {0u, 3u, 7u, 4u * 64 + 1, 0xFFFFFFFFu}) {
    TestRing ring(8, 4);
    std::memcpy(ring.memory.data(), &bad, 4);
    SharedStore<uint64_t>(ring.control->producer_index, 4);
    ASSERT_OK(ring.consumer.Poll().status());
    EXPECT_THAT(ring.consumer.Next(8), StatusIs(absl::StatusCode::kDataLoss))
        << bad;
  }
}

TEST(RingTest, RecordLongerThanPublishedIsDataLoss) {
  TestRing ring(8, 4);
  const uint32_t len = 3 * 64;
  std::memcpy(ring.memory.data(), &len, 4);
  SharedStore<uint64_t>(ring.control->producer_index, 2);
  ASSERT_OK(ring.consumer.Poll().status());
  EXPECT_THAT(ring.consumer.Next(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("published")));
}

TEST(RingTest, CorruptConsumerIndexIsDataLossForProducer) {
  TestRing ring(8);
  auto rec = MakeRecord(64, 0);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(*ring.producer.TryWrite(rec, {}));
  SharedStore<uint64_t>(ring.control->consumer_index, 1000);
  EXPECT_THAT(ring.producer.TryWrite(rec, {}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("consumer index")));
}

TEST(RingTest, RecordIsCopiedBeforeItIsReturned) {
  TestRing ring(8);
  auto rec = MakeRecord(100, 5);
  ASSERT_TRUE(*ring.producer.TryWrite(rec, {}));
  ring.producer.Publish();
  ASSERT_OK(ring.consumer.Poll().status());
  ASSERT_OK_AND_ASSIGN(auto got, ring.consumer.Next());
  // Scribbling over the shared slots does not change the returned copy.
  std::memset(ring.memory.data(), 0xAB, ring.memory.size());
  EXPECT_TRUE(CheckRecord(got, 5));
}

TEST(RingTest, SleepFlagTellsProducerToWake) {
  TestRing ring(8);
  EXPECT_TRUE(ring.consumer.PrepareToSleep());
  auto rec = MakeRecord(64, 0);
  ASSERT_TRUE(*ring.producer.TryWrite(rec, {}));
  EXPECT_TRUE(ring.producer.Publish());   // Consumer slept: wake it.
  EXPECT_FALSE(ring.producer.Publish());  // Flag consumed: no second wake.
  EXPECT_FALSE(ring.consumer.PrepareToSleep());  // Data is there.
}

// Producer and consumer threads hand off kStressCount records of 1-3 slots.
// Both sides sleep on futexes whenever they must wait (no spinning), and
// extra busy threads oversubscribe the two cores, so that lost wake-ups
// would show as futex timeouts.
TEST(RingStressTest, HandOffsWithSleepsLoseNothing) {
  TestRing ring(64, 4);
  std::atomic<bool> stop_noise{false};
  std::atomic<uint64_t> timeouts{0};
  std::vector<std::thread> noise;
  for (int i = 0; i < 2; ++i) {
    noise.emplace_back([&] {
      while (!stop_noise.load(std::memory_order_relaxed)) std::this_thread::yield();
    });
  }
  const absl::Duration kWait = absl::Seconds(5);
  std::thread producer([&] {
    for (uint64_t i = 0; i < kStressCount; ++i) {
      auto rec = MakeRecord(8 + (i % 3) * 64, static_cast<uint32_t>(i));
      for (int tries = 0;; ++tries) {
        auto ok = ring.producer.TryWrite(rec, {});
        ASSERT_TRUE(ok.ok());
        if (*ok) break;
        if (ring.producer.Publish()) FutexWake(&ring.control->consumer_sleeping, 1);
        ring.producer.SetWaiting(true);
        ok = ring.producer.TryWrite(rec, {});
        ASSERT_TRUE(ok.ok());
        if (*ok) {
          ring.producer.SetWaiting(false);
          break;
        }
        if (!FutexWait(&ring.control->producer_waiting, 1, kWait).ok()) {
          timeouts.fetch_add(1);
        }
        ring.producer.SetWaiting(false);
        ASSERT_LT(tries, 1000);
      }
      if (i % 7 == 0 || i + 1 == kStressCount) {
        if (ring.producer.Publish()) FutexWake(&ring.control->consumer_sleeping, 1);
      }
    }
  });
  uint64_t received = 0;
  bool order_ok = true;
  while (received < kStressCount && timeouts.load() == 0) {
    auto avail = ring.consumer.Poll();
    ASSERT_TRUE(avail.ok()) << avail.status();
    if (*avail == 0) {
      if (ring.consumer.PrepareToSleep()) {
        if (!FutexWait(ring.consumer.sleeping_word(), 1, kWait).ok()) {
          timeouts.fetch_add(1);
        }
        ring.consumer.ClearSleeping();
      }
      continue;
    }
    // Released after 1 to 4 records at a time: a waiting producer is woken
    // only once half the ring is free, so partial releases must not lose
    // its wake-up either.
    const uint64_t batch = received % 4 + 1;
    for (uint64_t n = 0; n < batch; ++n) {
      auto rec = ring.consumer.Next(8);
      ASSERT_TRUE(rec.ok()) << rec.status();
      if (rec->empty()) break;
      order_ok &= CheckRecord(*rec, static_cast<uint32_t>(received));
      ++received;
    }
    if (ring.consumer.Release()) FutexWake(ring.consumer.producer_waiting_word(), 1);
  }
  producer.join();
  stop_noise = true;
  for (auto& t : noise) t.join();
  EXPECT_EQ(received, kStressCount);
  EXPECT_TRUE(order_ok);
  EXPECT_EQ(timeouts.load(), 0u);
}

}  // namespace
}  // namespace lpc::local
