// No server thread waits on a client's pace (docs/reliability.md, "Hostile
// clients: connections, fds and floods"). While an honest neighbour calls
// Echo in a loop:
//  1. attackers publish memfd-mode records with no PAYLOAD_FD behind them:
//     the server parks each one's ring (no worker waits) and cuts it off
//     once the record has waited memfd_wait (500 ms);
//  2. a record whose memfd comes late (150 ms) is still served;
//  3. a client that never reads its control socket, and lies about having
//     collected its reply memfds, fills the socket: the server's PAYLOAD_FD
//     packets wait in its bounded outbox, and it is cut off.
// Each reports the neighbour's p99 against its baseline, the time to cut
// the offender off and the longest turn of a shared server thread
// (LocalServerStats::longest_*_ns).
#include <poll.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/neighbour.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/memfd.h"
#include "transports/local/shared_word.h"

namespace lpc::reliability {
namespace {

TEST(PeerPaceTest, MemfdRecordsWithNoFdBehindThem) {
  TempDir dir;
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "0", "-", "0",
                       "per_uid=0"});
  ASSERT_EQ(server.ReadLine(), "READY");
  const std::string path = dir.path() + "/p";
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  Neighbour neighbour(*ch);
  neighbour.MeasureBaseline(static_cast<int>(Scaled(2000, 20000)));
  const int fds_before = CountFds(server.pid());
  neighbour.Start();

  // 1. Rounds of 8 attackers at once, each with a ring full of records
  // whose memfds never come.
  const int rounds = static_cast<int>(Scaled(3, 30));
  const int per_round = 8;
  const uint32_t len = 4 << 20;
  std::vector<double> cut_off_ms;
  int refused = 0;
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::unique_ptr<RawClient>> attackers;
    std::vector<absl::Time> sent;
    for (int a = 0; a < per_round; ++a) {
      auto c = RawClient::Connect(path);
      ASSERT_TRUE(c.ok()) << c.status();
      absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
      ASSERT_TRUE(slot.ok()) << slot.status();
      for (uint32_t n = 0; n < 16; ++n) {
        SendMemfdRecord(**c, 10 + n, *slot, EchoMethod().id, n, len);
      }
      sent.push_back(absl::Now());
      attackers.push_back(std::move(*c));
    }
    for (int a = 0; a < per_round; ++a) {
      std::optional<std::string> why = attackers[a]->WaitCutOff(absl::Seconds(10));
      cut_off_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent[a]));
      if (why.has_value() &&
          why->find("for its payload memfd") != std::string::npos) {
        ++refused;
      } else {
        ADD_FAILURE() << "attacker not cut off for its missing memfd: "
                      << why.value_or("still connected");
      }
    }
  }

  // 2. A memfd that comes late: the parked record is read once it does.
  absl::StatusOr<std::string> late_reply;
  double late_ms = 0;
  {
    auto c = RawClient::Connect(path);
    ASSERT_TRUE(c.ok()) << c.status();
    absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
    ASSERT_TRUE(slot.ok());
    const std::string payload(len, 'l');
    absl::StatusOr<local::UniqueFd> memfd =
        local::CreateSealedMemfd("late", local::PayloadMemfdSize(len));
    ASSERT_TRUE(memfd.ok());
    ASSERT_TRUE(local::WriteWhole(memfd->get(), payload).ok());
    const absl::Time t0 = absl::Now();
    SendMemfdRecord(**c, 99, *slot, EchoMethod().id, 0, len);
    absl::SleepFor(absl::Milliseconds(150));
    ASSERT_TRUE(SendPayloadFdPacket(**c, 0, len, memfd->get()).ok());
    absl::StatusOr<local::IncomingMessage> reply =
        (*c)->WaitReply(absl::Seconds(10));
    late_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    if (!reply.ok()) {
      late_reply = reply.status();
    } else if (reply->header.status_code != 0) {
      late_reply = absl::Status(
          static_cast<absl::StatusCode>(reply->header.status_code),
          reply->payload);
    } else {
      late_reply = reply->payload == payload
                       ? std::string("ok")
                       : std::string("wrong payload");
    }
  }
  neighbour.Stop();
  absl::StatusOr<local::LocalServerStats> blocked = ChildBlockedStats(server);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  std::sort(cut_off_ms.begin(), cut_off_ms.end());
  Report("missing_memfd",
         absl::StrFormat(
             "attackers=%d (%d rounds of %d, 16 records each) cut_off=%d "
             "cut_off_ms_p50=%.0f max=%.0f (memfd_wait 500 ms) "
             "late_memfd_150ms=%s in %.0f ms server_rss_mib=%.1f "
             "server_fds=%d->%d %s %s",
             rounds * per_round, rounds, per_round, refused,
             Quantile(cut_off_ms, 0.5),
             cut_off_ms.empty() ? 0.0 : cut_off_ms.back(),
             late_reply.ok() ? *late_reply : late_reply.status().ToString(),
             late_ms, RssKib(server.pid()) / 1024.0, fds_before,
             CountFds(server.pid()), BlockedSummary(*blocked),
             neighbour.Summary()));
  EXPECT_EQ(refused, rounds * per_round);
  ASSERT_TRUE(late_reply.ok()) << late_reply.status();
  EXPECT_EQ(*late_reply, "ok");
  EXPECT_EQ(neighbour.failed(), 0);
  EXPECT_LT(LongestBlockedMs(*blocked),
            BlockedBoundMs());
}

