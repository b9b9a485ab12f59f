// Servers that try to hang their clients (docs/reliability.md, "Hostile
// servers, names and identity"). Each attack runs while an honest neighbour, a second
// channel of the same process to a real server, calls in a loop; the
// neighbour must see no failed call.
//   - A squatter holds the port name with a full listen backlog: the
//     client's call ends by its deadline (DEADLINE_EXCEEDED) or its
//     connect_timeout (UNAVAILABLE), whichever comes first, and so do the
//     other calls of the channel that wait for the one connecting.
//   - A squatter accepts (its backlog has room) and never welcomes.
//   - A server clears O_NONBLOCK on the doorbell eventfd it shares with the
//     client and fills the eventfd's counter (and keeps refilling it): the
//     client's ring does not hang, and the call ends by its deadline.
// Each check waits for the call to return; the bound asserted is the
// call's own deadline plus a generous margin for a loaded machine, and the
// figure itself is reported.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/frame.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::reliability {
namespace {

using ::testing::HasSubstr;
using ::lpc::testing::StatusIs;
using local::UniqueFd;

// What a call may take beyond its own bound on a loaded 2-CPU machine
// (TSan included) before it counts as hung; a hang is seconds to forever.
constexpr absl::Duration kSlack = absl::Seconds(1);

// A channel of this process to a real server, calling Echo in a loop until
// destroyed; counts failures and keeps latencies.
class Neighbour {
 public:
  explicit Neighbour(const std::string& dir) : server_(Options(dir)) {
    if (!server_.start_status().ok()) return;
    auto ch = MakeChannel(server_.local_target(), dir);
    if (!ch.ok()) return;
    channel_ = *ch;
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        const int64_t start = MonoNs();
        absl::StatusOr<std::string> r =
            CallRel(*channel_, EchoMethod(), "n", absl::Seconds(5));
        if (!r.ok()) failures_.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu_);
        us_.push_back(static_cast<double>(MonoNs() - start) / 1e3);
      }
    });
  }
  ~Neighbour() { Stop(); }
  bool started() const { return channel_ != nullptr; }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int failures() const { return failures_.load(); }
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrFormat("neighbour_calls=%d neighbour_failed=%d "
                           "neighbour_p99_us=%.0f",
                           us_.size(), failures_.load(), Quantile(us_, 0.99));
  }

 private:
  static TestServerOptions Options(const std::string& dir) {
    TestServerOptions o;
    o.dir = dir;
    o.local_name = "neighbour";
    return o;
  }
  TestServer server_;
  std::shared_ptr<Channel> channel_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::vector<double> us_;  // mu_
  std::thread thread_;
};

// A listening socket at <dir>/<name> that nobody accepts on.
UniqueFd Listen(const std::string& dir, const std::string& name, int backlog) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string path = dir + "/" + name;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (!fd ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      ::listen(fd.get(), backlog) != 0) {
    return UniqueFd();
  }
  return fd;
}

// Fills the backlog of the listener at <dir>/<name>: connects until the
// kernel says EAGAIN. Returns the queued connections (kept open).
std::vector<UniqueFd> FillBacklog(const std::string& dir,
                                  const std::string& name) {
  std::vector<UniqueFd> queued;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string path = dir + "/" + name;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  for (int i = 0; i < 1024; ++i) {
    UniqueFd c(
        ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr),
                  sizeof(addr)) != 0) {
      EXPECT_EQ(errno, EAGAIN) << std::strerror(errno);
      return queued;
    }
    queued.push_back(std::move(c));
  }
  ADD_FAILURE() << "the backlog never filled";
  return queued;
}

struct Timed {
  absl::Status status;
  absl::Duration took;
};

Timed TimedCall(Channel& ch, absl::Duration timeout) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> r = CallRel(ch, EchoMethod(), "x", timeout);
  return {r.status(), absl::Now() - start};
}

