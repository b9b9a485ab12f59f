// Buffer and BufferView: heap buffers, and the views transports make.
#include "runtime/buffer.h"

#include <cstring>
#include <memory>
#include <utility>

namespace lpc {
namespace internal {
namespace {

class HeapBacking final : public BufferBacking {
 public:
  explicit HeapBacking(size_t size)
      : bytes_(size == 0 ? nullptr : new uint8_t[size]()) {}
  uint8_t* data() { return bytes_.get(); }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
};

}  // namespace

BufferView BufferAccess::MakeView(std::shared_ptr<const void> owner,
                                  const uint8_t* data, size_t size) {
  BufferView v;
  v.data_ = size == 0 ? nullptr : data;
  v.size_ = size;
  v.owner_ = size == 0 ? nullptr : std::move(owner);
  return v;
}

Buffer BufferAccess::Make(std::unique_ptr<BufferBacking> backing,
                          uint8_t* data, size_t size) {
  Buffer b;
  b.data_ = data;
  b.size_ = size;
  b.backing_ = std::move(backing);
  return b;
}

BufferView BufferAccess::ToView(Buffer&& b) {
  if (b.empty()) return BufferView();
  std::shared_ptr<BufferBacking> backing(std::move(b.backing_));
  BufferView v = MakeView(std::move(backing), b.data_, b.size_);
  b.data_ = nullptr;
  b.size_ = 0;
  return v;
}

}  // namespace internal

Buffer::Buffer(Buffer&& other) noexcept
    : data_(other.data_),
      size_(other.size_),
      backing_(std::move(other.backing_)) {
  other.data_ = nullptr;
  other.size_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    backing_ = std::move(other.backing_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

Buffer::~Buffer() = default;

Buffer Buffer::Heap(size_t size) {
  Buffer b;
  if (size == 0) return b;
  auto backing = std::make_unique<internal::HeapBacking>(size);
  b.data_ = backing->data();
  b.size_ = size;
  b.backing_ = std::move(backing);
  return b;
}

}  // namespace lpc
