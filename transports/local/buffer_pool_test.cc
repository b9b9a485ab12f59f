// The same-uid buffer pool on the local transport (docs/local-transport.md,
// "The same-uid buffer pool"):
//   - end to end, both sides opted in: pool chunks each way, reused after
//     their return (two chunks a side carry every round), a view kept past
//     the call keeping its chunk on loan (the sender falls back to sealed
//     memfds while all its chunks are on loan) and its memory valid, a
//     chunk dropped unsent going back at once, a view kept past the
//     connection, a chunk sent on another channel travelling as bytes;
//   - either side not opted in: sealed memfds as before;
//   - hostile clients speaking the protocol: a pool memfd without its
//     seals, of the wrong size, not a memfd, a second POOL packet, a chunk
//     out of range, in the server's half, longer than a chunk, lent twice,
//     a return of a chunk never lent and a duplicate return: each is cut
//     off with its reason counted while an honest neighbour carries on.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transports/local/buffers_testing.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

using namespace ::lpc::local::buffers_testing;  // NOLINT
using ::testing::HasSubstr;

constexpr uint64_t kChunk = 1 << 20;

LocalPortOptions PooledServer() {
  LocalPortOptions po;
  po.same_uid_buffer_pool = true;
  return po;
}

LocalChannelOptions PooledChannel(uint32_t chunks = 4) {  // Two a side.
  LocalChannelOptions lo;
  lo.same_uid_buffer_pool = true;
  lo.buffer_pool_chunk_bytes = kChunk;
  lo.buffer_pool_chunks = chunks;
  return lo;
}

// Whether [p, p + n) lies in a shared read-write mapping.
bool InReadWriteSharedMapping(const void* p, size_t n) {
  return MappingPerms(p, n) == "rw-s";
}

// A chunk from the channel, once its pool is active: the server's answer
// to the offer comes asynchronously, so this asks until it has come
// (bounded: 10 s).
Buffer PoolChunk(Channel& ch, size_t size) {
  const absl::Time end = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::StatusOr<Buffer> b = ch.NewBuffer(size);
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || IsPoolChunk(*b) || absl::Now() > end) return *std::move(b);
    absl::SleepFor(absl::Milliseconds(1));
  }
}

// Fills `b` with a pattern of `seed`, calls Frame, checks the checksum and
// the inverted reply; returns the reply's view.
BufferView RoundTrip(Channel& ch, Buffer b, int seed) {
  for (size_t i = 0; i < b.size(); ++i) {
    b.data()[i] = static_cast<uint8_t>(i * 7 + seed);
  }
  const uint64_t sum = Checksum(b.data(), b.size());
  const size_t size = b.size();
  absl::StatusOr<FrameResult> r = CallFrame(ch, &b);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return BufferView();
  EXPECT_EQ(r->checksum, sum);
  EXPECT_TRUE(r->attached);
  EXPECT_EQ(r->view.size(), size);
  for (size_t i = 0; i < r->view.size(); i += 4093) {
    EXPECT_EQ(r->view.data()[i], static_cast<uint8_t>(~(i * 7 + seed)));
  }
  return r->view;
}

TEST(BufferPoolTest, ChunksGoEachWayAndAreReusedAfterTheirReturn) {
  // Four chunks a side. The client takes a chunk once the server's return
  // has come (PoolChunk); the server's handler takes one of its own if
  // its I/O thread has read the client's return, else a sealed memfd: with
  // four, one is free unless that thread lags three calls behind.
  Fixture f(PooledServer(), PooledChannel(8));
  Buffer first = PoolChunk(*f.channel, kChunk);
  ASSERT_TRUE(IsPoolChunk(first));
  EXPECT_FALSE(first.shared());
  // The first reply may be sealed: the server may read the request before
  // it has finished accepting the pool.
  BufferView last = RoundTrip(*f.channel, std::move(first), 0);
  const LocalServerStats before = f.transport->stats();
  // Ten rounds: each chunk is reused after its return.
  for (int round = 1; round <= 10; ++round) {
    last = BufferView();  // Returns the server's chunk.
    Buffer b = PoolChunk(*f.channel, kChunk);
    ASSERT_TRUE(IsPoolChunk(b)) << round;
    last = RoundTrip(*f.channel, std::move(b), round);
    EXPECT_TRUE(f.service.reply_was_chunk());
    EXPECT_FALSE(f.service.read_only());  // Read in the shared pool.
    EXPECT_TRUE(InReadWriteSharedMapping(last.data(), last.size()));
  }
  const LocalServerStats s = f.transport->stats();
  EXPECT_EQ(s.buffer_pools_accepted, 1u);
  EXPECT_EQ(s.pool_buffers_received - before.pool_buffers_received, 10u);
  EXPECT_EQ(s.pool_buffers_sent - before.pool_buffers_sent, 10u);
  EXPECT_EQ(s.sealed_buffers_sent, before.sealed_buffers_sent);
  EXPECT_EQ(s.payload_memfds_made, 0u);
  EXPECT_EQ(s.clients_cut_off, 0u);
}

