// CallContext: everything about one call that is not its payload.
//
// The same class serves both sides of a call:
//  - On the client, the caller may set a deadline and metadata before the
//    call, may Cancel() it from any thread while it runs, and reads the
//    response metadata afterwards.
//  - On the server, the transport fills in the deadline, the request
//    metadata and the peer's identity; the handler reads them, watches for
//    cancellation, and may add response metadata.
//
// Every call has a deadline. A context whose deadline is left unset gets the
// channel's default timeout when the call starts.
//
// Propagation: a context made with a parent (a handler's server context,
// usually) takes the earlier of its own deadline and the parent's, and is
// cancelled when the parent is: explicitly, by the parent's client going
// away, or by the parent's transport. A handler that calls another server
// passes its caller's remaining time and cancellation on:
//
//   absl::Status Relay(lpc::CallContext& ctx, ...) {
//     lpc::CallContext child(&ctx);
//     return upstream.Get(key, &child);
//   }
//
// Thread safety: cancellation (Cancel, IsCancelled, WaitForCancellation,
// callbacks) is safe from any thread. Metadata, deadline and peer are set
// before the call starts and only read while it runs.
#ifndef LPC_RUNTIME_CALL_CONTEXT_H_
#define LPC_RUNTIME_CALL_CONTEXT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/buffer.h"

namespace lpc {

// Who is on the other end. Local transports fill uid, gid and pid from the
// kernel (SO_PEERCRED), never from a message; network transports fill the
// address.
struct PeerIdentity {
  std::string transport;  // "inprocess", "local" or "grpc".
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<int32_t> pid;
  std::string address;  // "local:calc", "ipv4:127.0.0.1:4000", "unix:/p".
  // gRPC over TLS, when the client presented a certificate that the server
  // verified: the certificate's subject common name and its subject
  // alternative names (DNS names, URIs, e-mail and IP addresses), as gRPC's
  // auth context reports them. Empty otherwise.
  std::string tls_common_name;
  std::vector<std::string> tls_alt_names;

  std::string ToString() const;
};

// Keys are lower-case ASCII; keys ending in "-bin" carry binary values.
// Keys starting with "lpc-" are reserved for the runtime.
using Metadata = std::multimap<std::string, std::string>;

class ContextTable;

namespace internal {
class CallContextAccess;
class CancelState;
class DeadlineTimer;
class CallHandles;
struct CallHandleTables;
// Where a server transport's handlers get buffers (CallContext::NewBuffer).
class BufferSource {
 public:
  virtual ~BufferSource() = default;
  virtual absl::StatusOr<Buffer> NewBuffer(size_t size) = 0;
};
}  // namespace internal

class CallContext {
 public:
  CallContext();
  // A child of `parent` (see set_parent). Not a copy: nothing but the
  // deadline and the cancellation is taken from the parent.
  explicit CallContext(const CallContext* parent);
  ~CallContext();
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  // The absolute deadline; InfiniteFuture() means "not set yet". With a
  // parent, never later than the parent's deadline (as it was when
  // set_parent ran): setting a later one keeps the parent's.
  absl::Time deadline() const { return deadline_; }
  void set_deadline(absl::Time deadline) {
    deadline_ = deadline < parent_deadline_ ? deadline : parent_deadline_;
    if (cancel_.load(std::memory_order_acquire) != nullptr) DeadlineChanged();
  }
  void set_timeout(absl::Duration timeout) { set_deadline(absl::Now() + timeout); }
  bool has_deadline() const { return deadline_ != absl::InfiniteFuture(); }

  // Links this context to `parent` (nullptr unlinks): the deadline becomes
  // the earlier of this context's and the parent's, and a cancellation of
  // the parent (Cancel(), its client going away, its transport ending it)
  // cancels this context too, at once if the parent already was. Call it
  // before the call starts, like set_deadline. Either context may be
  // destroyed first: the link is undone safely when this one dies, and a
  // parent that dies first leaves this context as it is.
  void set_parent(const CallContext* parent);

