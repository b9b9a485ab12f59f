// Making and dropping the memfds behind shared Buffers; see shared_memfd.h.
#include "runtime/internal/shared_memfd.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

namespace lpc::internal {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// A non-executable memfd where the kernel knows MFD_NOEXEC_SEAL (6.3+; a
// kernel with vm.memfd_noexec = 2 refuses memfds without it), a plain one
// where it does not.
int NewMemfd() {
  int fd = ::memfd_create("lpc-buffer",
                          MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL) {
    fd = ::memfd_create("lpc-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedBacking>> SharedBacking::Make(size_t size) {
  if (size == 0 ||
      size > static_cast<size_t>(std::numeric_limits<off_t>::max())) {
    return absl::ResourceExhaustedError(
        absl::StrCat("lpc: no shared buffer of ", size, " bytes"));
  }
  Fd fd(NewMemfd());
  if (!fd) {
    return absl::ResourceExhaustedError(
        absl::StrCat("lpc: memfd_create failed: ", ErrnoText(errno)));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "lpc: cannot size a shared buffer to ", size, " bytes: ", ErrnoText(errno)));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "lpc: cannot map a shared buffer of ", size, " bytes: ", ErrnoText(errno)));
  }
  return std::unique_ptr<SharedBacking>(
      new SharedBacking(std::move(fd), static_cast<uint8_t*>(p), size));
}

SharedBacking::~SharedBacking() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

Fd SharedBacking::UnmapAndRelease() {
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  return std::move(fd_);
}

}  // namespace lpc::internal
