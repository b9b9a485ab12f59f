// End-to-end tests of the local transport: a real Unix socket port, real
// shared sections, servers and clients in separate processes where a test
// needs a peer to die or misbehave.
//
// Port sockets live in a fresh directory under /tmp (the Unix socket path
// limit of 108 bytes rules out Bazel's long $TEST_TMPDIR), removed at the
// end of each test.
#include "transports/local/local_transport.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"
#include "transports/local/internal/peer_pidfd.h"

namespace lpc::local {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::RawService;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

const MethodDescriptor& Echo() { return RawDescriptor().methods[0]; }
const MethodDescriptor& Fail() { return RawDescriptor().methods[1]; }
const MethodDescriptor& Block() { return RawDescriptor().methods[2]; }
const MethodDescriptor& Note() { return RawDescriptor().methods[3]; }
const MethodDescriptor& PeerMethod() { return RawDescriptor().methods[4]; }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lpc-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process running local_test_peer; killed on destruction.
class PeerProcess {
 public:
  PeerProcess(std::vector<std::string> args, const std::string& binary =
                                                 "transports/local/local_test_peer") {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::vector<char*> argv;
      std::string bin = binary;
      argv.push_back(bin.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~PeerProcess() {
    Kill();
    if (out_ >= 0) ::close(out_);
  }
  // Reads one line of the child's stdout, waiting at most `timeout`.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(10)) {
    std::string line;
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      struct pollfd p = {out_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

// A server in this process, serving RawService over the local port.
struct InProcessServer {
  explicit InProcessServer(const std::string& dir, const std::string& name,
                           LocalPortOptions po = {}, ServerOptions so = {})
      : server(so) {
    po.runtime_dir = dir;
    if (po.socket_mode == 0600) po.socket_mode = 0666;
    EXPECT_OK(server.RegisterService(&service));
    auto t = MakeLocalServerTransport(name, po);
    EXPECT_OK(t.status());
    transport = t->get();
    EXPECT_OK(server.AddTransport(std::move(*t)));
    start_status = server.Start();
  }
  RawService service;
  Server server;
  LocalServerTransport* transport = nullptr;
  absl::Status start_status;
};

std::shared_ptr<Channel> MakeChannel(const std::string& dir,
                                     const std::string& name,
                                     LocalChannelOptions lo = {},
                                     ChannelOptions co = {}) {
  lo.runtime_dir = dir;
  auto ch = CreateLocalChannel(name, co, lo);
  EXPECT_OK(ch.status());
  return *ch;
}

absl::StatusOr<std::string> CallEcho(Channel& ch, std::string payload,
                                     absl::Duration timeout = absl::Seconds(5)) {
  CallContext ctx;
  ctx.set_timeout(timeout);
  return ch.Call(RawDescriptor(), Echo(), &ctx, std::move(payload));
}

template <typename Pred>
bool WaitFor(Pred pred, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return pred();
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

// Echoes Pattern(size) for each size in turn; every reply must match byte
// for byte.
void EchoEachSize(Channel& ch, absl::Span<const size_t> sizes) {
  for (size_t size : sizes) {
    const std::string payload = Pattern(size);
    absl::StatusOr<std::string> reply = CallEcho(ch, payload);
    ASSERT_TRUE(reply.ok()) << size << ": " << reply.status();
    ASSERT_TRUE(*reply == payload) << size;
  }
}

TEST(LocalTransportTest, ContendedCpuShareOutsideZeroToOneIsRefused) {
  for (double share : {-0.1, 1.5, std::nan("")}) {
    LocalPortOptions po;
    po.runtime_dir = "/tmp";
    po.contended_cpu_share = share;
    EXPECT_THAT(MakeLocalServerTransport("share", po).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("contended_cpu_share")))
        << share;
  }
  for (double share : {0.0, 0.05, 1.0}) {
    LocalPortOptions po;
    po.runtime_dir = "/tmp";
    po.contended_cpu_share = share;
    EXPECT_OK(MakeLocalServerTransport("share", po).status()) << share;
  }
}

TEST(LocalTransportTest, RoundTripsInAllPayloadModesAcrossProcesses) {
  TempDir dir;
  PeerProcess server({"server", dir.path(), "echo"});
  ASSERT_EQ(server.ReadLine(), "READY");
  auto ch = MakeChannel(dir.path(), "echo");
  // Inline, data area (64 KiB < 1 MiB half), memfd (3 MiB > 1 MiB half).
  for (size_t size : {0, 5, 900, 64 << 10, 3 << 20}) {
    const std::string payload = Pattern(size);
    ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, payload));
    EXPECT_EQ(reply, payload) << size;
  }
  for (int i = 0; i < 500; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, absl::StrCat(i)));
    ASSERT_EQ(reply, absl::StrCat(i));
  }
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(std::string peer,
                       ch->Call(RawDescriptor(), PeerMethod(), &ctx, ""));
  EXPECT_THAT(peer, HasSubstr(absl::StrCat("pid=", ::getpid())));
  EXPECT_THAT(peer, HasSubstr("uid="));
  EXPECT_THAT(peer, HasSubstr("local:echo"));
}

TEST(LocalTransportTest, LargeBuffersAreReusedWithoutLeakingOldBytes) {
  TempDir dir;
  LocalPortOptions po;
  po.payload_buffer_cache_bytes = size_t{4} << 20;
  InProcessServer s(dir.path(), "big", po);
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "big");
  // Sizes that go down as well as up: a reused buffer must carry none of
  // a longer payload's bytes into a shorter one's reply.
  const size_t sizes[] = {900 << 10, 64 << 10, 300 << 10, 70 << 10, 5, 200 << 10};
  for (int round = 0; round < 5; ++round) {
    for (size_t size : sizes) {
      std::string payload = Pattern(size);
      if (!payload.empty()) payload[0] = static_cast<char>('a' + round);
      ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, payload));
      ASSERT_EQ(reply.size(), payload.size()) << size;
      ASSERT_TRUE(reply == payload) << size << " round " << round;
    }
  }
  // The last call's buffers go back after its reply has been sent.
  EXPECT_TRUE(WaitFor(
      [&] { return s.transport->stats().payload_buffer_bytes_kept > 0; }));
  const LocalServerStats st = s.transport->stats();
  // Five large calls per round, a request buffer each (a reply writes
  // itself into the data area: no buffer): from the second round on they
  // come from the kept ones.
  EXPECT_GE(st.payload_buffers_reused, 20u);
  EXPECT_LE(st.payload_buffer_bytes_kept, po.payload_buffer_cache_bytes);

  po.payload_buffer_cache_bytes = 0;
  po.large_payload_buffer_cache_bytes = 0;
  po.payload_memfd_cache_bytes = 0;
  InProcessServer none(dir.path(), "none", po);
  ASSERT_OK(none.start_status);
  auto ch2 = MakeChannel(dir.path(), "none");
  EchoEachSize(*ch2, sizes);
  EXPECT_EQ(none.transport->stats().payload_buffers_reused, 0u);
  EXPECT_EQ(none.transport->stats().payload_buffer_bytes_kept, 0u);
  EXPECT_EQ(none.transport->stats().payload_memfds_reused, 0u);
}

