// Tests for the data-area byte ring: FIFO allocation, wrap-around, and the
// consumer's validation of offsets and lengths.
#include "transports/local/data_area.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

struct TestArea {
  explicit TestArea(uint64_t cap)
      : control(new DataAreaControl()),
        memory(cap),
        writer(control.get(), memory.data(), cap),
        reader(control.get(), memory.data(), cap) {}
  std::unique_ptr<DataAreaControl> control;
  std::vector<std::byte> memory;
  DataAreaWriter writer;
  DataAreaReader reader;
};

std::string Fill(size_t n, char c) { return std::string(n, c); }

TEST(DataAreaTest, FifoWithWrap) {
  TestArea area(1024);
  for (int round = 0; round < 20; ++round) {
    const size_t len = 100 + round * 13;
    ASSERT_OK_AND_ASSIGN(auto off, area.writer.Allocate(len));
    ASSERT_TRUE(off.has_value()) << round;
    const std::string payload = Fill(len, 'a' + round);
    std::memcpy(area.writer.At(*off), payload.data(), len);
    std::string out;
    ASSERT_OK(area.reader.Read(*off, len, &out));
    EXPECT_EQ(out, payload);
    area.reader.Release();
  }
}

TEST(DataAreaTest, FullAreaRefusesUntilReleased) {
  TestArea area(1024);
  ASSERT_OK_AND_ASSIGN(auto a, area.writer.Allocate(600));
  ASSERT_TRUE(a.has_value());
  ASSERT_OK_AND_ASSIGN(auto b, area.writer.Allocate(600));
  EXPECT_FALSE(b.has_value());
  std::string out;
  ASSERT_OK(area.reader.Read(*a, 600, &out));
  area.reader.Release();
  ASSERT_OK_AND_ASSIGN(b, area.writer.Allocate(600));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b, 0u);  // Wrapped: 640 + 600 > 1024.
  ASSERT_OK(area.reader.Read(*b, 600, &out));
}

TEST(DataAreaTest, TooLargeNeverFits) {
  TestArea area(1024);
  ASSERT_OK_AND_ASSIGN(auto off, area.writer.Allocate(1025));
  EXPECT_FALSE(off.has_value());
}

TEST(DataAreaTest, OutOfOrderOffsetIsDataLoss) {
  TestArea area(1024);
  std::string out;
  EXPECT_THAT(area.reader.Read(64, 10, &out),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("out of order")));
}

TEST(DataAreaTest, LengthPastEndIsDataLoss) {
  TestArea area(1024);
  std::string out;
  EXPECT_THAT(area.reader.Read(0, 2000, &out),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(area.reader.Read(0, 0, &out),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(area.reader.Read(~uint64_t{0} - 4, 100, &out),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(DataAreaTest, EmptyAreaRejectsReferences) {
  TestArea area(0);
  std::string out;
  EXPECT_THAT(area.reader.Read(0, 1, &out),
              StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(auto off, area.writer.Allocate(1));
  EXPECT_FALSE(off.has_value());
}

TEST(DataAreaTest, CorruptReleasedCounterIsDataLoss) {
  TestArea area(1024);
  SharedStore<uint64_t>(area.control->released, 5000);
  EXPECT_THAT(area.writer.Allocate(10),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("released")));
}

}  // namespace
}  // namespace lpc::local
