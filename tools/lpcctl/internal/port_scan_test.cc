#include "tools/lpcctl/internal/port_scan.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "transports/local/unique_fd.h"

namespace lpc::lpcctl {
namespace {

using local::UniqueFd;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::Optional;
using ::lpc::testing::StatusIs;

TEST(FindFlockHolder, FindsTheHolderAndSkipsWaitersAndOtherLocks) {
  const dev_t dev = makedev(0xfd, 0x01);
  const std::string locks =
      "1: POSIX  ADVISORY  WRITE 11 fd:01:77 0 EOF\n"
      "2: FLOCK  ADVISORY  WRITE 22 fd:01:78 0 EOF\n"
      "3: FLOCK  ADVISORY  WRITE 33 fd:01:77 0 EOF\n"
      "3: -> FLOCK  ADVISORY  WRITE 44 fd:01:77 0 EOF\n"
      "garbage line\n"
      "4: FLOCK  ADVISORY  WRITE x fd:01:79 0 EOF\n";
  EXPECT_THAT(FindFlockHolder(locks, dev, 77), Optional(33));
  EXPECT_THAT(FindFlockHolder(locks, dev, 78), Optional(22));
  EXPECT_EQ(FindFlockHolder(locks, dev, 79), std::nullopt);
  EXPECT_EQ(FindFlockHolder(locks, makedev(0xfd, 0x02), 77), std::nullopt);
  EXPECT_EQ(FindFlockHolder("", dev, 77), std::nullopt);
}

class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under /tmp: TEST_TMPDIR can be longer than a socket path may be.
    std::string tmpl = "/tmp/lpcctl-scan.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const char* f : {"held", "held.lock", "listening", "stale",
                          "stale.lock", "plain"}) {
      unlink(absl::StrCat(dir_, "/", f).c_str());
    }
    rmdir(dir_.c_str());
  }

  // A socket bound at dir_/name, listening if `listen_too`.
  UniqueFd Bind(const std::string& name, bool listen_too) {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = absl::StrCat(dir_, "/", name);
    if (path.size() >= sizeof(addr.sun_path)) {
      ADD_FAILURE() << "socket path too long: " << path;
      return fd;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    if (listen_too) {
      EXPECT_EQ(listen(fd.get(), 4), 0);
    }
    return fd;
  }

  std::string dir_;
};

TEST_F(ScanTest, LockHolderListenerAndStaleSocket) {
  // "held": not listening, but its lock is held (by this process).
  UniqueFd held = Bind("held", false);
  UniqueFd lock(open(absl::StrCat(dir_, "/held.lock").c_str(),
                     O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(lock.valid());
  ASSERT_EQ(flock(lock.get(), LOCK_EX | LOCK_NB), 0);
  // "listening": no lock file, but it accepts.
  UniqueFd listening = Bind("listening", true);
  // "stale": bound and closed, nobody listens; its lock file is free.
  Bind("stale", false);
  UniqueFd stale_lock(open(absl::StrCat(dir_, "/stale.lock").c_str(),
                           O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  // Not sockets: ignored.
  UniqueFd plain(open(absl::StrCat(dir_, "/plain").c_str(),
                      O_RDWR | O_CREAT | O_CLOEXEC, 0600));

  absl::StatusOr<std::vector<PortFile>> ports = ScanRuntimeDir(dir_);
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_THAT(*ports, ElementsAre(Field(&PortFile::name, "held"),
                                  Field(&PortFile::name, "listening"),
                                  Field(&PortFile::name, "stale")));
  EXPECT_EQ((*ports)[0].state, PortState::kLive);
  EXPECT_THAT((*ports)[0].lock_pid, Optional(getpid()));
  EXPECT_EQ((*ports)[0].path, dir_ + "/held");
  EXPECT_EQ((*ports)[0].socket_uid, geteuid());
  EXPECT_EQ((*ports)[1].state, PortState::kLive);
  EXPECT_EQ((*ports)[1].lock_pid, std::nullopt);
  EXPECT_EQ((*ports)[2].state, PortState::kStale);
  EXPECT_STREQ(PortStateName((*ports)[2].state), "stale");
}

TEST_F(ScanTest, MissingDirectoryIsNotFound) {
  EXPECT_THAT(ScanRuntimeDir(dir_ + "/nope"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(DefaultRuntimeDir, FollowsXdgRuntimeDir) {
  ASSERT_EQ(setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1), 0);
  EXPECT_EQ(DefaultRuntimeDir(), "/run/user/4242/lpc");
  ASSERT_EQ(unsetenv("XDG_RUNTIME_DIR"), 0);
  EXPECT_EQ(DefaultRuntimeDir(), "/run/lpc");
}

}  // namespace
}  // namespace lpc::lpcctl