TEST(BufferPoolTest, AKeptViewKeepsItsChunkOnLoanAndExhaustionFallsBack) {
  Fixture f(PooledServer(), PooledChannel());
  f.service.set_keep_requests(true);
  // Two requests whose views the handler keeps: both client chunks stay
  // on loan.
  for (int i = 0; i < 2; ++i) {
    Buffer b = PoolChunk(*f.channel, kChunk / 2);
    ASSERT_TRUE(IsPoolChunk(b));
    RoundTrip(*f.channel, std::move(b), 40 + i);
  }
  // None left: a sealed memfd, which works as without the pool.
  absl::StatusOr<Buffer> sealed = f.channel->NewBuffer(kChunk / 2);
  ASSERT_TRUE(sealed.ok());
  EXPECT_FALSE(IsPoolChunk(*sealed));
  EXPECT_TRUE(sealed->shared());
  RoundTrip(*f.channel, *std::move(sealed), 50);
  // A buffer bigger than a chunk is a sealed memfd too.
  absl::StatusOr<Buffer> big = f.channel->NewBuffer(kChunk + 1);
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(IsPoolChunk(*big));
  // The kept views still read what was sent.
  std::vector<BufferView> kept = f.service.TakeKept();
  ASSERT_EQ(kept.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    for (size_t j = 0; j < kept[i].size(); j += 4093) {
      ASSERT_EQ(kept[i].data()[j], static_cast<uint8_t>(j * 7 + 40 + i));
    }
  }
  f.service.set_keep_requests(false);
  kept.clear();  // Returned: chunks again.
  Buffer again = PoolChunk(*f.channel, kChunk);
  EXPECT_TRUE(IsPoolChunk(again));
}

TEST(BufferPoolTest, AChunkDroppedUnsentIsFreeAtOnce) {
  Fixture f(PooledServer(), PooledChannel());
  Buffer b = PoolChunk(*f.channel, 100);
  ASSERT_TRUE(IsPoolChunk(b));
  b = Buffer();
  // Two chunks a side: without the drops, the third would be sealed.
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Buffer> c = f.channel->NewBuffer(100);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(IsPoolChunk(*c)) << i;
  }
}

TEST(BufferPoolTest, AViewOutlivesItsConnection) {
  BufferView kept;
  {
    Fixture f(PooledServer(), PooledChannel());
    kept = RoundTrip(*f.channel, PoolChunk(*f.channel, 5000), 3);
    EXPECT_TRUE(f.service.reply_was_chunk());
  }
  ASSERT_EQ(kept.size(), 5000u);
  for (size_t i = 0; i < kept.size(); ++i) {
    ASSERT_EQ(kept.data()[i], static_cast<uint8_t>(~(i * 7 + 3)));
  }
}

TEST(BufferPoolTest, AChunkSentOnAnotherChannelTravelsAsBytes) {
  Fixture f(PooledServer(), PooledChannel());
  LocalChannelOptions lo;
  lo.runtime_dir = f.dir.path();
  absl::StatusOr<std::shared_ptr<Channel>> other =
      CreateLocalChannel("buf", ChannelOptions{}, lo);
  ASSERT_TRUE(other.ok());
  Buffer chunk = PoolChunk(*f.channel, 64 << 10);
  ASSERT_TRUE(IsPoolChunk(chunk));
  RoundTrip(**other, std::move(chunk), 9);
  EXPECT_EQ(f.service.in_bytes(), 1);
  // And the chunk went back to its own pool when the call dropped it.
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Buffer> c = f.channel->NewBuffer(100);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(IsPoolChunk(*c));
  }
}

