// A server connection's open streams (docs/local-transport.md, "Streams"):
// the calls that run through Dispatcher::StartCall, by stream id, and the
// highest id the client has opened a stream with, so that a record on an
// id no stream ever had is told apart from one on a stream that ended.
//
// The streams themselves are internal/server_streams.h; the table only
// sees this interface, so that Connection can own it. It holds them
// weakly: a stream lives as long as its handler (or the work item that
// starts it) holds it, and one that every holder dropped unfinished ends
// itself (and leaves the table).
//
// Thread safety: thread-safe; its mutex is a leaf (nothing is called with
// it held).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_STREAM_TABLE_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_STREAM_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/mutex.h"

namespace lpc::local::internal {

// One stream or asynchronous call of a connection, as the table sees it.
class ConnStream {
 public:
  virtual ~ConnStream() = default;
  // The server's periodic look (every tick): ends the stream if its
  // deadline passed by `now`, and retries a write held back by the reply
  // queue.
  virtual void Poll(absl::Time now) = 0;
};

class StreamTable {
 public:
  enum class Added { kOk, kDuplicate, kFull };

  // `is_stream`: opened by STREAM_OPEN (raises the highest stream id);
  // otherwise an asynchronous unary call. At most `limit` entries.
  Added Add(uint64_t id, const std::shared_ptr<ConnStream>& s,
            bool is_stream, size_t limit) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (open_.size() >= limit) return Added::kFull;
    if (!open_.emplace(id, Entry{s, s.get(), is_stream}).second) {
      return Added::kDuplicate;
    }
    if (is_stream && id > max_stream_id_) max_stream_id_ = id;
    return Added::kOk;
  }

  // What a stream record's id names.
  enum class Lookup {
    kOpen,     // An open stream (`*out` set).
    kEnded,    // A stream (or call) that may have existed and ended.
    kUnknown,  // Above every stream id opened: never existed.
  };
  Lookup Find(uint64_t id, std::shared_ptr<ConnStream>* out)
      ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    auto it = open_.find(id);
    if (it != open_.end() && it->second.is_stream) {
      *out = it->second.stream.lock();
      // (Expired: its last holder is ending it right now.)
      return *out != nullptr ? Lookup::kOpen : Lookup::kEnded;
    }
    if (it != open_.end()) return Lookup::kUnknown;  // A unary call's id.
    return id > max_stream_id_ ? Lookup::kUnknown : Lookup::kEnded;
  }

  // Raises the highest stream id without an entry (a STREAM_OPEN refused
  // or cancelled before it opened).
  void NoteOpened(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (id > max_stream_id_) max_stream_id_ = id;
  }

  // Takes entry `id` out if it is `s`.
  void Remove(uint64_t id, const ConnStream* s) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    auto it = open_.find(id);
    if (it != open_.end() && it->second.raw == s) open_.erase(it);
  }

  std::vector<std::shared_ptr<ConnStream>> All() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::shared_ptr<ConnStream>> v;
    MutexLock lock(&mu_);
    v.reserve(open_.size());
    for (auto& [id, e] : open_) {
      if (std::shared_ptr<ConnStream> s = e.stream.lock()) {
        v.push_back(std::move(s));
      }
    }
    return v;
  }

  size_t size() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return open_.size();
  }

 private:
  struct Entry {
    std::weak_ptr<ConnStream> stream;
    const ConnStream* raw = nullptr;  // For Remove from a destructor.
    bool is_stream = false;
  };
  Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> open_ ABSL_GUARDED_BY(mu_);
  uint64_t max_stream_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_STREAM_TABLE_H_
