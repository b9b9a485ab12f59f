// HandlerPool: a growing pool of worker threads over one FIFO queue.
#include "runtime/internal/handler_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/serving_thread.h"

namespace lpc::internal {

HandlerPool::HandlerPool(Options options) : options_(options) {}

HandlerPool::~HandlerPool() { Join(); }

absl::Status HandlerPool::Start() {
  if (options_.min_workers < 1 || options_.max_workers < options_.min_workers) {
    return absl::InvalidArgumentError(
        absl::StrCat("a handler pool needs 1 <= min_workers <= max_workers, "
                     "not ",
                     options_.min_workers, " and ", options_.max_workers));
  }
  MutexLock lock(&mu_);
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError("handler pool started twice");
  }
  state_ = State::kRunning;
  for (int i = 0; i < options_.min_workers; ++i) StartWorkerLocked();
  return absl::OkStatus();
}

absl::Status HandlerPool::Submit(Task task) {
  MutexLock lock(&mu_);
  if (state_ != State::kRunning) {
    return absl::UnavailableError("server is shutting down");
  }
  if (queue_.size() >= options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server overloaded: ", queue_.size(),
                     " calls are waiting for a worker"));
  }
  queue_.push_back(std::move(task));
  // Idle workers that have not woken yet are already spoken for by the
  // tasks queued before this one: compare with the whole queue.
  if (queue_.size() > static_cast<size_t>(idle_workers_) &&
      static_cast<int>(workers_.size()) < options_.max_workers) {
    StartWorkerLocked();
  }
  work_cv_.Signal();
  return absl::OkStatus();
}

void HandlerPool::Stop() {
  MutexLock lock(&mu_);
  if (state_ == State::kRunning || state_ == State::kNew) {
    state_ = State::kStopped;
  }
}

bool HandlerPool::WaitIdle(absl::Time deadline) {
  MutexLock lock(&mu_);
  while (!(queue_.empty() && running_ == 0)) {
    if (!idle_cv_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) {
      break;
    }
  }
  return queue_.empty() && running_ == 0;
}

void HandlerPool::Join() {
  std::deque<Task> dropped;
  std::vector<std::thread> workers;
  {
    MutexLock lock(&mu_);
    if (state_ == State::kJoined) return;
    state_ = State::kJoined;
    dropped.swap(queue_);
    workers.swap(workers_);
    work_cv_.SignalAll();
  }
  for (Task& task : dropped) task(false);
  dropped.clear();
  for (std::thread& w : workers) w.join();
}

size_t HandlerPool::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

int HandlerPool::running() const {
  MutexLock lock(&mu_);
  return running_;
}

int HandlerPool::threads() const {
  MutexLock lock(&mu_);
  return static_cast<int>(workers_.size());
}

void HandlerPool::StartWorkerLocked() {
  workers_.emplace_back([this] { WorkerLoop(); });
}

void HandlerPool::WorkerLoop() {
  ServingThreadScope serving;  // Runs handlers.
  MutexLock lock(&mu_);
  while (true) {
    ++idle_workers_;
    while (queue_.empty() && state_ != State::kJoined) {
      work_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
    }
    --idle_workers_;
    if (state_ == State::kJoined) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    mu_.Unlock();
    task(true);
    task = nullptr;  // Its captures go before the pool counts it done.
    mu_.Lock();
    --running_;
    idle_cv_.SignalAll();
  }
}

}  // namespace lpc::internal
