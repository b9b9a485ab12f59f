// FdCloser: closes descriptors that a peer handed over, on a thread of its
// own. A peer's fd can be a socket whose close() lingers for seconds, a
// file on a FUSE mount whose daemon never answers, or a Unix socket whose
// queue holds more such fds; the last close of any of them may block. So
// the I/O thread and the workers never close one: they queue it here (the
// socket of a refused or closed client too, since closing it drops the fds
// queued on it).
//
// The queue is bounded (kMaxQueued): past it, Close() closes the fd in the
// caller's thread and counts it, rather than let a peer grow memory.
//
// A second instance, Memfds(), takes only descriptors checked to be memfds
// (F_GET_SEALS answered): their close never waits on anyone, so its queue
// drains at the CPU's pace, and a server counts its backlog (pending())
// against `max_stashed_fds`. A memfd handed to it is still held by the
// process until its thread closes it; counted so, a flood of stashed fds
// whose connections are cut off cannot push the server past its budget
// while the thread catches up.
//
// Thread safety: thread-safe. Two process-wide instances (Get() and
// Memfds()), whose threads start on first use and live as long as the
// process.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_FD_CLOSER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_FD_CLOSER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "runtime/mutex.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class FdCloser {
 public:
  static constexpr size_t kMaxQueued = 4096;

  static FdCloser& Get();
  // For memfds only (see above).
  static FdCloser& Memfds();

  // Closes `fd` on the closer's thread (an invalid one is ignored).
  void Close(UniqueFd fd) ABSL_LOCKS_EXCLUDED(mu_);
  void Close(std::vector<UniqueFd>& fds) ABSL_LOCKS_EXCLUDED(mu_);

  // Descriptors closed so far by the closer's thread, and those closed in
  // the caller's thread because the queue was full.
  uint64_t closed() const { return closed_.load(std::memory_order_relaxed); }
  uint64_t closed_inline() const {
    return closed_inline_.load(std::memory_order_relaxed);
  }
  // Descriptors queued or being closed.
  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  // Waits until every fd queued so far is closed, or `deadline`; true if
  // they are (for tests).
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit FdCloser(const char* thread_name);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  Mutex mu_;
  CondVar work_cv_;  // Signalled when queue_ grows.
  CondVar idle_cv_;  // Signalled when the thread finishes a close.
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // The thread is in close().
  std::atomic<uint64_t> closed_{0}, closed_inline_{0}, pending_{0};
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_FD_CLOSER_H_