  // Cancels the call. On the client this aborts it with CANCELLED and tells
  // the server; on the server the transport calls it when the client
  // cancelled or went away. Idempotent.
  void Cancel();
  // True once cancelled, or once the deadline has passed (or the server
  // transport saw it pass, a moment before this process's clock does).
  bool IsCancelled() const;
  // True only if Cancel() was called (as opposed to the deadline passing).
  bool WasCancelledExplicitly() const;
  // Blocks until the call is cancelled, its deadline passes, or `until`
  // passes. Returns IsCancelled(). When it returns because the deadline
  // passed, the deadline's cancel callbacks have run (on this thread, if the
  // timer thread had not taken them yet) or are running.
  bool WaitForCancellation(absl::Time until) const;
  // Runs `fn` once when Cancel() is called or the deadline passes: at once,
  // on this thread, if either already happened. Returns a handle for
  // RemoveCancelCallback. Callbacks must not block; they run on the
  // cancelling thread, or on the runtime's deadline timer thread (started
  // on first use) when the deadline passes. A context with no callbacks
  // costs the timer nothing.
  uint64_t AddCancelCallback(std::function<void()> fn);
  // Unregisters a callback. Once this returns, the callback is not running
  // and never will: if a Cancel() on another thread is running it right
  // now, this waits for it to return (so callbacks may capture raw pointers
  // that die after RemoveCancelCallback). Called from inside a callback, it
  // does not wait.
  void RemoveCancelCallback(uint64_t handle);

  Metadata& metadata() { return metadata_; }
  const Metadata& metadata() const { return metadata_; }
  Metadata& response_metadata() { return response_metadata_; }
  const Metadata& response_metadata() const { return response_metadata_; }

  const PeerIdentity& peer() const {
    return peer_ref_ != nullptr ? *peer_ref_ : peer_;
  }
  void set_peer(PeerIdentity peer) {
    peer_ = std::move(peer);
    peer_ref_ = nullptr;
  }

  // A writable buffer of `size` bytes for a `buffer` result (or argument)
  // of this call, in the memory that crosses the call's transport best
  // (docs/zero-copy.md): a chunk of the connection's shared pool on a
  // local connection that has one, else Buffer::Shared (a memfd); a heap
  // buffer over gRPC or where memfds cannot be made. A pool chunk sent on
  // another connection is copied. The contents are not guaranteed zeroed
  // for a pool chunk (see docs/zero-copy.md).
  absl::StatusOr<Buffer> NewBuffer(size_t size) const;

  // The method being called, for logs and for handlers that serve several.
  const std::string& method_path() const {
    return method_path_ref_ != nullptr ? *method_path_ref_ : method_path_;
  }
  void set_method_path(std::string path) {
    method_path_ = std::move(path);
    method_path_ref_ = nullptr;
  }

 private:
  // The transports' hooks (runtime/internal/call_context_access.h).
  friend class internal::CallContextAccess;

  // See CallContextAccess::AddTransportCancelCallback and cancel_state.
  uint64_t AddTransportCancelCallback(std::function<void()> fn);
  std::shared_ptr<internal::CancelState> cancel_state() const;
  internal::CancelState* EnsureCancelState() const;
  // set_deadline's slow path: a cancel state exists, and its deadline
  // callbacks (if any) follow the new deadline.
  void DeadlineChanged();
  void Unlink();

