// UniqueFd: sole owner of one file descriptor, closed on destruction.
//
// Thread safety: like a plain value; distinct objects may be used from
// distinct threads, one object needs external locking.
#ifndef LPC_TRANSPORTS_LOCAL_UNIQUE_FD_H_
#define LPC_TRANSPORTS_LOCAL_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace lpc::local {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  // Closes the current descriptor (if any) and owns `fd` instead.
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_UNIQUE_FD_H_
