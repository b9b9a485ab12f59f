// Tests for Endpoint: the three payload modes, validation of received
// records, a cross-process ping-pong through a real section passed with
// SCM_RIGHTS, and a hostile process scribbling over the section while the
// consumer runs.
#include "transports/local/endpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/memfd.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

SectionGeometry SmallGeometry() {
  SectionGeometry g;
  g.request_slots = 64;
  g.reply_slots = 64;
  g.c2s_data_bytes = 64 * 1024;
  g.s2c_data_bytes = 64 * 1024;
  g.max_record_slots = 16;
  return g;
}

struct Section {
  SectionLayout layout;
  UniqueFd fd;
  Mapping map;
};

Section MakeSection(const SectionGeometry& g) {
  Section s;
  s.layout = *ComputeLayout(g);
  s.fd = std::move(*CreateSealedMemfd("lpc-section", s.layout.total_size));
  s.map = std::move(*Mapping::Map(s.fd.get(), s.layout.total_size, true));
  InitializeSection(s.map.data(), s.layout);
  return s;
}

std::string Payload(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xFF);
  return s;
}

class EndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    section_ = MakeSection(SmallGeometry());
    ASSERT_OK(MakeSocketPair(&client_sock_, &server_sock_));
    client_port_ = std::make_unique<SocketMemfdPort>(client_sock_.get());
    server_port_ = std::make_unique<SocketMemfdPort>(server_sock_.get());
    client_ = std::make_unique<Endpoint>(Side::kClient, section_.map.data(),
                                         section_.layout, client_port_.get(),
                                         EndpointOptions{});
    server_ = std::make_unique<Endpoint>(Side::kServer, section_.map.data(),
                                         section_.layout, server_port_.get(),
                                         EndpointOptions{});
  }

  // A client endpoint on the fixture's section that keeps its payload
  // memfds in `pool` (use it instead of client_, never beside it).
  std::unique_ptr<Endpoint> KeepingClient(PayloadMemfdPool* pool) {
    EndpointOptions o;
    o.memfd_pool = pool;
    return std::make_unique<Endpoint>(Side::kClient, section_.map.data(),
                                      section_.layout, client_port_.get(), o);
  }

  Section section_;
  UniqueFd client_sock_, server_sock_;
  std::unique_ptr<SocketMemfdPort> client_port_, server_port_;
  std::unique_ptr<Endpoint> client_, server_;
};

TEST_F(EndpointTest, AllThreePayloadModes) {
  const struct {
    size_t size;
    PayloadMode mode;
  } cases[] = {{0, PayloadMode::kInline},
               {10, PayloadMode::kInline},
               {900, PayloadMode::kInline},
               {10000, PayloadMode::kDataArea},
               {50000, PayloadMode::kDataArea},
               {200000, PayloadMode::kMemfd}};
  uint64_t id = 1;
  for (const auto& c : cases) {
    const std::string payload = Payload(c.size, static_cast<uint32_t>(id));
    OutgoingMessage m;
    m.type = MessageType::kRequest;
    m.message_id = id;
    m.interface_slot = 2;
    m.method_id = 7;
    m.deadline_ns = 123;
    m.payload = payload;
    ASSERT_OK_AND_ASSIGN(bool sent, client_->TrySend(m));
    ASSERT_TRUE(sent);
    client_->Flush();
    ASSERT_OK_AND_ASSIGN(auto got, server_->Receive());
    ASSERT_TRUE(got.has_value()) << c.size;
    EXPECT_EQ(got->mode(), c.mode) << c.size;
    EXPECT_EQ(got->type(), MessageType::kRequest);
    EXPECT_EQ(got->header.message_id, id);
    EXPECT_EQ(got->header.method_id, 7u);
    EXPECT_EQ(got->header.deadline_ns, 123);
    EXPECT_EQ(got->payload, payload);
    server_->ReleaseReceived();
    ++id;
  }
  ASSERT_OK_AND_ASSIGN(auto none, server_->Receive());
  EXPECT_FALSE(none.has_value());
}