std::shared_ptr<Channel> Victim(const std::string& dir, const std::string& name,
                                absl::Duration connect_timeout) {
  local::LocalChannelOptions lo;
  lo.connect_timeout = connect_timeout;
  auto ch = MakeChannel(absl::StrCat("local:", name), dir, {}, lo);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

TEST(HostileServerTest, SquatterWithAFullBacklogCannotHangAClient) {
  TempDir dir;
  Neighbour neighbour(dir.path());
  ASSERT_TRUE(neighbour.started());
  UniqueFd squatter = Listen(dir.path(), "sq", 0);
  ASSERT_TRUE(squatter);
  std::vector<UniqueFd> queued = FillBacklog(dir.path(), "sq");

  // The call's deadline comes first.
  auto ch = Victim(dir.path(), "sq", absl::Seconds(2));
  ASSERT_NE(ch, nullptr);
  const Timed by_deadline = TimedCall(*ch, absl::Milliseconds(300));
  EXPECT_THAT(by_deadline.status,
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("listen backlog stayed full")));
  EXPECT_LT(by_deadline.took, absl::Milliseconds(300) + kSlack);

  // connect_timeout comes first.
  auto ch2 = Victim(dir.path(), "sq", absl::Milliseconds(200));
  ASSERT_NE(ch2, nullptr);
  const Timed by_timeout = TimedCall(*ch2, absl::Seconds(10));
  EXPECT_THAT(by_timeout.status,
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("connect_timeout (200ms) passed")));
  EXPECT_LT(by_timeout.took, absl::Milliseconds(200) + kSlack);

  // Calls of one channel that wait for another call's connect end by their
  // own deadlines, shorter than the connecting call's.
  auto ch3 = Victim(dir.path(), "sq", absl::Seconds(30));
  ASSERT_NE(ch3, nullptr);
  const std::vector<absl::Duration> timeouts = {
      absl::Seconds(3), absl::Milliseconds(100), absl::Milliseconds(400)};
  std::vector<Timed> results(timeouts.size());
  std::vector<std::thread> callers;
  for (size_t i = 0; i < timeouts.size(); ++i) {
    callers.emplace_back(
        [&, i] { results[i] = TimedCall(*ch3, timeouts[i]); });
  }
  for (std::thread& t : callers) t.join();
  absl::Duration worst_over = absl::ZeroDuration();
  for (size_t i = 0; i < timeouts.size(); ++i) {
    EXPECT_THAT(results[i].status,
                StatusIs(absl::StatusCode::kDeadlineExceeded,
                         HasSubstr("cannot connect")))
        << i;
    EXPECT_LT(results[i].took, timeouts[i] + kSlack) << i;
    worst_over = std::max(worst_over, results[i].took - timeouts[i]);
    std::printf("waiter %zu: timeout %s took %s: %s\n", i,
                absl::FormatDuration(timeouts[i]).c_str(),
                absl::FormatDuration(results[i].took).c_str(),
                results[i].status.ToString().c_str());
  }
  neighbour.Stop();
  EXPECT_EQ(neighbour.failures(), 0);
  Report("hostile_server_squatter",
         absl::StrFormat("deadline_300ms_took_ms=%.1f "
                         "connect_timeout_200ms_took_ms=%.1f "
                         "waiters_worst_past_deadline_ms=%.1f %s",
                         absl::ToDoubleMilliseconds(by_deadline.took),
                         absl::ToDoubleMilliseconds(by_timeout.took),
                         absl::ToDoubleMilliseconds(worst_over),
                         neighbour.Summary()));
}

TEST(HostileServerTest, SquatterThatNeverWelcomesCannotHangAClient) {
  TempDir dir;
  UniqueFd squatter = Listen(dir.path(), "mute", 16);
  ASSERT_TRUE(squatter);
  auto ch = Victim(dir.path(), "mute", absl::Seconds(2));
  ASSERT_NE(ch, nullptr);
  const Timed r = TimedCall(*ch, absl::Milliseconds(300));
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 HasSubstr("handshake failed")));
  EXPECT_LT(r.took, absl::Milliseconds(300) + kSlack);
  Report("hostile_server_mute",
         absl::StrFormat("deadline_300ms_took_ms=%.1f",
                         absl::ToDoubleMilliseconds(r.took)));
}

// A fake server that accepts one client on <dir>/<name> and welcomes it
// with a valid section whose request ring says the server sleeps (so the
// client rings), and a doorbell eventfd that it then makes blocking and
// fills; with `refill`, a thread keeps refilling the counter whenever the
// client drains it.
class WedgingServer {
 public:
  WedgingServer(const std::string& dir, const std::string& name, bool refill)
      : listener_(Listen(dir, name, 16)), refill_(refill) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~WedgingServer() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool listening() const { return static_cast<bool>(listener_); }
  bool welcomed() const { return welcomed_.load(); }

