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
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "transports/local/control_socket.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/local_transport.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace lpc::local {
namespace {

using ::lpc::testing::TempDir;
using ::testing::HasSubstr;

constexpr MethodDescriptor kMethods[] = {{"Frame", 1, false}};

const InterfaceDescriptor& Descriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Buffers", "2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f", {1, 0},
      kMethods};
  return d;
}

// Whether [p, p + n) lies in one mapping of this process that is shared
// and readable but not writable ("r--s" in /proc/self/maps).
bool InReadOnlySharedMapping(const void* p, size_t n) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3) {
      continue;
    }
    if (lo >= start && lo + n <= end) return std::string(perms) == "r--s";
  }
  return false;
}

uint64_t Checksum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, std::min<size_t>(8, n - i));
    sum = sum * 31 + w;
  }
  return sum;
}

// A message of one fixed64 field 1 (a checksum) and a buffer field 2.
class FrameWriter final : public MessageWriter {
 public:
  FrameWriter(uint64_t checksum, Buffer* b) : checksum_(checksum) {
    field_.field_number = 2;
    field_.buffer = b;
  }
  size_t size() const override { return 9; }
  void WriteTo(uint8_t* dst) const override {
    dst[0] = 0x09;  // Field 1, fixed64.
    std::memcpy(dst + 1, &checksum_, 8);
  }
  const BufferField* buffer() const override {
    return field_.buffer != nullptr ? &field_ : nullptr;
  }

 private:
  const uint64_t checksum_;
  BufferField field_;
};

// Frame: reads the attached buffer in place, checks where it lives, and
// answers with its checksum and a shared buffer of the bytes inverted.
class BuffersService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return Descriptor();
  }
  absl::Status Dispatch(uint32_t, CallContext&, std::string_view,
                        std::string*) override {
    return absl::InternalError("the string path was taken");
  }
  absl::Status DispatchWith(uint32_t, CallContext&, ReceivedMessage& request,
                            ReplySink& reply) override {
    if (!request.attached().has_value()) {
      return absl::InvalidArgumentError("no buffer came beside the request");
    }
    const BufferView& in = request.attached()->view;
    read_only_.store(InReadOnlySharedMapping(in.data(), in.size()));
    const uint64_t sum = Checksum(in.data(), in.size());
    absl::StatusOr<Buffer> out = Buffer::Shared(in.size());
    if (!out.ok()) return out.status();
    for (size_t i = 0; i < in.size(); ++i) out->data()[i] = ~in.data()[i];
    return reply.Write(FrameWriter(sum, &*out));
  }
  bool read_only() const { return read_only_.load(); }

 private:
  std::atomic<bool> read_only_{false};
};

struct Fixture {
  explicit Fixture(LocalPortOptions po = {}) {
    po.runtime_dir = dir.path();
    po.stashed_fd_timeout = absl::Milliseconds(500);
    EXPECT_OK(server.RegisterService(&service));
    auto t = MakeLocalServerTransport("buf", po);
    EXPECT_OK(t.status());
    transport = t->get();
    EXPECT_OK(server.AddTransport(std::move(*t)));
    EXPECT_OK(server.Start());
    LocalChannelOptions lo;
    lo.runtime_dir = dir.path();
    auto ch = CreateLocalChannel("buf", ChannelOptions{}, lo);
    EXPECT_OK(ch.status());
    channel = *ch;
  }
  std::string path() const { return dir.path() + "/buf"; }

  TempDir dir{"lpc-buf-"};
  BuffersService service;
  Server server;
  LocalServerTransport* transport = nullptr;
  std::shared_ptr<Channel> channel;
};

struct FrameResult {
  uint64_t checksum = 0;
  BufferView view;
  bool attached = false;
};

// One Frame call carrying `b`.
absl::StatusOr<FrameResult> CallFrame(Channel& ch, Buffer* b) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(20));
  FrameResult out;
  absl::Status s = ch.CallWith(
      Descriptor(), kMethods[0], &ctx, FrameWriter(0, b),
      [&](ReceivedMessage& r) {
        if (r.bytes().size() != 9) {
          return absl::InternalError(absl::StrCat("reply of ", r.bytes().size()));
        }
        std::memcpy(&out.checksum, r.bytes().data() + 1, 8);
        if (r.attached().has_value()) {
          out.attached = true;
          out.view = r.attached()->view;
        }
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return out;
}

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

TEST(BuffersTest, AHeapBufferTravelsAsBytes) {
  Fixture f;
  Buffer b = Buffer::Heap(100 << 10);
  for (size_t i = 0; i < b.size(); ++i) b.data()[i] = static_cast<uint8_t>(i);
  // The server's decoder sees no attached buffer (the field is in the
  // bytes): the service refuses.
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  std::string got;
  absl::Status s = f.channel->CallWith(
      Descriptor(), kMethods[0], &ctx, FrameWriter(0, &b),
      [&](ReceivedMessage&) { return absl::OkStatus(); });
  EXPECT_THAT(s, ::lpc::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("no buffer came")));
  EXPECT_EQ(f.transport->stats().buffers_received, 0u);
}