TEST_F(EndpointTest, DataAreaFullFallsBackToMemfd) {
  // Two 40 KiB payloads: the second does not fit until the first is
  // released, so it travels as a memfd.
  std::string a = Payload(40000, 1), b = Payload(40000, 2);
  OutgoingMessage m;
  m.message_id = 1;
  m.payload = a;
  ASSERT_TRUE(*client_->TrySend(m));
  m.message_id = 2;
  m.payload = b;
  ASSERT_TRUE(*client_->TrySend(m));
  client_->Flush();
  ASSERT_OK_AND_ASSIGN(auto ga, server_->Receive());
  ASSERT_OK_AND_ASSIGN(auto gb, server_->Receive());
  ASSERT_TRUE(ga && gb);
  EXPECT_EQ(ga->mode(), PayloadMode::kDataArea);
  EXPECT_EQ(gb->mode(), PayloadMode::kMemfd);
  EXPECT_EQ(ga->payload, a);
  EXPECT_EQ(gb->payload, b);
}

TEST_F(EndpointTest, RepliesFlowBack) {
  OutgoingMessage m;
  m.type = MessageType::kReply;
  m.message_id = 9;
  m.status_code = 5;
  m.payload = "not found";
  ASSERT_TRUE(*server_->TrySend(m));
  server_->Flush();
  ASSERT_OK_AND_ASSIGN(auto got, client_->Receive());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->header.status_code, 5u);
  EXPECT_EQ(got->payload, "not found");
}


// `last_cpu` keeps where a side ran once it clears `running` (the CPU it
// will most likely be woken on), and each side sees only the other's.
TEST_F(EndpointTest, LastCpuKeepsWhereThePeerRanBeforeItSlept) {
  EXPECT_EQ(server_->PeerLastCpu(), 0u);  // Never ran.
  client_->SetRunningValue(3);
  EXPECT_EQ(server_->PeerRunning(), 3u);
  EXPECT_EQ(server_->PeerLastCpu(), 0u);  // Still running.
  client_->SetRunningValue(5);            // Moved while running.
  client_->SetRunningValue(0);            // Going to sleep.
  EXPECT_EQ(server_->PeerRunning(), 0u);
  EXPECT_EQ(server_->PeerLastCpu(), 5u);
  client_->SetRunningValue(0);  // Asleep again: nothing changes.
  EXPECT_EQ(server_->PeerLastCpu(), 5u);
  EXPECT_EQ(client_->PeerLastCpu(), 0u);  // The server never ran.

  const uint32_t here = RunningValueForThisCpu();
  server_->SetRunningValue(here);
  server_->SetRunning(false);
  EXPECT_EQ(client_->PeerLastCpu(), here);
  EXPECT_EQ(server_->PeerLastCpu(), 5u);  // Unchanged by the server.
}
TEST_F(EndpointTest, WrongDirectionIsDataLoss) {
  OutgoingMessage m;
  m.type = MessageType::kRequest;  // Sent by the server: not allowed.
  ASSERT_TRUE(*server_->TrySend(m));
  server_->Flush();
  EXPECT_THAT(client_->Receive(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("direction")));
}

TEST_F(EndpointTest, OversizedPayloadIsResourceExhausted) {
  EndpointOptions o;
  o.max_payload = 1000;
  Endpoint small(Side::kClient, section_.map.data(), section_.layout,
                 client_port_.get(), o);
  std::string big(1001, 'x');
  OutgoingMessage m;
  m.payload = big;
  EXPECT_THAT(small.TrySend(m),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(PayloadMemfdSizeTest, RoundsUpToASixteenthOfThePowerOfTwo) {
  EXPECT_EQ(PayloadMemfdSize(0), 0u);
  EXPECT_EQ(PayloadMemfdSize(1), uint64_t{64} << 10);
  EXPECT_EQ(PayloadMemfdSize(uint64_t{64} << 10), uint64_t{64} << 10);
  EXPECT_EQ(PayloadMemfdSize((uint64_t{64} << 10) + 1), uint64_t{128} << 10);
  EXPECT_EQ(PayloadMemfdSize(200000), uint64_t{256} << 10);
  const uint64_t mib16 = uint64_t{16} << 20;
  EXPECT_EQ(PayloadMemfdSize(mib16), mib16);
  EXPECT_EQ(PayloadMemfdSize(mib16 + 5), mib16 + (uint64_t{1} << 20));
  for (uint64_t n : {uint64_t{3} << 20, uint64_t{100} << 20, uint64_t{4095} << 20}) {
    EXPECT_GE(PayloadMemfdSize(n - 1), n - 1);
    EXPECT_LE(PayloadMemfdSize(n - 1), (n - 1) + (n - 1) / 16 + (64 << 10));
  }
}

// Receives one message on `ep` and releases it.
IncomingMessage ReceiveOne(Endpoint& ep) {
  absl::StatusOr<std::optional<IncomingMessage>> got = ep.Receive();
  EXPECT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got.ok() && got->has_value());
  ep.ReleaseReceived();
  return got.ok() && got->has_value() ? std::move(**got) : IncomingMessage{};
}

// Sends Payload(size, 0) .. Payload(size, n - 1) from `ep`, unread.
void SendPayloads(Endpoint& ep, size_t size, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string p = Payload(size, i);
    OutgoingMessage m;
    m.payload = p;
    absl::StatusOr<bool> sent = ep.TrySend(m);
    ASSERT_TRUE(sent.ok() && *sent) << sent.status();
  }
  ep.Flush();
}

