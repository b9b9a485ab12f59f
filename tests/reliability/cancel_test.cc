// CANCEL over the control socket (docs/reliability.md, "Deadlines,
// cancellation, fairness"). At max_in_flight_per_connection the server stops reading a
// client's request ring, so a CANCEL record queued there behind another
// request would wait for one of the client's calls to end; the control
// socket, which the I/O thread always reads, carries it instead. Handlers
// block on Hold, which returns only when cancelled (60 s deadlines), so
// every check waits for an event, boundedly, never for a time:
//   - a cancel reaches its handler while the ring is not read;
//   - a call cancelled before the server read it never runs;
//   - duplicate and unknown CANCELs are counted and harmless;
//   - malformed CANCEL packets cut their sender off with a reason, and a
//     flood of them keeps a bounded set and the connection.
#include <sys/eventfd.h>

#include <atomic>
#include <cstdio>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/frame.h"
#include "transports/local/unique_fd.h"

namespace lpc::reliability {
namespace {

using local::ControlType;
using local::EncodeCancelPacket;
using local::EncodeControl;
using local::FrameHeader;
using local::MessageType;

// Two handlers per connection and two calls in flight per connection: two
// blocked Hold calls put a client at its limit.
TestServerOptions AtLimitOptions(const std::string& dir) {
  TestServerOptions o;
  o.dir = dir;
  o.local.concurrency = 2;
  o.local.max_workers = 4;
  o.local.max_in_flight_per_connection = 2;
  return o;
}

// Every test: a server whose clients are at their in-flight limit with two
// blocked Hold calls (AtLimitOptions).
class CancelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    server_ = std::make_unique<TestServer>(AtLimitOptions(dir_.path()));
    ASSERT_TRUE(server_->start_status().ok()) << server_->start_status();
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(CancelTest, CancelReachesItsHandlerWhileTheRingIsNotRead) {
  auto ch = MakeChannel(server_->local_target(), dir_.path());
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());

  PendingHold a, b, c;
  a.Start(**ch, "a");
  b.Start(**ch, "b");
  ASSERT_TRUE(WaitFor([&] { return server_->service().running() == 2; }));
  // At the in-flight limit: "c" is published, and the server does not
  // read it (nor anything behind it) while "a" and "b" block.
  c.Start(**ch, "c");

  a.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] { return server_->service().CancelSeenNs("a") != 0; }))
      << "the handler of a did not see its cancellation";
  EXPECT_EQ(server_->service().CancelSeenNs("b"), 0);
  ASSERT_TRUE(WaitFor([&] { return a.done.load(); }));
  EXPECT_EQ(a.code, absl::StatusCode::kCancelled);
  // a's end frees a place: the ring is read again and "c" runs beside "b".
  ASSERT_TRUE(WaitFor([&] { return server_->service().running() == 2; }));
  EXPECT_FALSE(b.done.load());
  EXPECT_FALSE(c.done.load());
  EXPECT_EQ(server_->service().CancelSeenNs("b"), 0);

  b.ctx.Cancel();
  c.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] { return b.done.load() && c.done.load(); }));
  EXPECT_EQ(b.code, absl::StatusCode::kCancelled);
  EXPECT_EQ(c.code, absl::StatusCode::kCancelled);
  EXPECT_TRUE(WaitFor([&] {
    return server_->service().CancelSeenNs("b") != 0 &&
           server_->service().CancelSeenNs("c") != 0;
  }));
  const local::LocalServerStats s = server_->local()->stats();
  EXPECT_GE(s.cancel_packets, 3u);
  EXPECT_EQ(s.clients_cut_off, 0u);
  std::printf("RESULT cancel_unread_ring: cancel_packets=%llu ignored=%llu\n",
              static_cast<unsigned long long>(s.cancel_packets),
              static_cast<unsigned long long>(s.cancels_ignored));
}