TEST(LocalTransportTest, VeryLargePayloadsReuseBuffersAndMemfdsWhileBusy) {
  TempDir dir;
  LocalPortOptions po;
  po.payload_buffer_cache_bytes = size_t{1} << 20;  // Large: above 256 KiB.
  po.large_payload_buffer_cache_bytes = size_t{32} << 20;
  po.payload_memfd_cache_bytes = uint64_t{32} << 20;
  // Nothing idles out during the rounds, however slow the machine.
  po.payload_cache_idle = absl::Hours(1);
  InProcessServer s(dir.path(), "huge", po);
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "huge");
  // 3 MiB and 2.5 MiB go as memfds (too large for the data area), 600 KiB
  // through the data area; each size is its own memfd size class. Sizes go
  // down as well as up, so a reused memfd or buffer holds a longer
  // payload's bytes when a shorter one is written into it.
  const size_t sizes[] = {3 << 20, 600 << 10, 5 << 19, 3 << 20, 5 << 19};
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    for (size_t size : sizes) {
      std::string payload = Pattern(size);
      payload[0] = static_cast<char>('a' + round);
      payload[size - 1] = static_cast<char>('A' + round);
      ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, payload));
      ASSERT_TRUE(reply == payload) << size << " round " << round;
    }
  }
  const LocalServerStats st = s.transport->stats();
  // 4 memfd replies per round: one new memfd per size class, the rest
  // written into kept ones that the client had read.
  EXPECT_EQ(st.payload_memfds_made + st.payload_memfds_reused, 4u * kRounds);
  EXPECT_LE(st.payload_memfds_made, 2u);
  EXPECT_LE(st.payload_memfd_bytes_kept, po.payload_memfd_cache_bytes);
  // Every large request after the first few finds a kept buffer (replies
  // write themselves into the data area or a memfd: no buffer).
  EXPECT_GE(st.payload_buffers_reused, 5u * (kRounds - 1));
  EXPECT_LE(st.payload_buffer_bytes_kept,
            po.payload_buffer_cache_bytes + po.large_payload_buffer_cache_bytes);
  // Kept, not freed: the last call's buffers go back once its reply is out.
  EXPECT_TRUE(WaitFor([&] {
    const LocalServerStats now = s.transport->stats();
    return now.payload_buffer_bytes_kept > 0 && now.payload_memfd_bytes_kept > 0;
  }));

  // With a short idle time, the server's tick gives them back once the
  // calls stop.
  po.payload_cache_idle = absl::Milliseconds(1);
  InProcessServer brief(dir.path(), "brief", po);
  ASSERT_OK(brief.start_status);
  auto ch2 = MakeChannel(dir.path(), "brief");
  EchoEachSize(*ch2, sizes);
  EXPECT_GT(brief.transport->stats().payload_memfds_made, 0u);
  EXPECT_TRUE(WaitFor([&] {
    const LocalServerStats now = brief.transport->stats();
    return now.payload_buffer_bytes_kept == 0 &&
           now.payload_memfd_bytes_kept == 0;
  }));
}