// Receives what SendPayloads sent, in order, on `ep`.
void ExpectPayloads(Endpoint& ep, size_t size, int n) {
  for (int i = 0; i < n; ++i) EXPECT_EQ(ReceiveOne(ep).payload, Payload(size, i));
}

TEST_F(EndpointTest, SentMemfdsAreReusedOnlyOnceThePeerHasReadThem) {
  PayloadMemfdPool pool(uint64_t{8} << 20);
  std::unique_ptr<Endpoint> keeping = KeepingClient(&pool);
  Endpoint& client = *keeping;
  // All in one size class (256 KiB), larger than the 64 KiB data half.
  const std::string a = Payload(200000, 1), b = Payload(210000, 2),
                    c = Payload(250000, 3), d = Payload(197000, 4);
  auto send = [&](const std::string& p) {
    OutgoingMessage m;
    m.payload = p;
    absl::StatusOr<bool> sent = client.TrySend(m);
    ASSERT_TRUE(sent.ok() && *sent) << sent.status();
    client.Flush();
  };
  send(a);
  send(b);  // `a` is unread: a second memfd.
  EXPECT_EQ(pool.made.load(), 2u);
  EXPECT_EQ(pool.reused.load(), 0u);
  EXPECT_EQ(pool.kept_bytes.load(), 2 * PayloadMemfdSize(200000));
  EXPECT_EQ(ReceiveOne(*server_).payload, a);
  EXPECT_EQ(ReceiveOne(*server_).payload, b);
  // Both read and released: a later payload of the class goes into one of
  // them, and a shorter one after a longer one comes out exact.
  send(c);
  EXPECT_EQ(ReceiveOne(*server_).payload, c);
  send(d);
  IncomingMessage got_d = ReceiveOne(*server_);
  EXPECT_EQ(got_d.mode(), PayloadMode::kMemfd);
  EXPECT_EQ(got_d.payload, d);
  EXPECT_EQ(pool.made.load(), 2u);
  EXPECT_EQ(pool.reused.load(), 2u);
  // Another size class needs a memfd of its own.
  const std::string e = Payload(600000, 5);
  send(e);
  EXPECT_EQ(ReceiveOne(*server_).payload, e);
  EXPECT_EQ(pool.made.load(), 3u);
  EXPECT_EQ(pool.kept_bytes.load(),
            2 * PayloadMemfdSize(200000) + PayloadMemfdSize(600000));
  // Idle ones go: none used within the next hour.
  client.TrimKeptMemfds(MonotonicNowNs() + int64_t{3600} * 1000000000);
  EXPECT_EQ(pool.kept_bytes.load(), 0u);
}

TEST_F(EndpointTest, KeptMemfdsStayWithinTheBudgetAndGoWithTheEndpoint) {
  PayloadMemfdPool pool(PayloadMemfdSize(200000) * 2);
  {
    std::unique_ptr<Endpoint> keeping = KeepingClient(&pool);
    Endpoint& client = *keeping;
    // Unread, so none can be reused: each is new, and the budget holds the
    // two most recent.
    SendPayloads(client, 200000, 5);
    EXPECT_EQ(pool.made.load(), 5u);
    EXPECT_EQ(pool.kept_bytes.load(), pool.budget);
    ExpectPayloads(*server_, 200000, 5);
  }
  EXPECT_EQ(pool.kept_bytes.load(), 0u);
}

