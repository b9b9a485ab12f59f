// Shared buffers on the local transport (docs/local-transport.md,
// "Buffers"): a `buffer` field that travels beside its message as a sealed
// memfd and is read in place through a read-only mapping.
//   - end to end: a 16 MiB shared buffer argument that the handler reads in
//     place (from a read-only shared mapping: /proc/self/maps), and a
//     shared buffer result the client reads in place too; no payload memfd
//     and no payload buffer is made for either;
//   - hostile clients speaking the protocol: a memfd still writable
//     (F_SEAL_FUTURE_WRITE only, or no write seal), one that can shrink,
//     one cut below the announced range before sealing, one with unwritten
//     pages, a descriptor that is not a memfd, a BUFFER packet no record
//     claims, one sent twice, too many waiting, and a record whose packet
//     never comes: each client is cut off with its reason counted, the
//     server takes no SIGBUS, and an honest neighbour carries on.
// The server runs in this process, so a SIGBUS in it would end the test.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/buffer.h"
#include "runtime/message.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "transports/local/control_socket.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/local_transport.h"
#include "transports/local/buffers_testing.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace lpc::local {
namespace {

using ::lpc::testing::TempDir;
using ::testing::HasSubstr;

using namespace ::lpc::local::buffers_testing;  // NOLINT

TEST(BuffersTest, SixteenMebibytesTravelBesideTheMessageAndAreReadInPlace) {
  Fixture f;
  constexpr size_t kSize = size_t{16} << 20;
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<Buffer> b = f.channel->NewBuffer(kSize);
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_TRUE(b->shared());
    for (size_t i = 0; i < kSize; ++i) {
      b->data()[i] = static_cast<uint8_t>(i * 13 + round);
    }
    const uint64_t sum = Checksum(b->data(), kSize);
    absl::StatusOr<FrameResult> r = CallFrame(*f.channel, &*b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->checksum, sum);
    EXPECT_TRUE(f.service.read_only());
    ASSERT_TRUE(r->attached);
    ASSERT_EQ(r->view.size(), kSize);
    EXPECT_TRUE(InReadOnlySharedMapping(r->view.data(), kSize));
    for (size_t i = 0; i < kSize; i += 4099) {
      ASSERT_EQ(r->view.data()[i], static_cast<uint8_t>(~(i * 13 + round)));
    }
  }
  // Neither way went through a payload memfd or a payload buffer.
  const LocalServerStats s = f.transport->stats();
  EXPECT_EQ(s.payload_memfds_made, 0u);
  EXPECT_EQ(s.payload_buffers_made, 0u);
  EXPECT_EQ(s.buffers_received, 3u);
  EXPECT_EQ(s.clients_cut_off, 0u);
}

// The async path keeps the reply's buffer in the call's record until the
// callback gets it attached to the reply.
TEST(BuffersTest, AnAsyncCallGetsItsReplyBufferAttached) {
  Fixture f;
  constexpr size_t kSize = size_t{1} << 20;
  absl::StatusOr<Buffer> b = f.channel->NewBuffer(kSize);
  ASSERT_TRUE(b.ok()) << b.status();
  for (size_t i = 0; i < kSize; ++i) b->data()[i] = static_cast<uint8_t>(i);
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(20));
  Mutex mu;
  CondVar cv;
  bool done = false;
  std::optional<BufferView> view;
  absl::Status status;
  f.channel->StartCallWith(Descriptor(), kMethods[0], &ctx,
                           FrameWriter(0, &*b),
                           [&](absl::StatusOr<ReceivedMessage> r) {
                             MutexLock lock(&mu);
                             status = r.status();
                             if (r.ok() && r->attached().has_value()) {
                               view = r->attached()->view;
                             }
                             done = true;
                             cv.SignalAll();
                           });
  MutexLock lock(&mu);
  while (!done) cv.WaitWithDeadline(&mu, absl::InfiniteFuture());
  ASSERT_OK(status);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->size(), kSize);
  EXPECT_TRUE(InReadOnlySharedMapping(view->data(), kSize));
  for (size_t i = 0; i < kSize; i += 4099) {
    ASSERT_EQ(view->data()[i], static_cast<uint8_t>(~i));
  }
}