TEST(LocalTransportTest, ErrorsDeadlinesCancellationAndOneway) {
  TempDir dir;
  InProcessServer s(dir.path(), "p");
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "p");
  {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(5));
    std::string req = std::string(1, char(absl::StatusCode::kNotFound)) + "gone";
    EXPECT_THAT(ch->Call(RawDescriptor(), Fail(), &ctx, req),
                StatusIs(absl::StatusCode::kNotFound, "gone"));
  }
  {
    CallContext ctx;
    ctx.set_timeout(absl::Milliseconds(100));
    EXPECT_THAT(ch->Call(RawDescriptor(), Block(), &ctx, ""),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
  {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(10));
    const int before = s.service.cancels_seen();
    // The deadline call above may have expired while still queued (then it
    // never ran), so wait for one more blocked handler than now.
    const int blocked = s.service.blocked();
    std::thread canceller([&] {
      WaitFor([&] { return s.service.blocked() > blocked; });
      ctx.Cancel();
    });
    EXPECT_THAT(ch->Call(RawDescriptor(), Block(), &ctx, ""),
                StatusIs(absl::StatusCode::kCancelled));
    canceller.join();
    // The server-side context saw the CANCEL.
    EXPECT_TRUE(WaitFor([&] { return s.service.cancels_seen() > before; }));
  }
  {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(5));
    ASSERT_OK(ch->SendOneway(RawDescriptor(), Note(), &ctx, "note-1"));
    EXPECT_TRUE(WaitFor([&] { return s.service.notes().size() == 1; }));
    EXPECT_EQ(s.service.notes()[0], "note-1");
  }
  // Async calls, many in flight at once.
  std::atomic<int> ok{0}, done{0};
  std::vector<std::unique_ptr<CallContext>> ctxs;
  for (int i = 0; i < 50; ++i) {
    ctxs.push_back(std::make_unique<CallContext>());
    ctxs.back()->set_timeout(absl::Seconds(5));
    ch->StartCall(RawDescriptor(), Echo(), ctxs.back().get(), absl::StrCat(i),
                  [&, i](absl::StatusOr<std::string> r) {
                    ok += r.ok() && *r == absl::StrCat(i);
                    done++;
                  });
  }
  EXPECT_TRUE(WaitFor([&] { return done.load() == 50; }));
  EXPECT_EQ(ok.load(), 50);
}

