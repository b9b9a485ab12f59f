#include "transports/local/buffer_cache.h"

#include <algorithm>
#include <utility>

namespace lpc::local {

BufferCache::BufferCache(size_t max_bytes)
    : max_bytes_(max_bytes), max_each_(max_bytes / 4) {}

std::string BufferCache::Take(size_t capacity) {
  std::string out;
  if (capacity < kMinCapacity) return out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t best = kept_.size();
    for (size_t i = 0; i < kept_.size(); ++i) {
      const size_t cap = kept_[i].capacity();
      if (cap >= capacity && (best == kept_.size() || cap < kept_[best].capacity())) {
        best = i;
      }
    }
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
  if (cap < kMinCapacity || cap > max_each_) return;  // Freed on return.
  buffer.clear();
  std::vector<std::string> dropped;  // Freed outside the lock.
  std::lock_guard<std::mutex> lock(mu_);
  while (kept_bytes_ + cap > max_bytes_) {
    auto smallest = std::min_element(
        kept_.begin(), kept_.end(), [](const std::string& a, const std::string& b) {
          return a.capacity() < b.capacity();
        });
    if (smallest == kept_.end() || smallest->capacity() >= cap) return;
    dropped.push_back(RemoveLocked(smallest - kept_.begin()));
  }
  kept_bytes_ += cap;
  kept_.push_back(std::move(buffer));
}

std::string BufferCache::RemoveLocked(size_t i) {
  if (i + 1 != kept_.size()) std::swap(kept_[i], kept_.back());
  std::string out = std::move(kept_.back());
  kept_.pop_back();
  kept_bytes_ -= out.capacity();
  return out;
}

BufferCache::Stats BufferCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.reused = reused_;
  s.missed = missed_;
  s.kept_bytes = kept_bytes_;
  s.kept_buffers = kept_.size();
  return s;
}

}  // namespace lpc::local
