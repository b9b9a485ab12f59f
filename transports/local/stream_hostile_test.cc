// Hostile peers on a stream (docs/local-transport.md, "Protocol errors"): a
// client that writes raw ring records sends a stream message after its
// half-close, on a stream that never existed, beyond the window it was
// given, a window update returning credits never owed, and a stream open
// with a zero window. Each costs that client its connection, with the
// reason counted; the server keeps serving a neighbour that connected
// before, and an honest stream on it still works.
#include <poll.h>
#include <sys/socket.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/introspection.lpc.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/local_transport.h"
#include "transports/local/stream_test_service.h"

namespace lpc::local {
namespace {

using ::lpc::testing::CallbackResult;
using ::lpc::testing::StreamsDescriptor;
using ::lpc::testing::StreamsService;

// A client that speaks the ring protocol by hand.
class RawPeer {
 public:
  static std::unique_ptr<RawPeer> Connect(const std::string& path) {
    LocalChannelOptions lo;
    absl::StatusOr<internal::ClientHandshake> h =
        internal::ConnectAndHandshake(path, lo, absl::Now() + absl::Seconds(5));
    if (!h.ok()) {
      ADD_FAILURE() << h.status();
      return nullptr;
    }
    auto p = std::unique_ptr<RawPeer>(new RawPeer);
    p->hs_ = std::move(*h);
    p->port_ = std::make_unique<SocketMemfdPort>(p->hs_.sock.get());
    EndpointOptions eo;
    eo.peer_eventfd = p->hs_.eventfd.get();
    p->ep_ = std::make_unique<Endpoint>(Side::kClient, p->hs_.map.data(),
                                        p->hs_.layout, p->port_.get(), eo);
    return p;
  }

  absl::Status Send(MessageType type, uint64_t id, std::string_view payload,
                    uint32_t slot = 0, uint32_t method = 0) {
    OutgoingMessage m;
    m.type = type;
    m.message_id = id;
    m.interface_slot = slot;
    m.method_id = method;
    m.payload = payload;
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<bool> ok = ep_->TrySend(m);
      if (!ok.ok()) return ok.status();
      if (*ok) {
        ep_->Flush();
        return absl::OkStatus();
      }
      ep_->WaitForRoom(absl::Milliseconds(10));
    }
    return absl::DeadlineExceededError("ring stayed full");
  }

  // The next record from the server, within `timeout`.
  std::optional<IncomingMessage> Next(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      absl::StatusOr<std::optional<IncomingMessage>> m = ep_->Receive();
      if (!m.ok()) return std::nullopt;
      if (m->has_value()) {
        ep_->ReleaseReceived();
        return std::move(**m);
      }
      ep_->WaitForInbound(0, absl::Milliseconds(10));
    }
    return std::nullopt;
  }

  // Binds lpc.test.Streams; returns its slot (0 on failure).
  uint32_t Bind() {
    const InterfaceDescriptor& d = StreamsDescriptor();
    const std::string req = EncodeBindRequest(
        BindRequest{std::string(d.full_name), std::string(d.uuid),
                    d.version.major, d.version.minor});
    if (!Send(MessageType::kBind, 1, req).ok()) return 0;
    std::optional<IncomingMessage> r = Next(absl::Seconds(10));
    if (!r.has_value() || r->type() != MessageType::kBindReply) return 0;
    return r->header.interface_slot;
  }

  absl::Status Open(uint64_t id, uint32_t slot, uint32_t method,
                    uint32_t window_messages = 64,
                    uint64_t window_bytes = 1 << 20) {
    return Send(MessageType::kStreamOpen, id,
                EncodeStreamOpenBody(window_messages, window_bytes), slot,
                method);
  }

  // Whether the server closed the connection within `timeout`.
  bool CutOff(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      struct pollfd p = {hs_.sock.get(), POLLIN | POLLRDHUP, 0};
      if (::poll(&p, 1, 10) > 0) {
        if ((p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) return true;
        char buf[2048];
        const ssize_t n = ::recv(hs_.sock.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) return true;
      }
    }
    return false;
  }

 private:
  RawPeer() = default;
  internal::ClientHandshake hs_;
  std::unique_ptr<SocketMemfdPort> port_;
  std::unique_ptr<Endpoint> ep_;
};

struct Attack {
  const char* name;
  // Sends the violation on a bound connection (slot).
  void (*run)(RawPeer& p, uint32_t slot);
  uint64_t LocalServerStats::*counter;
};

constexpr uint32_t kGate = 6;  // Reads nothing: its streams stay open.