// A client that writes its own records and packets.
class RawClient : public MemfdPort {
 public:
  static std::unique_ptr<RawClient> Connect(const std::string& path) {
    absl::StatusOr<internal::ClientHandshake> h = internal::ConnectAndHandshake(
        path, LocalChannelOptions{}, absl::Now() + absl::Seconds(10));
    if (!h.ok()) {
      ADD_FAILURE() << h.status();
      return nullptr;
    }
    auto c = std::unique_ptr<RawClient>(new RawClient);
    c->hs_ = std::move(*h);
    EndpointOptions eo;
    eo.peer_eventfd = c->hs_.eventfd.get();
    c->ep_ = std::make_unique<Endpoint>(Side::kClient, c->hs_.map.data(),
                                        c->hs_.layout, c.get(), eo);
    return c;
  }
  int sock() const { return hs_.sock.get(); }

  // BIND of lpc.test.Buffers (slot 1 once answered; the reply is not
  // read: the server binds before it answers).
  void Bind() {
    const std::string payload = EncodeBindRequest(
        BindRequest{std::string(Descriptor().full_name),
                    std::string(Descriptor().uuid), 1, 0});
    OutgoingMessage m;
    m.type = MessageType::kBind;
    m.message_id = 1;
    m.payload = payload;
    ASSERT_TRUE(ep_->TrySend(m).value());
    ep_->Flush();
  }

  // A REQUEST `id` of Frame whose record announces a buffer (kFlagBuffer)
  // without sending a packet for it.
  void RequestAnnouncingBuffer(uint64_t id) {
    const std::string payload(9, '\0');
    OutgoingMessage m;
    m.type = MessageType::kRequest;
    m.message_id = id;
    m.interface_slot = 1;
    m.method_id = 1;
    m.payload = payload;
    ::lpc::internal::SealedBuffer none;
    none.length = 1;
    m.sealed_buffer = &none;
    m.buffer_field = 2;
    ASSERT_TRUE(ep_->TrySend(m).value());
    ep_->Flush();
  }

  // A BUFFER packet for `id` of [offset, offset + length) of `fd`.
  absl::Status Buffer(uint64_t id, int fd, uint64_t offset, uint64_t length) {
    BufferBody b{};
    b.message_id = id;
    b.field_number = 2;
    b.offset = offset;
    b.length = length;
    const int fds[1] = {fd};
    return SendPacket(sock(), EncodeBufferPacket(b), fds,
                      absl::Now() + absl::Seconds(5));
  }

  // The packet, then the record: what an honest client does.
  void Send(uint64_t id, int fd, uint64_t offset, uint64_t length) {
    ASSERT_TRUE(Buffer(id, fd, offset, length).ok());
    RequestAnnouncingBuffer(id);
  }

  // The reason of the server's GOODBYE (or "hang-up"), or "" if the
  // connection is still up after `timeout`.
  std::string WaitCutOff(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      absl::StatusOr<Packet> p =
          RecvPacket(sock(), std::min(end, absl::Now() + absl::Milliseconds(50)));
      if (absl::IsDeadlineExceeded(p.status())) continue;
      if (!p.ok()) return "hang-up";
      absl::Span<const std::byte> body;
      absl::StatusOr<ControlType> t = DecodeControlHeader(
          absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                              p->bytes.size()),
          &body);
      if (t.ok() && *t == ControlType::kGoodbye) {
        return std::string(DecodeStatusBody(body).message());
      }
    }
    return "";
  }

  // MemfdPort.
  absl::Status SendPayloadFd(uint32_t, uint64_t, int) override {
    return absl::UnimplementedError("no memfds here");
  }
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t, uint64_t,
                                         absl::Time) override {
    return absl::UnimplementedError("no memfds here");
  }
  absl::Status SendBuffer(const BufferBody&, int) override {
    return absl::OkStatus();  // The tests send their own packets.
  }

 private:
  RawClient() = default;
  internal::ClientHandshake hs_;
  std::unique_ptr<Endpoint> ep_;
};

// A memfd of `size` bytes, written, with `seals` added (none if 0), and
// `keep_mapping` a writable mapping of it left in place (unmapped when the
// returned object goes).
struct TestMemfd {
  UniqueFd fd;
  void* map = nullptr;
  size_t size = 0;
  ~TestMemfd() {
    if (map != nullptr) ::munmap(map, size);
  }
};

std::unique_ptr<TestMemfd> MakeMemfd(size_t size, int seals, bool keep_mapping,
                                     bool write = true) {
  auto m = std::make_unique<TestMemfd>();
  m->fd = UniqueFd(::memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  m->size = size;
  EXPECT_EQ(::ftruncate(m->fd.get(), static_cast<off_t>(size)), 0);
  if (write) {
    const std::string bytes(size, 'h');
    EXPECT_EQ(::pwrite(m->fd.get(), bytes.data(), size, 0),
              static_cast<ssize_t>(size));
  }
  if (keep_mapping) {
    m->map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                    m->fd.get(), 0);
    EXPECT_NE(m->map, MAP_FAILED);
  }
  if (seals != 0) {
    EXPECT_EQ(::fcntl(m->fd.get(), F_ADD_SEALS, seals), 0);
  }
  return m;
}

constexpr int kAllSeals =
    F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

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
