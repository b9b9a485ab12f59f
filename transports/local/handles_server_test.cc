// A hostile server's reply tables (docs/local-transport.md, "Handles",
// "Replies"): a server that announces more descriptors than it sends,
// announces some and never sends them, or sends more than the channel's
// max_handles_per_message; and one whose reply's buffer (docs/
// local-transport.md, "Buffers") is a memfd still writable, or never
// comes, or is a chunk of a same-uid buffer pool the connection does not
// have ("The same-uid buffer pool"). The call fails with INTERNAL, the client
// closes the connection, and the client's descriptors are back at their
// baseline. The server is this process's own, speaking the protocol by
// hand (internal::ServerHandshake and an Endpoint whose HANDLES packets
// the test shapes).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/buffer.h"
#include "runtime/call_context.h"
#include "runtime/handles.h"
#include "testing/status_matchers.h"
#include "transports/local/control_socket.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/handles_test_service.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/server_handshake.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

using ::lpc::testing::HandleMethod;
using ::lpc::testing::HandlesDescriptor;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

int CountOwnFds() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

// How the server hands a reply's table over.
enum class Shape {
  kFewer,    // The record announces 2; the packet carries 1.
  kNever,    // The record announces 2; no packet comes.
  kTooMany,  // 20 descriptors, honestly sent (the channel takes 16).
  kBufferWritable,  // A reply buffer in a memfd without F_SEAL_WRITE.
  kBufferNever,     // The record announces a buffer; no packet comes.
  kPoolChunk,       // The buffer is a POOL_BUFFER: no pool was accepted.
};

bool IsBufferShape(Shape s) {
  return s == Shape::kBufferWritable || s == Shape::kBufferNever ||
         s == Shape::kPoolChunk;
}

