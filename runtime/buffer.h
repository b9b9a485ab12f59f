// lpc::Buffer and lpc::BufferView: the C++ types of the IDL's `buffer`,
// a byte payload that crosses the local transport without a copy
// (docs/zero-copy.md).
//
// A sender obtains a writable Buffer (Channel::NewBuffer, or
// Buffer::Shared / Buffer::Heap), fills it, and moves it into a call as a
// `buffer` argument or returns it as a `buffer` result. The receiver gets a
// read-only BufferView of the same bytes:
//
// - over the local transport, a shared (memfd-backed) Buffer is sealed
//   against writes once the sender's writable mapping is gone, and the
//   receiver maps it read-only: no byte is copied, and the sender can no
//   longer change what the receiver reads;
// - in process, the view shares the Buffer's memory;
// - over gRPC, and for a heap Buffer, the bytes travel as an ordinary
//   protobuf `bytes` field (one copy each way, as for `bytes`).
//
// Thread safety: a Buffer is a value (one owner); a BufferView may be
// copied and read from any number of threads.
#ifndef LPC_RUNTIME_BUFFER_H_
#define LPC_RUNTIME_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/fd.h"

namespace lpc {

namespace internal {
class BufferAccess;
// Where a Buffer's bytes live: heap memory, or a memfd mapped read-write
// in this process. Implemented in runtime/buffer.cc.
class BufferBacking {
 public:
  virtual ~BufferBacking() = default;
};
}  // namespace internal

class BufferView;

class Buffer {
 public:
  // An empty buffer (size 0); sends as an empty `bytes` field.
  Buffer() = default;
  Buffer(Buffer&&) noexcept;
  Buffer& operator=(Buffer&&) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  // `size` bytes of heap memory, zeroed. Sent by copying.
  static Buffer Heap(size_t size);
  // `size` bytes in a memfd of its own, mapped read-write here and zeroed
  // (fresh pages, or pages of a pooled memfd that were cleared). The
  // local transport sends it without copying. RESOURCE_EXHAUSTED when
  // the memfd or its mapping cannot be made. Size 0 gives an empty Buffer.
  // The mapping is not inherited by a fork()ed child: there, a shared
  // Buffer made before the fork has no memory and cannot be sent.
  static absl::StatusOr<Buffer> Shared(size_t size);

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::Span<uint8_t> span() { return {data_, size_}; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }
  // Whether the bytes are in a memfd (Shared), so the local transport can
  // pass them without a copy.
  bool shared() const;

  // Sends only the first `size` bytes (at most size()); the rest of the
  // memory stays allocated until the buffer is gone.
  void Shrink(size_t size) {
    if (size < size_) size_ = size;
  }

 private:
  friend class internal::BufferAccess;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<internal::BufferBacking> backing_;
};

// A read-only view of a received `buffer`: in place in a sealed memfd's
// read-only mapping, in the sender's memory (in process), or in the
// receiver's private copy of the message. Copies share the memory, which
// stays valid while any copy (or a BufferView made from one) lives.
class BufferView {
 public:
  BufferView() = default;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::Span<const uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }

 private:
  friend class internal::BufferAccess;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

namespace internal {

// A shared Buffer made ready to send: the sender's writable mapping is
// gone and the memfd carries F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
// F_SEAL_SEAL. The bytes are [offset, offset + length) of the file.
struct SealedBuffer {
  Fd memfd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What transports and generated code use of Buffer and BufferView. Not
// for user code.
class BufferAccess {
 public:
  // A view of `size` bytes at `data`, kept valid by `owner` (may be null
  // when `data` is static or outlives every view).
  static BufferView MakeView(std::shared_ptr<const void> owner,
                             const uint8_t* data, size_t size);
  // The view's keeper (null for an empty view).
  static const std::shared_ptr<const void>& Owner(const BufferView& v) {
    return v.owner_;
  }
  // A Buffer of `size` bytes at `data`, kept by `backing`: memory a
  // transport manages itself (the local transport's pool chunks). The
  // backing's destructor runs when the Buffer (or a view made from it by
  // ToView) goes.
  static Buffer Make(std::unique_ptr<BufferBacking> backing, uint8_t* data,
                     size_t size);
  // The Buffer's backing (null for an empty one).
  static BufferBacking* Backing(const Buffer& b) { return b.backing_.get(); }
  // Turns a Buffer into a view of the same memory, without a copy (the
  // in-process transport).
  static BufferView ToView(Buffer&& b);
  // Unmaps a shared Buffer's writable mapping and seals its memfd.
  // FAILED_PRECONDITION for a heap or empty Buffer; INTERNAL when the
  // kernel refuses the seal. Consumes `b` either way.
  static absl::StatusOr<SealedBuffer> Seal(Buffer&& b);
  // The receiver's side: checks a memfd a peer sent and maps its bytes
  // [offset, offset + length) read-only. Refused (INVALID_ARGUMENT, with
  // the reason) unless the file is a memfd sealed with F_SEAL_WRITE (not
  // only F_SEAL_FUTURE_WRITE, which leaves the sender's writable mappings
  // working), F_SEAL_SHRINK and F_SEAL_GROW, and its size covers the range
  // (no overflow). A file that passes cannot change or shrink under the
  // mapping, so reading the view never faults (SIGBUS) and never sees a
  // byte change.
  static absl::StatusOr<BufferView> MapSealed(Fd memfd, uint64_t offset,
                                              uint64_t length);
};

}  // namespace internal
}  // namespace lpc

#endif  // LPC_RUNTIME_BUFFER_H_