TEST_F(EndpointTest, AnEndpointKeepsAtMostEightMemfds) {
  PayloadMemfdPool pool(uint64_t{64} << 20);
  std::unique_ptr<Endpoint> keeping = KeepingClient(&pool);
  Endpoint& client = *keeping;
  SendPayloads(client, 200000, 10);
  EXPECT_EQ(pool.made.load(), 10u);
  EXPECT_EQ(pool.kept_count.load(), PayloadMemfdPool::kMaxKeptPerEndpoint);
  EXPECT_EQ(pool.kept_bytes.load(), PayloadMemfdPool::kMaxKeptPerEndpoint *
                                        PayloadMemfdSize(200000));
  ExpectPayloads(*server_, 200000, 10);
}

TEST_F(EndpointTest, AMemfdBudgetOfZeroKeepsNothing) {
  PayloadMemfdPool none(0);
  std::unique_ptr<Endpoint> keeping = KeepingClient(&none);
  Endpoint& client = *keeping;
  for (int i = 0; i < 2; ++i) {  // Each read before the next is sent.
    SendPayloads(client, 200000, 1);
    ExpectPayloads(*server_, 200000, 1);
  }
  EXPECT_EQ(none.made.load(), 2u);
  EXPECT_EQ(none.reused.load(), 0u);
  EXPECT_EQ(none.kept_bytes.load(), 0u);
  EXPECT_EQ(none.kept_count.load(), 0u);
}

