// Sealed memfds: the only kind of shared memory the local transport maps.
//
// Every region lpc shares is a memfd sealed with exactly
// F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, so that neither side can change
// its size after the other has mapped it (a shrunk mapping raises SIGBUS in
// the reader). A descriptor received from a peer is validated with
// ValidateSealedMemfd BEFORE it is mapped: it must be a regular file, a
// memfd, carry exactly those seals (F_SEAL_EXEC, which some kernels add by
// policy, is tolerated), and have the size the receiver expects, taken from
// fstat and never from a message.
//
// Thread safety: free functions are thread-safe; a Mapping is a value type.
#ifndef LPC_TRANSPORTS_LOCAL_MEMFD_H_
#define LPC_TRANSPORTS_LOCAL_MEMFD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "transports/local/unique_fd.h"

namespace lpc::local {

// The seals every shared region carries.
inline constexpr int kRequiredSeals = 0x0001 | 0x0002 | 0x0004;  // SEAL|SHRINK|GROW

// Creates a memfd of exactly `size` bytes (zero-filled) and seals it.
// `size` must be in [1, 1 TiB].
absl::StatusOr<UniqueFd> CreateSealedMemfd(const char* name, uint64_t size);

// Validates a received descriptor: a memfd with exactly kRequiredSeals whose
// fstat size equals `expected_size`. Never maps anything. The error says why
// (INVALID_ARGUMENT for a wrong kind of file or wrong seals, DATA_LOSS for a
// wrong size).
absl::Status ValidateSealedMemfd(int fd, uint64_t expected_size);

// Like ValidateSealedMemfd, but for a region whose size the receiver does
// not know in advance: the fstat size must be in [min_size, max_size].
// Returns that size.
absl::StatusOr<uint64_t> ValidateSealedMemfdInRange(int fd, uint64_t min_size,
                                                    uint64_t max_size);

// The size of the memfd that carries a mode-3 payload of `length` bytes:
// `length` rounded up to a step of 1/16 of its power of two (at least
// 64 KiB), so at most 6.25% more. Sender and receiver both compute it, and
// the receiver accepts no other size; the tail beyond `length` is never
// read. Payloads of one size class can therefore travel in the same memfd,
// one after another (see Endpoint: a sender keeps its memfds for reuse).
// 0 for 0.
uint64_t PayloadMemfdSize(uint64_t length);

// Writes `bytes` at offset 0 of `fd` (a memfd at least that long) with
// pwrite(2): the kernel fills the file's pages directly, with no mapping to
// fault in and unmap. RESOURCE_EXHAUSTED if the kernel refuses the memory.
absl::Status WriteWhole(int fd, std::string_view bytes);

// Reads the first `length` bytes of `fd` into `*out` (replacing its
// contents, keeping its capacity) with pread(2). Nothing is mapped, so a
// peer's file can never raise SIGBUS here, and the bytes are the
// receiver's own copy once read. DATA_LOSS if the file is shorter.
absl::Status ReadWhole(int fd, uint64_t length, std::string* out);

// Checks that the first `length` bytes of memfd `fd` have all been written:
// a page only ftruncate'd (a hole: sparse) costs its sender nothing, yet
// reading it costs the reader a page. Uses lseek(SEEK_HOLE), which shmem
// answers from its page cache (a swapped-out page counts as written),
// without reading or mapping anything. DATA_LOSS naming the first hole.
absl::Status CheckWritten(int fd, uint64_t length);

// Checks that every page of memfd `fd` has memory behind it (written, or
// allocated by fallocate): its fstat block count covers its size rounded up
// to whole pages. Reading a page that has none through a mapping costs the
// reader a fresh page, charged to it; one that has costs nothing. (Pages
// allocated by fallocate and never written read as zeros, and SEEK_HOLE
// calls them holes, so CheckWritten would refuse them.) DATA_LOSS naming
// the shortfall. The caller has checked that `fd` is a memfd.
absl::Status CheckAllocated(int fd);

// A shared read-write (or read-only) mapping of a whole memfd, unmapped on
// destruction.
class Mapping {
 public:
  Mapping() = default;
  ~Mapping() { Reset(); }
  Mapping(Mapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      Reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // Maps `size` bytes of `fd` shared. The caller has validated `fd` first.
  static absl::StatusOr<Mapping> Map(int fd, uint64_t size, bool writable);
  // A sender's writable mapping of its own memfd of `size` bytes, every
  // page present: the pages are allocated first (fallocate), so that a
  // kernel out of memory is RESOURCE_EXHAUSTED here rather than a fault
  // while writing, and mapped with MAP_POPULATE (one call, not a fault
  // per page).
  static absl::StatusOr<Mapping> MapForWriting(int fd, uint64_t size);

  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  void Reset();

 private:
  std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_MEMFD_H_
