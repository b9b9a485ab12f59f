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
#include "absl/time/time.h"

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

namespace internal {
class CancelState;
}  // namespace internal

class CallContext {
 public:
  CallContext();
  ~CallContext();
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  // The absolute deadline; InfiniteFuture() means "not set yet".
  absl::Time deadline() const { return deadline_; }
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_timeout(absl::Duration timeout) { deadline_ = absl::Now() + timeout; }
  bool has_deadline() const { return deadline_ != absl::InfiniteFuture(); }

  // Cancels the call. On the client this aborts it with CANCELLED and tells
  // the server; on the server the transport calls it when the client
  // cancelled or went away. Idempotent.
  void Cancel();
  // True once cancelled, or once the deadline has passed.
  bool IsCancelled() const;
  // True only if Cancel() was called (as opposed to the deadline passing).
  bool WasCancelledExplicitly() const;
  // Blocks until the call is cancelled, its deadline passes, or `until`
  // passes. Returns IsCancelled().
  bool WaitForCancellation(absl::Time until) const;
  // Runs `fn` once when Cancel() is called: at once, on this thread, if it
  // already was. Returns a handle for RemoveCancelCallback. Callbacks must
  // not block; they run on the cancelling thread.
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
  // Like set_peer, without a copy: `peer` must outlive this context
  // (transports point it at their per-connection identity).
  void set_peer_ref(const PeerIdentity* peer) { peer_ref_ = peer; }

  // The method being called, for logs and for handlers that serve several.
  const std::string& method_path() const {
    return method_path_ref_ != nullptr ? *method_path_ref_ : method_path_;
  }
  void set_method_path(std::string path) {
    method_path_ = std::move(path);
    method_path_ref_ = nullptr;
  }
  // Like set_method_path, without a copy: `path` must outlive this context
  // (transports point it at a per-connection or per-server cache).
  void set_method_path_ref(const std::string* path) { method_path_ref_ = path; }

  // Shared with transports, so that a cancel arriving after the handler
  // returned has something valid to touch. Created on first use: a call
  // that is never cancelled and never asks for it allocates nothing for
  // cancellation. Thread-safe.
  std::shared_ptr<internal::CancelState> cancel_state() const;

 private:
  internal::CancelState* EnsureCancelState() const;

  absl::Time deadline_ = absl::InfiniteFuture();
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
};

namespace internal {

// The cancellation flag of one call, shared between the context and the
// transport (always owned by a std::shared_ptr; one allocation). Thread-safe.
class CancelState : public std::enable_shared_from_this<CancelState> {
 public:
  CancelState() = default;
  CancelState(const CancelState&) = delete;
  CancelState& operator=(const CancelState&) = delete;

  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Waits until cancelled or `until`; returns cancelled().
  bool WaitUntil(absl::Time until) const;
  uint64_t AddCallback(std::function<void()> fn);
  void RemoveCallback(uint64_t handle);

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::atomic<bool> cancelled_{false};
  // While Cancel() runs the callbacks it took: the thread running them.
  bool running_callbacks_ = false;  // mu_
  std::thread::id runner_;          // mu_
  uint64_t next_handle_ = 1;                                     // mu_
  using Callbacks =
      absl::InlinedVector<std::pair<uint64_t, std::function<void()>>, 1>;
  Callbacks callbacks_;  // mu_; one callback (a transport's) needs no heap.
};

}  // namespace internal

}  // namespace lpc

#endif  // LPC_RUNTIME_CALL_CONTEXT_H_
