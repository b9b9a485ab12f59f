// Tests for BufferCache: which buffers it keeps, which it hands out, and
// that it stays inside its byte budget.
#include "transports/local/buffer_cache.h"

#include <time.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace lpc::local {
namespace {

constexpr size_t kMin = BufferCache::kMinCapacity;

std::string WithCapacity(size_t n) {
  std::string s;
  s.reserve(n);
  s.assign(100, 'x');  // Contents must not come back.
  return s;
}

TEST(BufferCacheTest, ReusesTheSameMemoryEmptied) {
  BufferCache cache(size_t{8} << 20);
  std::string a = WithCapacity(kMin * 4);
  const char* memory = a.data();
  cache.Give(std::move(a));
  std::string b = cache.Take(kMin * 3);
  EXPECT_EQ(b.data(), memory);
  EXPECT_TRUE(b.empty());
  EXPECT_GE(b.capacity(), kMin * 3);
  EXPECT_EQ(cache.stats().reused, 1u);
  EXPECT_EQ(cache.stats().kept_buffers, 0u);
  EXPECT_EQ(cache.stats().kept_bytes, 0u);
}

TEST(BufferCacheTest, TakeAllocatesWhenNothingFits) {
  BufferCache cache(size_t{8} << 20);
  cache.Give(WithCapacity(kMin));
  std::string b = cache.Take(kMin * 2);
  EXPECT_GE(b.capacity(), kMin * 2);
  EXPECT_EQ(cache.stats().missed, 1u);
  EXPECT_EQ(cache.stats().kept_buffers, 1u);  // The small one stays.
}

TEST(BufferCacheTest, SmallRequestsAndSmallBuffersBypassTheCache) {
  BufferCache cache(size_t{8} << 20);
  cache.Give(WithCapacity(kMin / 2));
  EXPECT_EQ(cache.stats().kept_buffers, 0u);
  cache.Give(WithCapacity(kMin));
  std::string b = cache.Take(kMin - 1);
  EXPECT_EQ(b.capacity(), std::string().capacity());
  EXPECT_EQ(cache.stats().kept_buffers, 1u);
  EXPECT_EQ(cache.stats().reused + cache.stats().missed, 0u);
}

TEST(BufferCacheTest, PicksTheSmallestThatFits) {
  BufferCache cache(size_t{64} << 20);
  for (size_t m : {8, 2, 4}) cache.Give(WithCapacity(kMin * m));
  std::string b = cache.Take(kMin * 3);
  EXPECT_GE(b.capacity(), kMin * 4);
  EXPECT_LT(b.capacity(), kMin * 8);
  std::string c = cache.Take(kMin * 5);
  EXPECT_GE(c.capacity(), kMin * 8);
  std::string d = cache.Take(kMin);
  EXPECT_GE(d.capacity(), kMin * 2);
  EXPECT_LT(d.capacity(), kMin * 4);
  EXPECT_EQ(cache.stats().kept_buffers, 0u);
}

TEST(BufferCacheTest, StaysWithinItsBudget) {
  const size_t budget = kMin * 16;
  BufferCache cache(budget);
  cache.Give(WithCapacity(budget / 4 + 1));  // Larger than a quarter.
  EXPECT_EQ(cache.stats().kept_buffers, 0u);
  for (int i = 0; i < 10; ++i) cache.Give(WithCapacity(kMin * 3));
  EXPECT_LE(cache.stats().kept_bytes, budget);
  EXPECT_EQ(cache.stats().kept_buffers, 5u);  // 5 x 3 <= 16 < 6 x 3.
  // A larger buffer pushes smaller ones out; a smaller one never pushes
  // out a larger one.
  cache.Give(WithCapacity(kMin * 4));
  EXPECT_LE(cache.stats().kept_bytes, budget);
  std::string big = cache.Take(kMin * 4);
  EXPECT_GE(big.capacity(), kMin * 4);
  EXPECT_EQ(cache.stats().reused, 1u);
  BufferCache none(0);
  none.Give(WithCapacity(kMin));
  EXPECT_EQ(none.stats().kept_buffers, 0u);
}

TEST(BufferCacheTest, LargeBuffersHaveTheirOwnBudgetAndGoWhenIdle) {
  // Small: up to 256 KiB (a quarter of 1 MiB). Large: 3 MiB in all, idle
  // after an hour: Give drops what has been idle that long, so the idle
  // time must exceed any stall of a loaded machine between two Gives.
  const int64_t second = 1'000'000'000;
  const int64_t idle = 3600 * second;
  BufferCache cache(size_t{1} << 20, size_t{3} << 20, idle);
  std::string a = WithCapacity(size_t{1} << 20);
  const char* memory = a.data();
  cache.Give(std::move(a));
  EXPECT_GE(cache.stats().large_kept_bytes, size_t{1} << 20);
  std::string b = cache.Take(size_t{1} << 20);
  EXPECT_EQ(b.data(), memory);
  EXPECT_TRUE(b.empty());
  // Over budget, the least recently given one goes.
  cache.Give(std::move(b));
  cache.Give(WithCapacity(size_t{3} << 19));  // 1.5 MiB
  cache.Give(WithCapacity(size_t{3} << 19));  // 1.5 MiB: the 1 MiB one goes.
  EXPECT_LE(cache.stats().large_kept_bytes, size_t{3} << 20);
  EXPECT_EQ(cache.stats().kept_buffers, 2u);
  cache.Give(WithCapacity(size_t{4} << 20));  // Above the large budget.
  EXPECT_EQ(cache.stats().kept_buffers, 2u);
  // Trim keeps what was used within the idle time and drops the rest.
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t now = int64_t{ts.tv_sec} * second + ts.tv_nsec;
  cache.Trim(now);
  EXPECT_EQ(cache.stats().kept_buffers, 2u);
  cache.Trim(now + 2 * idle);
  EXPECT_EQ(cache.stats().kept_buffers, 0u);
  EXPECT_EQ(cache.stats().kept_bytes, 0u);
  // DropLarge drops large ones only.
  cache.Give(WithCapacity(kMin));
  cache.Give(WithCapacity(size_t{2} << 20));
  cache.DropLarge();
  EXPECT_EQ(cache.stats().kept_buffers, 1u);
  EXPECT_EQ(cache.stats().large_kept_bytes, 0u);
  EXPECT_GE(cache.stats().kept_bytes, kMin);
}

TEST(BufferCacheTest, ManyThreadsKeepTheAccountsStraight) {
  const size_t budget = kMin * 32;
  BufferCache cache(budget);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const size_t want = kMin * (1 + (i + t) % 4);
        std::string b = cache.Take(want);
        ASSERT_GE(b.capacity(), want);
        ASSERT_TRUE(b.empty());
        b.assign(want, 'a');
        cache.Give(std::move(b));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const BufferCache::Stats s = cache.stats();
  EXPECT_EQ(s.reused + s.missed, 8000u);
  EXPECT_GT(s.reused, 0u);
  EXPECT_LE(s.kept_bytes, budget);
  // Everything kept comes back out, and adds up to the account.
  size_t sum = 0;
  std::vector<std::string> out;
  while (cache.stats().kept_buffers > 0 && out.size() < 100) {
    out.push_back(cache.Take(kMin));
    sum += out.back().capacity();
  }
  EXPECT_EQ(sum, s.kept_bytes);
}

}  // namespace
}  // namespace lpc::local
