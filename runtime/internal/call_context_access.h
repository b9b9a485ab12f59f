// The hooks on lpc::CallContext that only transports (and the runtime's own
// server and in-process code) use. Not part of the public API: the header is
// not installed, and its Bazel target is visible to lpc's runtime and
// transports only.
#ifndef LPC_RUNTIME_INTERNAL_CALL_CONTEXT_ACCESS_H_
#define LPC_RUNTIME_INTERNAL_CALL_CONTEXT_ACCESS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "runtime/call_context.h"

namespace lpc::internal {

class CallContextAccess {
 public:
  CallContextAccess() = delete;

  // Like CallContext::set_peer, without a copy: `peer` must outlive `ctx`
  // (transports point it at their per-connection identity).
  static void SetPeerRef(CallContext& ctx, const PeerIdentity* peer) {
    ctx.peer_ref_ = peer;
  }

  // Like CallContext::set_method_path, without a copy: `path` must outlive
  // `ctx` (transports point it at a per-connection or per-server cache).
  static void SetMethodPathRef(CallContext& ctx, const std::string* path) {
    ctx.method_path_ref_ = path;
  }

  // Like CallContext::AddCancelCallback, but `fn` runs only on an explicit
  // Cancel() (or a parent's cancellation), never when the deadline passes:
  // the transport enforces the deadline itself and reports it as
  // DEADLINE_EXCEEDED. Removed with CallContext::RemoveCancelCallback.
  static uint64_t AddTransportCancelCallback(CallContext& ctx,
                                             std::function<void()> fn) {
    return ctx.AddTransportCancelCallback(std::move(fn));
  }

  // For a server context whose handler runs on the client's thread (the
  // in-process transport): `ctx` is cancelled when `client` is explicitly
  // cancelled, like a child (set_parent) but without making either
  // context's cancel state until something needs `ctx`'s (its handler waits
  // for cancellation, adds a callback or makes a child; the link is made
  // then). Until then IsCancelled and WasCancelledExplicitly read `client`.
  // Takes no deadline. Before the call starts, once, on a context without
  // a parent; `client` must outlive `ctx`.
  static void SetLazyCancelParent(CallContext& ctx,
                                  const CallContext* client) {
    ctx.lazy_parent_ = client;
  }

  // The context's cancellation flag, shared with the transport so that a
  // cancel arriving after the handler returned has something valid to
  // touch. Created on first use: a call that is never cancelled and never
  // asks for it allocates nothing for cancellation. Thread-safe.
  static std::shared_ptr<CancelState> cancel_state(const CallContext& ctx) {
    return ctx.cancel_state();
  }

  // For server transports: the call ended by its deadline as the peer or
  // the transport saw it (CancelState::ExpireNow): `ctx` reads as past its
  // deadline (IsCancelled(), not WasCancelledExplicitly()) and its deadline
  // callbacks run now, on this thread.
  static void ExpireNow(const CallContext& ctx) {
    ctx.cancel_state()->ExpireNow();
  }

  // For server transports: the context handles of the client connection
  // (local), channel (in-process) or lease (gRPC) that the call came in on
  // (runtime/context_handle.h). The context shares ownership of the table.
  static void SetContextTable(CallContext& ctx,
                              std::shared_ptr<ContextTable> table) {
    ctx.context_table_ = std::move(table);
  }
  // For server transports: where CallContext::NewBuffer gets its buffers
  // (null: the default).
  static void SetBufferSource(CallContext& ctx,
                              std::shared_ptr<BufferSource> source) {
    ctx.buffer_source_ = std::move(source);
  }
  static ContextTable* context_table(const CallContext& ctx) {
    return ctx.context_table_.get();
  }
};

}  // namespace lpc::internal

#endif  // LPC_RUNTIME_INTERNAL_CALL_CONTEXT_ACCESS_H_
