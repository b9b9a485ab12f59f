// The same-uid buffer pool; see buffer_pool.h.
#include "transports/local/internal/buffer_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/local/handle_errors.h"
#include "transports/local/memfd.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace lpc::local::internal {

using ::lpc::internal::BufferAccess;

class BufferPool::Mapping {
 public:
  Mapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  ~Mapping() { ::munmap(addr_, len_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }

 private:
  void* const addr_;
  const size_t len_;
};

// An unsent chunk Buffer of ours: free again when it goes, unless lent.
class BufferPool::ChunkBacking final : public ::lpc::internal::BufferBacking {
 public:
  ChunkBacking(std::shared_ptr<BufferPool> pool, uint32_t chunk)
      : pool_(std::move(pool)), chunk_(chunk) {}
  ~ChunkBacking() override {
    if (!lent_) pool_->FreeHeld(chunk_);
  }
  const BufferPool* pool() const { return pool_.get(); }
  uint32_t chunk() const { return chunk_; }
  void set_lent(bool lent) { lent_ = lent; }

 private:
  const std::shared_ptr<BufferPool> pool_;
  const uint32_t chunk_;
  bool lent_ = false;
};

// What a borrowed chunk's views share: its last copy returns the chunk.
class BufferPool::Loan {
 public:
  Loan(std::shared_ptr<BufferPool> pool, uint32_t chunk)
      : pool_(std::move(pool)), chunk_(chunk) {}
  ~Loan() { pool_->GiveBack(chunk_); }
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;