// Every spin policy on both sides: block (0), spin-then-block (default) and
// spin only (InfiniteDuration, bounded by the call's deadline). Calls
// succeed, a blocked handler still sees its CANCEL (the doorbell is armed
// while handlers run), deadlines end calls, and shutdown is not held up.
TEST(LocalTransportTest, EverySpinPolicyWorks) {
  const absl::Duration policies[] = {absl::ZeroDuration(),
                                     absl::Microseconds(20),
                                     absl::InfiniteDuration()};
  for (absl::Duration server_spin : policies) {
    for (absl::Duration client_spin : policies) {
      SCOPED_TRACE(absl::StrCat("server spin ", absl::FormatDuration(server_spin),
                                ", client spin ",
                                absl::FormatDuration(client_spin)));
      TempDir dir;
      LocalPortOptions po;
      po.spin = server_spin;
      InProcessServer s(dir.path(), "spin", po);
      ASSERT_OK(s.start_status);
      LocalChannelOptions lo;
      lo.spin = client_spin;
      auto ch = MakeChannel(dir.path(), "spin", lo);
      for (int i = 0; i < 200; ++i) {
        ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, absl::StrCat(i)));
        ASSERT_EQ(reply, absl::StrCat(i));
      }
      {
        CallContext ctx;
        ctx.set_timeout(absl::Milliseconds(50));
        const absl::Time start = absl::Now();
        EXPECT_THAT(ch->Call(RawDescriptor(), Block(), &ctx, ""),
                    StatusIs(absl::StatusCode::kDeadlineExceeded));
        // Liveness, not speed: the spinning caller gave up at its deadline.
        EXPECT_LT(absl::Now() - start, absl::Seconds(5));
      }
      {
        CallContext ctx;
        ctx.set_timeout(absl::Seconds(10));
        const int blocked = s.service.blocked();
        const int before = s.service.cancels_seen();
        std::thread canceller([&] {
          WaitFor([&] { return s.service.blocked() > blocked; });
          ctx.Cancel();
        });
        EXPECT_THAT(ch->Call(RawDescriptor(), Block(), &ctx, ""),
                    StatusIs(absl::StatusCode::kCancelled));
        canceller.join();
        EXPECT_TRUE(WaitFor([&] { return s.service.cancels_seen() > before; }));
      }
      ASSERT_OK_AND_ASSIGN(std::string reply, CallEcho(*ch, "after"));
      EXPECT_EQ(reply, "after");
    }
  }
}

