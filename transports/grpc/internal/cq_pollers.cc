// See cq_pollers.h.
#include "transports/grpc/internal/cq_pollers.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/internal/serving_thread.h"

namespace lpc::grpc_transport {

CqPollers::CqPollers(grpc::ServerCompletionQueue* cq, Options options)
    : cq_(cq), options_(options) {}

CqPollers::~CqPollers() {
  Stop();
  Join();
}

void CqPollers::Start() {
  MutexLock lock(&mu_);
  for (int i = 0; i < options_.min_threads; ++i) SpawnLocked();
}

void CqPollers::SpawnLocked() {
  threads_.emplace_back([this] { Loop(); });
}

void CqPollers::Loop() {
  // Handlers and cancel callbacks run here; Server::Shutdown from one of
  // them must not wait for this thread.
  internal::ServingThreadScope serving;
  while (true) {
    WaitForTurn();  // Counts this thread in polling_.
    void* tag = nullptr;
    bool ok = false;
    const bool got = cq_->Next(&tag, &ok);
    polling_.fetch_sub(1, std::memory_order_relaxed);
    if (!got) return;  // Shut down and drained.
    CqEvent* event = static_cast<CqEvent*>(tag);
#if defined(__SANITIZE_THREAD__)
    __tsan_acquire(event);  // See HandToQueue.
#endif
    event->OnEvent(ok);
  }
}

void CqPollers::WaitForTurn() {
  MutexLock lock(&mu_);
  // polling_ rises only here, under mu_, so at most min_threads threads
  // pass without a wake-up; it falls (without mu_) as each leaves Next.
  if (!joining_ &&
      polling_.load(std::memory_order_relaxed) >= options_.min_threads) {
    ++spares_;
    while (!joining_ && wakeups_ == 0) {
      spare_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
    }
    if (wakeups_ > 0) --wakeups_;
    --spares_;
  }
  polling_.fetch_add(1, std::memory_order_relaxed);
}

CqPollers::ThreadCounts CqPollers::thread_counts() const {
  MutexLock lock(&mu_);
  return ThreadCounts{static_cast<int>(threads_.size()), spares_ - wakeups_,
                      polling_.load(std::memory_order_relaxed)};
}

absl::StatusOr<CqPollers::Admission> CqPollers::Admit(Task* task) {
  MutexLock lock(&mu_);
  if (stopped_) return absl::UnavailableError("server is shutting down");
  if (running_ >= options_.max_handlers) {
    if (queue_.size() >= options_.max_queued) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "server overloaded: ", queue_.size(),
          " calls are waiting for a thread"));
    }
    queue_.push_back(std::move(*task));
    return Admission::kQueued;
  }
  ++running_;
  // This thread stops polling for as long as the handler runs: if no other
  // thread polls, wake a spare or start one (the cap leaves one beyond the
  // busy ones).
  if (polling_.load(std::memory_order_relaxed) == 0) {
    if (spares_ > wakeups_) {
      ++wakeups_;
      spare_cv_.Signal();
    } else if (threads_.size() <
               static_cast<size_t>(options_.max_handlers) + 1) {
      SpawnLocked();
    }
  }
  return Admission::kRunHere;
}

void CqPollers::RunAdmitted(Task task) {
  while (true) {
    task(true);
    MutexLock lock(&mu_);
    if (queue_.empty()) {
      if (--running_ == 0) idle_cv_.SignalAll();
      return;
    }
    task = std::move(queue_.front());
    queue_.pop_front();
  }
}

size_t CqPollers::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

void CqPollers::StopIntake() {
  std::deque<Task> dropped;
  {
    MutexLock lock(&mu_);
    stopped_ = true;
    dropped.swap(queue_);
  }
  for (Task& task : dropped) task(false);
}

void CqPollers::WaitIdle() {
  MutexLock lock(&mu_);
  while (running_ > 0) idle_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
}

void CqPollers::Stop() {
  StopIntake();
  WaitIdle();
}

void CqPollers::Join() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    // Spares poll too now, and find the queue shut down.
    joining_ = true;
    spare_cv_.SignalAll();
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace lpc::grpc_transport
