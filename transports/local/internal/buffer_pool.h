// BufferPool: the same-uid buffer pool of one local connection
// (docs/local-transport.md, "The same-uid buffer pool"; the trade-off is
// docs/zero-copy.md's "The same-uid shared pool").
//
// One memfd, made by the client, sealed against shrinking and growing but
// not against writes, with every page allocated, mapped read-write by both
// sides. Its chunks are split in halves: the client lends chunks
// [0, count/2) and borrows the others; the server the other way round.
//
// - Lending: TryNewBuffer hands out a free chunk of our half as a Buffer
//   (a chunk Buffer dropped unsent is free again); Lend marks the chunk of
//   such a Buffer on loan just before its POOL_BUFFER packet goes, and
//   Unlend undoes that if the packet could not go. Returned checks a peer's
//   POOL_RETURN: each index one of our chunks on loan.
// - Borrowing: Borrow checks a peer's POOL_BUFFER (index in the peer's
//   half, length within a chunk, not already borrowed) and returns a view
//   into our mapping; when the last copy of the view goes, the chunk is
//   marked free on our side first and then returned (POOL_RETURN) through
//   the sender the connection set, which never blocks. Returns that could
//   not go wait here and go with the next one.
//
// The mapping is shared by the pool and every view and chunk Buffer made
// from it, so it outlives the connection as long as any of them lives.
//
// Thread safety: thread-safe (one lpc::Mutex; the return sender is called
// without it held).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_BUFFER_POOL_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_BUFFER_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/buffer.h"
#include "runtime/call_context.h"
#include "runtime/mutex.h"
#include "transports/local/frame.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class BufferPool : public ::lpc::internal::BufferSource,
                   public std::enable_shared_from_this<BufferPool> {
 public:
  // The client's side: makes the memfd (chunk_bytes x chunk_count, every
  // page allocated, sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
  // maps it and gives a duplicate of its descriptor to `*memfd` for the
  // POOL packet. INVALID_ARGUMENT for a layout DecodePoolBody refuses;
  // RESOURCE_EXHAUSTED when the kernel refuses memory.
  static absl::StatusOr<std::shared_ptr<BufferPool>> Create(
      uint64_t chunk_bytes, uint32_t chunk_count, UniqueFd* memfd);
  // The server's side: checks the memfd of a POOL packet (a memfd with
  // F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL and no write seal, on
  // shmem, open read-write, exactly the announced size, at most
  // `max_bytes`, every page allocated) and maps it. The refusal (the
  // handle error kPoolRefused) names the reason. Does not close `memfd`.
  static absl::StatusOr<std::shared_ptr<BufferPool>> Adopt(
      int memfd, const PoolBody& layout, uint64_t max_bytes);

  ~BufferPool() override;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint64_t chunk_bytes() const { return chunk_bytes_; }
  uint32_t chunk_count() const { return chunk_count_; }
  PoolBody layout() const { return PoolBody{chunk_bytes_, chunk_count_, 0}; }

  // Sets (or, null, clears) how returns are sent: `send` gets a POOL_RETURN
  // packet and must not block; false = not sent now (kept for the next).
  void SetReturnSender(std::function<bool(std::string_view)> send);

  // --- Lending our chunks ---
  // A free chunk of our half as a Buffer of `size` bytes (1..chunk_bytes),
  // or nullopt (too big, or none free). The bytes are those the chunk held.
  std::optional<Buffer> TryNewBuffer(size_t size);
  // BufferSource: TryNewBuffer, else Buffer::Shared (Heap if that fails).
  absl::StatusOr<Buffer> NewBuffer(size_t size) override;
  // Whether `b` is a chunk Buffer of any pool.
  static bool IsChunk(const Buffer& b);
  // The chunk index of `b` if it is a chunk Buffer of this pool.
  std::optional<uint32_t> ChunkOf(const Buffer& b) const;
  // Marks the chunk of `b` (ChunkOf(b) set) on loan: from now on the
  // Buffer's destructor leaves it to the peer. Call just before its packet
  // goes; Unlend if it did not go.
  void Lend(Buffer& b);
  void Unlend(Buffer& b);
  // A peer's POOL_RETURN: each index must be one of our chunks on loan;
  // else the handle error kPoolChunk (the ones before it are free).
  absl::Status Returned(absl::Span<const uint32_t> chunks);

  // --- Borrowing the peer's ---
  // A peer's POOL_BUFFER: `chunk` in the peer's half, 1 <= length <=
  // chunk_bytes, not already borrowed; else the handle error kPoolChunk.
  absl::StatusOr<BufferView> Borrow(uint32_t chunk, uint64_t length);
  // Sends returns that could not go before (never blocks).
  void FlushReturns();

  struct Stats {
    uint32_t free = 0;      // our chunks free
    uint32_t held = 0;      // our chunks in unsent Buffers
    uint32_t lent = 0;      // our chunks on loan to the peer
    uint32_t borrowed = 0;  // the peer's chunks we hold views of
    uint64_t lent_total = 0;
    uint64_t borrowed_total = 0;
    size_t returns_waiting = 0;
  };
  Stats GetStats() const;

  // Whether we are the client (our half is the lower one).
  bool is_client() const { return is_client_; }

 private:
  class Mapping;
  class ChunkBacking;
  class Loan;
  enum class State : uint8_t { kFree, kHeld, kLent, kBorrowed };

  BufferPool(std::shared_ptr<Mapping> map, uint64_t chunk_bytes,
             uint32_t chunk_count, bool is_client);
  bool Ours(uint32_t chunk) const {
    return (chunk < chunk_count_ / 2) == is_client_;
  }
  uint8_t* ChunkData(uint32_t chunk) const;
  void FreeHeld(uint32_t chunk);       // an unsent chunk Buffer went
  void GiveBack(uint32_t chunk);       // a borrowed chunk's last view went

  const std::shared_ptr<Mapping> map_;
  const uint64_t chunk_bytes_;
  const uint32_t chunk_count_;
  const bool is_client_;
  mutable Mutex mu_;
  std::vector<State> state_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_ ABSL_GUARDED_BY(mu_);  // our free chunks
  std::vector<uint32_t> returns_ ABSL_GUARDED_BY(mu_);  // not sent yet
  std::function<bool(std::string_view)> send_ ABSL_GUARDED_BY(mu_);
  uint64_t lent_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t borrowed_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_BUFFER_POOL_H_
