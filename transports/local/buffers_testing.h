// Shared pieces of the buffer tests (buffers_test, buffer_pool_test): a
// service that reads a `buffer` argument in place and answers with a
// buffer result, a fixture that serves it on a local port, and a raw
// client that writes its own records and control packets.
#ifndef LPC_TRANSPORTS_LOCAL_BUFFERS_TESTING_H_
#define LPC_TRANSPORTS_LOCAL_BUFFERS_TESTING_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
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
#include "transports/local/goodbye_testing.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/local_transport.h"

namespace lpc::local::buffers_testing {

using ::lpc::testing::TempDir;

inline constexpr MethodDescriptor kMethods[] = {{"Frame", 1, false}};

inline const InterfaceDescriptor& Descriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Buffers", "2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f", {1, 0},
      kMethods};
  return d;
}

// The permissions ("r--s", "rw-p", ...) of the one mapping of this process
// that holds all of [p, p + n), from /proc/self/maps; "" if none does.
inline std::string MappingPerms(const void* p, size_t n) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3) {
      continue;
    }
    if (lo >= start && lo + n <= end) return perms;
  }
  return "";
}

// Whether [p, p + n) lies in one mapping of this process that is shared
// and readable but not writable.
inline bool InReadOnlySharedMapping(const void* p, size_t n) {
  return MappingPerms(p, n) == "r--s";
}

inline uint64_t Checksum(const uint8_t* p, size_t n) {
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
  absl::Status DispatchWith(uint32_t, CallContext& ctx,
                            ReceivedMessage& request,
                            ReplySink& reply) override {
    // The buffer beside the request, or field 2 in its bytes (a heap
    // buffer, or a chunk of another connection's pool).
    BufferView in;
    if (request.attached().has_value()) {
      in = request.attached()->view;
    } else {
      absl::StatusOr<BufferView> field = FieldTwo(request);
      if (!field.ok()) return field.status();
      in = *field;
      in_bytes_.fetch_add(1);
    }
    read_only_.store(InReadOnlySharedMapping(in.data(), in.size()));
    const uint64_t sum = Checksum(in.data(), in.size());
    if (keep_request_.load()) {
      MutexLock lock(&mu_);
      kept_.push_back(in);
    }
    // The transport's best buffer: a pool chunk on a pooled connection,
    // else a shared memfd.
    absl::StatusOr<Buffer> out = ctx.NewBuffer(in.size());
    if (!out.ok()) return out.status();
    reply_was_chunk_.store(IsPoolChunk(*out));
    for (size_t i = 0; i < in.size(); ++i) out->data()[i] = ~in.data()[i];
    return reply.Write(FrameWriter(sum, &*out));
  }
  bool read_only() const { return read_only_.load(); }
  // Requests whose buffer came in the bytes.
  int in_bytes() const { return in_bytes_.load(); }
  bool reply_was_chunk() const { return reply_was_chunk_.load(); }
  // Keeps every request's view past its call (until DropKept).
  void set_keep_requests(bool keep) { keep_request_.store(keep); }
  std::vector<BufferView> TakeKept() {
    MutexLock lock(&mu_);
    return std::move(kept_);
  }

 private:
  // Field 2 of the request's bytes (after the 9 bytes of field 1), as a
  // view kept by the request's bytes.
  static absl::StatusOr<BufferView> FieldTwo(ReceivedMessage& request) {
    std::shared_ptr<const void> keep = request.Retain();
    const std::string_view b = request.bytes();
    if (b.size() < 11 || b[9] != 0x12) {
      return absl::InvalidArgumentError("no buffer came beside the request");
    }
    uint64_t len = 0;
    size_t i = 10;
    for (int shift = 0; i < b.size() && shift < 64; shift += 7, ++i) {
      len |= uint64_t{static_cast<uint8_t>(b[i]) & 0x7fu} << shift;
      if ((static_cast<uint8_t>(b[i]) & 0x80) == 0) break;
    }
    ++i;
    if (i > b.size() || b.size() - i != len) {
      return absl::InvalidArgumentError("a bad buffer field");
    }
    return ::lpc::internal::BufferAccess::MakeView(
        std::move(keep), reinterpret_cast<const uint8_t*>(b.data() + i), len);
  }

  std::atomic<bool> read_only_{false};
  std::atomic<int> in_bytes_{0};
  std::atomic<bool> reply_was_chunk_{false};
  std::atomic<bool> keep_request_{false};
  Mutex mu_;
  std::vector<BufferView> kept_;
};

struct Fixture {
  explicit Fixture(LocalPortOptions po = {}, LocalChannelOptions lo = {}) {
    po.runtime_dir = dir.path();
    po.stashed_fd_timeout = absl::Milliseconds(500);
    EXPECT_OK(server.RegisterService(&service));
    auto t = MakeLocalServerTransport("buf", po);
    EXPECT_OK(t.status());
    transport = t->get();
    EXPECT_OK(server.AddTransport(std::move(*t)));
    EXPECT_OK(server.Start());
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
inline absl::StatusOr<FrameResult> CallFrame(Channel& ch, Buffer* b) {
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
    return ::lpc::testing::WaitForGoodbye(sock(), timeout);
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

inline std::unique_ptr<TestMemfd> MakeMemfd(size_t size, int seals, bool keep_mapping,
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

}  // namespace lpc::local::buffers_testing

#endif  // LPC_TRANSPORTS_LOCAL_BUFFERS_TESTING_H_
