// Shared (memfd-backed) buffers: made, sealed, and mapped by a receiver.
#include "absl/status/status.h"
#include "runtime/buffer.h"

namespace lpc {

absl::StatusOr<Buffer> Buffer::Shared(size_t size) {
  (void)size;
  return absl::UnimplementedError("lpc: shared buffers are not built yet");
}

bool Buffer::shared() const { return false; }

namespace internal {

absl::StatusOr<SealedBuffer> BufferAccess::Seal(Buffer&& b) {
  Buffer gone = std::move(b);
  return absl::FailedPreconditionError("lpc: not a shared buffer");
}

absl::StatusOr<BufferView> BufferAccess::MapSealed(Fd memfd, uint64_t offset,
                                                   uint64_t length) {
  (void)memfd;
  (void)offset;
  (void)length;
  return absl::UnimplementedError("lpc: shared buffers are not built yet");
}

}  // namespace internal
}  // namespace lpc
