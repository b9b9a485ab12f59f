// BufferPool on its own: two pools over one memfd (a client's and the
// server's adoption of it), lending, borrowing and returning chunks, and
// the refusals of a bad pool memfd or a bad chunk.
#include "transports/local/internal/buffer_pool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/handle_errors.h"

namespace lpc::local::internal {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kChunk = 64 << 10;

struct Pair {
  std::shared_ptr<BufferPool> client, server;
  std::vector<std::string> to_client, to_server;  // POOL_RETURN packets
};

std::vector<uint32_t> Chunks(const std::string& packet) {
  absl::Span<const std::byte> body;
  EXPECT_TRUE(DecodeControlHeader(
                  absl::MakeConstSpan(
                      reinterpret_cast<const std::byte*>(packet.data()),
                      packet.size()),
                  &body)
                  .ok());
  return *DecodePoolReturnBody(body, 0);
}

void MakePair(Pair* p, uint32_t count = 4) {
  UniqueFd fd;
  absl::StatusOr<std::shared_ptr<BufferPool>> c =
      BufferPool::Create(kChunk, count, &fd);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::shared_ptr<BufferPool>> s =
      BufferPool::Adopt(fd.get(), (*c)->layout(), uint64_t{1} << 30);
  ASSERT_TRUE(s.ok()) << s.status();
  p->client = *c;
  p->server = *s;
  p->client->SetReturnSender([p](std::string_view b) {
    p->to_server.emplace_back(b);
    return true;
  });
  p->server->SetReturnSender([p](std::string_view b) {
    p->to_client.emplace_back(b);
    return true;
  });
}

TEST(BufferPoolTest, ChunksGoAcrossAndComeBack) {
  Pair p;
  MakePair(&p);
  std::optional<Buffer> b = p.client->TryNewBuffer(1000);
  ASSERT_TRUE(b.has_value());
  std::memcpy(b->data(), "hello", 5);
  const std::optional<uint32_t> chunk = p.client->ChunkOf(*b);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(*chunk, 0u);  // the client's half is the lower one
  EXPECT_FALSE(p.server->ChunkOf(*b).has_value());
  p.client->Lend(*b);
  b.reset();  // Lent: not free again.
  EXPECT_EQ(p.client->GetStats().lent, 1u);
  {
    absl::StatusOr<BufferView> v = p.server->Borrow(*chunk, 1000);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->view().substr(0, 5), "hello");
    // Lent twice while on loan: refused.
    EXPECT_EQ(GetHandleError(p.server->Borrow(*chunk, 10).status()),
              HandleError::kPoolChunk);
    BufferView copy = *v;
    v = BufferView();
    EXPECT_TRUE(p.to_client.empty());  // A copy still holds it.
  }
  ASSERT_EQ(p.to_client.size(), 1u);
  const std::vector<uint32_t> back = Chunks(p.to_client[0]);
  EXPECT_EQ(back, std::vector<uint32_t>{*chunk});
  EXPECT_OK(p.client->Returned(back));
  EXPECT_EQ(p.client->GetStats().free, 2u);
  // A duplicate return, or one of a chunk never lent: refused.
  EXPECT_EQ(GetHandleError(p.client->Returned(back)), HandleError::kPoolChunk);
  const uint32_t never[] = {1};
  EXPECT_EQ(GetHandleError(p.client->Returned(never)), HandleError::kPoolChunk);
  const uint32_t theirs[] = {2};
  EXPECT_EQ(GetHandleError(p.client->Returned(theirs)),
            HandleError::kPoolChunk);
}

TEST(BufferPoolTest, UnsentChunksAreFreeAndExhaustionIsNullopt) {
  Pair p;
  MakePair(&p);
  EXPECT_FALSE(p.client->TryNewBuffer(kChunk + 1).has_value());
  EXPECT_FALSE(p.client->TryNewBuffer(0).has_value());
  std::optional<Buffer> a = p.client->TryNewBuffer(kChunk);
  std::optional<Buffer> b = p.client->TryNewBuffer(1);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_FALSE(p.client->TryNewBuffer(1).has_value());  // both held
  // NewBuffer falls back to a shared memfd.
  absl::StatusOr<Buffer> fallback = p.client->NewBuffer(10);
  ASSERT_TRUE(fallback.ok());
  EXPECT_TRUE(fallback->shared());
  a.reset();
  EXPECT_TRUE(p.client->TryNewBuffer(1).has_value());  // a's, freed
  // An unsent, unlent one goes back; Unlend undoes a Lend.
  p.client->Lend(*b);
  p.client->Unlend(*b);
  b.reset();
  EXPECT_EQ(p.client->GetStats().free, 2u);
}