TEST(BuffersTest, AHeapBufferTravelsAsBytes) {
  Fixture f;
  Buffer b = Buffer::Heap(100 << 10);
  for (size_t i = 0; i < b.size(); ++i) b.data()[i] = static_cast<uint8_t>(i);
  const uint64_t sum = Checksum(b.data(), b.size());
  // The server's decoder sees no attached buffer: the field is in the
  // bytes.
  absl::StatusOr<FrameResult> r = CallFrame(*f.channel, &b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->checksum, sum);
  EXPECT_EQ(f.service.in_bytes(), 1);
  EXPECT_EQ(f.transport->stats().buffers_received, 0u);
}

class HostileBufferTest : public ::testing::Test {
 protected:
  // Runs `attack` from a raw client, expects it cut off with `reason`,
  // counted in the stats `counter` returns, and an honest call to go on
  // working.
  void Expect(const std::string& reason,
              const std::function<uint64_t(const LocalServerStats&)>& counter,
              const std::function<void(RawClient&)>& attack,
              LocalPortOptions po = {}) {
    Fixture f(po);
    // The honest neighbour, connected first.
    absl::StatusOr<Buffer> warm = f.channel->NewBuffer(4096);
    ASSERT_TRUE(warm.ok());
    ASSERT_TRUE(CallFrame(*f.channel, &*warm).ok());
    const uint64_t before = counter(f.transport->stats());
    {
      std::unique_ptr<RawClient> c = RawClient::Connect(f.path());
      ASSERT_NE(c, nullptr);
      c->Bind();
      attack(*c);
      EXPECT_THAT(c->WaitCutOff(), HasSubstr(reason));
    }
    EXPECT_EQ(counter(f.transport->stats()), before + 1) << reason;
    absl::StatusOr<Buffer> b = f.channel->NewBuffer(1 << 20);
    ASSERT_TRUE(b.ok());
    std::memset(b->data(), 7, b->size());
    const uint64_t sum = Checksum(b->data(), b->size());
    absl::StatusOr<FrameResult> r = CallFrame(*f.channel, &*b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->checksum, sum);
  }
  static uint64_t Refused(const LocalServerStats& s) {
    return s.buffer_errors_refused;
  }
  static uint64_t Unreferenced(const LocalServerStats& s) {
    return s.buffer_errors_unreferenced;
  }
  static uint64_t Missing(const LocalServerStats& s) {
    return s.buffer_errors_missing;
  }
};

TEST_F(HostileBufferTest, AWritableMappingKeptWithFutureWriteIsRefused) {
  // The sender keeps a writable mapping, which F_SEAL_WRITE would not
  // allow; F_SEAL_FUTURE_WRITE leaves that mapping working.
  auto m = MakeMemfd(1 << 20,
                     F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW, true);
  Expect("refused_buffer", Refused, [&](RawClient& c) {
    c.Send(7, m->fd.get(), 0, 1 << 20);
    // It could still write here while the handler read.
    static_cast<char*>(m->map)[0] = 'x';
  });
}

TEST_F(HostileBufferTest, AMemfdWithoutAWriteSealIsRefused) {
  auto m = MakeMemfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, false);
  Expect("F_SEAL_WRITE", Refused,
         [&](RawClient& c) { c.Send(7, m->fd.get(), 0, 1 << 20); });
}

