// Descriptors carried with calls on the local transport
// (docs/local-transport.md, "Handles"), between this process and a server
// in a child process (handles_test_peer, serving lpc.test.Handles):
//   - a pipe and a sealed memfd each way, used on the other side;
//   - 10,000 calls with descriptors, after which both processes' open
//     descriptors (/proc/<pid>/fd) are back at their baseline;
//   - hostile clients: 1,000 descriptors, descriptors no record announces,
//     descriptors a record announces and never sends, a table the
//     handler's reference check refuses: each is cut off with its reason
//     counted, and the server's descriptors are back at their baseline;
//   - a hostile server whose reply tables break the rules: the call fails
//     with INTERNAL and the client closes the connection.
// Every wait is on a condition with a deadline.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/call_context.h"
#include "runtime/fd.h"
#include "runtime/handles.h"
#include "testing/status_matchers.h"
#include "transports/local/control_socket.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/goodbye_testing.h"
#include "transports/local/handles_test_service.h"
#include "transports/local/stream_test_service.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/local_transport.h"
#include "testing/temp_dir.h"

namespace lpc::local {
namespace {

using ::lpc::testing::HandleMethod;
using ::lpc::testing::HandlesDescriptor;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

// Open descriptors of process `pid` (entries of /proc/<pid>/fd).
int CountFds(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // The directory stream's own descriptor, if ours.
}

// What `pid`'s descriptors are, for a failure's message.
std::string ListFds(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    absl::StrAppend(&out, e.path().filename().string(), "->",
                    std::filesystem::read_symlink(e.path(), ec).string(), " ");
  }
  return out;
}

// Waits until `pid` has `want` descriptors open (the closer thread closes
// asynchronously); returns the last count seen.
int WaitForFds(pid_t pid, int want, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  int n = CountFds(pid);
  while (n != want && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(5));
    n = CountFds(pid);
  }
  return n;
}

using ::lpc::testing::TempDir;

// handles_test_peer in a child process; killed on destruction.
class Peer {
 public:
  Peer(const std::string& dir, const std::string& name) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::string bin = "transports/local/handles_test_peer";
      std::string d = dir, n = name;
      char* argv[] = {bin.data(), d.data(), n.data(), nullptr};
      ::execv(argv[0], argv);
      _exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    // "READY <pid>"
    std::string line;
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      struct pollfd p = {out_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c == '\n') break;
      line += c;
    }
    ready_ = line.rfind("READY ", 0) == 0;
  }
  ~Peer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool ready_ = false;
};

struct Reply {
  std::string bytes;
  std::vector<Fd> fds;
};

// One call of lpc.test.Handles `method` carrying duplicates of `fds`.
absl::StatusOr<Reply> CallWith(Channel& ch, uint32_t method,
                               std::string request,
                               const std::vector<int>& fds = {}) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  HandleTable& t = ::lpc::internal::CallHandles::request(ctx);
  for (int fd : fds) {
    absl::StatusOr<uint32_t> i = t.Add(Fd::Duplicate(fd).value());
    if (!i.ok()) return i.status();
  }
  absl::StatusOr<std::string> r =
      ch.Call(HandlesDescriptor(), HandleMethod(method), &ctx,
              std::move(request));
  if (!r.ok()) return r.status();
  Reply out;
  out.bytes = std::move(*r);
  if (HandleTable* rt = ::lpc::internal::CallHandles::reply_if_any(ctx)) {
    for (size_t i = 1; i <= rt->size(); ++i) {
      absl::StatusOr<Fd> fd = rt->Take(static_cast<uint32_t>(i));
      if (!fd.ok()) return fd.status();
      out.fds.push_back(*std::move(fd));
    }
  }
  return out;
}

// The server's Stats, parsed.
std::map<std::string, uint64_t> Stats(Channel& ch) {
  std::map<std::string, uint64_t> out;
  absl::StatusOr<Reply> r = CallWith(ch, 9, "");
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  for (absl::string_view line : absl::StrSplit(r->bytes, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, '=');
    uint64_t v = 0;
    if (absl::SimpleAtoi(kv.second, &v)) out[kv.first] = v;
  }
  return out;
}

class HandlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_ = std::make_unique<Peer>(dir_.path(), "h");
    ASSERT_TRUE(peer_->ready());
    LocalChannelOptions lo;
    lo.runtime_dir = dir_.path();
    absl::StatusOr<std::shared_ptr<Channel>> ch =
        CreateLocalChannel("h", {}, lo);
    ASSERT_TRUE(ch.ok()) << ch.status();
    channel_ = *ch;
    // Connected and bound: the baselines below include the connection.
    // (A call without descriptors: a reply's descriptors close on the
    // server's closer thread a moment after the call.)
    ASSERT_TRUE(CallWith(*channel_, 9, "").ok());
  }

  std::string path() const { return dir_.path() + "/h"; }

  TempDir dir_{"lpc_handles_"};
  std::unique_ptr<Peer> peer_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(HandlesTest, APipeEachWayWorksOnTheOtherSide) {
  // Client -> server: the server reads what the client wrote.
  {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    Fd r(p[0]), w(p[1]);
    ASSERT_TRUE(testing::WriteAll(w.get(), "written by the client").ok());
    w.reset();  // The server reads to the end.
    absl::StatusOr<Reply> got = CallWith(*channel_, 1, "", {r.get()});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->bytes, "written by the client");
  }
  // Client -> server, the write end: the server writes, the client reads.
  {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    Fd r(p[0]), w(p[1]);
    absl::StatusOr<Reply> got =
        CallWith(*channel_, 2, "written by the server", {w.get()});
    ASSERT_TRUE(got.ok()) << got.status();
    w.reset();  // Ours; the server closed its own.
    absl::StatusOr<std::string> read = testing::ReadToEnd(r.get());
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, "written by the server");
  }
  // Server -> client: a pipe the server filled.
  {
    absl::StatusOr<Reply> got = CallWith(*channel_, 3, "from the server");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->fds.size(), 1u);
    EXPECT_EQ(got->bytes, "1");  // The index its reply names.
    // Received descriptors are close-on-exec.
    EXPECT_EQ(::fcntl(got->fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    absl::StatusOr<std::string> read = testing::ReadToEnd(got->fds[0].get());
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, "from the server");
  }
}

TEST_F(HandlesTest, ASealedMemfdEachWayIsReadByTheReceiver) {
  absl::StatusOr<Fd> mine = testing::MakeSealedMemfd("sealed by the client");
  ASSERT_TRUE(mine.ok()) << mine.status();
  absl::StatusOr<Reply> got = CallWith(*channel_, 5, "", {mine->get()});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->bytes, "sealed by the client");

  // An unsealed memfd fails the kind check: INVALID_ARGUMENT, not a
  // protocol error (the connection stays).
  Fd unsealed(::memfd_create("x", MFD_CLOEXEC));
  EXPECT_THAT(CallWith(*channel_, 5, "", {unsealed.get()}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memfd")));

  got = CallWith(*channel_, 4, "sealed by the server");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->fds.size(), 1u);
  EXPECT_TRUE(CheckHandleKind(got->fds[0], HandleKind::kSealedMemfd, "reply")
                  .ok());
  std::string bytes(64, '\0');
  const ssize_t n = ::pread(got->fds[0].get(), bytes.data(), bytes.size(), 0);
  ASSERT_GT(n, 0);
  bytes.resize(static_cast<size_t>(n));
  EXPECT_EQ(bytes, "sealed by the server");
  EXPECT_EQ(Stats(*channel_)["cut_off"], 0u);
}