TEST(BufferPoolTest, WithoutBothOptInsBuffersAreSealedMemfds) {
  for (const bool server_opts_in : {false, true}) {
    LocalChannelOptions lo = PooledChannel();
    lo.same_uid_buffer_pool = !server_opts_in;
    Fixture f(server_opts_in ? PooledServer() : LocalPortOptions{}, lo);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<Buffer> b = f.channel->NewBuffer(kChunk);
      ASSERT_TRUE(b.ok());
      EXPECT_FALSE(IsPoolChunk(*b));
      EXPECT_TRUE(b->shared());
      RoundTrip(*f.channel, *std::move(b), i);
      EXPECT_FALSE(f.service.reply_was_chunk());
      EXPECT_TRUE(f.service.read_only());
    }
    const LocalServerStats s = f.transport->stats();
    EXPECT_EQ(s.buffer_pools_accepted, 0u);
    EXPECT_EQ(s.pool_buffers_sent, 0u);
    EXPECT_EQ(s.sealed_buffers_sent, 3u);
  }
}

// --- Hostile clients ---

constexpr int kPoolSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// A raw client's side of the pool: a memfd of four 64 KiB chunks.
struct RawPool {
  static constexpr uint64_t kRawChunk = 64 << 10;
  std::unique_ptr<TestMemfd> memfd =
      MakeMemfd(4 * kRawChunk, kPoolSeals, /*keep_mapping=*/true);
  PoolBody layout{kRawChunk, 4, 0};

  static absl::Status Send(RawClient& c, const std::string& packet,
                           int fd = -1) {
    const int fds[1] = {fd};
    return SendPacket(c.sock(), packet,
                      fd < 0 ? absl::Span<const int>() : absl::Span<const int>(fds),
                      absl::Now() + absl::Seconds(5));
  }
  absl::Status Offer(RawClient& c) {
    return Send(c, EncodePoolPacket(layout), memfd->fd.get());
  }
  static absl::Status Lend(RawClient& c, uint64_t id, uint32_t chunk,
                           uint64_t length) {
    return Send(c, EncodePoolBufferPacket(PoolBufferBody{id, 2, chunk, length}));
  }
  static absl::Status Return(RawClient& c, std::vector<uint32_t> chunks) {
    return Send(c, EncodePoolReturnPacket(chunks));
  }
  // Reads packets until one of `type` comes (its body), or 10 s pass.
  static std::optional<std::string> Await(RawClient& c, ControlType type) {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      absl::StatusOr<Packet> p = RecvPacket(c.sock(), end);
      if (!p.ok()) return std::nullopt;
      absl::Span<const std::byte> body;
      absl::StatusOr<ControlType> t = DecodeControlHeader(
          absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                              p->bytes.size()),
          &body);
      if (t.ok() && *t == type) {
        return std::string(reinterpret_cast<const char*>(body.data()),
                           body.size());
      }
    }
    return std::nullopt;
  }
  // Offers the pool and waits for the server's answer.
  void Accepted(RawClient& c) {
    ASSERT_TRUE(Offer(c).ok());
    ASSERT_TRUE(Await(c, ControlType::kPool).has_value());
  }
};

class HostilePoolTest : public ::testing::Test {
 protected:
  // Runs `attack` from a raw client, expects it cut off with `what` in its
  // reason, counted as refused_pool (`refused`) or bad_pool_chunk, and an
  // honest pooled neighbour to carry on.
  void Expect(const std::string& what,
              const std::function<void(RawClient&, RawPool&)>& attack) {
    const bool refused =
        what == "refused_pool" || what == "not a memfd" || what == "second POOL";
    Fixture f(PooledServer(), PooledChannel());
    // The honest neighbour, pooled, connected first.
    RoundTrip(*f.channel, PoolChunk(*f.channel, 4096), 1);
    const LocalServerStats before = f.transport->stats();
    {
      std::unique_ptr<RawClient> c = RawClient::Connect(f.path());
      ASSERT_NE(c, nullptr);
      c->Bind();
      RawPool pool;
      attack(*c, pool);
      EXPECT_THAT(c->WaitCutOff(), HasSubstr(what));
    }
    const LocalServerStats s = f.transport->stats();
    const uint64_t counted =
        refused ? s.pool_errors_refused - before.pool_errors_refused
                : s.pool_errors_chunk - before.pool_errors_chunk;
    EXPECT_EQ(counted, 1u) << what;
    for (int i = 0; i < 3; ++i) {
      Buffer b = PoolChunk(*f.channel, kChunk);
      EXPECT_TRUE(IsPoolChunk(b));
      RoundTrip(*f.channel, std::move(b), 20 + i);
    }
  }
};

