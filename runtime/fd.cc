#include "runtime/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lpc {

void Fd::reset(int fd) noexcept {
  const int old = fd_;
  fd_ = fd < 0 ? -1 : fd;
  // close() is not retried on EINTR: on Linux the descriptor is released
  // whatever close reports.
  if (old >= 0 && old != fd_) ::close(old);
}

absl::StatusOr<Fd> Fd::Duplicate(int fd) {
  if (fd < 0) {
    return absl::InvalidArgumentError("lpc: cannot duplicate an empty Fd");
  }
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    const int err = errno;
    std::string what =
        absl::StrCat("lpc: cannot duplicate descriptor ", fd, ": ", std::strerror(err));
    if (err == EMFILE || err == ENFILE) return absl::ResourceExhaustedError(what);
    return absl::InvalidArgumentError(what);
  }
  return Fd(dup);
}

}  // namespace lpc
