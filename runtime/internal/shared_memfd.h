// The backing of a shared lpc::Buffer: a memfd of its own, mapped
// read-write in this process (docs/zero-copy.md). Private to the runtime.
//
// Thread safety: a SharedBacking has one owner (its Buffer).
#ifndef LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_
#define LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"

namespace lpc::internal {

class SharedBacking final : public BufferBacking {
 public:
  // A memfd (close-on-exec, sealable) of exactly `size` bytes (> 0), zeroed,
  // mapped PROT_READ | PROT_WRITE, MAP_SHARED. RESOURCE_EXHAUSTED when the
  // kernel refuses the memfd, its size or the mapping.
  static absl::StatusOr<std::unique_ptr<SharedBacking>> Make(size_t size);

  // Unmaps (and closes, unless UnmapAndRelease took the memfd).
  ~SharedBacking() override;
  SharedBacking(const SharedBacking&) = delete;
  SharedBacking& operator=(const SharedBacking&) = delete;

  uint8_t* data() const { return map_; }
  size_t size() const { return size_; }

  // For sealing: unmaps the writable mapping and hands over the memfd.
  Fd UnmapAndRelease();

 private:
  SharedBacking(Fd fd, uint8_t* map, size_t size)
      : fd_(std::move(fd)), map_(map), size_(size) {}

  Fd fd_;
  uint8_t* map_;  // null once unmapped
  size_t size_;   // of the file and the mapping
};

}  // namespace lpc::internal

#endif  // LPC_RUNTIME_INTERNAL_SHARED_MEMFD_H_
