// Making, pooling and dropping the memfds behind shared Buffers; see
// shared_memfd.h.
#include "runtime/internal/shared_memfd.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/mutex.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

namespace lpc::internal {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

size_t PageSize() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

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

// An unsent memfd and its writable mapping of `size` bytes (the file's
// size).
struct Unsent {
  Fd fd;
  uint8_t* map = nullptr;
  size_t size = 0;
};

void Destroy(Unsent& u) {
  if (u.map != nullptr) ::munmap(u.map, u.size);
  u.map = nullptr;
  u.fd.reset();
}

class Pool {
 public:
  // The smallest pooled memfd of at least `size` bytes and at most twice
  // that, cut to `size` bytes and cleared.
  std::optional<Unsent> Take(size_t size) {
    std::optional<Unsent> got;
    std::vector<Unsent> stale;
    {
      MutexLock lock(&mu_);
      ForgetIfForked(stale);
      size_t best = entries_.size();
      for (size_t i = 0; i < entries_.size(); ++i) {
        const size_t have = entries_[i].size;
        if (have >= size && have / 2 <= size &&
            (best == entries_.size() || have < entries_[best].size)) {
          best = i;
        }
      }
      if (best != entries_.size()) {
        bytes_ -= entries_[best].size;
        got = std::move(entries_[best]);
        entries_.erase(entries_.begin() + best);
        ++reused_;
      }
    }
    stale.clear();
    if (got && !Fit(*got, size)) {
      Destroy(*got);
      got.reset();
    }
    return got;
  }

  // Keeps `u` (the most recently pooled), dropping the least recently
  // pooled beyond the bounds; or destroys `u` if it alone exceeds them.
  void Give(Unsent u) {
    std::vector<Unsent> out;
    {
      MutexLock lock(&mu_);
      ForgetIfForked(out);
      if (u.size <= kPoolMaxBytes) {
        bytes_ += u.size;
        entries_.push_back(std::move(u));
        while (entries_.size() > kPoolMaxCount || bytes_ > kPoolMaxBytes) {
          bytes_ -= entries_.front().size;
          out.push_back(std::move(entries_.front()));
          entries_.erase(entries_.begin());
        }
      } else {
        out.push_back(std::move(u));
      }
    }
    for (Unsent& e : out) Destroy(e);  // outside the lock
  }

  PoolStats Stats() {
    std::vector<Unsent> stale;
    MutexLock lock(&mu_);
    ForgetIfForked(stale);
    return PoolStats{entries_.size(), bytes_, reused_};
  }

  void Drain() {
    std::vector<Unsent> out;
    {
      MutexLock lock(&mu_);
      ForgetIfForked(out);
      for (Unsent& e : entries_) out.push_back(std::move(e));
      entries_.clear();
      bytes_ = 0;
    }
    for (Unsent& e : out) Destroy(e);
  }

 private:
  // In a fork()ed child the pooled mappings are absent (MADV_DONTFORK):
  // their descriptors go (into `out`, without unmapping) and the pool
  // starts empty.
  void ForgetIfForked(std::vector<Unsent>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const pid_t now = ::getpid();
    if (now == pid_) return;
    pid_ = now;
    for (Unsent& e : entries_) {
      e.map = nullptr;
      out.push_back(std::move(e));
    }
    entries_.clear();
    bytes_ = 0;
  }

  // Cuts a pooled memfd to `size` bytes and zeroes them. Cutting drops the
  // pages past `size` (and zeroes the tail of the last page); the pages
  // kept are cleared with memset, which costs less than faulting in fresh
  // zeroed pages (docs/zero-copy.md, "Costs, and what is pooled").
  static bool Fit(Unsent& u, size_t size) {
    if (u.size != size) {
      if (::ftruncate(u.fd.get(), static_cast<off_t>(size)) != 0) return false;
      const size_t keep = (size + PageSize() - 1) / PageSize() * PageSize();
      const size_t had = (u.size + PageSize() - 1) / PageSize() * PageSize();
      if (had > keep) ::munmap(u.map + keep, had - keep);
      u.size = size;
    }
    std::memset(u.map, 0, size);
    return true;
  }

  Mutex mu_;
  std::vector<Unsent> entries_ ABSL_GUARDED_BY(mu_);  // oldest first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reused_ ABSL_GUARDED_BY(mu_) = 0;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = ::getpid();
};

Pool& ThePool() {
  static Pool* const pool = new Pool();
  return *pool;
}

absl::StatusOr<Unsent> MakeUnsent(size_t size) {
  Unsent u;
  u.fd.reset(NewMemfd());
  if (!u.fd) {
    return absl::ResourceExhaustedError(
        absl::StrCat("lpc: memfd_create failed: ", ErrnoText(errno)));
  }
  if (::ftruncate(u.fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "lpc: cannot size a shared buffer to ", size, " bytes: ", ErrnoText(errno)));
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, u.fd.get(), 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "lpc: cannot map a shared buffer of ", size, " bytes: ", ErrnoText(errno)));
  }
  u.map = static_cast<uint8_t*>(p);
  u.size = size;
  if (::madvise(p, size, MADV_DONTFORK) != 0) {
    const int err = errno;
    Destroy(u);
    return absl::ResourceExhaustedError(
        absl::StrCat("lpc: madvise(MADV_DONTFORK) failed: ", ErrnoText(err)));
  }
  return u;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedBacking>> SharedBacking::Make(size_t size) {
  if (size == 0 ||
      size > static_cast<size_t>(std::numeric_limits<off_t>::max())) {
    return absl::ResourceExhaustedError(
        absl::StrCat("lpc: no shared buffer of ", size, " bytes"));
  }
  std::optional<Unsent> pooled = ThePool().Take(size);
  Unsent u;
  if (pooled) {
    u = std::move(*pooled);
  } else {
    absl::StatusOr<Unsent> made = MakeUnsent(size);
    if (!made.ok()) return made.status();
    u = *std::move(made);
  }
  return std::unique_ptr<SharedBacking>(
      new SharedBacking(std::move(u.fd), u.map, u.size, ::getpid()));
}

SharedBacking::~SharedBacking() {
  if (map_ == nullptr) return;
  if (::getpid() != pid_) return;  // a fork()ed child: not mapped here
  Unsent u;
  u.fd = std::move(fd_);
  u.map = map_;
  u.size = size_;
  ThePool().Give(std::move(u));
}

absl::StatusOr<Fd> SharedBacking::UnmapAndRelease() {
  if (::getpid() != pid_) {
    return absl::FailedPreconditionError(
        "lpc: a shared buffer made before fork() cannot be sent from the "
        "child (its mapping stays in the parent)");
  }
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  return std::move(fd_);
}

PoolStats GetPoolStats() { return ThePool().Stats(); }
void DrainPool() { ThePool().Drain(); }

}  // namespace lpc::internal