TEST(BufferPoolTest, BorrowChecksHalfRangeAndLength) {
  Pair p;
  MakePair(&p);
  // The server borrows only the client's chunks (0, 1), the client only
  // the server's (2, 3).
  EXPECT_EQ(GetHandleError(p.server->Borrow(2, 1).status()),
            HandleError::kPoolChunk);
  EXPECT_EQ(GetHandleError(p.server->Borrow(4, 1).status()),
            HandleError::kPoolChunk);
  EXPECT_EQ(GetHandleError(p.client->Borrow(0, 1).status()),
            HandleError::kPoolChunk);
  EXPECT_EQ(GetHandleError(p.server->Borrow(1, kChunk + 1).status()),
            HandleError::kPoolChunk);
  EXPECT_EQ(GetHandleError(p.server->Borrow(1, 0).status()),
            HandleError::kPoolChunk);
  EXPECT_TRUE(p.client->Borrow(3, kChunk).ok());
}

TEST(BufferPoolTest, ReturnsThatCannotGoWaitForTheNext) {
  Pair p;
  MakePair(&p);
  bool open = false;
  p.server->SetReturnSender([&](std::string_view b) {
    if (open) p.to_client.emplace_back(b);
    return open;
  });
  { ASSERT_TRUE(p.server->Borrow(0, 5).ok()); }
  EXPECT_TRUE(p.to_client.empty());
  EXPECT_EQ(p.server->GetStats().returns_waiting, 1u);
  open = true;
  { ASSERT_TRUE(p.server->Borrow(1, 5).ok()); }
  ASSERT_EQ(p.to_client.size(), 1u);
  EXPECT_THAT(Chunks(p.to_client[0]),
              ::testing::UnorderedElementsAre(0u, 1u));
}

TEST(BufferPoolTest, ViewsKeepTheMappingPastThePool) {
  BufferView kept;
  {
    Pair p;
    MakePair(&p);
    std::optional<Buffer> b = p.client->TryNewBuffer(3);
    std::memcpy(b->data(), "abc", 3);
    p.client->Lend(*b);
    kept = *p.server->Borrow(0, 3);
    p.server->SetReturnSender(nullptr);  // The connection went.
  }
  EXPECT_EQ(kept.view(), "abc");
}

UniqueFd Memfd(uint64_t size, int seals, bool allocate = true) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  EXPECT_EQ(::ftruncate(fd.get(), size), 0);
  if (allocate) {
    EXPECT_EQ(::fallocate(fd.get(), 0, 0, size), 0);
  }
  if (seals != 0) {
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
  }
  return fd;
}

TEST(BufferPoolTest, AdoptRefusesBadPools) {
  const PoolBody layout{kChunk, 4, 0};
  const int good = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  const auto refused = [&](int fd, const char* why,
                           uint64_t max = uint64_t{1} << 30) {
    absl::StatusOr<std::shared_ptr<BufferPool>> r =
        BufferPool::Adopt(fd, layout, max);
    EXPECT_EQ(GetHandleError(r.status()), HandleError::kPoolRefused) << why;
    EXPECT_THAT(r.status().message(), HasSubstr(why));
  };
  refused(Memfd(4 * kChunk, F_SEAL_SHRINK | F_SEAL_SEAL).get(), "F_SEAL_GROW");
  refused(Memfd(4 * kChunk, F_SEAL_GROW | F_SEAL_SEAL).get(), "F_SEAL_SHRINK");
  refused(Memfd(4 * kChunk, 0).get(), "F_SEAL_SHRINK");
  refused(Memfd(4 * kChunk, good | F_SEAL_WRITE).get(), "against writes");
  refused(Memfd(3 * kChunk, good).get(), "announces");
  refused(Memfd(5 * kChunk, good).get(), "announces");
  refused(Memfd(4 * kChunk, good, /*allocate=*/false).get(), "");
  refused(Memfd(4 * kChunk, good).get(), "limit", 4 * kChunk - 1);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  refused(pipe_fds[0], "not a memfd");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  UniqueFd ok = Memfd(4 * kChunk, good);
  EXPECT_TRUE(BufferPool::Adopt(ok.get(), layout, 4 * kChunk).ok());
}

}  // namespace
}  // namespace lpc::local::internal
