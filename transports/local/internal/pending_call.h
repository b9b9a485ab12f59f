// The client's record of one call in flight, and the completion that runs
// an async call's callback outside every lock of the connection.
//
// Thread safety: a PendingCall is reached through its connection's call
// table (under ClientConnection's mu_) or by its own waiting thread; see
// client_connection.h.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_PENDING_CALL_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_PENDING_CALL_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"
#include "runtime/message.h"
#include "runtime/mutex.h"
#include "transports/local/doorbell.h"

namespace lpc::local::internal {

// One registered call. A synchronous call's record lives on its caller's
// stack; an async call's on the heap, deleted by whoever completes it. While
// registered, a record is reached only through ClientConnection's call table
// (under its mu_), or by its own waiting thread; anything that may outlive
// the call (cancel callbacks, the expiry scan) refers to it by id.
// An async call's callback: the string API's (`bytes`) or the zero-copy
// API's (`received`, which gets the reply's buffer attached). Set: the call
// is async. Kept apart, rather than one wrapping the other, so that a
// zero-copy call makes no wrapper on the heap.
struct AsyncCallback {
  ResponseCallback bytes;
  ReceivedCallback received;
  explicit operator bool() const { return bytes || received; }
};

struct PendingCall;

// A synchronous caller asleep as a follower (ClientConnection::Wait), on its
// own stack: its own condition variable, so that a reply wakes its caller
// only, and a link in the connection's FIFO of sleepers. Reached by others
// only under the connection's mu_, and only while linked to its call
// (PendingCall::follower); its thread unlinks it under mu_ before leaving.
struct FollowerWait {
  CondVar cv;
  FollowerWait* prev = nullptr;
  FollowerWait* next = nullptr;
  bool queued = false;        // In the FIFO: not woken by anyone yet.
  bool lead_offered = false;  // Woken to take the leader role.
};

struct PendingCall {
  uint64_t id = 0;
  std::atomic<bool> done{false};       // Set last, under the table's lock.
  absl::StatusOr<std::string> result;  // Sync calls; valid once done.
  uint32_t bind_slot = 0;
  absl::Time deadline = absl::InfiniteFuture();
  AsyncCallback callback;  // Async calls only.
  // The caller's context, for the reply's metadata; valid while the call is
  // registered (the caller keeps it alive until the call completes). May be
  // null (bind calls).
  CallContext* ctx = nullptr;
  // `deadline` on CLOCK_MONOTONIC (0 = none), as sent.
  int64_t deadline_ns = 0;
  // Async calls: the cancel callback registered on `ctx` (0 = none).
  uint64_t cancel_handle = 0;
  // Where a reply's buffer field that came beside it goes (the zero-copy
  // path); null: it is appended to the reply's bytes (the string API).
  // Written by the leader before `done` / the callback.
  std::optional<AttachedBuffer>* attached_out = nullptr;
  // Its caller asleep as a follower, or null (under the connection's mu_).
  FollowerWait* follower = nullptr;
  // An async zero-copy call's reply buffer (`attached_out` points here);
  // it moves to the Completion with the callback.
  std::optional<AttachedBuffer> attached;
};

// A call ends this way: a call whose deadline (`deadline_ns`, monotonic;
// the context's deadline as sent) passed or that was cancelled ends that
// way, even if a reply raced in at the last moment.
inline absl::StatusOr<std::string> Finish(CallContext* ctx,
                                          int64_t deadline_ns,
                                          absl::StatusOr<std::string> r) {
  if (ctx == nullptr) return r;
  if (ctx->WasCancelledExplicitly()) {
    return absl::CancelledError("call cancelled");
  }
  if (deadline_ns != 0 && MonotonicNowNs() >= deadline_ns) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return r;
}

// An async call's callback, ready to run outside the locks (no lock of
// the connection may be held: removing the cancel callback may wait for a
// Cancel() that is running it, and that needs the connection's locks).
struct Completion {
  AsyncCallback callback;
  CallContext* ctx = nullptr;
  int64_t deadline_ns = 0;
  uint64_t cancel_handle = 0;
  absl::StatusOr<std::string> result;
  std::optional<AttachedBuffer> attached;  // For `callback.received`.
  void Run() {
    if (!callback) return;
    // `ctx` is alive until `callback` runs. Once this returns, the cancel
    // callback (which holds a raw pointer to the connection) never runs.
    if (cancel_handle != 0) ctx->RemoveCancelCallback(cancel_handle);
    absl::StatusOr<std::string> r =
        Finish(ctx, deadline_ns, std::move(result));
    if (!callback.received) {
      callback.bytes(std::move(r));
      return;
    }
    if (!r.ok()) {
      callback.received(r.status());
      return;
    }
    ReceivedMessage m(std::move(*r));
    if (attached.has_value()) {
      m.Attach(attached->field_number, std::move(attached->view));
    }
    callback.received(std::move(m));
  }
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_PENDING_CALL_H_
