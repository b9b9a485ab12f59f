// Watchers: the open Watch calls of the kvstore example, and the fan-out of
// each change to those whose prefix matches.
//
// Each watcher has a queue of changes not yet written and at most one
// Write outstanding (the stream's rule); the stream's flow-control window
// decides when the next one goes. A watcher whose queue passes
// kMaxQueuedChanges is ended with RESOURCE_EXHAUSTED, so a slow or stalled
// reader costs bounded memory. A watcher whose call ended (the client
// cancelled or went away) is dropped at the next Add or Publish.
//
// Thread safety: thread-safe. Publish may be called with the caller's own
// lock held (the store publishes under its lock, so that watchers see the
// changes in the order it applied them); no callback of a watcher takes
// that lock or Watchers' own.
#ifndef LPC_EXAMPLES_KVSTORE_WATCHERS_H_
#define LPC_EXAMPLES_KVSTORE_WATCHERS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "examples/kvstore/kvstore.lpc.h"
#include "runtime/mutex.h"

namespace example::kv {

class Watcher;

class Watchers {
 public:
  // Changes a watcher may have queued before it is ended.
  static constexpr size_t kMaxQueuedChanges = 1024;
  // Open watches at most; more are refused with RESOURCE_EXHAUSTED.
  static constexpr size_t kMaxWatchers = 4096;

  Watchers() = default;
  Watchers(const Watchers&) = delete;
  Watchers& operator=(const Watchers&) = delete;
  // Ends every open watch with UNAVAILABLE.
  ~Watchers();

  // Starts streaming the changes under `prefix` to `call`.
  void Add(lpc::AsyncServerStream<Change> call, const std::string& prefix)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `change` for every watcher whose prefix it matches.
  void Publish(const Change& change) ABSL_LOCKS_EXCLUDED(mu_);
  // The number of open watches (drops the ended ones first).
  size_t size() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void DropEnded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  lpc::Mutex mu_;
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace example::kv

#endif  // LPC_EXAMPLES_KVSTORE_WATCHERS_H_
