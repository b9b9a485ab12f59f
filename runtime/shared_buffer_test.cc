// Shared (memfd) Buffers: making, sealing and mapping them, and the
// receiver's checks against memfds a hostile sender built
// (docs/zero-copy.md, "Checks on receipt"). Every refused memfd below is
// one that, mapped, could change under the reader or raise SIGBUS.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace lpc {
namespace {

using internal::BufferAccess;
using internal::SealedBuffer;
using ::lpc::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kAllSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

uint8_t Pattern(size_t i) { return static_cast<uint8_t>(i * 131 + 7); }

void Fill(uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = Pattern(i);
}

// The index of the first byte of `v` that is not Pattern(first + i), or
// v.size() when all match.
size_t FirstMismatch(const BufferView& v, size_t first = 0) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.data()[i] != Pattern(first + i)) return i;
  }
  return v.size();
}

ino_t InodeOf(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

struct MappingCount {
  int any = 0;
  int writable = 0;
};

// This process's mappings of the memfd with inode `ino`, from
// /proc/self/maps ("start-end perms offset dev inode path").
MappingCount MappingsOf(ino_t ino) {
  MappingCount count;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, path;
    unsigned long long inode = 0;
    fields >> range >> perms >> offset >> dev >> inode >> path;
    if (inode != ino || path.rfind("/memfd:", 0) != 0) continue;
    ++count.any;
    if (perms.size() > 1 && perms[1] == 'w') ++count.writable;
  }
  return count;
}

// A memfd of `size` bytes holding the pattern, written with pwrite.
Fd PatternMemfd(size_t size) {
  Fd fd(::memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  std::string bytes(size, '\0');
  Fill(reinterpret_cast<uint8_t*>(bytes.data()), size);
  EXPECT_EQ(::pwrite(fd.get(), bytes.data(), size, 0), static_cast<ssize_t>(size));
  return fd;
}

void AddSeals(const Fd& fd, int seals) {
  ASSERT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0) << std::strerror(errno);
}

TEST(SharedBufferTest, SharedIsAZeroedWritableMemfd) {
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(100000));
  EXPECT_TRUE(b.shared());
  ASSERT_EQ(b.size(), 100000u);
  for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(b.data()[i], 0) << i;
  Fill(b.data(), b.size());
  EXPECT_EQ(b.data()[99999], Pattern(99999));

  EXPECT_FALSE(Buffer::Heap(10).shared());
  EXPECT_FALSE(Buffer().shared());
  ASSERT_OK_AND_ASSIGN(Buffer none, Buffer::Shared(0));
  EXPECT_TRUE(none.empty());
}

TEST(SharedBufferTest, SealThenMapReadsTheSendersBytes) {
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(3 * 4096 + 17));
  Fill(b.data(), b.size());
  ASSERT_OK_AND_ASSIGN(SealedBuffer sealed, BufferAccess::Seal(std::move(b)));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(sealed.offset, 0u);
  EXPECT_EQ(sealed.length, 3u * 4096 + 17);
  EXPECT_EQ(::fcntl(sealed.memfd.get(), F_GET_SEALS) & kAllSeals, kAllSeals);

  const ino_t ino = InodeOf(sealed.memfd.get());
  ASSERT_OK_AND_ASSIGN(
      BufferView v, BufferAccess::MapSealed(std::move(sealed.memfd), 0, sealed.length));
  ASSERT_EQ(v.size(), 3u * 4096 + 17);
  EXPECT_EQ(FirstMismatch(v), v.size());
  EXPECT_EQ(MappingsOf(ino).any, 1);
  EXPECT_EQ(MappingsOf(ino).writable, 0);

  // Copies share the mapping; it goes with the last of them.
  BufferView copy = v;
  v = BufferView();
  EXPECT_EQ(FirstMismatch(copy), copy.size());
  copy = BufferView();
  EXPECT_EQ(MappingsOf(ino).any, 0);
}