// One client: no worker watches the doorbells while a handler runs, so a
// handler that blocks must be noticed (the I/O thread's watchdog) and the
// same client's next call served by another worker meanwhile.
TEST(LocalTransportTest, SecondCallRunsWhileFirstHandlerBlocks) {
  TempDir dir;
  InProcessServer s(dir.path(), "wd");
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "wd");
  ASSERT_OK(CallEcho(*ch, "warm").status());
  CallContext block_ctx;
  block_ctx.set_timeout(absl::Seconds(20));
  absl::Status blocked_status;
  std::thread blocker([&] {
    blocked_status =
        ch->Call(RawDescriptor(), Block(), &block_ctx, "").status();
  });
  ASSERT_TRUE(WaitFor([&] { return s.service.blocked() >= 1; }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string reply,
                         CallEcho(*ch, absl::StrCat("while-", i),
                                  absl::Seconds(5)));
    EXPECT_EQ(reply, absl::StrCat("while-", i));
  }
  EXPECT_EQ(s.service.cancels_seen(), 0);  // The blocker is still blocked.
  block_ctx.Cancel();
  blocker.join();
  EXPECT_THAT(blocked_status, StatusIs(absl::StatusCode::kCancelled));
}

TEST(LocalTransportTest, ConcurrentCallersShareOneConnection) {
  TempDir dir;
  InProcessServer s(dir.path(), "mt");
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "mt");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string p = absl::StrCat(t, ":", i, Pattern(i * 37 % 3000));
        auto r = CallEcho(*ch, p);
        ok += r.ok() && *r == p;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6 * 200);
}