// Whether the server has hung up `fd`, without reading anything from it.
bool HungUp(int fd) {
  struct pollfd p = {fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
}

TEST(PeerPaceTest, ClientThatNeverReadsItsControlSocket) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  // No reply data area: every reply over the inline limit goes by memfd,
  // and so by a PAYLOAD_FD packet.
  o.local.geometry.s2c_data_bytes = 0;
  o.local.reply_stall_timeout = absl::Milliseconds(500);
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  auto ch = MakeChannel(server.local_target(), dir.path());
  ASSERT_TRUE(ch.ok());
  Neighbour neighbour(*ch);
  neighbour.MeasureBaseline(static_cast<int>(Scaled(2000, 20000)));
  neighbour.Start();

  auto c = RawClient::Connect(dir.path() + "/p");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
  ASSERT_TRUE(slot.ok());
  const std::string payload(2048, 'p');
  local::SectionControl* control = (*c)->control();
  const absl::Time t0 = absl::Now();
  int sent = 0;
  bool hung_up = false;
  for (; sent < 20000 && absl::Now() - t0 < absl::Seconds(20); ++sent) {
    hung_up = HungUp((*c)->socket());
    if (hung_up) break;
    local::OutgoingMessage m;
    m.type = local::MessageType::kRequest;
    m.message_id = 1000 + sent;
    m.interface_slot = *slot;
    m.method_id = EchoMethod().id;
    m.deadline_ns = local::MonotonicNowNs() + int64_t{30} * 1000000000;
    m.payload = payload;
    if (!(*c)->Send(m).ok()) break;
    // The lie: every reply "collected", none read, no PAYLOAD_FD taken.
    local::SharedStore(control->reply.consumer_index,
                       local::SharedLoad(control->reply.producer_index));
  }
  const bool cut_off = WaitFor([&] { return HungUp((*c)->socket()); },
                               absl::Seconds(10));
  const double cut_off_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  neighbour.Stop();
  const local::LocalServerStats s = server.local()->stats();
  Report("unread_control_socket",
         absl::StrFormat("requests_sent=%d cut_off=%d after_ms=%.0f "
                         "cut_off_resource_exhausted=%llu %s %s",
                         sent, cut_off ? 1 : 0, cut_off_ms,
                         static_cast<unsigned long long>(
                             s.clients_cut_off_by_code[static_cast<int>(
                                 absl::StatusCode::kResourceExhausted)]),
                         BlockedSummary(s), neighbour.Summary()));
  EXPECT_TRUE(cut_off);
  EXPECT_GE(s.clients_cut_off_by_code[static_cast<int>(
                absl::StatusCode::kResourceExhausted)],
            1u);
  EXPECT_EQ(neighbour.failed(), 0);
  EXPECT_LT(LongestBlockedMs(s), BlockedBoundMs());
}

}  // namespace
}  // namespace lpc::reliability