 private:
  void Serve() {
    struct pollfd p = {listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return;
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    absl::StatusOr<local::SectionLayout> layout =
        local::ComputeLayout(local::SectionGeometry{});
    if (!layout.ok()) return;
    absl::StatusOr<UniqueFd> memfd =
        local::CreateSealedMemfd("wedge", layout->total_size);
    if (!memfd.ok()) return;
    void* base = ::mmap(nullptr, layout->total_size, PROT_READ | PROT_WRITE,
                        MAP_SHARED, memfd->get(), 0);
    if (base == MAP_FAILED) return;
    auto* bytes = static_cast<std::byte*>(base);
    local::InitializeSection(bytes, *layout);
    // "Asleep": the client's next publish rings the doorbell.
    local::ControlOf(bytes, *layout)->request.consumer_sleeping = 1;
    UniqueFd bell(::eventfd(0, EFD_CLOEXEC));  // Blocking.
    const uint64_t full = UINT64_MAX - 1;
    if (::write(bell.get(), &full, sizeof(full)) != sizeof(full)) return;
    const local::SectionGeometry& g = layout->geometry;
    local::WelcomeBody w{g.request_slots,    g.reply_slots,
                         g.c2s_data_bytes,   g.s2c_data_bytes,
                         g.max_record_slots, 64 << 10,
                         layout->total_size};
    const int fds[2] = {memfd->get(), bell.get()};
    if (!local::SendPacket(conn.get(),
                           local::EncodeControl(local::ControlType::kWelcome,
                                                &w, sizeof(w)),
                           fds)
             .ok()) {
      return;
    }
    welcomed_.store(true);
    std::thread refiller;
    if (refill_) {
      // Blocks in write until the client drains, then fills again.
      refiller = std::thread([&] {
        while (!stop_.load()) {
          if (::write(bell.get(), &full, sizeof(full)) < 0) break;
        }
      });
    }
    while (!stop_.load()) {
      struct pollfd c = {conn.get(), POLLIN, 0};
      ::poll(&c, 1, 20);
      local::RecvPacket(conn.get(), absl::InfinitePast()).IgnoreError();
    }
    if (refiller.joinable()) {
      // Once the bell is non-blocking no refill blocks any more, and the
      // read wakes one that blocked before.
      const int flags = ::fcntl(bell.get(), F_GETFL);
      ::fcntl(bell.get(), F_SETFL, flags | O_NONBLOCK);
      uint64_t v;
      (void)!::read(bell.get(), &v, sizeof(v));
      refiller.join();
    }
    ::munmap(base, layout->total_size);
  }

  UniqueFd listener_;
  const bool refill_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> welcomed_{false};
  std::thread thread_;
};

void ExpectWedgedBellEndsTheCall(bool refill) {
  TempDir dir;
  Neighbour neighbour(dir.path());
  ASSERT_TRUE(neighbour.started());
  WedgingServer wedge(dir.path(), "wedge", refill);
  ASSERT_TRUE(wedge.listening());
  auto ch = Victim(dir.path(), "wedge", absl::Seconds(2));
  ASSERT_NE(ch, nullptr);
  const absl::Duration timeout = absl::Milliseconds(500);
  const Timed r = TimedCall(*ch, timeout);
  EXPECT_TRUE(WaitFor([&] { return wedge.welcomed(); }));
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr("wedged its doorbell")));
  EXPECT_LT(r.took, timeout + kSlack);
  // The channel stays usable: its next call reconnects (and, with nobody
  // accepting any more, ends by its deadline).
  const Timed again = TimedCall(*ch, absl::Milliseconds(200));
  EXPECT_FALSE(again.status.ok());
  EXPECT_LT(again.took, absl::Milliseconds(200) + kSlack);
  neighbour.Stop();
  EXPECT_EQ(neighbour.failures(), 0);
  Report(refill ? "hostile_server_doorbell_refilled" : "hostile_server_doorbell",
         absl::StrFormat("call_500ms_took_ms=%.1f status=%d %s",
                         absl::ToDoubleMilliseconds(r.took),
                         static_cast<int>(r.status.code()),
                         neighbour.Summary()));
}

TEST(HostileServerTest, BlockingFullDoorbellCannotHangAClient) {
  ExpectWedgedBellEndsTheCall(/*refill=*/false);
}

TEST(HostileServerTest, RefilledBlockingDoorbellCannotHangAClient) {
  ExpectWedgedBellEndsTheCall(/*refill=*/true);
}

}  // namespace
}  // namespace lpc::reliability