TEST(SharedBufferTest, AfterSealTheSenderCannotWrite) {
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(8192));
  Fill(b.data(), b.size());
  ASSERT_OK_AND_ASSIGN(SealedBuffer sealed, BufferAccess::Seal(std::move(b)));
  const int fd = sealed.memfd.get();
  const ino_t ino = InodeOf(fd);
  // The writable mapping is gone from this process...
  EXPECT_EQ(MappingsOf(ino).any, 0);
  // ...and nothing can write the file or map it writable again.
  const char x = 'x';
  errno = 0;
  EXPECT_EQ(::pwrite(fd, &x, 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(fd, 100), -1);
  EXPECT_EQ(::ftruncate(fd, 100000), -1);
  // No seal can be added after F_SEAL_SEAL.
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST(SharedBufferTest, ShrunkBufferSendsOnlyItsSize) {
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(50000));
  Fill(b.data(), b.size());
  b.Shrink(5000);
  ASSERT_OK_AND_ASSIGN(SealedBuffer sealed, BufferAccess::Seal(std::move(b)));
  EXPECT_EQ(sealed.length, 5000u);
  struct stat st;
  ASSERT_EQ(::fstat(sealed.memfd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 5000);  // the bytes past it are not sent at all
  ASSERT_OK_AND_ASSIGN(BufferView v,
                       BufferAccess::MapSealed(std::move(sealed.memfd), 0, 5000));
  EXPECT_EQ(FirstMismatch(v), 5000u);
}

TEST(SharedBufferTest, OnlySharedNonEmptyBuffersSeal) {
  EXPECT_THAT(BufferAccess::Seal(Buffer::Heap(100)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(BufferAccess::Seal(Buffer()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(Buffer b, Buffer::Shared(100));
  b.Shrink(0);
  EXPECT_THAT(BufferAccess::Seal(std::move(b)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SharedBufferTest, MapsAnUnalignedRangeInPlace) {
  Fd fd = PatternMemfd(5 * 4096);
  AddSeals(fd, kAllSeals);
  // From mid-page to mid-page, and up to the file's last byte.
  ASSERT_OK_AND_ASSIGN(BufferView mid, BufferAccess::MapSealed(*fd.Dup(), 4097, 8000));
  ASSERT_EQ(mid.size(), 8000u);
  EXPECT_EQ(FirstMismatch(mid, 4097), 8000u);
  ASSERT_OK_AND_ASSIGN(BufferView tail,
                       BufferAccess::MapSealed(*fd.Dup(), 5 * 4096 - 3, 3));
  EXPECT_EQ(FirstMismatch(tail, 5 * 4096 - 3), 3u);
}

TEST(SharedBufferTest, LengthZeroIsAnEmptyViewAndClosesTheFd) {
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, kAllSeals);
  const int raw = fd.get();
  ASSERT_OK_AND_ASSIGN(BufferView v, BufferAccess::MapSealed(std::move(fd), 4096, 0));
  EXPECT_TRUE(v.empty());
  errno = 0;
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed
  EXPECT_EQ(errno, EBADF);
}

TEST(SharedBufferTest, NothingChangesTheFileUnderTheMapping) {
  Fd fd = PatternMemfd(4 * 4096);
  AddSeals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);  // no F_SEAL_SEAL
  Fd sender = *fd.Dup();
  ASSERT_OK_AND_ASSIGN(BufferView v, BufferAccess::MapSealed(std::move(fd), 0, 4 * 4096));
  // What a sender that kept the descriptor might try afterwards:
  EXPECT_EQ(::ftruncate(sender.get(), 0), -1);           // shrink: SIGBUS
  EXPECT_EQ(::fallocate(sender.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        0, 4 * 4096),
            -1);                                          // zero pages
  const char x = 'x';
  EXPECT_EQ(::pwrite(sender.get(), &x, 1, 0), -1);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_WRITE, MAP_SHARED, sender.get(), 0),
            MAP_FAILED);
  // Seals cannot be taken back; adding more changes nothing.
  ASSERT_EQ(::fcntl(sender.get(), F_ADD_SEALS, F_SEAL_SEAL), 0);
  EXPECT_EQ(FirstMismatch(v), v.size());  // every page readable, unchanged
}

// --- Hostile senders -------------------------------------------------------

void ExpectRefused(Fd fd, uint64_t offset, uint64_t length,
                   const std::string& why) {
  absl::StatusOr<BufferView> v =
      BufferAccess::MapSealed(std::move(fd), offset, length);
  EXPECT_THAT(v.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)));
}

TEST(SharedBufferHostileTest, KeptWritableMappingCannotSealWriteAndIsRefused) {
  Fd fd = PatternMemfd(8192);
  void* w = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(w, MAP_FAILED);
  // The kernel refuses F_SEAL_WRITE while a writable mapping exists...
  errno = 0;
  EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), -1);
  EXPECT_EQ(errno, EBUSY);
  // ...so such a sender can at most add F_SEAL_FUTURE_WRITE, which leaves
  // its mapping writable: refused.
  AddSeals(fd, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  static_cast<uint8_t*>(w)[0] = 1;  // still writes
  ExpectRefused(std::move(fd), 0, 8192, "F_SEAL_FUTURE_WRITE but not F_SEAL_WRITE");
  ::munmap(w, 8192);
}

TEST(SharedBufferHostileTest, WithoutWriteSealIsRefused) {
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  ExpectRefused(std::move(fd), 0, 4096, "not sealed against writes");
}

TEST(SharedBufferHostileTest, WithoutShrinkSealIsRefused) {
  // Such a sender could truncate the file under the reader's mapping, and
  // the reader would take SIGBUS.
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, F_SEAL_WRITE | F_SEAL_GROW);
  Fd keep = *fd.Dup();
  ExpectRefused(std::move(fd), 0, 4096, "F_SEAL_SHRINK");
  EXPECT_EQ(::ftruncate(keep.get(), 0), 0);  // what it could have done
}

