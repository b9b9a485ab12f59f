#include "transports/local/buffer_cache.h"

#include <utility>

#include "transports/local/doorbell.h"

namespace lpc::local {

BufferCache::BufferCache(size_t max_bytes, size_t max_large_bytes,
                         int64_t large_idle_ns)
    : max_bytes_(max_bytes),
      max_each_(max_bytes / 4),
      max_large_bytes_(max_large_bytes),
      large_idle_ns_(large_idle_ns) {}

template <typename Eligible, typename Before>
size_t BufferCache::FindLocked(Eligible eligible, Before before) const {
  size_t found = kept_.size();
  for (size_t i = 0; i < kept_.size(); ++i) {
    if (eligible(kept_[i]) &&
        (found == kept_.size() || before(kept_[i], kept_[found]))) {
      found = i;
    }
  }
  return found;
}

std::string BufferCache::Take(size_t capacity) {
  std::string out;
  if (capacity < kMinCapacity) return out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t best = FindLocked(
        [&](const Kept& k) { return k.buffer.capacity() >= capacity; },
        SmallerFirst);
    if (best != kept_.size()) {
      out = RemoveLocked(best);
      ++reused_;
      return out;
    }
    ++missed_;
  }
  out.reserve(capacity);
  return out;
}

void BufferCache::Give(std::string buffer) {
  const size_t cap = buffer.capacity();
  if (cap < kMinCapacity) return;  // Freed on return.
  const bool large = cap > max_each_;
  if (large && cap > max_large_bytes_) return;
  buffer.clear();
  std::vector<std::string> dropped;  // Freed outside the lock.
  const int64_t now_ns = large ? MonotonicNowNs() : 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (large) {
    // Idle ones first, then the least recently used, to make room.
    DropIdleLocked(now_ns, &dropped);
    while (large_bytes_ + cap > max_large_bytes_) {
      const size_t oldest = FindLocked(
          [](const Kept& k) { return k.large; },
          [](const Kept& a, const Kept& b) {
            return a.last_used_ns < b.last_used_ns;
          });
      if (oldest == kept_.size()) return;
      dropped.push_back(RemoveLocked(oldest));
    }
    large_bytes_ += cap;
    large_count_.fetch_add(1, std::memory_order_relaxed);
    kept_.push_back(Kept{std::move(buffer), true, now_ns});
    return;
  }
  while (kept_bytes_ + cap > max_bytes_) {
    const size_t smallest =
        FindLocked([](const Kept& k) { return !k.large; }, SmallerFirst);
    if (smallest == kept_.size() || kept_[smallest].buffer.capacity() >= cap) {
      return;
    }
    dropped.push_back(RemoveLocked(smallest));
  }
  kept_bytes_ += cap;
  kept_.push_back(Kept{std::move(buffer), false, 0});
}

template <typename Drop>
void BufferCache::DropLargeLocked(Drop drop, std::vector<std::string>* out) {
  for (size_t i = 0; i < kept_.size();) {
    if (kept_[i].large && drop(kept_[i])) {
      out->push_back(RemoveLocked(i));
    } else {
      ++i;
    }
  }
}

void BufferCache::DropIdleLocked(int64_t now_ns, std::vector<std::string>* out) {
  DropLargeLocked(
      [&](const Kept& k) { return now_ns - k.last_used_ns > large_idle_ns_; },
      out);
}

void BufferCache::Trim(int64_t now_ns) {
  if (large_count_.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::string> dropped;  // Freed outside the lock.
  std::lock_guard<std::mutex> lock(mu_);
  DropIdleLocked(now_ns, &dropped);
}

void BufferCache::DropLarge() {
  if (large_count_.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::string> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  DropLargeLocked([](const Kept&) { return true; }, &dropped);
}

std::string BufferCache::RemoveLocked(size_t i) {
  if (i + 1 != kept_.size()) std::swap(kept_[i], kept_.back());
  Kept k = std::move(kept_.back());
  kept_.pop_back();
  if (k.large) {
    large_bytes_ -= k.buffer.capacity();
    large_count_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    kept_bytes_ -= k.buffer.capacity();
  }
  return std::move(k.buffer);
}

BufferCache::Stats BufferCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.reused = reused_;
  s.missed = missed_;
  s.kept_bytes = kept_bytes_ + large_bytes_;
  s.kept_buffers = kept_.size();
  s.large_kept_bytes = large_bytes_;
  return s;
}

}  // namespace lpc::local
