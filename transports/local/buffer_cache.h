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
// Large buffers (above a quarter of the budget: 16 MiB payloads, say) have
// a budget of their own and are kept only while in use: one not taken for
// `large_idle` is dropped by the next Give or Trim, and DropLarge drops
// them all. So a stream of very large calls reuses its buffers, and an
// idle process gives the memory back.
//
// Thread-safe. A buffer handed out is the caller's; only its capacity is
// reused, never its contents.
#ifndef LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_
#define LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_

#include <atomic>
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

  // Keeps at most `max_bytes` of capacity in buffers of up to a quarter of
  // that, and at most `max_large_bytes` in larger ones, each dropped once
  // unused for `large_idle_ns`. 0 keeps none of that kind.
  explicit BufferCache(size_t max_bytes, size_t max_large_bytes = 0,
                       int64_t large_idle_ns = 1'000'000'000);
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  // An empty buffer with at least `capacity` bytes reserved: the smallest
  // kept one that is large enough, or else a new one (reserved here).
  // `capacity` below kMinCapacity returns an empty string without looking.
  std::string Take(size_t capacity);

  // Keeps `buffer`'s capacity if it is worth keeping and fits the budget
  // (making room by dropping smaller kept buffers, or for a large one the
  // least recently used large ones); frees it otherwise.
  void Give(std::string buffer);

  // Drops large buffers unused for large_idle_ns (`now_ns`: MonotonicNowNs).
  void Trim(int64_t now_ns);
  // Drops every large buffer. Cheap when none is kept.
  void DropLarge();

  struct Stats {
    uint64_t reused = 0;   // Take found a kept buffer.
    uint64_t missed = 0;   // Take had to allocate.
    size_t kept_bytes = 0;    // Both kinds.
    size_t kept_buffers = 0;
    size_t large_kept_bytes = 0;
  };
  Stats stats() const;

 private:
  struct Kept {
    std::string buffer;
    bool large = false;
    int64_t last_used_ns = 0;  // Large ones: when given back.
  };
  // Takes kept_[i] out; the caller holds mu_.
  std::string RemoveLocked(size_t i);
  // The index of the kept buffer that `eligible(kept)` admits and that
  // comes first by `before(a, b)`, or kept_.size() if none; holds mu_.
  template <typename Eligible, typename Before>
  size_t FindLocked(Eligible eligible, Before before) const;
  static bool SmallerFirst(const Kept& a, const Kept& b) {
    return a.buffer.capacity() < b.buffer.capacity();
  }
  // Moves the large buffers that `drop(kept)` selects to `*out`.
  template <typename Drop>
  void DropLargeLocked(Drop drop, std::vector<std::string>* out);
  // Moves the large buffers unused for large_idle_ns to `*out`.
  void DropIdleLocked(int64_t now_ns, std::vector<std::string>* out);

  const size_t max_bytes_;
  const size_t max_each_;
  const size_t max_large_bytes_;
  const int64_t large_idle_ns_;
  mutable std::mutex mu_;
  std::vector<Kept> kept_;   // Guarded by mu_.
  size_t kept_bytes_ = 0;    // Guarded by mu_; small ones only.
  size_t large_bytes_ = 0;   // Guarded by mu_.
  uint64_t reused_ = 0;      // Guarded by mu_.
  uint64_t missed_ = 0;      // Guarded by mu_.
  // Large buffers kept now (a copy of the count, read without mu_).
  std::atomic<size_t> large_count_{0};
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_BUFFER_CACHE_H_