TEST_F(EndpointTest, HostileMemfdIsRejected) {
  // A record claims a memfd payload; the "memfd" is a pipe.
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize;
  h.type = static_cast<uint8_t>(MessageType::kRequest);
  h.payload_mode = static_cast<uint8_t>(PayloadMode::kMemfd);
  h.payload_length = 4096;
  std::byte* slot = section_.map.data() + section_.layout.request_ring_offset;
  std::memcpy(slot, &h, sizeof(h));
  SharedStore<uint64_t>(ControlOf(section_.map.data(), section_.layout)
                            ->request.producer_index,
                        1);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  ASSERT_OK(client_port_->SendPayloadFd(0, 4096, r.get()));
  EXPECT_THAT(server_->Receive(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a regular file")));
}

TEST_F(EndpointTest, MissingMemfdTimesOut) {
  EndpointOptions o;
  o.memfd_wait = absl::Milliseconds(20);
  Endpoint server(Side::kServer, section_.map.data(), section_.layout,
                  server_port_.get(), o);
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize;
  h.type = static_cast<uint8_t>(MessageType::kRequest);
  h.payload_mode = static_cast<uint8_t>(PayloadMode::kMemfd);
  h.payload_length = 4096;
  std::memcpy(section_.map.data() + section_.layout.request_ring_offset, &h,
              sizeof(h));
  SharedStore<uint64_t>(ControlOf(section_.map.data(), section_.layout)
                            ->request.producer_index,
                        1);
  EXPECT_THAT(server.Receive(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// Server process: receives the section over the socket, validates and maps
// it, then echoes every request until method 0 or until the parent hangs up.
[[noreturn]] void RunEchoChild(int sock, SectionGeometry g) {
  int code = 0;
  {
    auto packet = RecvPacket(sock, absl::Now() + absl::Seconds(10));
    if (!packet.ok() || packet->fds.size() != 1) _exit(10);
    auto layout = ComputeLayout(g);
    if (!layout.ok()) _exit(11);
    if (!ValidateSealedMemfd(packet->fds[0].get(), layout->total_size).ok()) {
      _exit(12);
    }
    auto map = Mapping::Map(packet->fds[0].get(), layout->total_size, true);
    if (!map.ok()) _exit(13);
    if (!ValidateSectionHeader(map->data(), map->size(), *layout).ok()) _exit(14);
    SocketMemfdPort port(sock);
    Endpoint server(Side::kServer, map->data(), *layout, &port, {});
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    bool done = false;
    while (!done && absl::Now() < give_up) {
      server.SetRunning(true);
      auto msg = server.Receive();
      if (!msg.ok()) _exit(15);
      if (!msg->has_value()) {
        server.ReleaseReceived();
        if (PeerHungUp(sock)) _exit(16);
        server.WaitForInbound(20000, absl::Milliseconds(50));
        continue;
      }
      IncomingMessage& in = **msg;
      if (in.header.method_id == 0) done = true;
      OutgoingMessage out;
      out.type = MessageType::kReply;
      out.message_id = in.header.message_id;
      out.payload = in.payload;
      for (int tries = 0;; ++tries) {
        auto sent = server.TrySend(out);
        if (!sent.ok()) _exit(17);
        if (*sent) break;
        server.Flush();
        server.WaitForRoom(absl::Milliseconds(10));
        if (tries > 1000) _exit(18);
      }
      server.Flush();
      server.ReleaseReceived();
    }
    code = done ? 0 : 19;
  }
  _exit(code);
}

TEST(EndpointCrossProcessTest, PingPongThroughRealSection) {
  const SectionGeometry g = SmallGeometry();
  Section s = MakeSection(g);
  UniqueFd parent_sock, child_sock;
  ASSERT_OK(MakeSocketPair(&parent_sock, &child_sock));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    parent_sock.Reset();
    RunEchoChild(child_sock.get(), g);
  }
  child_sock.Reset();
  const int fds[1] = {s.fd.get()};
  ASSERT_OK(SendPacket(parent_sock.get(), "section", fds));
  SocketMemfdPort port(parent_sock.get());
  Endpoint client(Side::kClient, s.map.data(), s.layout, &port, {});
  const size_t sizes[] = {8, 100, 3000, 20000, 100000};
  int round_trips = 0;
  bool all_match = true;
  for (int i = 0; i < 2000; ++i) {
    const size_t size = sizes[i % 5 == 4 && i % 50 != 4 ? 0 : i % 5];
    const std::string payload = Payload(size, i);
    OutgoingMessage m;
    m.message_id = i + 1;
    m.method_id = 1;
    m.payload = payload;
    ASSERT_OK_AND_ASSIGN(bool sent, client.TrySend(m));
    ASSERT_TRUE(sent);
    client.SetRunning(true);
    client.Flush();
    std::optional<IncomingMessage> reply;
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!reply.has_value() && absl::Now() < give_up) {
      ASSERT_OK_AND_ASSIGN(reply, client.Receive());
      if (!reply) client.WaitForInbound(20000, absl::Milliseconds(50));
    }
    client.ReleaseReceived();
    ASSERT_TRUE(reply.has_value()) << "no reply to " << i;
    all_match &= reply->header.message_id == uint64_t(i + 1) &&
                 reply->payload == payload;
    ++round_trips;
  }
  OutgoingMessage stop;
  stop.message_id = 99999;
  stop.method_id = 0;
  ASSERT_TRUE(*client.TrySend(stop));
  client.Flush();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(round_trips, 2000);
  EXPECT_TRUE(all_match);
}

// A separate process scribbles random bytes over the whole section (rings,
// control words, data area, even the header) while this process keeps
// sending and consuming. Every Receive must return a message or an error;
// nothing may crash (ASan checks every access).
TEST(EndpointHostileTest, ScribbledSectionNeverCrashesConsumer) {
  const SectionGeometry g = SmallGeometry();
  Section s = MakeSection(g);
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::mt19937_64 rng(1234);
    std::byte* base = s.map.data();
    const uint64_t size = s.layout.total_size;
    for (int i = 0; i < 2000000; ++i) {
      const uint64_t off = (rng() % (size / 8)) * 8;
      const uint64_t v = (i % 3 == 0) ? rng() : rng() % 512;
      std::memcpy(base + off, &v, 8);
      if (i % 1000 == 0 && ::getppid() == 1) break;
    }
    _exit(0);
  }
  SocketMemfdPort client_port(a.get()), server_port(b.get());
  EndpointOptions o;
  o.memfd_wait = absl::Milliseconds(1);
  int errors = 0, messages = 0;
  for (int round = 0; round < 200; ++round) {
    Endpoint client(Side::kClient, s.map.data(), s.layout, &client_port, o);
    Endpoint server(Side::kServer, s.map.data(), s.layout, &server_port, o);
    for (int i = 0; i < 50; ++i) {
      std::string p = Payload((i * 997) % 5000, i);
      OutgoingMessage m;
      m.message_id = i;
      m.payload = p;
      auto sent = client.TrySend(m);
      client.Flush();
      auto got = server.Receive();
      if (!got.ok()) {
        ++errors;
        break;
      }
      if (got->has_value()) ++messages;
      server.ReleaseReceived();
      (void)sent;
    }
  }
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  // The consumer saw corruption and reported it, and it survived.
  EXPECT_GT(errors, 0);
  EXPECT_GE(messages + errors, 1);
}

}  // namespace
}  // namespace lpc::local
