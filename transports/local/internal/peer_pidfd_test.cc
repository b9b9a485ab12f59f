#include "transports/local/internal/peer_pidfd.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {
namespace {

using ::lpc::testing::StatusIs;

// A child process connected to this one: `server` is this side's accepted
// socket. The child lives until Kill().
class ConnectedChild {
 public:
  ConnectedChild() {
    char tmpl[] = "/tmp/lpc-pidfd-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string path = dir_ + "/s";
    UniqueFd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr),
               sizeof(addr)) != 0 ||
        ::listen(listener.get(), 1) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0) {
        ::_exit(1);
      }
      ::pause();
      ::_exit(0);
    }
    server.Reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }
  ~ConnectedChild() {
    Kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  UniqueFd server;

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

TEST(PeerPidfdTest, NamesThePeerProcessEitherWay) {
  ConnectedChild child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.server);
  for (PidfdSource source :
       {PidfdSource::kAny, PidfdSource::kPidfdOpenOnly}) {
    absl::StatusOr<PeerPidfd> p = GetPeerPidfd(child.server.get(), source);
    ASSERT_OK(p.status());
    EXPECT_EQ(PidOfPidfd(p->fd.get()), child.pid());
    if (source == PidfdSource::kPidfdOpenOnly) {
      EXPECT_FALSE(p->from_kernel);
    }
  }
}

TEST(PeerPidfdTest, APidfdNeverNamesTheNextOwnerOfThePid) {
  ConnectedChild child;
  ASSERT_GT(child.pid(), 0);
  absl::StatusOr<PeerPidfd> held = GetPeerPidfd(child.server.get());
  ASSERT_OK(held.status());
  child.Kill();
  // Reaped: the pidfd names no process, whoever gets the pid next.
  EXPECT_EQ(PidOfPidfd(held->fd.get()), -1);
  // Asked after the peer died: the fallback refuses (the socket hung up);
  // the kernel's answer, if any, names the dead process, never a live one.
  EXPECT_THAT(
      GetPeerPidfd(child.server.get(), PidfdSource::kPidfdOpenOnly).status(),
      StatusIs(absl::StatusCode::kUnavailable));
  absl::StatusOr<PeerPidfd> late = GetPeerPidfd(child.server.get());
  if (late.ok()) {
    EXPECT_TRUE(late->from_kernel);
    EXPECT_EQ(PidOfPidfd(late->fd.get()), -1);
  } else {
    EXPECT_THAT(late.status(), StatusIs(absl::StatusCode::kUnavailable));
  }
}

}  // namespace
}  // namespace lpc::local::internal
