// Item 9 of docs/reliability.md: memfd hygiene. A hostile peer offers every
// kind of bad descriptor where the protocol expects a sealed memfd:
//   - every combination of the three required seals (7 incomplete ones), an
//     extra F_SEAL_WRITE, sealed memfds of the wrong size (size-1, size+1,
//     0, 1 GiB, where a payload's size is local::PayloadMemfdSize of its
//     length), a pipe, /dev/zero, a regular file, an eventfd, a socket,
//     a directory, and an unsealed memfd that another thread ftruncates
//     between 0 and full size the whole time;
//   - as a payload memfd sent by a client to the server (PAYLOAD_FD +
//     a mode-2 record), and as the section memfd sent by a fake server to a
//     real LocalChannel in its WELCOME.
// Every bad one must be refused (client cut off / handshake failed), the
// good control case accepted, and no SIGBUS: both the server and the
// channel run in this process, so a SIGBUS would end the test.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/section.h"

namespace lpc::reliability {
namespace {

using local::UniqueFd;

constexpr int kShrink = F_SEAL_SHRINK, kGrow = F_SEAL_GROW, kSeal = F_SEAL_SEAL;

UniqueFd Memfd(uint64_t size, int seals) {
  UniqueFd fd(::memfd_create("lpcr-hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return fd;
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return UniqueFd();
  // The payload's pages written (a sparse memfd is refused for that alone).
  const std::string bytes(std::min<uint64_t>(size, 8192), 'h');
  if (::pwrite(fd.get(), bytes.data(), bytes.size(), 0) !=
      static_cast<ssize_t>(bytes.size())) {
    return UniqueFd();
  }
  if (seals != 0) ::fcntl(fd.get(), F_ADD_SEALS, seals);
  return fd;
}

struct Case {
  std::string name;
  bool good;
  // Makes the descriptor for a region of `size` bytes; may start a thread
  // that works on it until `stop` (joined by the runner).
  std::function<UniqueFd(uint64_t size, const std::string& dir,
                         std::atomic<bool>* stop, std::thread* worker)>
      make;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (int mask = 0; mask < 8; ++mask) {
    const int seals = ((mask & 1) ? kShrink : 0) | ((mask & 2) ? kGrow : 0) |
                      ((mask & 4) ? kSeal : 0);
    cases.push_back({absl::StrCat("seals=", mask), mask == 7,
                     [seals](uint64_t size, const std::string&, auto*, auto*) {
                       return Memfd(size, seals);
                     }});
  }
  cases.push_back({"seals+write", false, [](uint64_t size, auto&, auto*, auto*) {
                     return Memfd(size, kShrink | kGrow | kSeal | F_SEAL_WRITE);
                   }});
  for (int64_t delta : {-1, 1}) {
    cases.push_back({absl::StrCat("size", delta > 0 ? "+1" : "-1"), false,
                     [delta](uint64_t size, auto&, auto*, auto*) {
                       return Memfd(size + delta, kShrink | kGrow | kSeal);
                     }});
  }
  cases.push_back({"size=0", false, [](uint64_t, auto&, auto*, auto*) {
                     return Memfd(0, kShrink | kGrow | kSeal);
                   }});
  cases.push_back({"size=1GiB", false, [](uint64_t, auto&, auto*, auto*) {
                     return Memfd(uint64_t{1} << 30, kShrink | kGrow | kSeal);
                   }});
  cases.push_back({"pipe", false, [](uint64_t, auto&, auto*, auto*) {
                     int p[2];
                     if (::pipe2(p, O_CLOEXEC) != 0) return UniqueFd();
                     ::close(p[1]);
                     return UniqueFd(p[0]);
                   }});
  cases.push_back({"/dev/zero", false, [](uint64_t, auto&, auto*, auto*) {
                     return UniqueFd(::open("/dev/zero", O_RDWR | O_CLOEXEC));
                   }});
  cases.push_back({"regular_file", false,
                   [](uint64_t size, const std::string& dir, auto*, auto*) {
                     const std::string path = dir + "/regular";
                     UniqueFd fd(::open(path.c_str(),
                                        O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
                     if (fd && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
                       return UniqueFd();
                     }
                     return fd;
                   }});
  cases.push_back({"eventfd", false, [](uint64_t, auto&, auto*, auto*) {
                     return UniqueFd(::eventfd(0, EFD_CLOEXEC));
                   }});
  cases.push_back({"socket", false, [](uint64_t, auto&, auto*, auto*) {
                     return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
                   }});
  cases.push_back({"directory", false,
                   [](uint64_t, const std::string& dir, auto*, auto*) {
                     return UniqueFd(::open(dir.c_str(), O_RDONLY | O_CLOEXEC));
                   }});
  cases.push_back({"unsealed+ftruncate", false,
                   [](uint64_t size, auto&, std::atomic<bool>* stop,
                      std::thread* worker) {
                     UniqueFd fd = Memfd(size, 0);
                     const int raw = fd.get();
                     *worker = std::thread([raw, size, stop] {
                       for (int i = 0; i < 10000000 && !stop->load(); ++i) {
                         ::ftruncate(raw, (i & 1) ? static_cast<off_t>(size) : 0);
                       }
                     });
                     return fd;
                   }});
  return cases;
}

// The server's side: a client sends the descriptor as payload memfd #0 and
// a mode-2 Echo request of `size` bytes referring to it. True if the call
// was executed (accepted).
bool OfferPayload(const std::string& dir, const Case& c, std::string* how) {
  constexpr uint64_t kSize = 8192;
  auto client = RawClient::Connect(dir + "/p");
  if (!client.ok()) {
    *how = "connect failed";
    return false;
  }
  absl::StatusOr<uint32_t> slot = (*client)->Bind(RelDescriptor());
  if (!slot.ok()) {
    *how = "bind failed";
    return false;
  }
  std::atomic<bool> stop{false};
  std::thread worker;
  // A payload memfd's size is its length's size class (memfd.h); the
  // wrong sizes are relative to that.
  UniqueFd fd = c.make(local::PayloadMemfdSize(kSize), dir, &stop, &worker);
  bool executed = false;
  if (!fd) {
    *how = "could not create";
  } else {
    local::PayloadFdBody b{0, 0, kSize};
    const int fds[1] = {fd.get()};
    local::SendPacket((*client)->socket(),
                      local::EncodeControl(local::ControlType::kPayloadFd, &b,
                                           sizeof(b)),
                      fds)
        .IgnoreError();
    local::FrameHeader h = RequestHeader(1000, *slot, EchoMethod().id, 0);
    h.record_size = 48;
    h.payload_mode = static_cast<uint8_t>(local::PayloadMode::kMemfd);
    h.payload_length = kSize;
    (*client)->SendRaw(MakeRecord(h));
    absl::StatusOr<local::IncomingMessage> r =
        (*client)->WaitReply(absl::Seconds(5));
    executed = r.ok() && r->header.status_code == 0 &&
               r->payload.size() == kSize;
    *how = r.ok() ? absl::StrCat("reply code ", r->header.status_code)
                  : std::string(r.status().message());
  }
  stop = true;
  if (worker.joinable()) worker.join();
  return executed;
}

// The client's side: a fake server sends the descriptor as the section in
// its WELCOME; a real LocalChannel makes one call. True if the call worked.
bool OfferSection(const std::string& dir, const Case& c, std::string* how) {
  auto layout = local::ComputeLayout(local::SectionGeometry{});
  if (!layout.ok()) return false;
  const std::string path = dir + "/fake";
  ::unlink(path.c_str());
  UniqueFd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.get(), 4) != 0) {
    *how = "fake server could not listen";
    return false;
  }
  std::atomic<bool> stop{false};
  std::thread worker;
  UniqueFd fd = c.make(layout->total_size, dir, &stop, &worker);
  UniqueFd section_copy;
  std::thread fake([&] {
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    const local::SectionGeometry& g = layout->geometry;
    local::WelcomeBody w{g.request_slots, g.reply_slots, g.c2s_data_bytes,
                         g.s2c_data_bytes, g.max_record_slots, 65536,
                         layout->total_size};
    absl::StatusOr<UniqueFd> efd = local::CreateEventFd();
    if (!efd.ok() || !fd) return;
    // The good case needs a real header to be accepted.
    if (c.good) {
      void* p = ::mmap(nullptr, layout->total_size, PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd.get(), 0);
      if (p != MAP_FAILED) {
        local::InitializeSection(static_cast<std::byte*>(p), *layout);
        ::munmap(p, layout->total_size);
      }
    }
    const int fds[2] = {fd.get(), efd->get()};
    local::SendPacket(conn.get(),
                      local::EncodeControl(local::ControlType::kWelcome, &w,
                                           sizeof(w)),
                      fds)
        .IgnoreError();
    // Serve nothing: hold the connection until the client gives up.
    local::RecvPacket(conn.get(), absl::Now() + absl::Seconds(3)).IgnoreError();
  });
  local::LocalChannelOptions lo;
  lo.runtime_dir = dir;
  lo.connect_timeout = absl::Seconds(2);
  auto ch = local::CreateLocalChannel("fake", {}, lo);
  bool handshake_ok = false;
  if (ch.ok()) {
    absl::StatusOr<std::string> r =
        CallRel(**ch, EchoMethod(), "x", absl::Milliseconds(300));
    *how = std::string(r.status().message());
    // Past the handshake the fake server answers nothing: the call times
    // out (DEADLINE_EXCEEDED) instead of failing the handshake.
    handshake_ok = absl::IsDeadlineExceeded(r.status());
  }
  ch = absl::UnknownError("released");
  ::shutdown(listener.get(), SHUT_RDWR);
  fake.join();
  stop = true;
  if (worker.joinable()) worker.join();
  return handshake_ok;
}

TEST(MemfdHygieneTest, EveryBadDescriptorIsRefusedWithoutSigbus) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  int cases = 0, payload_wrong = 0, section_wrong = 0, bad = 0,
      payload_rejected = 0, section_rejected = 0;
  std::string wrong;
  for (const Case& c : Cases()) {
    ++cases;
    bad += !c.good;
    std::string how;
    const bool payload = OfferPayload(dir.path(), c, &how);
    if (payload != c.good) {
      ++payload_wrong;
      absl::StrAppend(&wrong, " payload:", c.name, "(", how, ")");
    }
    payload_rejected += !c.good && !payload;
    const bool section = OfferSection(dir.path(), c, &how);
    if (section != c.good) {
      ++section_wrong;
      absl::StrAppend(&wrong, " section:", c.name, "(", how, ")");
    }
    section_rejected += !c.good && !section;
  }
  // Still serving honest clients.
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  const bool alive = CallRel(**ch, EchoMethod(), std::string(3 << 20, 'z')).ok();
  Report("memfd_hygiene",
         absl::StrFormat("cases=%d bad=%d payload_fd_rejected=%d/%d "
                         "section_fd_rejected=%d/%d wrong_decisions=%d "
                         "server_alive=%d%s",
                         cases, bad, payload_rejected, bad, section_rejected, bad,
                         payload_wrong + section_wrong, alive ? 1 : 0, wrong));
  EXPECT_EQ(payload_wrong, 0) << wrong;
  EXPECT_EQ(section_wrong, 0) << wrong;
  EXPECT_TRUE(alive);
}

}  // namespace
}  // namespace lpc::reliability
