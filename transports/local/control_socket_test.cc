// Tests for the control socket's packet I/O: the non-blocking send that
// carries CANCEL, against a full buffer and a peer that went away.
#include "transports/local/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ControlSocketTest, TrySendPacketDeliversOnePacket) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  ASSERT_OK(TrySendPacket(a.get(), "hello"));
  ASSERT_OK_AND_ASSIGN(Packet p, RecvPacket(b.get(), absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(p.bytes, "hello");
  EXPECT_TRUE(p.fds.empty());
}

TEST(ControlSocketTest, TrySendPacketNeverWaitsForAFullBuffer) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  const std::string packet(64, 'x');
  // Nobody reads `b`: the buffer fills, and then the send says so at once.
  int sent = 0;
  absl::Status s;
  for (; sent < 1000000; ++sent) {
    s = TrySendPacket(a.get(), packet);
    if (!s.ok()) break;
  }
  EXPECT_GT(sent, 0);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted,
                          HasSubstr("would block")));
  // Reading makes room again.
  ASSERT_OK(RecvPacket(b.get(), absl::Now() + absl::Seconds(5)).status());
  int more = 0;
  for (; more < 1000 && TrySendPacket(a.get(), packet).ok(); ++more) {
  }
  EXPECT_GE(more, 1);
}

TEST(ControlSocketTest, TrySendPacketToAGonePeerIsUnavailable) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  b.Reset();
  EXPECT_THAT(TrySendPacket(a.get(), "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(TrySendPacket(a.get(), std::string(kMaxControlPacket + 1, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ControlSocketTest, SendPacketWaitsForRoomNoLongerThanTheDeadline) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  ASSERT_EQ(::fcntl(a.get(), F_SETFL, ::fcntl(a.get(), F_GETFL) | O_NONBLOCK),
            0);
  const std::string packet(64, 'x');
  for (int i = 0; i < 1000000 && TrySendPacket(a.get(), packet).ok(); ++i) {
  }
  // Full, and nobody reads `b`.
  EXPECT_THAT(SendPacket(a.get(), packet, {}, absl::Now() + absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("not reading by the deadline")));
  EXPECT_THAT(SendPacket(a.get(), packet, {}, absl::InfinitePast()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Room again: it goes.
  ASSERT_OK(RecvPacket(b.get(), absl::Now() + absl::Seconds(5)).status());
  EXPECT_OK(SendPacket(a.get(), packet, {}, absl::Now() + absl::Seconds(5)));
}

// SO_PASSRIGHTS off on a listener: the sockets made for its connections
// refuse fds (the sender gets EPERM) until turned on, while plain packets
// pass. Skipped where the kernel lacks the option.
TEST(ControlSocketTest, PacketsSentBeforeAResetCloseAreStillRead) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  // `a` sends, `b` never reads it, answers with its last word and closes:
  // the kernel flags `a` with ECONNRESET, ahead of b's packets.
  ASSERT_OK(TrySendPacket(a.get(), "unread"));
  ASSERT_OK(TrySendPacket(b.get(), "goodbye"));
  ASSERT_OK(TrySendPacket(b.get(), "and more"));
  b.Reset(-1);
  ASSERT_OK_AND_ASSIGN(Packet p,
                       RecvPacket(a.get(), absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(p.bytes, "goodbye");
  ASSERT_OK_AND_ASSIGN(p, RecvPacket(a.get(), absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(p.bytes, "and more");
  EXPECT_THAT(RecvPacket(a.get(), absl::Now() + absl::Seconds(5)).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(ControlSocketTest, AResetWithNothingQueuedIsUnavailable) {
  UniqueFd a, b;
  ASSERT_OK(MakeSocketPair(&a, &b));
  ASSERT_OK(TrySendPacket(a.get(), "unread"));
  b.Reset(-1);
  EXPECT_THAT(RecvPacket(a.get(), absl::Now() + absl::Seconds(5)).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(ControlSocketTest, PassRightsOffRefusesFdsUntilTurnedOn) {
  char dir[] = "/tmp/lpc-pr-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/s";
  UniqueFd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr),
                   sizeof(addr)),
            0);
  if (!SetPassRights(listener.get(), false)) {
    ::unlink(path.c_str());
    ::rmdir(dir);
    GTEST_SKIP() << "the kernel has no SO_PASSRIGHTS";
  }
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  UniqueFd client(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr),
                      sizeof(addr)),
            0);
  UniqueFd extra(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int fds[1] = {extra.get()};
  // Before accept, and after it until the server turns fds on.
  EXPECT_THAT(TrySendPacket(client.get(), "early", fds),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("Operation not permitted")));
  UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  EXPECT_THAT(TrySendPacket(client.get(), "still", fds),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(TrySendPacket(client.get(), "plain"));
  ASSERT_TRUE(SetPassRights(accepted.get(), true));
  ASSERT_OK(TrySendPacket(client.get(), "late", fds));
  ASSERT_OK_AND_ASSIGN(Packet p1,
                       RecvPacket(accepted.get(), absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(p1.bytes, "plain");
  EXPECT_TRUE(p1.fds.empty());
  ASSERT_OK_AND_ASSIGN(Packet p2,
                       RecvPacket(accepted.get(), absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(p2.bytes, "late");
  EXPECT_EQ(p2.fds.size(), 1u);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace lpc::local
