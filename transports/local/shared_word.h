// Atomic access to control words that live in memory shared with a peer.
//
// Shared structs hold plain integers (so that they stay trivially copyable
// and their layout is exactly what docs/local-transport.md says); every
// access to a control word goes through std::atomic_ref here. Control words
// are 32 or 64 bits, so a peer that dies mid-write leaves no torn value.
#ifndef LPC_TRANSPORTS_LOCAL_SHARED_WORD_H_
#define LPC_TRANSPORTS_LOCAL_SHARED_WORD_H_

#include <atomic>
#include <cstdint>

namespace lpc::local {

static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint64_t>::required_alignment <= alignof(uint64_t));

template <typename T>
inline T SharedLoad(const T& word,
                    std::memory_order order = std::memory_order_acquire) {
  return std::atomic_ref<T>(const_cast<T&>(word)).load(order);
}

template <typename T>
inline void SharedStore(T& word, T value,
                        std::memory_order order = std::memory_order_release) {
  std::atomic_ref<T>(word).store(value, order);
}

template <typename T>
inline T SharedExchange(T& word, T value,
                        std::memory_order order = std::memory_order_seq_cst) {
  return std::atomic_ref<T>(word).exchange(value, order);
}

// Overflow-checked helpers for sizes that come from a peer.
inline bool AddOverflows(uint64_t a, uint64_t b, uint64_t* sum) {
  return __builtin_add_overflow(a, b, sum);
}
inline bool MulOverflows(uint64_t a, uint64_t b, uint64_t* product) {
  return __builtin_mul_overflow(a, b, product);
}

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_SHARED_WORD_H_
