// Large payload buffers kept for the next call.
//
// A large payload (64 KiB and up) that goes through the data area is copied
// into a heap buffer before it is parsed (the copy-before-parse rule of
// docs/hostile-peer.md), and a large reply is encoded into one before it is
// copied into the data area. glibc hands such buffers back to the kernel
// when they are freed (a thread's heap is trimmed once its free top passes
// the trim threshold, 128 KiB to 64 MiB depending on the sizes seen), so
// each new buffer is fresh memory: one page fault per 4 KiB, which on these
// machines cost several times the copy itself. A BufferCache keeps a few
// such buffers, up to a byte budget, so that a stream of large calls reuses
// them.
//
// Thread-safe. A buffer handed out is the caller's; only its capacity is
// reused, never its contents.
#ifndef LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_
#define LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace lpc::local {

class BufferCache {
 public:
  // Buffers with less capacity than this are left to malloc (its own
  // caches serve small sizes well).
  static constexpr size_t kMinCapacity = size_t{64} << 10;

  // Keeps at most `max_bytes` of capacity in all; a buffer larger than a
  // quarter of that is never kept. 0 keeps nothing.
  explicit BufferCache(size_t max_bytes);
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  // An empty buffer with at least `capacity` bytes reserved: the smallest
  // kept one that is large enough, or else a new one (reserved here).
  // `capacity` below kMinCapacity returns an empty string without looking.
  std::string Take(size_t capacity);

  // Keeps `buffer`'s capacity if it is worth keeping and fits the budget
  // (making room by dropping smaller kept buffers); frees it otherwise.
  void Give(std::string buffer);

  struct Stats {
    uint64_t reused = 0;   // Take found a kept buffer.
    uint64_t missed = 0;   // Take had to allocate.
    size_t kept_bytes = 0;
    size_t kept_buffers = 0;
  };
  Stats stats() const;

 private:
  // Takes kept_[i] out; the caller holds mu_.
  std::string RemoveLocked(size_t i);

  const size_t max_bytes_;
  const size_t max_each_;
  mutable std::mutex mu_;
  std::vector<std::string> kept_;  // Guarded by mu_.
  size_t kept_bytes_ = 0;          // Guarded by mu_.
  uint64_t reused_ = 0;            // Guarded by mu_.
  uint64_t missed_ = 0;            // Guarded by mu_.
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_
