// Creation and validation of sealed memfds; see memfd.h.
#include "transports/local/memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace lpc::local {
namespace {

static_assert(kRequiredSeals == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW));

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

constexpr uint64_t kMaxMemfdSize = uint64_t{1} << 40;

std::string ErrnoText(int err) { return std::strerror(err); }

// Everything but the size check.
absl::StatusOr<uint64_t> CheckKindAndSeals(int fd) {
  if (fd < 0) return absl::InvalidArgumentError("memfd: invalid descriptor");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("memfd: fstat failed: ", ErrnoText(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("memfd: descriptor is not a regular file");
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("memfd: descriptor does not support seals (not a memfd): ",
                     ErrnoText(errno)));
  }
  // A tmpfs file opened by path supports F_GET_SEALS too; only memfds carry
  // the "memfd:" name.
  char link[64];
  const std::string proc = absl::StrCat("/proc/self/fd/", fd);
  const ssize_t n = ::readlink(proc.c_str(), link, sizeof(link) - 1);
  if (n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("memfd: cannot resolve descriptor: ", ErrnoText(errno)));
  }
  link[n] = '\0';
  if (std::strncmp(link, "/memfd:", 7) != 0) {
    return absl::InvalidArgumentError("memfd: descriptor is not a memfd");
  }
  if ((seals & ~F_SEAL_EXEC) != kRequiredSeals) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memfd: seals are 0x", absl::Hex(seals), ", want exactly 0x",
        absl::Hex(kRequiredSeals), " (SHRINK|GROW|SEAL)"));
  }
  if (st.st_size < 0) return absl::DataLossError("memfd: negative size");
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

absl::StatusOr<UniqueFd> CreateSealedMemfd(const char* name, uint64_t size) {
  if (size == 0 || size > kMaxMemfdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("memfd: size ", size, " out of range"));
  }
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memfd_create failed: ", ErrnoText(errno)));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memfd: ftruncate failed: ", ErrnoText(errno)));
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kRequiredSeals) != 0) {
    return absl::InternalError(
        absl::StrCat("memfd: F_ADD_SEALS failed: ", ErrnoText(errno)));
  }
  return fd;
}

absl::Status ValidateSealedMemfd(int fd, uint64_t expected_size) {
  absl::StatusOr<uint64_t> size = CheckKindAndSeals(fd);
  if (!size.ok()) return size.status();
  if (*size != expected_size) {
    return absl::DataLossError(absl::StrCat("memfd: size is ", *size,
                                            " bytes, expected ", expected_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ValidateSealedMemfdInRange(int fd, uint64_t min_size,
                                                    uint64_t max_size) {
  absl::StatusOr<uint64_t> size = CheckKindAndSeals(fd);
  if (!size.ok()) return size.status();
  if (*size < min_size || *size > max_size) {
    return absl::DataLossError(absl::StrCat("memfd: size is ", *size,
                                            " bytes, allowed [", min_size, ", ",
                                            max_size, "]"));
  }
  return *size;
}

uint64_t PayloadMemfdSize(uint64_t length) {
  if (length == 0) return 0;
  const uint64_t step =
      std::max<uint64_t>(uint64_t{64} << 10, std::bit_floor(length) / 16);
  return (length + step - 1) / step * step;
}

absl::Status WriteWhole(int fd, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "memfd: write failed: ", n < 0 ? ErrnoText(errno) : "no progress"));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadWhole(int fd, uint64_t length, std::string* out) {
  if (length > kMaxMemfdSize) {
    return absl::InvalidArgumentError("memfd: read length out of range");
  }
  out->resize(length);
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out->data() + done, length - done,
                              static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out->clear();
      return absl::DataLossError(
          absl::StrCat("memfd: read failed: ", ErrnoText(errno)));
    }
    if (n == 0) {
      out->clear();
      return absl::DataLossError(absl::StrCat(
          "memfd: ", done, " bytes where ", length, " were announced"));
    }
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status CheckWritten(int fd, uint64_t length) {
  if (length == 0) return absl::OkStatus();
  const off_t hole = ::lseek(fd, 0, SEEK_HOLE);
  if (hole < 0) {
    return absl::DataLossError(
        absl::StrCat("memfd: cannot look for holes: ", ErrnoText(errno)));
  }
  if (static_cast<uint64_t>(hole) < length) {
    return absl::DataLossError(absl::StrCat(
        "memfd: payload has unwritten pages (a hole at byte ", hole, " of ",
        length, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckAllocated(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::DataLossError(
        absl::StrCat("memfd: fstat failed: ", ErrnoText(errno)));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t pages = (size + 4095) / 4096;
  const uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  if (allocated < pages * 4096) {
    return absl::DataLossError(absl::StrCat(
        "memfd: ", size, " bytes with memory behind only ", allocated,
        " (unwritten pages)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Mapping> Mapping::Map(int fd, uint64_t size, bool writable) {
  if (size == 0 || size > kMaxMemfdSize) {
    return absl::InvalidArgumentError("mmap: size out of range");
  }
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("mmap failed: ", ErrnoText(errno)));
  }
  Mapping m;
  m.data_ = static_cast<std::byte*>(p);
  m.size_ = size;
  return m;
}

absl::StatusOr<Mapping> Mapping::MapForWriting(int fd, uint64_t size) {
  if (size == 0 || size > kMaxMemfdSize) {
    return absl::InvalidArgumentError("mmap: size out of range");
  }
  int r;
  do {
    r = ::fallocate(fd, 0, 0, static_cast<off_t>(size));
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memfd: fallocate failed: ", ErrnoText(errno)));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("mmap failed: ", ErrnoText(errno)));
  }
  Mapping m;
  m.data_ = static_cast<std::byte*>(p);
  m.size_ = size;
  return m;
}

void Mapping::Reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace lpc::local