class HostileServer : public MemfdPort {
 public:
  HostileServer(const std::string& dir, Shape shape) : shape_(shape) {
    listen_.Reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = dir + "/s";
    std::memcpy(addr.sun_path, path.data(), path.size());
    ok_ = ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr),
                 sizeof(addr)) == 0 &&
          ::listen(listen_.get(), 4) == 0;
    null_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (ok_) thread_ = std::thread([this] { Serve(); });
  }
  ~HostileServer() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return ok_; }
  // The client closed its end of the connection.
  bool client_closed() const { return client_closed_.load(); }

  absl::Status SendPayloadFd(uint32_t, uint64_t, int) override {
    return absl::UnimplementedError("no memfds");
  }
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t, uint64_t,
                                         absl::Time) override {
    return absl::UnimplementedError("no memfds");
  }
  absl::Status SendBuffer(const BufferBody& body, int) override {
    if (shape_ == Shape::kBufferNever) return absl::OkStatus();
    if (shape_ == Shape::kPoolChunk) {
      return SendPacket(
          conn_->sock.get(),
          EncodePoolBufferPacket(PoolBufferBody{body.message_id, 2, 2, 100}),
          {}, absl::Now() + absl::Seconds(5));
    }
    UniqueFd fd(::memfd_create("w", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    const std::string bytes(4096, 'w');
    if (::pwrite(fd.get(), bytes.data(), bytes.size(), 0) != 4096 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      return absl::InternalError("memfd");
    }
    BufferBody b = body;
    b.offset = 0;
    b.length = 4096;
    const int fds[1] = {fd.get()};
    return SendPacket(conn_->sock.get(), EncodeBufferPacket(b), fds,
                      absl::Now() + absl::Seconds(5));
  }
  absl::Status SendHandles(uint64_t id, absl::Span<const int> fds) override {
    if (shape_ == Shape::kNever) return absl::OkStatus();
    if (shape_ == Shape::kFewer) fds = fds.subspan(0, 1);
    return SendPacket(conn_->sock.get(),
                      EncodeHandlesPacket(id, static_cast<uint32_t>(fds.size())),
                      fds, absl::Now() + absl::Seconds(5));
  }

 private:
  void Serve() {
    UniqueFd sock;
    while (!stop_.load() && !sock) {
      struct pollfd p = {listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 10) > 0) {
        sock.Reset(::accept4(listen_.get(), nullptr, nullptr,
                             SOCK_CLOEXEC | SOCK_NONBLOCK));
      }
    }
    if (!sock) return;
    absl::StatusOr<PeerCredentials> creds = GetPeerCredentials(sock.get());
    if (!creds.ok()) return;
    internal::ServerHandshakeOptions ho;
    ho.address = "local:s";
    absl::StatusOr<std::shared_ptr<internal::Connection>> c =
        internal::ServerHandshake(std::move(sock), *creds, ho);
    if (!c.ok()) return;
    conn_ = *c;
    Endpoint ep(Side::kServer, conn_->map.data(), conn_->layout, this, {});
    const std::vector<int> table(shape_ == Shape::kTooMany ? 20 : 2,
                                 null_.get());
    ::lpc::internal::SealedBuffer no_buffer;  // SendBuffer makes its own.
    no_buffer.length = 4096;
    while (!stop_.load()) {
      if (PeerHungUp(conn_->sock.get())) {
        client_closed_.store(true);
        return;
      }
      absl::StatusOr<std::optional<IncomingMessage>> m = ep.Receive();
      if (!m.ok()) return;
      if (!m->has_value()) {
        absl::SleepFor(absl::Milliseconds(1));
        continue;
      }
      OutgoingMessage r;
      r.message_id = (*m)->header.message_id;
      if ((*m)->type() == MessageType::kBind) {
        r.type = MessageType::kBindReply;
        r.interface_slot = 1;
      } else {
        r.type = MessageType::kReply;
        r.payload = "r";
        if (IsBufferShape(shape_)) {
          r.sealed_buffer = &no_buffer;
          r.buffer_field = 2;
        } else {
          r.handles = table;
        }
      }
      ep.ReleaseReceived();
      absl::StatusOr<bool> sent = ep.TrySend(r);
      if (!sent.ok() || !*sent) return;
      ep.Flush();
    }
  }

  const Shape shape_;
  bool ok_ = false;
  UniqueFd listen_, null_;
  std::shared_ptr<internal::Connection> conn_;
  std::atomic<bool> stop_{false}, client_closed_{false};
  std::thread thread_;
};

class HostileServerTest : public ::testing::TestWithParam<Shape> {};

TEST_P(HostileServerTest, BadReplyTablesFailTheCallWithInternal) {
  char tmpl[] = "/tmp/lpc_hserver_XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const int baseline = CountOwnFds();
  {
    HostileServer server(dir, GetParam());
    ASSERT_TRUE(server.ok());
    LocalChannelOptions lo;
    lo.runtime_dir = dir;
    // Offered, never answered: the pool is not active.
    lo.same_uid_buffer_pool = GetParam() == Shape::kPoolChunk;
    absl::StatusOr<std::shared_ptr<Channel>> ch =
        CreateLocalChannel("s", {}, lo);
    ASSERT_TRUE(ch.ok()) << ch.status();
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(10));
    absl::StatusOr<std::string> r =
        (*ch)->Call(HandlesDescriptor(), HandleMethod(6), &ctx, "x");
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInternal,
                                     HasSubstr("bad reply from server")));
    EXPECT_EQ(::lpc::internal::CallHandles::reply_if_any(ctx), nullptr);
    // The client closed the connection (no later call needed).
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (!server.client_closed() && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_TRUE(server.client_closed());
  }
  // Every descriptor the server sent has been closed.
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (CountOwnFds() != baseline && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(CountOwnFds(), baseline);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Shapes, HostileServerTest,
                         ::testing::Values(Shape::kFewer, Shape::kNever,
                                           Shape::kTooMany,
                                           Shape::kBufferWritable,
                                           Shape::kBufferNever,
                                           Shape::kPoolChunk));

}  // namespace
}  // namespace lpc::local
