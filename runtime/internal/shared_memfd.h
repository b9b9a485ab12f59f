// The backing of a shared lpc::Buffer: a memfd of its own, mapped
// read-write in this process (docs/zero-copy.md), and the per-process pool
// of memfds that were made but never sent. Private to the runtime.
//
// Thread safety: a SharedBacking has one owner (its Buffer); the pool is
// thread-safe.
#ifndef LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_
#define LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"

namespace lpc::internal {

class SharedBacking final : public BufferBacking {
 public:
  // A memfd (close-on-exec, sealable) of exactly `size` bytes (> 0), zeroed,
  // mapped PROT_READ | PROT_WRITE, MAP_SHARED and not inherited by fork()
  // (MADV_DONTFORK: a child between fork and exec would otherwise hold a
  // writable mapping, and the kernel would refuse to seal the memfd). Taken
  // from the pool of unsent memfds when one fits, else made.
  // RESOURCE_EXHAUSTED when the kernel refuses the memfd, its size or the
  // mapping.
  static absl::StatusOr<std::unique_ptr<SharedBacking>> Make(size_t size);

  // Gives an unsent memfd to the pool (or unmaps and closes it).
  ~SharedBacking() override;
  SharedBacking(const SharedBacking&) = delete;
  SharedBacking& operator=(const SharedBacking&) = delete;

  uint8_t* data() const { return map_; }
  size_t size() const { return size_; }

  // For sealing: unmaps the writable mapping and hands over the memfd.
  // FAILED_PRECONDITION in a process other than the one that made it (a
  // fork()ed child, which has no mapping).
  absl::StatusOr<Fd> UnmapAndRelease();

 private:
  SharedBacking(Fd fd, uint8_t* map, size_t size, pid_t pid)
      : fd_(std::move(fd)), map_(map), size_(size), pid_(pid) {}

  Fd fd_;
  uint8_t* map_;  // null once unmapped
  size_t size_;   // of the file and the mapping
  pid_t pid_;     // the process the mapping is in
};

// The pool of unsent memfds: at most kPoolMaxCount memfds and
// kPoolMaxBytes bytes, the least recently pooled going first.
inline constexpr size_t kPoolMaxCount = 8;
inline constexpr size_t kPoolMaxBytes = size_t{64} << 20;

struct PoolStats {
  size_t count = 0;
  size_t bytes = 0;
  uint64_t reused = 0;  // Make() calls served from the pool
};
PoolStats GetPoolStats();
// Empties the pool (unmaps and closes what it holds).
void DrainPool();

}  // namespace lpc::internal

#endif  // LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_
