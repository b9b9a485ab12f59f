// Tests for FifoQueue (fifo_queue.h): order across wrap-around and growth,
// destruction at pop_front, storage kept and handed back.
#include "transports/local/internal/fifo_queue.h"

#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace lpc::local::internal {
namespace {

TEST(FifoQueueTest, KeepsOrderAcrossWrapAroundAndGrowth) {
  FifoQueue<std::unique_ptr<int>> q;
  int next_in = 0, next_out = 0;
  // Interleave pushes and pops so that the ring wraps before it grows.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3 + round % 5; ++i) {
      q.push_back(std::make_unique<int>(next_in++));
    }
    for (int i = 0; i < 2 + round % 3 && !q.empty(); ++i) {
      ASSERT_EQ(*q.front(), next_out++);
      q.pop_front();
    }
    ASSERT_EQ(q.size(), static_cast<size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    ASSERT_EQ(*q.front(), next_out++);
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

TEST(FifoQueueTest, PopFrontDestroysTheElementAtOnce) {
  auto alive = std::make_shared<int>(1);
  FifoQueue<std::shared_ptr<int>> q;
  q.push_back(std::shared_ptr<int>(alive));
  q.push_back(std::shared_ptr<int>(alive));
  EXPECT_EQ(alive.use_count(), 3);
  q.pop_front();  // Not moved from: its reference goes now.
  EXPECT_EQ(alive.use_count(), 2);
  q.clear();
  EXPECT_EQ(alive.use_count(), 1);
  EXPECT_TRUE(q.empty());
}

TEST(FifoQueueTest, KeepsSmallStorageAndHandsBackABurst) {
  FifoQueue<int> q;
  for (int i = 0; i < 8; ++i) q.push_back(int{i});
  const size_t cap = q.capacity();
  EXPECT_GE(cap, 8u);
  q.clear();
  EXPECT_EQ(q.capacity(), cap);  // Reused by the next calls: no allocation.
  for (int i = 0; i < 1000; ++i) q.push_back(int{i});
  EXPECT_GT(q.capacity(), FifoQueue<int>::kKeptSlots);
  q.clear();
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(FifoQueueTest, SwapAndMoveCarryTheElements) {
  FifoQueue<int> a, b;
  a.push_back(1);
  a.push_back(2);
  a.swap(b);
  EXPECT_TRUE(a.empty());
  ASSERT_EQ(b.size(), 2u);
  FifoQueue<int> c(std::move(b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(c.front(), 1);
  c.pop_front();
  EXPECT_EQ(c.front(), 2);
  a = std::move(c);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(a.front(), 2);
}

}  // namespace
}  // namespace lpc::local::internal
