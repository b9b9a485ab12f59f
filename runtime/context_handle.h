// Context handles: per-client server state with a rundown (docs/handles.md,
// "Context handles").
//
// An IDL `context Session;` is generated as
//   using Session = lpc::ContextHandle<lpc_internal::Session_ContextTag>;
// a copyable value that names one object the server keeps for this client.
// On the wire it is a fixed64: a random 64-bit id that the server's table
// checks, together with the context type, on every use.
//
// The server keeps its objects in the connection's ContextTable, reached
// through the handler's CallContext:
//
//   // Open: the object lives until its rundown.
//   absl::StatusOr<Session> s = lpc::OpenContext<Session>(
//       ctx, std::make_shared<OpenFile>(...), [](OpenFile& f) { f.Flush(); });
//   // Use: NOT_FOUND for a forged, stale or foreign handle.
//   absl::StatusOr<std::shared_ptr<OpenFile>> f =
//       lpc::LookupContext<OpenFile>(ctx, s);
//   // Close: runs the rundown now, on this thread; NOT_FOUND if closed.
//   absl::Status st = lpc::CloseContext(ctx, s);
//
// The rundown runs exactly once: on CloseContext, or when the connection (a
// local connection, an in-process channel, a gRPC lease) ends, on the
// runtime's rundown thread (never a transport's I/O thread). The object is
// destroyed after its rundown, once no handler holds it.
//
// Thread safety: ContextHandle is a value; ContextTable and the functions
// are thread-safe.
#ifndef LPC_RUNTIME_CONTEXT_HANDLE_H_
#define LPC_RUNTIME_CONTEXT_HANDLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/mutex.h"

namespace lpc {

// A reference to a server-side object of context type `Tag`. The empty
// handle (id 0) names nothing. Passing it to a method of the server that
// returned it is the only use.
template <typename Tag>
class ContextHandle {
 public:
  ContextHandle() = default;

  bool empty() const { return id_ == 0; }

  // For generated code and tests: the value on the wire.
  uint64_t wire_id() const { return id_; }
  static ContextHandle FromWire(uint64_t id) {
    ContextHandle h;
    h.id_ = id;
    return h;
  }

  friend bool operator==(const ContextHandle& a, const ContextHandle& b) {
    return a.id_ == b.id_;
  }
  friend bool operator!=(const ContextHandle& a, const ContextHandle& b) {
    return a.id_ != b.id_;
  }

 private:
  uint64_t id_ = 0;
};

// The most contexts one connection (or lease) holds when the transport is
// not told otherwise.
inline constexpr size_t kDefaultMaxContextHandlesPerConnection = 4096;

namespace internal {
// A distinct address per type: the identity the table checks.
template <typename T>
struct TypeKey {
  static constexpr char key = 0;
};
template <typename T>
const void* TypeKeyOf() {
  return &TypeKey<T>::key;
}
}  // namespace internal

// The contexts of one connection (local), channel (in-process) or lease
// (gRPC). Transports create one per connection, attach it to every server
// context of that connection (CallContextAccess::SetContextTable), and call
// RundownAll() when the connection ends. Thread-safe; mu_ is a leaf lock
// (rundowns and object destructors run without it).
class ContextTable {
 public:
  explicit ContextTable(
      size_t max_contexts = kDefaultMaxContextHandlesPerConnection);
  // Queues the rundowns still open, as RundownAll() does.
  ~ContextTable();
  ContextTable(const ContextTable&) = delete;
  ContextTable& operator=(const ContextTable&) = delete;

  // Open contexts: the figure per connection that introspection reports.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

  // Type-erased forms of OpenContext / LookupContext / CloseContext.
  // `type` is the context type's key, `object_type` the object's.
  // Open: RESOURCE_EXHAUSTED at max_contexts, UNAVAILABLE after RundownAll
  // (the rundown is not run then: nothing was opened).
  absl::StatusOr<uint64_t> Open(const void* type, const void* object_type,
                                std::shared_ptr<void> object,
                                std::function<void()> rundown)
      ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND unless `id` is open here with context type `type`;
  // INTERNAL when the object is not of `object_type` (a server bug).
  absl::StatusOr<std::shared_ptr<void>> Lookup(const void* type,
                                               const void* object_type,
                                               uint64_t id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the context and runs its rundown on this thread.
  absl::Status Close(const void* type, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  // The connection ended: every open context is removed and its rundown
  // queued to the runtime's rundown thread; later Opens fail. Returns at
  // once (never runs a rundown on the caller's thread, which may be an I/O
  // thread). Idempotent.
  void RundownAll() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    const void* type;
    const void* object_type;
    std::shared_ptr<void> object;
    std::function<void()> rundown;
  };

  const size_t max_contexts_;
  mutable Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

namespace internal {
// The table of the connection `ctx` came in on; nullptr on a client
// context, or a server transport without contexts.
ContextTable* ContextTableOf(const CallContext& ctx);
// Queues `fn` on the runtime's rundown thread (started on first use).
void QueueRundown(std::function<void()> fn);
// Waits until every rundown queued so far has run, or `deadline`; returns
// whether they have. Server transports call it when they stop, so that a
// service outlives the rundowns of its connections.
bool DrainRundowns(absl::Time deadline);
// The error for a context call on a server context without a table.
absl::Status NoContextTable();
}  // namespace internal

// Keeps `object` for this client and returns the handle that names it.
// `rundown(T&)` runs exactly once, when the context is closed or its
// connection ends. Fails as ContextTable::Open does, and with
// FAILED_PRECONDITION on a transport without context tables.
template <typename Handle, typename T, typename Rundown>
absl::StatusOr<Handle> OpenContext(CallContext& ctx, std::shared_ptr<T> object,
                                   Rundown rundown) {
  ContextTable* table = internal::ContextTableOf(ctx);
  if (table == nullptr) return internal::NoContextTable();
  T* raw = object.get();
  std::function<void()> run = [raw, rundown = std::move(rundown)]() mutable {
    rundown(*raw);
  };
  absl::StatusOr<uint64_t> id = table->Open(
      internal::TypeKeyOf<Handle>(), internal::TypeKeyOf<T>(),
      std::shared_ptr<void>(std::move(object)), std::move(run));
  if (!id.ok()) return id.status();
  return Handle::FromWire(*id);
}

// The object `handle` names on this connection: NOT_FOUND for an empty,
// forged, stale or foreign handle, or one of another context type.
template <typename T, typename Tag>
absl::StatusOr<std::shared_ptr<T>> LookupContext(
    const CallContext& ctx, const ContextHandle<Tag>& handle) {
  ContextTable* table = internal::ContextTableOf(ctx);
  if (table == nullptr) return internal::NoContextTable();
  absl::StatusOr<std::shared_ptr<void>> object =
      table->Lookup(internal::TypeKeyOf<ContextHandle<Tag>>(),
                    internal::TypeKeyOf<T>(), handle.wire_id());
  if (!object.ok()) return object.status();
  return std::static_pointer_cast<T>(*std::move(object));
}

// Closes the context now: its rundown runs on this thread before this
// returns. NOT_FOUND as for LookupContext (so also when already closed).
template <typename Tag>
absl::Status CloseContext(const CallContext& ctx,
                          const ContextHandle<Tag>& handle) {
  ContextTable* table = internal::ContextTableOf(ctx);
  if (table == nullptr) return internal::NoContextTable();
  return table->Close(internal::TypeKeyOf<ContextHandle<Tag>>(),
                      handle.wire_id());
}

}  // namespace lpc

#endif  // LPC_RUNTIME_CONTEXT_HANDLE_H_