TEST_F(HandlesTest, TenThousandCallsLeaveNoDescriptorOpen) {
  const int mine = CountFds(::getpid());
  const int theirs = CountFds(peer_->pid());
  const std::string mine_list = ListFds(::getpid());
  const std::string theirs_list = ListFds(peer_->pid());
  ASSERT_GT(mine, 0);
  ASSERT_GT(theirs, 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd r(p[0]), w(p[1]);
  constexpr int kCalls = 10000;
  for (int i = 0; i < kCalls; ++i) {
    // Two descriptors there and back (Echo), or one back (MakePipe).
    absl::StatusOr<Reply> got =
        i % 2 == 0 ? CallWith(*channel_, 6, "e", {r.get(), w.get()})
                   : CallWith(*channel_, 3, "p");
    ASSERT_TRUE(got.ok()) << i << ": " << got.status();
    ASSERT_EQ(got->fds.size(), i % 2 == 0 ? 2u : 1u);
  }
  r.reset();
  w.reset();
  EXPECT_EQ(WaitForFds(::getpid(), mine), mine)
      << mine_list << "\nnow: " << ListFds(::getpid());
  EXPECT_EQ(WaitForFds(peer_->pid(), theirs), theirs)
      << theirs_list << "\nnow: " << ListFds(peer_->pid());
  const auto s = Stats(*channel_);
  EXPECT_GE(s.at("handles_received"), uint64_t{kCalls});
  EXPECT_GE(s.at("handles_sent"), uint64_t{kCalls} * 3 / 2);
  EXPECT_EQ(s.at("cut_off"), 0u);
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

  // A REQUEST of method 6 (Echo) on slot 1 that announces `fds`; its
  // HANDLES packet carries `send` of them (-1: all, 0: no packet).
  absl::Status Request(uint64_t id, const std::vector<int>& fds,
                       int send = -1) {
    send_ = send;
    OutgoingMessage m;
    m.type = MessageType::kRequest;
    m.message_id = id;
    m.interface_slot = 1;
    m.method_id = 6;
    m.payload = "x";
    m.handles = fds;
    absl::StatusOr<bool> ok = ep_->TrySend(m);
    if (!ok.ok()) return ok.status();
    if (!*ok) return absl::ResourceExhaustedError("ring full");
    ep_->Flush();
    return absl::OkStatus();
  }

  // A HANDLES packet for `id` with `fds`.
  absl::Status Handles(uint64_t id, const std::vector<int>& fds) {
    return SendPacket(sock(),
                      EncodeHandlesPacket(id, static_cast<uint32_t>(fds.size())),
                      fds, absl::Now() + absl::Seconds(5));
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
  absl::Status SendHandles(uint64_t id, absl::Span<const int> fds) override {
    if (send_ == 0) return absl::OkStatus();
    if (send_ > 0) fds = fds.subspan(0, static_cast<size_t>(send_));
    return Handles(id, std::vector<int>(fds.begin(), fds.end()));
  }

 private:
  RawClient() = default;
  internal::ClientHandshake hs_;
  std::unique_ptr<Endpoint> ep_;
  int send_ = -1;
};

class HostileClientTest : public HandlesTest {
 protected:
  // Runs `attack` from a raw client, expects it cut off with `reason`
  // (counted under `counter`), and the server's descriptors back at their
  // baseline.
  void Expect(const std::string& reason, const std::string& counter,
              const std::function<void(RawClient&)>& attack) {
    const int baseline = CountFds(peer_->pid());
    const std::string list = ListFds(peer_->pid());
    const uint64_t before = Stats(*channel_)[counter];
    {
      std::unique_ptr<RawClient> c = RawClient::Connect(path());
      ASSERT_NE(c, nullptr);
      attack(*c);
      EXPECT_THAT(c->WaitCutOff(), HasSubstr(reason));
    }
    EXPECT_EQ(Stats(*channel_)[counter], before + 1) << counter;
    EXPECT_EQ(WaitForFds(peer_->pid(), baseline), baseline)
        << list << "\nnow: " << ListFds(peer_->pid());
    // The honest channel carries on.
    absl::StatusOr<Reply> got = CallWith(*channel_, 3, "still here");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(testing::ReadToEnd(got->fds[0].get()).value(), "still here");
  }
};

TEST_F(HostileClientTest, AThousandDescriptorsAreTooMany) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Expect("too_many_handles", "too_many", [&](RawClient& c) {
    // 1,000 descriptors in four packets (a packet holds at most 253); the
    // server cuts the client off at the first.
    const std::vector<int> fds(250, null.get());
    for (int i = 0; i < 4; ++i) {
      if (!c.Handles(100 + i, fds).ok()) break;  // Cut off already.
    }
  });
}

TEST_F(HostileClientTest, DescriptorsNoRecordAnnouncesAreUnreferenced) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Expect("unreferenced_handle", "unreferenced", [&](RawClient& c) {
    // A packet for id 7, then request 7 announcing none.
    ASSERT_TRUE(c.Handles(7, {null.get(), null.get()}).ok());
    ASSERT_TRUE(c.Request(7, {}).ok());
  });
}

TEST_F(HostileClientTest, MoreDescriptorsThanAnnouncedAreUnreferenced) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Expect("unreferenced_handle", "unreferenced", [&](RawClient& c) {
    ASSERT_TRUE(c.Handles(9, {null.get(), null.get(), null.get()}).ok());
    // The record announces one; its packet came with three.
    ASSERT_TRUE(c.Request(9, {null.get()}, /*send=*/0).ok());
  });
}

TEST_F(HostileClientTest, DescriptorsNoRecordClaimsAgeOut) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  // No record ever comes: the stash's age limit (500 ms in the peer).
  Expect("unreferenced_handle", "unreferenced", [&](RawClient& c) {
    ASSERT_TRUE(c.Handles(11, {null.get()}).ok());
  });
}

TEST_F(HostileClientTest, AnnouncedDescriptorsThatNeverComeAreMissing) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Expect("missing_handle", "missing", [&](RawClient& c) {
    // The record is parked (no worker waits), then the client is cut off.
    ASSERT_TRUE(c.Request(5, {null.get(), null.get()}, /*send=*/0).ok());
  });
}

