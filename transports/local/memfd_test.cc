// Tests for sealed memfd creation and validation of received descriptors.
#include "transports/local/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace lpc::local {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(MemfdTest, CreatedMemfdValidatesAndMaps) {
  ASSERT_OK_AND_ASSIGN(UniqueFd fd, CreateSealedMemfd("t", 8192));
  EXPECT_OK(ValidateSealedMemfd(fd.get(), 8192));
  ASSERT_OK_AND_ASSIGN(Mapping m, Mapping::Map(fd.get(), 8192, true));
  m.data()[8191] = std::byte{7};
  EXPECT_EQ(m.size(), 8192u);
  // The seals hold: the size can no longer change.
  EXPECT_NE(::ftruncate(fd.get(), 4096), 0);
  EXPECT_NE(::ftruncate(fd.get(), 16384), 0);
}

TEST(MemfdTest, WrongSizeIsRejected) {
  ASSERT_OK_AND_ASSIGN(UniqueFd fd, CreateSealedMemfd("t", 4096));
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 8192),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("size is 4096")));
  EXPECT_THAT(ValidateSealedMemfdInRange(fd.get(), 5000, 9000),
              StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(uint64_t size,
                       ValidateSealedMemfdInRange(fd.get(), 1, 4096));
  EXPECT_EQ(size, 4096u);
}

TEST(MemfdTest, RejectsBadSizesOnCreate) {
  EXPECT_THAT(CreateSealedMemfd("t", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MemfdTest, PipeIsRejected) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  EXPECT_THAT(ValidateSealedMemfd(r.get(), 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a regular file")));
}

TEST(MemfdTest, DevZeroIsRejected) {
  UniqueFd fd(::open("/dev/zero", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MemfdTest, RegularFileIsRejected) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/memfd_test_XXXXXX";
  UniqueFd fd(::mkstemp(path.data()));
  ASSERT_TRUE(fd.valid());
  ::unlink(path.c_str());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 4096),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MemfdTest, UnsealedMemfdIsRejected) {
  UniqueFd fd(::memfd_create("u", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seals")));
}

TEST(MemfdTest, MemfdWithoutSealingIsRejected) {
  // Without MFD_ALLOW_SEALING a memfd carries only F_SEAL_SEAL.
  UniqueFd fd(::memfd_create("u", MFD_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seals")));
}

TEST(MemfdTest, MissingGrowSealIsRejected) {
  UniqueFd fd(::memfd_create("u", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  ASSERT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL), 0);
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seals")));
}

TEST(MemfdTest, ExtraWriteSealIsRejected) {
  UniqueFd fd(::memfd_create("u", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  ASSERT_EQ(::fcntl(fd.get(), F_ADD_SEALS,
                    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL),
            0);
  EXPECT_THAT(ValidateSealedMemfd(fd.get(), 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seals")));
}

TEST(MemfdTest, ClosedDescriptorIsRejected) {
  EXPECT_THAT(ValidateSealedMemfd(-1, 4096),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MemfdTest, CheckWrittenRefusesUnwrittenPages) {
  ASSERT_OK_AND_ASSIGN(UniqueFd fd, CreateSealedMemfd("t", 3 * 4096));
  // Only ftruncate'd: every page is a hole.
  EXPECT_THAT(CheckWritten(fd.get(), 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("unwritten pages")));
  EXPECT_OK(CheckWritten(fd.get(), 0));
  const std::string page(4096, 'p');
  ASSERT_EQ(::pwrite(fd.get(), page.data(), page.size(), 0), 4096);
  ASSERT_EQ(::pwrite(fd.get(), page.data(), page.size(), 2 * 4096), 4096);
  EXPECT_OK(CheckWritten(fd.get(), 4096));
  // The middle page is still a hole.
  EXPECT_THAT(CheckWritten(fd.get(), 3 * 4096),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("hole at byte 4096")));
  ASSERT_EQ(::pwrite(fd.get(), "x", 1, 4096 + 10), 1);  // One byte is enough.
  EXPECT_OK(CheckWritten(fd.get(), 3 * 4096));
  // WriteWhole leaves no hole in what it wrote.
  ASSERT_OK_AND_ASSIGN(UniqueFd fd2, CreateSealedMemfd("t2", 65536));
  ASSERT_OK(WriteWhole(fd2.get(), std::string(40000, 'w')));
  EXPECT_OK(CheckWritten(fd2.get(), 40000));
  EXPECT_FALSE(CheckWritten(fd2.get(), 65536).ok());
}

}  // namespace
}  // namespace lpc::local