TEST_F(HostileBufferTest, AMemfdThatCanShrinkIsRefusedAndNoSigbus) {
  // Not SHRINK-sealed: it could be truncated under the mapping; it is
  // refused, and truncated after the send the server still takes no
  // SIGBUS (it never mapped it).
  auto m = MakeMemfd(1 << 20, F_SEAL_WRITE | F_SEAL_GROW, false);
  Expect("refused_buffer", Refused, [&](RawClient& c) {
    c.Send(7, m->fd.get(), 0, 1 << 20);
    EXPECT_EQ(::ftruncate(m->fd.get(), 0), 0);
  });
}

TEST_F(HostileBufferTest, AMemfdCutBelowTheRangeBeforeSealingIsRefused) {
  auto m = MakeMemfd(1 << 20, 0, false);
  ASSERT_EQ(::ftruncate(m->fd.get(), 4096), 0);
  ASSERT_EQ(::fcntl(m->fd.get(), F_ADD_SEALS, kAllSeals), 0);
  Expect("refused_buffer", Refused,
         [&](RawClient& c) { c.Send(7, m->fd.get(), 0, 1 << 20); });
}

TEST_F(HostileBufferTest, ARangePastTheEndIsRefused) {
  auto m = MakeMemfd(1 << 20, kAllSeals, false);
  Expect("refused_buffer", Refused, [&](RawClient& c) {
    c.Send(7, m->fd.get(), (1 << 20) - 10, 4096);
  });
}

TEST_F(HostileBufferTest, UnwrittenPagesAreRefused) {
  // Sealed, but only ftruncate'd: reading it in place would cost the
  // server a page per 4 KiB the client never paid for.
  auto m = MakeMemfd(32 << 20, kAllSeals, false, /*write=*/false);
  Expect("unwritten", Refused,
         [&](RawClient& c) { c.Send(7, m->fd.get(), 0, 32 << 20); });
}

TEST_F(HostileBufferTest, ADescriptorThatIsNotAMemfdIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  Expect("not a memfd", Refused,
         [&](RawClient& c) { c.Send(7, r.get(), 0, 16); });
}

TEST_F(HostileBufferTest, ABufferNoRecordClaimsAgesOut) {
  auto m = MakeMemfd(4096, kAllSeals, false);
  Expect("unreferenced_buffer", Unreferenced, [&](RawClient& c) {
    ASSERT_TRUE(c.Buffer(9, m->fd.get(), 0, 4096).ok());
  });
}

TEST_F(HostileBufferTest, ASecondBufferForOneMessageIsUnreferenced) {
  auto m = MakeMemfd(4096, kAllSeals, false);
  Expect("unreferenced_buffer", Unreferenced, [&](RawClient& c) {
    ASSERT_TRUE(c.Buffer(9, m->fd.get(), 0, 4096).ok());
    ASSERT_TRUE(c.Buffer(9, m->fd.get(), 0, 4096).ok());
  });
}

TEST_F(HostileBufferTest, TooManyWaitingBuffersAreRefused) {
  auto m = MakeMemfd(4096, kAllSeals, false);
  LocalPortOptions po;
  po.geometry.request_slots = 8;
  po.geometry.reply_slots = 8;
  po.geometry.max_record_slots = 4;
  // 8 + 16 may wait; the 25th is too many. Exactly 25 are sent: packets
  // after the fatal one would be unread when the server closes, and the
  // kernel would then reset the connection and drop the reason it sent.
  Expect(
      "too many unclaimed buffers",
      [](const LocalServerStats& s) {
        return s.clients_cut_off_by_code[static_cast<size_t>(
            absl::StatusCode::kResourceExhausted)];
      },
      [&](RawClient& c) {
        for (uint64_t id = 100; id < 125; ++id) {
          if (!c.Buffer(id, m->fd.get(), 0, 4096).ok()) break;
        }
      },
      po);
}

TEST_F(HostileBufferTest, ABufferARecordAnnouncesThatNeverComesIsMissing) {
  Expect("missing_buffer", Missing,
         [&](RawClient& c) { c.RequestAnnouncingBuffer(5); });
}

}  // namespace
}  // namespace lpc::local
