// Shared (memfd-backed) buffers: made, sealed, and mapped by a receiver
// (docs/zero-copy.md, "Checks on receipt").
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/buffer.h"
#include "runtime/internal/shared_memfd.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace lpc {
namespace internal {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// The receiver maps buffers of at least this many bytes with MAP_POPULATE.
constexpr uint64_t kPopulateFrom = uint64_t{8} << 20;

// A read-only mapping a BufferView keeps alive.
class ReadMapping {
 public:
  ReadMapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  ~ReadMapping() { ::munmap(addr_, len_); }
  ReadMapping(const ReadMapping&) = delete;
  ReadMapping& operator=(const ReadMapping&) = delete;

 private:
  void* const addr_;
  const size_t len_;
};

}  // namespace
}  // namespace internal

absl::StatusOr<Buffer> Buffer::Shared(size_t size) {
  Buffer b;
  if (size == 0) return b;
  absl::StatusOr<std::unique_ptr<internal::SharedBacking>> backing =
      internal::SharedBacking::Make(size);
  if (!backing.ok()) return backing.status();
  b.data_ = (*backing)->data();
  b.size_ = size;
  b.backing_ = *std::move(backing);
  return b;
}

bool Buffer::shared() const {
  return dynamic_cast<const internal::SharedBacking*>(backing_.get()) != nullptr;
}

namespace internal {

absl::StatusOr<SealedBuffer> BufferAccess::Seal(Buffer&& b) {
  Buffer gone = std::move(b);
  auto* backing = dynamic_cast<SharedBacking*>(gone.backing_.get());
  if (backing == nullptr || gone.empty()) {
    return absl::FailedPreconditionError(
        gone.empty() ? "lpc: cannot seal an empty buffer"
                     : "lpc: cannot seal a heap buffer (not shared)");
  }
  const uint64_t length = gone.size_;
  gone.data_ = nullptr;
  gone.size_ = 0;
  // The writable mapping goes first: the kernel refuses F_SEAL_WRITE while
  // one exists.
  absl::StatusOr<Fd> released = backing->UnmapAndRelease();
  gone.backing_.reset();
  if (!released.ok()) return released.status();
  Fd fd = *std::move(released);
  // A Shrink()ed buffer sends only `length` bytes: the file is cut to them,
  // so the receiver's file holds nothing else (and the pages go).
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::InternalError(
        absl::StrCat("lpc: fstat of a shared buffer failed: ", ErrnoText(errno)));
  }
  if (static_cast<uint64_t>(st.st_size) > length &&
      ::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
    return absl::InternalError(absl::StrCat(
        "lpc: cannot cut a shared buffer to its size: ", ErrnoText(errno)));
  }
  // F_SEAL_WRITE is refused (EBUSY) while a page of the file has a
  // reference besides the page cache's: a writable mapping, or a transient
  // one the kernel itself holds (the kernel waits about 75 ms for those
  // before it gives up, which a loaded machine can exceed). Four more
  // tries, 10 to 80 ms apart, outlast the transient ones.
  int err = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(5 << attempt));
    if (::fcntl(fd.get(), F_ADD_SEALS,
                F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) ==
        0) {
      err = 0;
      break;
    }
    err = errno;
    if (err != EBUSY && err != EINTR) break;
  }
  if (err != 0) {
    return absl::InternalError(absl::StrCat(
        "lpc: cannot seal a shared buffer: ", ErrnoText(err),
        err == EBUSY ? " (a writable mapping of its memfd still exists, e.g. "
                       "one a fork()ed child inherited)"
                     : ""));
  }
  SealedBuffer sealed;
  sealed.memfd = std::move(fd);
  sealed.offset = 0;
  sealed.length = length;
  return sealed;
}

absl::StatusOr<BufferView> BufferAccess::MapSealed(Fd memfd, uint64_t offset,
                                                   uint64_t length) {
  const auto refuse = [](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("lpc: refused a shared buffer: ", why));
  };
  if (!memfd.valid()) return refuse("no descriptor");
  const int fd = memfd.get();
  // F_GET_SEALS does no I/O and answers only for memfds (and tmpfs or
  // hugetlbfs files, which the seal and file-system checks below refuse).
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    return refuse(absl::StrCat("the descriptor is not a memfd (F_GET_SEALS: ",
                               ErrnoText(errno), ")"));
  }
  if ((seals & F_SEAL_WRITE) == 0) {
    return refuse(
        (seals & F_SEAL_FUTURE_WRITE) != 0
            ? "sealed with F_SEAL_FUTURE_WRITE but not F_SEAL_WRITE (the "
              "sender's writable mappings would still work)"
            : "the memfd is not sealed against writes (F_SEAL_WRITE)");
  }
  if ((seals & F_SEAL_SHRINK) == 0) {
    return refuse("the memfd is not sealed against shrinking (F_SEAL_SHRINK)");
  }
  if ((seals & F_SEAL_GROW) == 0) {
    return refuse("the memfd is not sealed against growing (F_SEAL_GROW)");
  }
  // A hugetlbfs memfd can run out of huge pages at fault time (SIGBUS);
  // only ordinary shmem memfds are mapped.
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) {
    return refuse(absl::StrCat("fstatfs failed: ", ErrnoText(errno)));
  }
  if (static_cast<uint64_t>(fs.f_type) != TMPFS_MAGIC) {
    return refuse(absl::StrCat("the memfd is not on shmem (file system 0x",
                               absl::Hex(static_cast<uint64_t>(fs.f_type)),
                               ", e.g. hugetlbfs)"));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return refuse(absl::StrCat("fstat failed: ", ErrnoText(errno)));
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 0) {
    return refuse("the memfd is not a regular file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY) {
    return refuse("the descriptor is not open for reading");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (length > std::numeric_limits<uint64_t>::max() - offset) {
    return refuse(absl::StrCat("offset ", offset, " plus length ", length,
                               " overflows"));
  }
  if (offset + length > file_size) {
    return refuse(absl::StrCat("bytes [", offset, ", ", offset + length,
                               ") announced, but the memfd holds ", file_size));
  }
  if (length == 0) return BufferView();  // `memfd` closes here.
  // offset + length <= file_size <= INT64_MAX, so nothing below overflows.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset & ~(page - 1);
  const uint64_t skip = offset - start;
  const uint64_t map_len = skip + length;
  if (map_len > std::numeric_limits<size_t>::max()) {
    return absl::ResourceExhaustedError(
        "lpc: a shared buffer is too large to map");
  }
  // Populating the mapping in one call beats a fault per 64 KiB from
  // about 4 MiB up (docs/zero-copy.md, "Costs, and what is pooled").
  const int populate = length >= kPopulateFrom ? MAP_POPULATE : 0;
  void* p = ::mmap(nullptr, static_cast<size_t>(map_len), PROT_READ,
                   MAP_SHARED | populate, fd, static_cast<off_t>(start));
  if (p == MAP_FAILED) {
    const int err = errno;
    const std::string what =
        absl::StrCat("lpc: cannot map a shared buffer of ", length,
                     " bytes: ", ErrnoText(err));
    if (err == ENOMEM || err == EAGAIN || err == ENFILE) {
      return absl::ResourceExhaustedError(what);
    }
    return absl::InvalidArgumentError(what);
  }
  auto owner = std::make_shared<const ReadMapping>(p, static_cast<size_t>(map_len));
  return MakeView(std::move(owner), static_cast<const uint8_t*>(p) + skip,
                  static_cast<size_t>(length));
}

}  // namespace internal
}  // namespace lpc
