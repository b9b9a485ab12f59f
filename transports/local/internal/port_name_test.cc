#include "transports/local/internal/port_name.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lpc-pn-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

// Whether a connect to `path` is accepted into the backlog.
bool Connects(const std::string& path) {
  UniqueFd fd(
      ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr = Address(path);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr),
                   sizeof(addr)) == 0;
}

// A socket bound at `path` (listening if `listen`), as another program
// would leave it.
UniqueFd BindPlain(const std::string& path, bool listen) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr = Address(path);
  EXPECT_EQ(
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  if (listen) {
    EXPECT_EQ(::listen(fd.get(), 4), 0);
  }
  return fd;
}

ino_t Inode(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

mode_t Mode(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(PortNameTest, CreatesAPrivateDirAndAListeningSocketOfTheMode) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/run";
  auto port = PortName::Claim(dir + "/calc", 0600);
  ASSERT_OK(port.status());
  EXPECT_EQ(Mode(dir), 0700u);
  EXPECT_EQ(Mode(dir + "/calc"), 0600u);
  EXPECT_TRUE(Connects(dir + "/calc"));
  EXPECT_EQ((*port)->path(), dir + "/calc");

  // A mode that lets others connect makes the new directory searchable.
  TempDir tmp2;
  auto open = PortName::Claim(tmp2.path() + "/run/calc", 0666);
  ASSERT_OK(open.status());
  EXPECT_EQ(Mode(tmp2.path() + "/run"), 0711u);
  EXPECT_EQ(Mode(tmp2.path() + "/run/calc"), 0666u);
}

TEST(PortNameTest, TheModeIsExactWhateverTheUmask) {
  TempDir tmp;
  const mode_t old = ::umask(077);
  auto port = PortName::Claim(tmp.path() + "/m", 0666);
  ::umask(old);
  ASSERT_OK(port.status());
  EXPECT_EQ(Mode(tmp.path() + "/m"), 0666u);
}

TEST(PortNameTest, ASecondClaimFailsAndTouchesNothing) {
  TempDir tmp;
  const std::string path = tmp.path() + "/p";
  auto first = PortName::Claim(path, 0600);
  ASSERT_OK(first.status());
  const ino_t ino = Inode(path);
  for (int i = 0; i < 3; ++i) {
    auto second = PortName::Claim(path, 0600);
    EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kAlreadyExists,
                                          HasSubstr("already served")));
  }
  EXPECT_EQ(Inode(path), ino);
  EXPECT_TRUE(Connects(path));
  // Released, the name is free again.
  (*first)->Release();
  EXPECT_EQ(Inode(path), 0u);
  EXPECT_OK(PortName::Claim(path, 0600).status());
}

TEST(PortNameTest, ReleaseUnlinksOnlyItsOwnSocket) {
  TempDir tmp;
  const std::string path = tmp.path() + "/own";
  auto port = PortName::Claim(path, 0600);
  ASSERT_OK(port.status());
  // Someone replaced the file (the same user, by hand).
  ASSERT_EQ(::unlink(path.c_str()), 0);
  UniqueFd other = BindPlain(path, /*listen=*/true);
  const ino_t other_ino = Inode(path);
  port->reset();  // Releases.
  EXPECT_EQ(Inode(path), other_ino);
  EXPECT_TRUE(Connects(path));
}

TEST(PortNameTest, AStaleSocketIsReplaced) {
  TempDir tmp;
  const std::string path = tmp.path() + "/stale";
  { UniqueFd dead = BindPlain(path, /*listen=*/true); }  // Closed, not unlinked.
  ASSERT_NE(Inode(path), 0u);
  ASSERT_FALSE(Connects(path));
  auto port = PortName::Claim(path, 0600);
  ASSERT_OK(port.status());
  EXPECT_TRUE(Connects(path));
}

TEST(PortNameTest, ALiveServerWithoutTheLockIsLeftAlone) {
  TempDir tmp;
  const std::string path = tmp.path() + "/live";
  UniqueFd live = BindPlain(path, /*listen=*/true);
  const ino_t ino = Inode(path);
  EXPECT_THAT(PortName::Claim(path, 0600).status(),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("does not take")));
  EXPECT_EQ(Inode(path), ino);

  // Also with its backlog full: the probe does not wait.
  TempDir tmp2;
  const std::string full = tmp2.path() + "/full";
  UniqueFd squatter = BindPlain(full, /*listen=*/false);
  ASSERT_EQ(::listen(squatter.get(), 0), 0);
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 64; ++i) {
    UniqueFd c(
        ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr = Address(full);
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr),
                  sizeof(addr)) != 0) {
      break;  // EAGAIN: the backlog is full.
    }
    queued.push_back(std::move(c));
  }
  ASSERT_FALSE(Connects(full));
  EXPECT_THAT(PortName::Claim(full, 0600).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(PortNameTest, SomethingElseAtThePathIsNotReplaced) {
  TempDir tmp;
  const std::string path = tmp.path() + "/file";
  { UniqueFd f(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  EXPECT_THAT(PortName::Claim(path, 0600).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not a socket")));
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST(PortNameTest, UnsafeRuntimeDirsAreRefused) {
  TempDir tmp;
  const std::string open_dir = tmp.path() + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  EXPECT_THAT(PortName::Claim(open_dir + "/p", 0600).status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("writable by group or others")));
  // Sticky, as /tmp: others cannot remove or replace this server's files.
  ASSERT_EQ(::chmod(open_dir.c_str(), 01777), 0);
  EXPECT_OK(PortName::Claim(open_dir + "/p", 0600).status());

  const std::string real = tmp.path() + "/real";
  const std::string link = tmp.path() + "/link";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  EXPECT_THAT(PortName::Claim(link + "/p", 0600).status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("symlink")));
  EXPECT_EQ(Inode(real + "/p"), 0u);

  // Owned by someone else (needs root to set up).
  const std::string theirs = tmp.path() + "/theirs";
  ASSERT_EQ(::mkdir(theirs.c_str(), 0700), 0);
  if (::geteuid() == 0 && ::chown(theirs.c_str(), 65534, 65534) == 0) {
    EXPECT_THAT(PortName::Claim(theirs + "/p", 0600).status(),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         HasSubstr("owned by uid 65534")));
  }
}

TEST(PortNameTest, TheLockDiesWithItsProcess) {
  TempDir tmp;
  const std::string path = tmp.path() + "/dies";
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto port = PortName::Claim(path, 0600);
    const char c = port.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();  // Until killed.
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(c, 'y');
  EXPECT_THAT(PortName::Claim(path, 0600).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Its socket file is still there, stale; the lock is gone.
  EXPECT_NE(Inode(path), 0u);
  auto port = PortName::Claim(path, 0600);
  ASSERT_OK(port.status());
  EXPECT_TRUE(Connects(path));
}

}  // namespace
}  // namespace lpc::local::internal
