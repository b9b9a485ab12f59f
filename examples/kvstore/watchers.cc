// The kvstore example's watchers.
#include "examples/kvstore/watchers.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"

namespace example::kv {

// One open Watch call.
class Watcher : public std::enable_shared_from_this<Watcher> {
 public:
  Watcher(lpc::AsyncServerStream<Change> call, std::string prefix)
      : call_(std::move(call)), prefix_(std::move(prefix)) {}

  // Ends the call when its client cancels or goes away. Called once, after
  // the watcher is owned by a shared_ptr.
  void WatchForCancel() {
    std::weak_ptr<Watcher> weak = weak_from_this();
    call_.context().AddCancelCallback([weak] {
      if (std::shared_ptr<Watcher> self = weak.lock()) {
        self->End(absl::CancelledError("the watch was cancelled"));
      }
    });
  }

  bool Matches(const std::string& key) const {
    return key.compare(0, prefix_.size(), prefix_) == 0;
  }

  void Push(const Change& change) {
    bool overflow = false;
    {
      lpc::MutexLock lock(&mu_);
      if (ended_) return;
      if (queue_.size() < Watchers::kMaxQueuedChanges) {
        queue_.push_back(change);
        if (writing_) return;
        writing_ = true;
      } else {
        ended_ = true;
        overflow = true;
        queue_.clear();
      }
    }
    if (overflow) {
      call_.Finish(absl::ResourceExhaustedError(absl::StrCat(
          "the watcher fell more than ", Watchers::kMaxQueuedChanges,
          " changes behind")));
      return;
    }
    WriteNext();
  }

  // Ends the call with `status` (nothing happens if it ended already).
  void End(absl::Status status) {
    {
      lpc::MutexLock lock(&mu_);
      ended_ = true;
      queue_.clear();
    }
    call_.Finish(std::move(status));
  }

  bool ended() {
    lpc::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  // Writes the next queued change; the write's callback writes the one
  // after. Called with writing_ set, which this clears when the queue is
  // empty.
  void WriteNext() {
    Change next;
    {
      lpc::MutexLock lock(&mu_);
      if (ended_ || queue_.empty()) {
        writing_ = false;
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    std::shared_ptr<Watcher> self = shared_from_this();
    call_.Write(next, [self](bool ok) {
      if (!ok) {
        self->End(absl::CancelledError("the watch ended"));
        return;
      }
      self->WriteNext();
    });
  }

  const lpc::AsyncServerStream<Change> call_;
  const std::string prefix_;
  lpc::Mutex mu_;
  std::deque<Change> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

Watchers::~Watchers() {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    lpc::MutexLock lock(&mu_);
    watchers.swap(watchers_);
  }
  for (const auto& w : watchers) {
    w->End(absl::UnavailableError("the store is shutting down"));
  }
}

void Watchers::DropEnded() {
  std::erase_if(watchers_, [](const std::shared_ptr<Watcher>& w) {
    return w->ended();
  });
}

void Watchers::Add(lpc::AsyncServerStream<Change> call,
                   const std::string& prefix) {
  auto watcher = std::make_shared<Watcher>(call, prefix);
  {
    lpc::MutexLock lock(&mu_);
    DropEnded();
    if (watchers_.size() >= kMaxWatchers) {
      watcher.reset();
    } else {
      watchers_.push_back(watcher);
    }
  }
  if (watcher == nullptr) {
    call.Finish(absl::ResourceExhaustedError(
        absl::StrCat("the store has ", kMaxWatchers, " watches open")));
    return;
  }
  watcher->WatchForCancel();
}

void Watchers::Publish(const Change& change) {
  lpc::MutexLock lock(&mu_);
  DropEnded();
  for (const auto& w : watchers_) {
    if (w->Matches(change.key())) w->Push(change);
  }
}

size_t Watchers::size() {
  lpc::MutexLock lock(&mu_);
  DropEnded();
  return watchers_.size();
}

}  // namespace example::kv
