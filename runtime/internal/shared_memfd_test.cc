// The pool of unsent memfds behind shared Buffers: what is reused, that it
// comes back cleared, its bounds, threads, and fork().
#include "runtime/internal/shared_memfd.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/buffer.h"
#include "testing/status_matchers.h"

namespace lpc::internal {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// The index of the first non-zero byte, or b.size().
size_t FirstNonZero(const Buffer& b) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (b.data()[i] != 0) return i;
  }
  return b.size();
}

void Scribble(Buffer& b) {
  for (size_t i = 0; i < b.size(); ++i) b.data()[i] = static_cast<uint8_t>(i | 1);
}

class SharedMemfdPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { DrainPool(); }
  void TearDown() override { DrainPool(); }
};

TEST_F(SharedMemfdPoolTest, UnsentBufferComesBackCleared) {
  {
    ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB));
    Scribble(b);
  }
  EXPECT_EQ(GetPoolStats().count, 1u);
  EXPECT_EQ(GetPoolStats().bytes, kMiB);
  const uint64_t reused = GetPoolStats().reused;
  ASSERT_OK_AND_ASSIGN(Buffer again, Buffer::Shared(kMiB));
  EXPECT_EQ(GetPoolStats().reused, reused + 1);
  EXPECT_EQ(GetPoolStats().count, 0u);
  EXPECT_EQ(FirstNonZero(again), again.size());
}

TEST_F(SharedMemfdPoolTest, LargerMemfdIsCutToSizeAndCleared) {
  {
    ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(2 * kMiB));
    Scribble(b);
  }
  const uint64_t reused = GetPoolStats().reused;
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB + 123));
  EXPECT_EQ(GetPoolStats().reused, reused + 1);
  ASSERT_EQ(b.size(), kMiB + 123);
  EXPECT_EQ(FirstNonZero(b), b.size());
  // The file is the buffer's size: a receiver sees no old byte past it.
  ASSERT_OK_AND_ASSIGN(SealedBuffer sealed, BufferAccess::Seal(std::move(b)));
  struct stat st;
  ASSERT_EQ(::fstat(sealed.memfd.get(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), kMiB + 123);
  ASSERT_OK_AND_ASSIGN(BufferView v, BufferAccess::MapSealed(std::move(sealed.memfd),
                                                             0, kMiB + 123));
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v.data()[i], 0) << i;
}

TEST_F(SharedMemfdPoolTest, MuchLargerMemfdIsNotUsedForASmallBuffer) {
  { ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(4 * kMiB)); }
  const uint64_t reused = GetPoolStats().reused;
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB));
  EXPECT_EQ(GetPoolStats().reused, reused);
  EXPECT_EQ(GetPoolStats().count, 1u);
}

TEST_F(SharedMemfdPoolTest, SentBuffersAreNotPooled) {
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB));
  ASSERT_OK(BufferAccess::Seal(std::move(b)).status());
  EXPECT_EQ(GetPoolStats().count, 0u);
}

TEST_F(SharedMemfdPoolTest, BoundedInCountAndBytesOldestOut) {
  // Ten distinct sizes; the pool keeps the last kPoolMaxCount.
  for (size_t i = 0; i < 10; ++i) {
    ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB + i * 4096));
  }
  EXPECT_EQ(GetPoolStats().count, kPoolMaxCount);
  size_t newest = 0;  // the last kPoolMaxCount made
  for (size_t i = 10 - kPoolMaxCount; i < 10; ++i) newest += kMiB + i * 4096;
  EXPECT_EQ(GetPoolStats().bytes, newest);

  DrainPool();
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(16 * kMiB + i * 4096));
  }
  EXPECT_LE(GetPoolStats().bytes, kPoolMaxBytes);
  EXPECT_EQ(GetPoolStats().count, 3u);  // 4 x 16 MiB + pages > 64 MiB

  DrainPool();
  { ASSERT_OK_AND_ASSIGN(Buffer huge, Buffer::Shared(kPoolMaxBytes + 1)); }
  EXPECT_EQ(GetPoolStats().count, 0u);
}

TEST_F(SharedMemfdPoolTest, ThreadsTakeAndGiveClearedBuffers) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 100;
  std::vector<std::thread> threads;
  std::vector<int> dirty(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &dirty] {
      for (int r = 0; r < kRounds; ++r) {
        absl::StatusOr<Buffer> b = Buffer::Shared(4096 * (1 + (t + r) % 5));
        if (!b.ok()) {
          ++dirty[t];
          continue;
        }
        if (FirstNonZero(*b) != b->size()) ++dirty[t];
        Scribble(*b);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(dirty[t], 0) << t;
  EXPECT_GT(GetPoolStats().reused, 0u);
  EXPECT_LE(GetPoolStats().count, kPoolMaxCount);
}

// A child between fork() and exec() holds no mapping of the parent's
// buffers (MADV_DONTFORK), so the parent can seal while it lives; the
// child can neither send the parent's buffer nor reuse its pool.
TEST_F(SharedMemfdPoolTest, ForkedChildHoldsNoMapping) {
  { ASSERT_OK_AND_ASSIGN(Buffer pooled, Buffer::Shared(kMiB)); }
  ASSERT_EQ(GetPoolStats().count, 1u);
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(kMiB));  // from the pool
  ASSERT_OK_AND_ASSIGN(Buffer c, Buffer::Shared(kMiB));
  { ASSERT_OK_AND_ASSIGN(Buffer d, Buffer::Shared(kMiB)); }
  ASSERT_EQ(GetPoolStats().count, 1u);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    char x;
    if (::read(go[0], &x, 1) != 1) ::_exit(10);  // wait for the parent
    absl::StatusOr<SealedBuffer> sealed = BufferAccess::Seal(std::move(c));
    if (sealed.status().code() != absl::StatusCode::kFailedPrecondition) ::_exit(11);
    if (GetPoolStats().count != 0) ::_exit(12);  // the parent's pool is not ours
    const uint64_t reused = GetPoolStats().reused;
    absl::StatusOr<Buffer> mine = Buffer::Shared(kMiB);
    if (!mine.ok() || FirstNonZero(*mine) != mine->size()) ::_exit(13);
    if (GetPoolStats().reused != reused) ::_exit(14);
    ::_exit(0);
  }
  ::close(go[0]);
  // The child is alive and has not exec'd: sealing still works.
  EXPECT_OK(BufferAccess::Seal(std::move(b)).status());
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_OK(BufferAccess::Seal(std::move(c)).status());
}

}  // namespace
}  // namespace lpc::internal
