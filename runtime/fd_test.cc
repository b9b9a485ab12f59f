#include "runtime/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "gtest/gtest.h"

namespace lpc {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

TEST(FdTest, ClosesWhatItOwns) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[1]);
  {
    Fd fd(p[0]);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), p[0]);
  }
  EXPECT_FALSE(IsOpen(p[0]));
}

TEST(FdTest, EmptyByDefaultAndForNegative) {
  Fd a;
  Fd b(-5);
  EXPECT_FALSE(a.valid());
  EXPECT_FALSE(static_cast<bool>(b));
  EXPECT_EQ(b.get(), -1);
}

TEST(FdTest, MoveTransfersOwnership) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  Fd r(p[0]);
  Fd w(p[1]);
  Fd moved(std::move(r));
  EXPECT_FALSE(r.valid());  // NOLINT(bugprone-use-after-move): the contract.
  EXPECT_EQ(moved.get(), p[0]);
  Fd assigned;
  assigned = std::move(w);
  EXPECT_EQ(assigned.get(), p[1]);
  // Assigning over an owner closes what it held.
  assigned = std::move(moved);
  EXPECT_FALSE(IsOpen(p[1]));
  EXPECT_TRUE(IsOpen(p[0]));
}

TEST(FdTest, ReleaseGivesUpOwnership) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  int raw;
  {
    Fd fd(p[0]);
    raw = fd.release();
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
  ::close(p[1]);
}

TEST(FdTest, DupIsCloseOnExecAndIndependent) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // Not close-on-exec.
  Fd r(p[0]);
  Fd w(p[1]);
  absl::StatusOr<Fd> dup = w.Dup();
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_NE(dup->get(), w.get());
  EXPECT_EQ(::fcntl(dup->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  w.reset();
  // The duplicate still writes into the pipe.
  ASSERT_EQ(::write(dup->get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(FdTest, DupOfEmptyOrClosedFails) {
  EXPECT_EQ(Fd().Dup().status().code(), absl::StatusCode::kInvalidArgument);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_FALSE(Fd::Duplicate(p[0]).ok());
}

}  // namespace
}  // namespace lpc