TEST_F(CancelTest, CallCancelledBeforeTheServerReadItNeverRuns) {
  auto ch = MakeChannel(server_->local_target(), dir_.path());
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
  const int64_t completed = server_->service().completed();

  PendingHold a, b, c;
  a.Start(**ch, "a");
  b.Start(**ch, "b");
  ASSERT_TRUE(WaitFor([&] { return server_->service().running() == 2; }));
  c.Start(**ch, "c");  // Unread.
  c.ctx.Cancel();      // Its CANCEL overtakes it.
  ASSERT_TRUE(WaitFor([&] { return c.done.load(); }));
  EXPECT_EQ(c.code, absl::StatusCode::kCancelled);
  ASSERT_TRUE(WaitFor(
      [&] { return server_->local()->stats().cancel_packets == 1; }));

  // Freeing a place makes the server read "c": it is dropped, not run.
  a.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] {
    return server_->local()->stats().calls_cancelled_before_read == 1;
  }));
  ASSERT_TRUE(WaitFor([&] { return a.done.load(); }));
  // The connection goes on: a new call runs, "b" still holds.
  absl::StatusOr<std::string> r =
      CallRel(**ch, EchoMethod(), "after", absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "after");
  EXPECT_EQ(server_->service().running(), 1);
  EXPECT_EQ(server_->service().completed(), completed + 2);  // a and "after".
  EXPECT_EQ(server_->service().CancelSeenNs("c"), 0);

  b.ctx.Cancel();
  ASSERT_TRUE(WaitFor([&] { return b.done.load(); }));
  ASSERT_TRUE(WaitFor([&] { return server_->service().running() == 0; }));
  EXPECT_EQ(server_->service().completed(), completed + 3);  // c never ran.
  EXPECT_EQ(server_->local()->stats().cancels_ignored, 0u);
}

// A raw client, bound to RelService.
struct Raw {
  std::unique_ptr<RawClient> client;
  uint32_t slot = 0;
};
std::optional<Raw> ConnectRaw(TestServer& server) {
  auto c = RawClient::Connect(server.local()->path());
  if (!c.ok()) return std::nullopt;
  absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
  if (!slot.ok()) return std::nullopt;
  return Raw{std::move(*c), *slot};
}

TEST_F(CancelTest, DuplicateAndUnknownCancelsAreCountedAndHarmless) {
  std::optional<Raw> raw = ConnectRaw(*server_);
  ASSERT_TRUE(raw.has_value());
  RawClient& c = *raw->client;

  const uint64_t id = c.NextId();
  c.SendRaw(MakeRecord(RequestHeader(id, raw->slot, HoldMethod().id, 1), "h"));
  ASSERT_TRUE(WaitFor([&] { return server_->service().running() == 1; }));
  // By the socket, then the same call by the ring.
  ASSERT_TRUE(local::SendPacket(c.socket(), EncodeCancelPacket(id)).ok());
  ASSERT_TRUE(WaitFor([&] { return server_->service().CancelSeenNs("h") != 0; }));
  FrameHeader cancel{};
  cancel.record_size = local::kFrameHeaderSize;
  cancel.type = static_cast<uint8_t>(MessageType::kCancel);
  cancel.message_id = id;
  c.SendRaw(MakeRecord(cancel));
  absl::StatusOr<local::IncomingMessage> reply = c.WaitReply();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.message_id, id);
  // Unknown ids, both ways, and the socket CANCEL again (finished id).
  cancel.message_id = 777777;
  c.SendRaw(MakeRecord(cancel));
  ASSERT_TRUE(local::SendPacket(c.socket(), EncodeCancelPacket(id)).ok());
  ASSERT_TRUE(local::SendPacket(c.socket(), EncodeCancelPacket(id)).ok());
  // The ring CANCELs are read before this call; the socket ones arrive
  // before it is answered or not, so wait for their count.
  // (Raw records only: the raw ring position and the Endpoint's are apart.)
  const uint64_t probe = c.NextId();
  c.SendRaw(MakeRecord(RequestHeader(probe, raw->slot, EchoMethod().id, 5),
                       "still"));
  reply = c.WaitReply();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.message_id, probe);
  EXPECT_EQ(reply->payload, "still");
  ASSERT_TRUE(WaitFor(
      [&] { return server_->local()->stats().cancel_packets == 3; }));
  const local::LocalServerStats s = server_->local()->stats();
  // Ring duplicate + ring unknown + the second of the two late socket
  // CANCELs (the first is kept as an early cancel until evicted).
  EXPECT_EQ(s.cancels_ignored, 3u);
  EXPECT_EQ(s.clients_cut_off, 0u);
  EXPECT_FALSE(c.WaitCutOff(absl::Milliseconds(1)).has_value());
}

