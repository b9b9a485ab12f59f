// FifoQueue<T>: a first-in first-out queue in a ring that keeps its
// storage between uses. std::deque allocates a block per element once an
// element is larger than a block holds more than one of (a server
// WorkItem is), so a deque of decoded calls cost one malloc and one free
// per call; this queue allocates only when it grows past its capacity.
// pop_front destroys the element at once, as std::deque's does. Storage
// beyond kKeptSlots is handed back when the queue empties, so one burst
// does not pin memory for the life of a connection.
//
// Thread safety: none; the owner serialises calls.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_FIFO_QUEUE_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_FIFO_QUEUE_H_

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace lpc::local::internal {

template <typename T>
class FifoQueue {
 public:
  static constexpr size_t kKeptSlots = 64;

  FifoQueue() = default;
  FifoQueue(FifoQueue&& o) noexcept { swap(o); }
  FifoQueue& operator=(FifoQueue&& o) noexcept {
    FifoQueue gone(std::move(o));
    swap(gone);
    return *this;
  }
  FifoQueue(const FifoQueue&) = delete;
  FifoQueue& operator=(const FifoQueue&) = delete;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  // Requires !empty().
  T& front() { return *slots_[head_]; }

  void push_back(T&& v) {
    if (size_ == slots_.size()) Grow();
    slots_[(head_ + size_) & (slots_.size() - 1)].emplace(std::move(v));
    ++size_;
  }

  // Requires !empty(). Destroys the front element.
  void pop_front() {
    slots_[head_].reset();
    head_ = (head_ + 1) & (slots_.size() - 1);
    if (--size_ == 0) {
      head_ = 0;
      if (slots_.size() > kKeptSlots) {
        std::vector<std::optional<T>>().swap(slots_);
      }
    }
  }

  // Destroys every element, front first.
  void clear() {
    while (!empty()) pop_front();
  }

  void swap(FifoQueue& o) noexcept {
    slots_.swap(o.slots_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
  }

 private:
  void Grow() {
    // A power of two, so that an index wraps with a mask.
    std::vector<std::optional<T>> bigger(slots_.empty() ? 4
                                                        : 2 * slots_.size());
    for (size_t i = 0; i < size_; ++i) {
      bigger[i].emplace(std::move(*slots_[(head_ + i) & (slots_.size() - 1)]));
    }
    slots_.swap(bigger);  // The old, moved-from elements go with `bigger`.
    head_ = 0;
  }

  std::vector<std::optional<T>> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_FIFO_QUEUE_H_
