// lpc::Fd: the owner of one file descriptor, the C++ type of the IDL's
// `handle` (docs/handles.md).
//
// An Fd closes its descriptor when it is destroyed or reset. It is
// move-only: a descriptor has one owner at a time. get() borrows the
// descriptor (the Fd still owns it); release() gives up ownership and
// returns it, after which the caller must close it.
//
// Every descriptor lpc hands to user code is close-on-exec.
#ifndef LPC_RUNTIME_FD_H_
#define LPC_RUNTIME_FD_H_

#include "absl/status/statusor.h"

namespace lpc {

class Fd {
 public:
  // An empty Fd (get() == -1).
  Fd() = default;
  // Takes ownership of `fd` (-1: empty).
  explicit Fd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  // The descriptor, still owned by this Fd; -1 when empty.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership: returns the descriptor (-1 when empty) and leaves
  // this Fd empty. The caller closes it.
  [[nodiscard]] int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

  // A close-on-exec duplicate of this Fd's descriptor (F_DUPFD_CLOEXEC),
  // owned by the result. INVALID_ARGUMENT for an empty Fd;
  // RESOURCE_EXHAUSTED when the process is out of descriptors.
  absl::StatusOr<Fd> Dup() const { return Duplicate(fd_); }

  // A close-on-exec duplicate of `fd` (borrowed: the caller keeps it).
  static absl::StatusOr<Fd> Duplicate(int fd);

 private:
  int fd_ = -1;
};

}  // namespace lpc

#endif  // LPC_RUNTIME_FD_H_
