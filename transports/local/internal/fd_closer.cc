// The closer thread for peers' descriptors (fd_closer.h).
#include "transports/local/internal/fd_closer.h"

#include <pthread.h>
#include <unistd.h>

#include <thread>

namespace lpc::local::internal {

FdCloser& FdCloser::Get() {
  static FdCloser* const closer = new FdCloser("lpc-fd-closer");  // Never destroyed.
  return *closer;
}

FdCloser& FdCloser::Memfds() {
  static FdCloser* const closer = new FdCloser("lpc-memfd-close");
  return *closer;
}

FdCloser::FdCloser(const char* thread_name) {
  std::thread t([this, thread_name] {
    // Named from the thread itself (prctl): naming another thread opens
    // /proc/self/task/<tid>/comm, a descriptor the process briefly holds.
    pthread_setname_np(pthread_self(), thread_name);
    Loop();
  });
  t.detach();
}

void FdCloser::Close(UniqueFd fd) {
  if (!fd) return;
  {
    MutexLock lock(&mu_);
    if (queue_.size() < kMaxQueued) {
      pending_.fetch_add(1, std::memory_order_relaxed);
      queue_.push_back(fd.Release());
      work_cv_.Signal();
      return;
    }
  }
  closed_inline_.fetch_add(1, std::memory_order_relaxed);
  fd.Reset();
}

void FdCloser::Close(std::vector<UniqueFd>& fds) {
  for (UniqueFd& fd : fds) Close(std::move(fd));
  fds.clear();
}

bool FdCloser::WaitIdle(absl::Time deadline) {
  MutexLock lock(&mu_);
  while (!queue_.empty() || closing_) {
    if (!idle_cv_.WaitWithDeadline(&mu_, deadline)) {
      return queue_.empty() && !closing_;
    }
  }
  return true;
}

void FdCloser::Loop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (queue_.empty()) work_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
    const int fd = queue_.front();
    queue_.pop_front();
    closing_ = true;
    mu_.Unlock();
    ::close(fd);  // May block for as long as the peer's fd makes it.
    closed_.fetch_add(1, std::memory_order_relaxed);
    pending_.fetch_sub(1, std::memory_order_relaxed);
    mu_.Lock();
    closing_ = false;
    idle_cv_.SignalAll();
  }
}

}  // namespace lpc::local::internal