TEST(LocalTransportTest, InterfaceVersionCheck) {
  TempDir dir;
  InProcessServer s(dir.path(), "v");
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "v");
  InterfaceDescriptor newer = RawDescriptor();
  newer.version = {3, 0};
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  EXPECT_THAT(ch->Call(newer, Echo(), &ctx, "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("3.0"), HasSubstr("2.1"))));
  InterfaceDescriptor minor = RawDescriptor();
  minor.version = {2, 9};
  CallContext ctx2;
  ctx2.set_timeout(absl::Seconds(5));
  EXPECT_THAT(ch->Call(minor, Echo(), &ctx2, "x"), IsOk());
}

TEST(LocalTransportTest, OversizedRequestFailsAndConnectionSurvives) {
  TempDir dir;
  ServerOptions so;
  so.max_message_size = 1 << 20;
  InProcessServer s(dir.path(), "big", {}, so);
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "big");
  EXPECT_THAT(CallEcho(*ch, std::string(2 << 20, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ChannelOptions small;
  small.max_message_size = 1000;
  auto ch2 = MakeChannel(dir.path(), "big", {}, small);
  EXPECT_THAT(CallEcho(*ch2, std::string(2000, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(std::string r, CallEcho(*ch, "still fine"));
  EXPECT_EQ(r, "still fine");
  EXPECT_EQ(s.transport->stats().clients_cut_off, 0u);
}

TEST(LocalTransportTest, KilledServerFailsPendingCallsAndClientReconnects) {
  TempDir dir;
  auto server = std::make_unique<PeerProcess>(
      std::vector<std::string>{"server", dir.path(), "k"});
  ASSERT_EQ(server->ReadLine(), "READY");
  auto ch = MakeChannel(dir.path(), "k");
  ASSERT_OK(CallEcho(*ch, "warm").status());
  constexpr int kCalls = 8;
  std::vector<absl::Status> results(kCalls);
  std::vector<absl::Duration> latency(kCalls);
  std::atomic<int> started{0};
  std::atomic<int64_t> killed_at_ns{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      CallContext ctx;
      ctx.set_timeout(absl::Seconds(20));
      started++;
      results[i] =
          ch->Call(RawDescriptor(), Block(), &ctx, "").status();
      latency[i] = absl::Now() - absl::FromUnixNanos(killed_at_ns.load());
    });
  }
  WaitFor([&] { return started.load() == kCalls; });
  absl::SleepFor(absl::Milliseconds(50));  // Let the calls reach the server.
  killed_at_ns = absl::ToUnixNanos(absl::Now());
  server->Kill();
  for (auto& t : threads) t.join();
  absl::Duration worst;
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_THAT(results[i], StatusIs(absl::StatusCode::kUnavailable)) << i;
    worst = std::max(worst, latency[i]);
  }
  // Generous bound (the design target is 100 ms; this only proves no hang).
  EXPECT_LT(worst, absl::Seconds(5));
  std::fprintf(stderr, "pending calls failed %s after kill -9\n",
               absl::FormatDuration(worst).c_str());
  // A new server on the same name (the stale socket file is replaced).
  server = std::make_unique<PeerProcess>(
      std::vector<std::string>{"server", dir.path(), "k"});
  ASSERT_EQ(server->ReadLine(), "READY");
  bool reconnected = WaitFor([&] {
    return CallEcho(*ch, "again", absl::Seconds(1)).ok();
  });
  EXPECT_TRUE(reconnected);
}

int CountFds() {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

int CountSectionMaps() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find("lpc-section") != std::string::npos;
  return n;
}

TEST(LocalTransportTest, KilledClientIsCleanedUp) {
  TempDir dir;
  InProcessServer s(dir.path(), "c");
  ASSERT_OK(s.start_status);
  const int fds = CountFds();
  const int maps = CountSectionMaps();
  {
    PeerProcess client({"block", dir.path(), "c"});
    ASSERT_EQ(client.ReadLine(), "CALLING");
    ASSERT_TRUE(WaitFor([&] { return s.service.blocked() >= 1; }));
    EXPECT_GT(CountSectionMaps(), maps);
    client.Kill();
  }
  // The handler is cancelled and every fd and mapping goes away.
  EXPECT_TRUE(WaitFor([&] { return s.service.cancels_seen() >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return CountFds() == fds; })) << CountFds() << " vs " << fds;
  EXPECT_TRUE(WaitFor([&] { return CountSectionMaps() == maps; }));
  EXPECT_EQ(s.transport->stats().connections_open, 0u);
}

TEST(LocalTransportTest, HostileClientIsCutOffOthersUnaffected) {
  TempDir dir;
  InProcessServer s(dir.path(), "h");
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "h");
  PeerProcess hostile({"hostile", dir.path(), "h", "300"});
  int ok = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string p = Pattern(i * 53 % 4000);
    auto r = CallEcho(*ch, p);
    ok += r.ok() && *r == p;
  }
  EXPECT_EQ(ok, 300);
  const int status = hostile.Wait();
  EXPECT_TRUE(WIFEXITED(status)) << status;  // Its calls failed; no crash.
  EXPECT_GE(s.transport->stats().clients_cut_off, 1u);
  ASSERT_OK_AND_ASSIGN(std::string r, CallEcho(*ch, "after"));
  EXPECT_EQ(r, "after");
}

TEST(LocalTransportTest, AccessPolicyRefusesOtherUsers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
  TempDir dir;
  LocalPortOptions po;
  po.allowed_uids = {0};
  InProcessServer s(dir.path(), "acl", po);
  ASSERT_OK(s.start_status);
  // The helper must be reachable by uid 65534: copy it into the tmp dir.
  const std::string bin = dir.path() + "/peer";
  std::filesystem::copy_file("transports/local/local_test_peer", bin);
  ::chmod(bin.c_str(), 0755);
  PeerProcess client({"--reuid=65534", "--regid=65534", "--clear-groups", bin,
                      "call", dir.path(), "acl"},
                     "/usr/bin/setpriv");
  EXPECT_EQ(client.ReadLine(),
            absl::StrCat(static_cast<int>(absl::StatusCode::kPermissionDenied)));
  EXPECT_GE(s.transport->stats().connections_refused, 1u);
  // Root is admitted.
  PeerProcess root_client({"call", dir.path(), "acl"});
  EXPECT_EQ(root_client.ReadLine(), "0");
}

TEST(LocalTransportTest, AcceptCallbackSeesCredentials) {
  TempDir dir;
  LocalPortOptions po;
  std::atomic<int> seen_pid{0};
  po.accept_callback = [&](const PeerCredentials& c) {
    seen_pid = c.pid;
    return false;
  };
  InProcessServer s(dir.path(), "cb", po);
  ASSERT_OK(s.start_status);
  auto ch = MakeChannel(dir.path(), "cb");
  EXPECT_THAT(CallEcho(*ch, "x"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(seen_pid.load(), ::getpid());
}

TEST(LocalTransportTest, AcceptCallbackGetsAPidfdThatOutlivesThePid) {
  TempDir dir;
  LocalPortOptions po;
  std::mutex mu;
  std::shared_ptr<const UniqueFd> kept;  // mu
  int pid_in_callback = 0, pid_of_pidfd = 0;  // mu
  po.accept_callback = [&](const PeerCredentials& c) {
    std::lock_guard<std::mutex> lock(mu);
    kept = c.pidfd;
    pid_in_callback = c.pid;
    if (c.pidfd != nullptr) pid_of_pidfd = internal::PidOfPidfd(c.pidfd->get());
    return false;
  };
  InProcessServer s(dir.path(), "pidfd", po);
  ASSERT_OK(s.start_status);
  pid_t child_pid = 0;
  {
    PeerProcess client({"call", dir.path(), "pidfd"});
    child_pid = client.pid();
    EXPECT_EQ(client.ReadLine(),
              std::to_string(static_cast<int>(absl::StatusCode::kPermissionDenied)));
  }  // Killed if still running, and reaped.
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(pid_in_callback, child_pid);
  EXPECT_EQ(pid_of_pidfd, child_pid);
  // The client is gone and reaped: its pidfd names no process now, whoever
  // is given its pid next.
  EXPECT_EQ(internal::PidOfPidfd(kept->get()), -1);
}

TEST(LocalTransportTest, ClientDemandsServerUid) {
  TempDir dir;
  InProcessServer s(dir.path(), "sq");
  ASSERT_OK(s.start_status);
  LocalChannelOptions lo;
  lo.expected_server_uid = ::geteuid() + 12345;
  auto ch = MakeChannel(dir.path(), "sq", lo);
  EXPECT_THAT(CallEcho(*ch, "x"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("uid")));
  LocalChannelOptions right;
  right.expected_server_uid = ::geteuid();
  auto ch2 = MakeChannel(dir.path(), "sq", right);
  EXPECT_OK(CallEcho(*ch2, "x").status());
}

TEST(LocalTransportTest, StaleSocketIsReplacedLiveServerIsNot) {
  TempDir dir;
  {
    // A socket file whose server is gone.
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    const std::string path = dir.path() + "/st";
    std::strcpy(addr.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  InProcessServer s(dir.path(), "st");
  ASSERT_OK(s.start_status);
  InProcessServer second(dir.path(), "st");
  EXPECT_THAT(second.start_status, StatusIs(absl::StatusCode::kAlreadyExists));
  auto ch = MakeChannel(dir.path(), "st");
  EXPECT_OK(CallEcho(*ch, "x").status());
}

TEST(LocalTransportTest, ShutdownFailsUnfinishedCallsWithUnavailable) {
  TempDir dir;
  ServerOptions so;
  so.shutdown_grace = absl::Milliseconds(100);
  auto s = std::make_unique<InProcessServer>(dir.path(), "sd",
                                             LocalPortOptions{}, so);
  ASSERT_OK(s->start_status);
  auto ch = MakeChannel(dir.path(), "sd");
  absl::Status blocked;
  std::thread t([&] {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(20));
    blocked = ch->Call(RawDescriptor(), Block(), &ctx, "").status();
  });
  ASSERT_TRUE(WaitFor([&] { return s->service.blocked() >= 1; }));
  s->server.Shutdown();
  t.join();
  EXPECT_THAT(blocked, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(CallEcho(*ch, "x", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace lpc::local