 private:
  const std::shared_ptr<BufferPool> pool_;
  const uint32_t chunk_;
};

namespace {

absl::Status Refuse(const std::string& why) {
  return MakeHandleError(HandleError::kPoolRefused, 0,
                         absl::StrCat("the buffer pool: ", why));
}

absl::Status BadChunk(const std::string& why) {
  return MakeHandleError(HandleError::kPoolChunk, 0, why);
}

}  // namespace

BufferPool::BufferPool(std::shared_ptr<Mapping> map, uint64_t chunk_bytes,
                       uint32_t chunk_count, bool is_client)
    : map_(std::move(map)),
      chunk_bytes_(chunk_bytes),
      chunk_count_(chunk_count),
      is_client_(is_client),
      state_(chunk_count, State::kFree) {
  const uint32_t half = chunk_count / 2;
  const uint32_t first = is_client ? 0 : half;
  // Popped from the back: the lowest index first.
  for (uint32_t i = half; i > 0; --i) free_.push_back(first + i - 1);
}

BufferPool::~BufferPool() = default;

absl::StatusOr<std::shared_ptr<BufferPool>> BufferPool::Create(
    uint64_t chunk_bytes, uint32_t chunk_count, UniqueFd* memfd) {
  PoolBody layout{chunk_bytes, chunk_count, 0};
  absl::StatusOr<PoolBody> ok = DecodePoolBody(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(&layout),
                          sizeof(layout)),
      1, 1);
  if (!ok.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "buffer pool of ", chunk_count, " chunks of ", chunk_bytes,
        " bytes: chunks are a multiple of 4096 bytes, their count even, 2 to ",
        kMaxPoolChunks));
  }
  const uint64_t size = chunk_bytes * chunk_count;
  if (size > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("buffer pool too large");
  }
  UniqueFd fd(static_cast<int>(
      ::memfd_create("lpc-buffer-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  const auto fail = [](const char* what) {
    return absl::ResourceExhaustedError(
        absl::StrCat("buffer pool: ", what, ": ", std::strerror(errno)));
  };
  if (!fd.valid()) return fail("memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return fail("ftruncate");
  }
  int r;
  do {
    r = ::fallocate(fd.get(), 0, 0, static_cast<off_t>(size));
  } while (r != 0 && errno == EINTR);
  if (r != 0) return fail("fallocate");
  if (::fcntl(fd.get(), F_ADD_SEALS,
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return fail("seal");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return fail("mmap");
  ::madvise(p, static_cast<size_t>(size), MADV_DONTFORK);
  auto map = std::make_shared<Mapping>(p, static_cast<size_t>(size));
  UniqueFd dup(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return fail("dup");
  *memfd = std::move(dup);
  return std::shared_ptr<BufferPool>(
      new BufferPool(std::move(map), chunk_bytes, chunk_count, true));
}

absl::StatusOr<std::shared_ptr<BufferPool>> BufferPool::Adopt(
    int fd, const PoolBody& layout, uint64_t max_bytes) {
  // The layout was checked by DecodePoolBody: no overflow here.
  const uint64_t size = layout.chunk_bytes * layout.chunk_count;
  if (size > max_bytes) {
    return Refuse(absl::StrCat(size, " bytes, more than the limit of ",
                               max_bytes));
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Refuse("the descriptor is not a memfd");
  const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  if ((seals & need) != need) {
    return Refuse(absl::StrCat(
        "the memfd lacks F_SEAL_SHRINK, F_SEAL_GROW or F_SEAL_SEAL (seals 0x",
        absl::Hex(seals), ")"));
  }
  if ((seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
    return Refuse("the memfd is sealed against writes");
  }
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0 ||
      static_cast<uint64_t>(fs.f_type) != TMPFS_MAGIC) {
    return Refuse("the memfd is not on shmem");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Refuse("the memfd is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) != size) {
    return Refuse(absl::StrCat("the memfd holds ", st.st_size,
                               " bytes, the layout announces ", size));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) {
    return Refuse("the descriptor is not open read-write");
  }
  if (absl::Status s = CheckAllocated(fd); !s.ok()) {
    return Refuse(std::string(s.message()));
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return Refuse(absl::StrCat("mmap: ", std::strerror(errno)));
  }
  ::madvise(p, static_cast<size_t>(size), MADV_DONTFORK);
  auto map = std::make_shared<Mapping>(p, static_cast<size_t>(size));
  return std::shared_ptr<BufferPool>(new BufferPool(
      std::move(map), layout.chunk_bytes, layout.chunk_count, false));
}

uint8_t* BufferPool::ChunkData(uint32_t chunk) const {
  return map_->data() + uint64_t{chunk} * chunk_bytes_;
}

void BufferPool::SetReturnSender(std::function<bool(std::string_view)> send) {
  {
    MutexLock lock(&mu_);
    send_ = std::move(send);
  }
  FlushReturns();
}

std::optional<Buffer> BufferPool::TryNewBuffer(size_t size) {
  if (size == 0 || size > chunk_bytes_) return std::nullopt;
  uint32_t chunk;
  {
    MutexLock lock(&mu_);
    if (free_.empty()) return std::nullopt;
    chunk = free_.back();
    free_.pop_back();
    state_[chunk] = State::kHeld;
  }
  return BufferAccess::Make(
      std::make_unique<ChunkBacking>(shared_from_this(), chunk),
      ChunkData(chunk), size);
}

absl::StatusOr<Buffer> BufferPool::NewBuffer(size_t size) {
  if (std::optional<Buffer> b = TryNewBuffer(size); b.has_value()) {
    return *std::move(b);
  }
  absl::StatusOr<Buffer> b = Buffer::Shared(size);
  if (!b.ok()) return Buffer::Heap(size);
  return b;
}

bool BufferPool::IsChunk(const Buffer& b) {
  return dynamic_cast<const ChunkBacking*>(BufferAccess::Backing(b)) != nullptr;
}

std::optional<uint32_t> BufferPool::ChunkOf(const Buffer& b) const {
  const auto* backing =
      dynamic_cast<const ChunkBacking*>(BufferAccess::Backing(b));
  if (backing == nullptr || backing->pool() != this) return std::nullopt;
  return backing->chunk();
}

void BufferPool::Lend(Buffer& b) {
  auto* backing = dynamic_cast<ChunkBacking*>(BufferAccess::Backing(b));
  MutexLock lock(&mu_);
  state_[backing->chunk()] = State::kLent;
  ++lent_total_;
  backing->set_lent(true);
}

void BufferPool::Unlend(Buffer& b) {
  auto* backing = dynamic_cast<ChunkBacking*>(BufferAccess::Backing(b));
  MutexLock lock(&mu_);
  state_[backing->chunk()] = State::kHeld;
  --lent_total_;
  backing->set_lent(false);
}

void BufferPool::FreeHeld(uint32_t chunk) {
  MutexLock lock(&mu_);
  state_[chunk] = State::kFree;
  free_.push_back(chunk);
}

absl::Status BufferPool::Returned(absl::Span<const uint32_t> chunks) {
  MutexLock lock(&mu_);
  for (uint32_t c : chunks) {
    if (c >= chunk_count_ || !Ours(c) || state_[c] != State::kLent) {
      return BadChunk(absl::StrCat(
          "a return of chunk ", c, ", which ",
          c >= chunk_count_ ? "does not exist"
          : !Ours(c)        ? "is not the returner's to return"
                            : "is not on loan"));
    }
    state_[c] = State::kFree;
    free_.push_back(c);
  }
  return absl::OkStatus();
}

absl::StatusOr<BufferView> BufferPool::Borrow(uint32_t chunk,
                                              uint64_t length) {
  if (chunk >= chunk_count_ || Ours(chunk)) {
    return BadChunk(absl::StrCat("chunk ", chunk, " is not the sender's (",
                                 chunk_count_, " chunks, halves of ",
                                 chunk_count_ / 2, ")"));
  }
  if (length == 0 || length > chunk_bytes_) {
    return BadChunk(absl::StrCat("a chunk of ", length, " bytes; chunks hold ",
                                 chunk_bytes_));
  }
  {
    MutexLock lock(&mu_);
    if (state_[chunk] != State::kFree) {
      return BadChunk(absl::StrCat("chunk ", chunk, " lent twice"));
    }
    state_[chunk] = State::kBorrowed;
    ++borrowed_total_;
  }
  auto loan = std::make_shared<const Loan>(shared_from_this(), chunk);
  return BufferAccess::MakeView(std::move(loan), ChunkData(chunk),
                                static_cast<size_t>(length));
}

void BufferPool::GiveBack(uint32_t chunk) {
  {
    MutexLock lock(&mu_);
    // Free on our side before the peer can lend it again.
    state_[chunk] = State::kFree;
    returns_.push_back(chunk);
  }
  FlushReturns();
}

void BufferPool::FlushReturns() {
  for (;;) {
    std::vector<uint32_t> batch;
    std::function<bool(std::string_view)> send;
    {
      MutexLock lock(&mu_);
      if (returns_.empty() || !send_) return;
      send = send_;
      const size_t n = std::min<size_t>(returns_.size(), kMaxPoolReturns);
      batch.assign(returns_.end() - n, returns_.end());
      returns_.resize(returns_.size() - n);
    }
    if (!send(EncodePoolReturnPacket(batch))) {
      MutexLock lock(&mu_);
      returns_.insert(returns_.end(), batch.begin(), batch.end());
      return;
    }
  }
}

BufferPool::Stats BufferPool::GetStats() const {
  MutexLock lock(&mu_);
  Stats s;
  for (uint32_t c = 0; c < chunk_count_; ++c) {
    switch (state_[c]) {
      case State::kFree:
        if (Ours(c)) ++s.free;
        break;
      case State::kHeld:
        ++s.held;
        break;
      case State::kLent:
        ++s.lent;
        break;
      case State::kBorrowed:
        ++s.borrowed;
        break;
    }
  }
  s.lent_total = lent_total_;
  s.borrowed_total = borrowed_total_;
  s.returns_waiting = returns_.size();
  return s;
}

}  // namespace lpc::local::internal