TEST(SharedBufferHostileTest, WithoutGrowSealIsRefused) {
  // Growing cannot fault a reader, but the contract asks for a file whose
  // size is fixed.
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, F_SEAL_WRITE | F_SEAL_SHRINK);
  ExpectRefused(std::move(fd), 0, 4096, "F_SEAL_GROW");
}

TEST(SharedBufferHostileTest, TruncatedBeforeSealingIsRefused) {
  Fd fd = PatternMemfd(3 * 4096);
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  AddSeals(fd, kAllSeals);
  ExpectRefused(*fd.Dup(), 0, 3 * 4096, "the memfd holds 4096");
  ExpectRefused(*fd.Dup(), 4000, 97, "the memfd holds 4096");
  ExpectRefused(*fd.Dup(), 5000, 1, "the memfd holds 4096");
  ExpectRefused(*fd.Dup(), 4097, 0, "the memfd holds 4096");
  // The range that is there maps.
  ASSERT_OK_AND_ASSIGN(BufferView v, BufferAccess::MapSealed(std::move(fd), 4000, 96));
  EXPECT_EQ(FirstMismatch(v, 4000), 96u);
}

TEST(SharedBufferHostileTest, OffsetPlusLengthOverflowIsRefused) {
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, kAllSeals);
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  ExpectRefused(*fd.Dup(), kMax - 10, 100, "overflows");
  ExpectRefused(*fd.Dup(), 100, kMax, "overflows");
  ExpectRefused(*fd.Dup(), kMax, kMax, "overflows");
  ExpectRefused(*fd.Dup(), uint64_t{1} << 63, 4096, "the memfd holds 4096");
}

TEST(SharedBufferHostileTest, NonMemfdDescriptorsAreRefused) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd write_end(p[1]);
  ExpectRefused(Fd(p[0]), 0, 1, "not a memfd");

  lpc::testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/file";
  Fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(file.valid());
  ASSERT_EQ(::ftruncate(file.get(), 4096), 0);
  ExpectRefused(std::move(file), 0, 4096, "not a memfd");

  Fd zero(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(zero.valid());
  ExpectRefused(std::move(zero), 0, 4096, "not a memfd");

  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Fd other(sv[1]);
  ExpectRefused(Fd(sv[0]), 0, 1, "not a memfd");

  ExpectRefused(Fd(), 0, 1, "no descriptor");
}

TEST(SharedBufferHostileTest, TmpfsFileIsRefused) {
  // A file opened by path on tmpfs answers F_GET_SEALS (F_SEAL_SEAL only)
  // and can never carry F_SEAL_WRITE.
  Fd fd(::open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid()) GTEST_SKIP() << "no tmpfs at /dev/shm: " << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  ExpectRefused(std::move(fd), 0, 4096, "not sealed against writes");
}

TEST(SharedBufferHostileTest, WriteOnlyDescriptorIsRefused) {
  Fd fd = PatternMemfd(4096);
  AddSeals(fd, kAllSeals);
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  Fd write_only(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!write_only.valid()) GTEST_SKIP() << "cannot reopen: " << std::strerror(errno);
  ExpectRefused(std::move(write_only), 0, 4096, "not open for reading");
}

// A sender in another process: the child makes, fills and seals a Buffer
// and passes its memfd over a socketpair (SCM_RIGHTS), as the local
// transport does.
TEST(SharedBufferTest, CrossesAProcessBoundary) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Fd parent_end(sv[0]);
  constexpr size_t kSize = 1 << 20;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<Buffer> b = Buffer::Shared(kSize);
    if (!b.ok()) ::_exit(1);
    Fill(b->data(), b->size());
    absl::StatusOr<SealedBuffer> sealed = BufferAccess::Seal(*std::move(b));
    if (!sealed.ok()) ::_exit(2);
    uint64_t length = sealed->length;
    iovec iov{&length, sizeof(length)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    const int fd = sealed->memfd.get();
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ::_exit(::sendmsg(sv[1], &msg, 0) == sizeof(length) ? 0 : 3);
  }
  ::close(sv[1]);
  uint64_t length = 0;
  iovec iov{&length, sizeof(length)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(parent_end.get(), &msg, MSG_CMSG_CLOEXEC);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(length)));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  int raw = -1;
  std::memcpy(&raw, CMSG_DATA(c), sizeof(int));
  ASSERT_EQ(length, kSize);
  ASSERT_OK_AND_ASSIGN(BufferView v, BufferAccess::MapSealed(Fd(raw), 0, length));
  EXPECT_EQ(FirstMismatch(v), kSize);
}

}  // namespace
}  // namespace lpc
