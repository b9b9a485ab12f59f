// What a shared lpc::Buffer costs (docs/zero-copy.md, "Costs, and what is
// pooled"): making a memfd and touching its pages, the ways of reusing one
// that was never sent, and the receiver's read-only mapping with and
// without MAP_POPULATE.
//
//   bazel run -c opt //bench:memfd_benchmark -- --benchmark_repetitions=5
//
// Sizes are 1 MiB and 16 MiB. "Touch" writes one byte per 4 KiB page (the
// first write a sender's fill would make); "read" reads one byte per page.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "benchmark/benchmark.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"

namespace {

constexpr size_t kPage = 4096;

void TouchPages(uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i += kPage) p[i] = 1;
  benchmark::ClobberMemory();
}

uint64_t ReadPages(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i += kPage) sum += p[i];
  return sum;
}

int NewMemfd(size_t size) {
  int fd = ::memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) ::abort();
  return fd;
}

uint8_t* MapRw(int fd, size_t size, int extra_flags = 0) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | extra_flags,
                   fd, 0);
  if (p == MAP_FAILED) ::abort();
  return static_cast<uint8_t*>(p);
}

// A new memfd per buffer: memfd_create, ftruncate, mmap, a fault per page,
// munmap, close.
void BM_FreshMemfd(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    const int fd = NewMemfd(size);
    uint8_t* p = MapRw(fd, size);
    TouchPages(p, size);
    ::munmap(p, size);
    ::close(fd);
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_FreshMemfd)->Arg(1 << 20)->Arg(16 << 20);

// The same with the writable mapping populated up front (one call instead
// of a fault per page).
void BM_FreshMemfdPopulated(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    const int fd = NewMemfd(size);
    uint8_t* p = MapRw(fd, size, MAP_POPULATE);
    TouchPages(p, size);
    ::munmap(p, size);
    ::close(fd);
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_FreshMemfdPopulated)->Arg(1 << 20)->Arg(16 << 20);

// An unsent memfd reused with its mapping and pages kept, cleared with
// memset.
void BM_PooledMemset(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int fd = NewMemfd(size);
  uint8_t* p = MapRw(fd, size);
  TouchPages(p, size);
  for (auto _ : state) {
    std::memset(p, 0, size);
    TouchPages(p, size);
  }
  ::munmap(p, size);
  ::close(fd);
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_PooledMemset)->Arg(1 << 20)->Arg(16 << 20);

// An unsent memfd reused with its mapping kept, its pages dropped with
// FALLOC_FL_PUNCH_HOLE (the next touch faults in zeroed pages).
void BM_PooledPunchHole(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int fd = NewMemfd(size);
  uint8_t* p = MapRw(fd, size);
  TouchPages(p, size);
  for (auto _ : state) {
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                    static_cast<off_t>(size)) != 0) {
      ::abort();
    }
    TouchPages(p, size);
  }
  ::munmap(p, size);
  ::close(fd);
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_PooledPunchHole)->Arg(1 << 20)->Arg(16 << 20);

// lpc::Buffer::Shared as built: make, touch, drop unsent.
void BM_BufferShared(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<lpc::Buffer> b = lpc::Buffer::Shared(size);
    if (!b.ok()) ::abort();
    TouchPages(b->data(), size);
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_BufferShared)->Arg(1 << 20)->Arg(16 << 20);

// The whole sender side: make, touch, seal.
void BM_BufferSharedAndSeal(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<lpc::Buffer> b = lpc::Buffer::Shared(size);
    if (!b.ok()) ::abort();
    TouchPages(b->data(), size);
    auto sealed = lpc::internal::BufferAccess::Seal(*std::move(b));
    if (!sealed.ok()) ::abort();
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_BufferSharedAndSeal)->Arg(1 << 20)->Arg(16 << 20);

// A sealed memfd whose pages all exist, as a receiver gets it.
int SealedMemfd(size_t size) {
  const int fd = NewMemfd(size);
  uint8_t* p = MapRw(fd, size);
  std::memset(p, 7, size);
  ::munmap(p, size);
  if (::fcntl(fd, F_ADD_SEALS,
              F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    ::abort();
  }
  return fd;
}

// The receiver: mmap read-only (flags: 0 or MAP_POPULATE), read every
// page, munmap.
void ReceiverMap(benchmark::State& state, int flags) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int fd = SealedMemfd(size);
  for (auto _ : state) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | flags, fd, 0);
    if (p == MAP_FAILED) ::abort();
    benchmark::DoNotOptimize(ReadPages(static_cast<const uint8_t*>(p), size));
    ::munmap(p, size);
  }
  ::close(fd);
  state.SetBytesProcessed(state.iterations() * size);
}
void BM_ReceiverMap(benchmark::State& state) { ReceiverMap(state, 0); }
void BM_ReceiverMapPopulate(benchmark::State& state) {
  ReceiverMap(state, MAP_POPULATE);
}
BENCHMARK(BM_ReceiverMap)->Arg(1 << 20)->Arg(2 << 20)->Arg(4 << 20)->Arg(16 << 20);
BENCHMARK(BM_ReceiverMapPopulate)->Arg(1 << 20)->Arg(2 << 20)->Arg(4 << 20)->Arg(16 << 20);

// lpc::internal::BufferAccess::MapSealed as built (checks, map), reading
// every page.
void BM_MapSealed(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int fd = SealedMemfd(size);
  for (auto _ : state) {
    auto dup = lpc::Fd::Duplicate(fd);
    auto v = lpc::internal::BufferAccess::MapSealed(*std::move(dup), 0, size);
    if (!v.ok()) ::abort();
    benchmark::DoNotOptimize(ReadPages(v->data(), size));
  }
  ::close(fd);
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_MapSealed)->Arg(1 << 20)->Arg(16 << 20);

}  // namespace