TEST_F(HostilePoolTest, APoolThatCanShrinkOrGrowIsRefused) {
  Expect("refused_pool", [](RawClient& c, RawPool& p) {
    p.memfd = MakeMemfd(4 * RawPool::kRawChunk, F_SEAL_GROW | F_SEAL_SEAL, true);
    ASSERT_TRUE(p.Offer(c).ok());
  });
  Expect("refused_pool", [](RawClient& c, RawPool& p) {
    p.memfd =
        MakeMemfd(4 * RawPool::kRawChunk, F_SEAL_SHRINK | F_SEAL_SEAL, true);
    ASSERT_TRUE(p.Offer(c).ok());
  });
}

TEST_F(HostilePoolTest, APoolOfTheWrongSizeIsRefused) {
  Expect("refused_pool", [](RawClient& c, RawPool& p) {
    p.layout.chunk_count = 8;  // The memfd holds 4 chunks.
    ASSERT_TRUE(p.Offer(c).ok());
  });
}

TEST_F(HostilePoolTest, APoolThatIsNotAMemfdIsRefused) {
  Expect("not a memfd", [](RawClient& c, RawPool& p) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd r(fds[0]), w(fds[1]);
    ASSERT_TRUE(RawPool::Send(c, EncodePoolPacket(p.layout), r.get()).ok());
  });
}

TEST_F(HostilePoolTest, ASecondPoolIsRefused) {
  Expect("second POOL", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(p.Offer(c).ok());
  });
}

TEST_F(HostilePoolTest, ChunksOutOfRangeInTheWrongHalfOrTooLongAreRefused) {
  Expect("bad_pool_chunk", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(RawPool::Lend(c, 7, 4, 100).ok());  // 4 chunks: 0..3
  });
  Expect("bad_pool_chunk", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(RawPool::Lend(c, 7, 2, 100).ok());  // the server's half
  });
  Expect("bad_pool_chunk", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(RawPool::Lend(c, 7, 0, RawPool::kRawChunk + 1).ok());
  });
}

TEST_F(HostilePoolTest, AChunkLentTwiceIsRefused) {
  Expect("lent twice", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(RawPool::Lend(c, 7, 1, 100).ok());
    ASSERT_TRUE(RawPool::Lend(c, 8, 1, 100).ok());
  });
}

TEST_F(HostilePoolTest, AReturnOfAChunkNeverLentIsRefused) {
  Expect("not on loan", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    ASSERT_TRUE(RawPool::Return(c, {3}).ok());
  });
}

TEST_F(HostilePoolTest, ADuplicateReturnIsRefused) {
  Expect("not on loan", [](RawClient& c, RawPool& p) {
    p.Accepted(c);
    // An honest request in chunk 0: the reply comes in a server chunk.
    std::memset(p.memfd->map, 5, 100);
    ASSERT_TRUE(RawPool::Lend(c, 7, 0, 100).ok());
    c.RequestAnnouncingBuffer(7);
    std::optional<std::string> lent = RawPool::Await(c, ControlType::kPoolBuffer);
    ASSERT_TRUE(lent.has_value());
    PoolBufferBody b;
    ASSERT_EQ(lent->size(), sizeof(b));
    std::memcpy(&b, lent->data(), sizeof(b));
    EXPECT_EQ(b.message_id, 7u);
    EXPECT_GE(b.chunk, 2u);
    ASSERT_TRUE(RawPool::Return(c, {b.chunk}).ok());
    ASSERT_TRUE(RawPool::Return(c, {b.chunk}).ok());
  });
}

}  // namespace
}  // namespace lpc::local