TEST_F(HostileClientTest, FewerDescriptorsThanAnnouncedAreMissing) {
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Expect("missing_handle", "missing", [&](RawClient& c) {
    ASSERT_TRUE(c.Request(5, {null.get(), null.get()}, /*send=*/1).ok());
  });
}

TEST_F(HandlesTest, ATableTheHandlerDoesNotTakeWhollyCutsTheClientOff) {
  // An honest channel sending what the method's decoder does not name
  // (TakeFirst takes one of two): the reference check after the handler
  // reports unreferenced_handle, and the server cuts the client off.
  const int baseline = CountFds(peer_->pid());
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_THAT(CallWith(*channel_, 7, "", {null.get(), null.get()}).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("unreferenced_handle")));
  // The channel reconnects for the next call.
  const auto s = Stats(*channel_);
  EXPECT_EQ(s.at("unreferenced"), 1u);
  EXPECT_EQ(s.at("cut_off"), 1u);
  EXPECT_EQ(WaitForFds(peer_->pid(), baseline), baseline);
}

TEST_F(HandlesTest, DescriptorsForAMethodThatTakesNoneCutTheClientOff) {
  // Stats is not a handle method (MethodDescriptor::handles is false): no
  // field of its request can name a descriptor, so the server refuses the
  // table before the handler runs.
  const int baseline = CountFds(peer_->pid());
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_THAT(CallWith(*channel_, 9, "", {null.get()}).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("takes no descriptors")));
  const auto s = Stats(*channel_);
  EXPECT_EQ(s.at("unreferenced"), 1u);
  EXPECT_EQ(s.at("cut_off"), 1u);
  EXPECT_EQ(WaitForFds(peer_->pid(), baseline), baseline);
}

TEST_F(HandlesTest, AsynchronousHandlersTakeAndGiveDescriptors) {
  const int baseline = CountFds(peer_->pid());
  absl::StatusOr<Fd> memfd = testing::MakeSealedMemfd("async");
  ASSERT_TRUE(memfd.ok());
  absl::StatusOr<Reply> got = CallWith(*channel_, 10, "a", {memfd->get()});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->bytes, "a");
  ASSERT_EQ(got->fds.size(), 1u);
  char c[5];
  ASSERT_EQ(::pread(got->fds[0].get(), c, 5, 0), 5);
  EXPECT_EQ(std::string(c, 5), "async");
  // Its reference check cuts the client off too.
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_THAT(CallWith(*channel_, 11, "", {null.get(), null.get()}).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("unreferenced_handle")));
  EXPECT_EQ(Stats(*channel_).at("unreferenced"), 1u);
  EXPECT_EQ(WaitForFds(peer_->pid(), baseline), baseline);
}

TEST_F(HandlesTest, AOnewayCallCarriesDescriptors) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd r(p[0]), w(p[1]);
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  ASSERT_TRUE(::lpc::internal::CallHandles::request(ctx).Add(w).ok());
  ASSERT_TRUE(channel_
                  ->SendOneway(HandlesDescriptor(), HandleMethod(12), &ctx,
                               "written by a oneway call")
                  .ok());
  ::lpc::internal::CallHandles::Reset(ctx);
  w.reset();
  // The server writes and closes its copy: our read ends there.
  absl::StatusOr<std::string> read = testing::ReadToEnd(r.get());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "written by a oneway call");
}

TEST_F(HandlesTest, AHandlerThatRepliesWithTooManyFailsItsCall) {
  const int baseline = CountFds(peer_->pid());
  EXPECT_THAT(CallWith(*channel_, 8, "17").status(),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("max_handles_per_message")));
  absl::StatusOr<Reply> got = CallWith(*channel_, 8, "16");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->fds.size(), 16u);
  got->fds.clear();
  EXPECT_EQ(WaitForFds(peer_->pid(), baseline), baseline);
}

TEST_F(HandlesTest, StreamsCarryNoDescriptors) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(::lpc::internal::CallHandles::request(ctx).Add(null).ok());
  std::shared_ptr<ClientStream> s =
      channel_->OpenStream(HandlesDescriptor(), HandleMethod(6), &ctx);
  ::lpc::testing::CallbackResult<absl::Status> done;
  s->Finish(done.Callback());
  std::optional<absl::Status> st = done.Get();
  ASSERT_TRUE(st.has_value());
  EXPECT_THAT(*st, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("streams carry no descriptors")));
}

}  // namespace
}  // namespace lpc::local
