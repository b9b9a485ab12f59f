// The context table, and the runtime's rundown thread.
#include "runtime/context_handle.h"

#include <sys/random.h>

#include <cerrno>
#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/internal/call_context_access.h"

namespace lpc {
namespace {

// A 64-bit id from the kernel's CSPRNG; never 0 (the empty handle).
uint64_t RandomId() {
  for (;;) {
    uint64_t id = 0;
    ssize_t n = getrandom(&id, sizeof(id), 0);
    if (n == static_cast<ssize_t>(sizeof(id)) && id != 0) return id;
    if (n < 0 && errno != EINTR) {
      // getrandom cannot fail for 8 bytes once the pool is seeded; fall
      // back to the clock and address mixing rather than abort.
      id = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) *
               0x9e3779b97f4a7c15ULL ^
           reinterpret_cast<uintptr_t>(&id);
      if (id != 0) return id;
    }
  }
}

// One thread, started on first use and never stopped (it outlives every
// table), that runs queued rundowns in order.
class RundownThread {
 public:
  static RundownThread& Get() {
    static RundownThread* thread = new RundownThread;
    return *thread;
  }

  void Queue(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (!started_) {
      started_ = true;
      std::thread t([this] { Loop(); });
      thread_id_ = t.get_id();
      t.detach();
    }
    queue_.push_back(std::move(fn));
    ++queued_total_;
    work_cv_.Signal();
  }

  bool Drain(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    // A rundown that drains would wait for itself.
    if (started_ && std::this_thread::get_id() == thread_id_) return false;
    const uint64_t target = queued_total_;
    while (done_total_ < target) {
      if (!done_cv_.WaitWithDeadline(&mu_, deadline) &&
          done_total_ < target) {
        return false;
      }
    }
    return true;
  }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    for (;;) {
      while (queue_.empty()) {
        work_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
      }
      std::function<void()> fn = std::move(queue_.front());
      queue_.pop_front();
      mu_.Unlock();
      fn();
      fn = nullptr;  // The object goes with its rundown, outside the lock.
      mu_.Lock();
      ++done_total_;
      done_cv_.SignalAll();
    }
  }

  Mutex mu_;
  CondVar work_cv_;
  CondVar done_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id thread_id_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_total_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status NotFound(uint64_t id) {
  return absl::NotFoundError(
      absl::StrCat("no open context handle ", absl::Hex(id, absl::kZeroPad16),
                   " of this type on this connection"));
}

}  // namespace

ContextTable::ContextTable(size_t max_contexts) : max_contexts_(max_contexts) {}

ContextTable::~ContextTable() { RundownAll(); }

size_t ContextTable::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

absl::StatusOr<uint64_t> ContextTable::Open(const void* type,
                                            const void* object_type,
                                            std::shared_ptr<void> object,
                                            std::function<void()> rundown) {
  MutexLock lock(&mu_);
  if (closed_) {
    return absl::UnavailableError(
        "the connection has ended; no context can be opened on it");
  }
  if (entries_.size() >= max_contexts_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this connection holds ", entries_.size(),
        " context handles, the most it may (max_context_handles_per_"
        "connection); close some first"));
  }
  uint64_t id = RandomId();
  while (entries_.contains(id)) id = RandomId();
  entries_.emplace(id, Entry{type, object_type, std::move(object),
                             std::move(rundown)});
  return id;
}

absl::StatusOr<std::shared_ptr<void>> ContextTable::Lookup(
    const void* type, const void* object_type, uint64_t id) const {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.type != type) return NotFound(id);
  if (it->second.object_type != object_type) {
    return absl::InternalError(
        "LookupContext asked for another object type than OpenContext kept "
        "for this context type");
  }
  return it->second.object;
}

absl::Status ContextTable::Close(const void* type, uint64_t id) {
  Entry entry;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.type != type) return NotFound(id);
    entry = std::move(it->second);
    entries_.erase(it);
  }
  if (entry.rundown) entry.rundown();
  return absl::OkStatus();
}

void ContextTable::RundownAll() {
  std::vector<Entry> entries;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    if (entries_.empty()) return;
    entries.reserve(entries_.size());
    for (auto& [id, entry] : entries_) entries.push_back(std::move(entry));
    entries_.clear();
  }
  internal::QueueRundown([entries = std::move(entries)]() mutable {
    for (Entry& e : entries) {
      if (e.rundown) e.rundown();
      e = Entry{};  // Each object goes right after its rundown.
    }
  });
}

namespace internal {

ContextTable* ContextTableOf(const CallContext& ctx) {
  return CallContextAccess::context_table(ctx);
}

void QueueRundown(std::function<void()> fn) {
  RundownThread::Get().Queue(std::move(fn));
}

bool DrainRundowns(absl::Time deadline) {
  return RundownThread::Get().Drain(deadline);
}

absl::Status NoContextTable() {
  return absl::FailedPreconditionError(
      "context handles need a server transport with per-client context "
      "tables (local, in-process or gRPC), and a server-side call context");
}

}  // namespace internal
}  // namespace lpc