  absl::Time deadline_ = absl::InfiniteFuture();
  // The parent's deadline when set_parent ran (InfiniteFuture: no parent),
  // and the link: the parent's cancel state and the callback on it.
  absl::Time parent_deadline_ = absl::InfiniteFuture();
  // Written by set_parent, or by EnsureCancelState when it links a lazy
  // parent (below).
  mutable std::shared_ptr<internal::CancelState> parent_cancel_;
  mutable uint64_t parent_handle_ = 0;
  // A parent linked lazily (CallContextAccess::SetLazyCancelParent): read
  // by IsCancelled, and linked like set_parent's when this context's cancel
  // state is first made.
  const CallContext* lazy_parent_ = nullptr;
  // Set once (compare-and-swap) by EnsureCancelState; owned by
  // cancel_owner_, which only the thread that won the swap writes and only
  // the destructor reads.
  mutable std::atomic<internal::CancelState*> cancel_{nullptr};
  mutable std::shared_ptr<internal::CancelState> cancel_owner_;
  Metadata metadata_;
  Metadata response_metadata_;
  PeerIdentity peer_;
  const PeerIdentity* peer_ref_ = nullptr;
  std::string method_path_;
  const std::string* method_path_ref_ = nullptr;
  // The call's handle tables (runtime/handles.h); null until a handle
  // method uses them.
  friend class internal::CallHandles;
  std::unique_ptr<internal::CallHandleTables> handles_;
  // The client connection's context handles (server side; see
  // runtime/context_handle.h).
  std::shared_ptr<ContextTable> context_table_;
  // The transport's buffers for NewBuffer (server side); null: the default.
  std::shared_ptr<internal::BufferSource> buffer_source_;
};

namespace internal {

// The cancellation flag of one call, shared between the context and the
// transport (always owned by a std::shared_ptr; one allocation). Thread-safe.
//
// Callbacks come in two kinds: those that run on Cancel() only (transport
// hooks, parent links) and those that also run when the deadline passes.
// While a state holds callbacks of the second kind and a finite deadline,
// the runtime's deadline timer holds an entry for it (DeadlineTimer), which
// runs Expire() at the deadline.
class CancelState : public std::enable_shared_from_this<CancelState> {
 public:
  CancelState() = default;
  ~CancelState();
  CancelState(const CancelState&) = delete;
  CancelState& operator=(const CancelState&) = delete;

  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // For server transports: the call ended by its deadline as the peer's
  // clock or the transport saw it, a moment before this process's clock
  // reaches it. From now on the context reads as past its deadline
  // (IsCancelled(), not WasCancelledExplicitly()), and the deadline
  // callbacks run now, on this thread. No-op once cancelled or expired.
  void ExpireNow();
  bool expired() const { return expired_.load(std::memory_order_acquire); }
  // Waits until cancelled, expired (ExpireNow) or `until`; returns
  // cancelled().
  bool WaitUntil(absl::Time until) const;
  // Runs `fn` on Cancel(); with `on_deadline`, also once `deadline`
  // passes (SetDeadline moves it). Runs it at once, on this thread, if that
  // already happened; returns 0 then.
  uint64_t AddCallback(std::function<void()> fn, bool on_deadline = false,
                       absl::Time deadline = absl::InfiniteFuture());
  void RemoveCallback(uint64_t handle);
  // The deadline of the on_deadline callbacks.
  void SetDeadline(absl::Time deadline);
  // Runs the on_deadline callbacks if the deadline has passed by `now`
  // (the deadline timer calls it, and CallContext::WaitForCancellation).
  void Expire(absl::Time now);

 private:
  friend class DeadlineTimer;
  // What a state with deadline callbacks needs; allocated with the first.
  struct DeadlinePart {
    int callbacks = 0;                             // on_deadline entries
    absl::Time deadline = absl::InfiniteFuture();  // when they run
    // The timer's entry (InfiniteFuture: none); the timer's lock guards it.
    absl::Time timer_at = absl::InfiniteFuture();
  };
  // Handles of on_deadline callbacks are odd, the others even.
  using Callbacks =
      absl::InlinedVector<std::pair<uint32_t, std::function<void()>>, 1>;
  // Runs `to_run`, taken under mu_ with run `slot` marked (0: Cancel,
  // 1: Expire or ExpireNow, whichever thread took the deadline callbacks),
  // then unmarks it.
  void Run(Callbacks& to_run, int slot);
  // Arms or disarms the timer for the current deadline and callbacks.
  void UpdateTimerLocked();

  // The layout is kept small: a state is allocated for every call that is
  // cancelled or waited on.
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> expired_{false};  // ExpireNow ran.
  uint8_t running_ = 0;   // mu_: bit `slot` set while that run is going on
  uint32_t next_handle_ = 0;                     // mu_
  std::thread::id runners_[2];                   // mu_: each slot's thread
  Callbacks callbacks_;  // mu_; one callback (a transport's) needs no heap.
  std::unique_ptr<DeadlinePart> deadline_part_;  // mu_
};

}  // namespace internal

}  // namespace lpc

#endif  // LPC_RUNTIME_CALL_CONTEXT_H_