const Attack kAttacks[] = {
    {"MessageAfterHalfClose",
     [](RawPeer& p, uint32_t slot) {
       EXPECT_OK(p.Open(11, slot, kGate));
       EXPECT_OK(p.Send(MessageType::kHalfClose, 11, ""));
       EXPECT_OK(p.Send(MessageType::kStreamMessage, 11, "after"));
     },
     &LocalServerStats::stream_errors_after_half_close},
    {"UnknownStream",
     [](RawPeer& p, uint32_t slot) {
       EXPECT_OK(p.Open(11, slot, kGate));
       EXPECT_OK(p.Send(MessageType::kStreamMessage, 999, "nobody"));
     },
     &LocalServerStats::stream_errors_unknown_stream},
    {"BeyondTheWindow",
     [](RawPeer& p, uint32_t slot) {
       EXPECT_OK(p.Open(11, slot, kGate));
       // The server's window is 4 messages (below); the handler reads none.
       for (int i = 0; i < 5; ++i) {
         EXPECT_OK(p.Send(MessageType::kStreamMessage, 11, "m"));
       }
     },
     &LocalServerStats::stream_errors_window_exceeded},
    {"CreditsNeverOwed",
     [](RawPeer& p, uint32_t slot) {
       EXPECT_OK(p.Open(11, slot, kGate));
       EXPECT_OK(p.Send(MessageType::kWindowUpdate, 11,
                        EncodeWindowBody(kWindowCredits, 3, 100)));
     },
     &LocalServerStats::stream_errors_bad_window_update},
    {"ZeroWindowOpen",
     [](RawPeer& p, uint32_t slot) { EXPECT_OK(p.Open(11, slot, kGate, 0)); },
     &LocalServerStats::stream_errors_bad_open},
};

class StreamHostileTest : public ::testing::TestWithParam<Attack> {
 protected:
  StreamHostileTest() {
    char tmpl[] = "/tmp/lpc-hostile-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~StreamHostileTest() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_P(StreamHostileTest, CostsOnlyThatPeerItsConnection) {
  const Attack& attack = GetParam();
  ServerOptions so;
  so.stream_window.messages = 4;
  so.shutdown_grace = absl::Milliseconds(100);
  Server server(so);
  StreamsService service;
  ASSERT_OK(server.RegisterService(&service));
  LocalPortOptions po;
  po.runtime_dir = dir_;
  auto t = MakeLocalServerTransport("hostile", po);
  ASSERT_OK(t.status());
  LocalServerTransport* transport = t->get();
  ASSERT_OK(server.AddTransport(std::move(*t)));
  ASSERT_OK(server.Start());

  // An honest neighbour, connected first, with a stream open.
  LocalChannelOptions lo;
  lo.runtime_dir = dir_;
  auto ch = CreateLocalChannel("hostile", {}, lo);
  ASSERT_OK(ch.status());
  CallContext ctx;
  std::shared_ptr<ClientStream> honest =
      (*ch)->OpenStream(StreamsDescriptor(), StreamsDescriptor().methods[2],
                        &ctx);

  std::unique_ptr<RawPeer> peer = RawPeer::Connect(transport->path());
  ASSERT_NE(peer, nullptr);
  const uint32_t slot = peer->Bind();
  ASSERT_NE(slot, 0u);
  attack.run(*peer, slot);
  EXPECT_TRUE(peer->CutOff(absl::Seconds(10)));

  const LocalServerStats stats = transport->stats();
  EXPECT_EQ(stats.*attack.counter, 1u);
  EXPECT_EQ(stats.clients_cut_off, 1u);
  EXPECT_EQ(
      stats.clients_cut_off_by_code[static_cast<int>(absl::StatusCode::kDataLoss)],
      1u);
  // The introspection service reports the cut-off by reason.
  std::map<std::string, uint64_t> cutoffs;
  ASSERT_OK(introspection::IntrospectionClient(*ch).ListConnections(&cutoffs));
  EXPECT_EQ(cutoffs, (std::map<std::string, uint64_t>{{"data_loss", 1}}));

  // The neighbour's stream goes on.
  CallbackResult<absl::Status> wrote;
  honest->Write("still here", wrote.Callback());
  std::optional<absl::Status> w = wrote.Get();
  ASSERT_TRUE(w.has_value());
  EXPECT_OK(*w);
  CallbackResult<absl::StatusOr<std::optional<std::string>>> read;
  honest->Read(read.Callback());
  std::optional<absl::StatusOr<std::optional<std::string>>> got = read.Get();
  ASSERT_TRUE(got.has_value());
  ASSERT_OK(got->status());
  ASSERT_TRUE((*got)->has_value());
  EXPECT_EQ(***got, "still here");
  honest->WritesDone();
  CallbackResult<absl::Status> finished;
  honest->Finish(finished.Callback());
  std::optional<absl::Status> f = finished.Get();
  ASSERT_TRUE(f.has_value());
  EXPECT_OK(*f);
  EXPECT_EQ(transport->stats().clients_cut_off, 1u);
  server.Shutdown();
}

INSTANTIATE_TEST_SUITE_P(Attacks, StreamHostileTest,
                         ::testing::ValuesIn(kAttacks),
                         [](const ::testing::TestParamInfo<Attack>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace lpc::local