TEST_F(CancelTest, MalformedCancelPacketsCutTheSenderOffWithAReason) {
  auto neighbour = MakeChannel(server_->local_target(), dir_.path());
  ASSERT_TRUE(neighbour.ok());

  struct Case {
    std::string name;
    std::string packet;
    bool with_fd;
    std::string reason;
  };
  const std::string good = EncodeCancelPacket(5);
  const Case cases[] = {
      {"empty body", EncodeControl(ControlType::kCancel, nullptr, 0), false,
       "CANCEL body of 0 bytes"},
      {"short body", good.substr(0, good.size() - 1), false,
       "CANCEL body of 7 bytes"},
      {"long body", good + "x", false, "CANCEL body of 9 bytes"},
      {"id 0", EncodeCancelPacket(0), false, "message id 0"},
      {"with a descriptor", good, true, "CANCEL with descriptors"},
  };
  for (const Case& k : cases) {
    std::optional<Raw> raw = ConnectRaw(*server_);
    ASSERT_TRUE(raw.has_value()) << k.name;
    std::vector<int> fds;
    local::UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
    if (k.with_fd) fds.push_back(fd.get());
    ASSERT_TRUE(local::SendPacket(raw->client->socket(), k.packet, fds).ok())
        << k.name;
    std::optional<std::string> why =
        raw->client->WaitCutOff(absl::Seconds(10));
    ASSERT_TRUE(why.has_value()) << k.name << ": not cut off";
    EXPECT_NE(why->find(k.reason), std::string::npos)
        << k.name << ": " << *why;
  }
  EXPECT_EQ(server_->local()->stats().clients_cut_off, std::size(cases));
  absl::StatusOr<std::string> r = CallRel(**neighbour, EchoMethod(), "fine");
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(CancelTest, AFloodOfCancelsKeepsABoundedSetAndTheConnection) {
  std::optional<Raw> raw = ConnectRaw(*server_);
  ASSERT_TRUE(raw.has_value());
  RawClient& c = *raw->client;
  // The early-cancel set holds at most request slots + in-flight limit.
  const uint64_t bound = c.layout().geometry.request_slots + 2;
  constexpr uint64_t kFlood = 20000;
  for (uint64_t i = 0; i < kFlood; ++i) {
    // Huge ids, never used by a request; ~0 is the largest.
    ASSERT_TRUE(local::SendPacket(c.socket(), EncodeCancelPacket(~uint64_t{0} - i))
                    .ok())
        << i;
  }
  ASSERT_TRUE(WaitFor(
      [&] { return server_->local()->stats().cancel_packets == kFlood; },
      absl::Seconds(30)));
  const local::LocalServerStats s = server_->local()->stats();
  // Every CANCEL beyond the bound evicted an older one.
  EXPECT_EQ(s.cancels_ignored, kFlood - bound);
  EXPECT_EQ(s.clients_cut_off, 0u);
  // The connection still works, and its calls run.
  absl::StatusOr<std::string> r = c.Call(raw->slot, EchoMethod().id, "alive");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "alive");
  EXPECT_EQ(server_->local()->stats().calls_cancelled_before_read, 0u);
  std::printf("RESULT cancel_flood: packets=%llu ignored=%llu bound=%llu\n",
              static_cast<unsigned long long>(s.cancel_packets),
              static_cast<unsigned long long>(s.cancels_ignored),
              static_cast<unsigned long long>(bound));
}

}  // namespace
}  // namespace lpc::reliability
