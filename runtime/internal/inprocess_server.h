// The in-process transport's internals shared by its server side
// (runtime/inprocess.cc) and its channel (inprocess_channel.cc): plain unary
// calls, what a channel resolves an interface to, and the interface the
// channel sees of the server.
#ifndef LPC_RUNTIME_INTERNAL_INPROCESS_SERVER_H_
#define LPC_RUNTIME_INTERNAL_INPROCESS_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/handles.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/internal/inprocess_stream.h"
#include "runtime/message.h"
#include "runtime/server.h"

namespace lpc::inprocess_internal {

// Every in-process call's peer: this process. Never destroyed, so that a
// server context may point at it for as long as it lives.
const PeerIdentity& ProcessPeer();

// Copies what the server sees of the client's context: deadline,
// metadata; and points the peer at ProcessPeer().
void FillServerContext(const CallContext& client, CallContext* server);


// The request or reply a MessageWriter wrote, written once (WriteTo) into
// `stack` when it fits there (the message then views it, with no owner:
// valid while the caller's frame lives) and else into a string the
// message owns. A buffer field is attached as a view of the writer's
// Buffer, which it moves from: its bytes are not copied
// (docs/zero-copy.md).
ReceivedMessage WriteOnce(const MessageWriter& writer, uint8_t* stack,
                          size_t stack_size);

// A ReplySink that keeps the handler's reply as WriteOnce writes it.
class WriteOnceSink final : public ReplySink {
 public:
  // `stack` as for WriteOnce; null: always a string (a reply that
  // outlives the caller's frame).
  WriteOnceSink(uint8_t* stack, size_t stack_size)
      : stack_(stack), stack_size_(stack_size) {}
  absl::Status Write(const MessageWriter& reply) override {
    message_ = WriteOnce(reply, stack_, stack_size_);
    return absl::OkStatus();
  }
  ReceivedMessage& message() { return message_; }

 private:
  uint8_t* const stack_;
  const size_t stack_size_;
  ReceivedMessage message_;
};

// One plain unary call (a synchronous handler) in flight. Whoever flips
// `done` first (the handler's reply, the client's cancel, the deadline
// timer or shutdown) completes it; the others only see that it is done.
struct InProcessCall final : public Expirable {
  const BoundInterface* bound = nullptr;
  const BoundInterface::Method* method = nullptr;
  // Owns its bytes; with an attached buffer when `zero_copy`.
  ReceivedMessage request;
  // Started with StartCallWith / SendOnewayWith: the handler runs through
  // Dispatcher::DispatchBoundWith and the reply is written once, its
  // buffer attached; else through DispatchBound, with strings.
  bool zero_copy = false;
  CallContext* client_ctx = nullptr;  // Valid until `done` flips.
  // Set before the call is shared and never changed after: whether a caller
  // waits for a reply (false for oneway). Threads other than the one that
  // wins `done` test this, never `callback`, which the winner moves from.
  bool wants_reply = false;
  // A handle method: the reply's descriptors are duplicated into the
  // client's reply table (docs/handles.md).
  bool handles = false;
  ReceivedCallback callback;  // Touched only by whoever wins `done`.
  uint64_t cancel_handle = 0;
  CallContext server_ctx;
  std::atomic<bool> done{false};

  // Completes the call if nobody has; returns whether this caller did.
  bool Complete(absl::StatusOr<ReceivedMessage> result,
                const Metadata* response_metadata) {
    // Only the handler's thread passes the metadata (RunUnary).
    const bool from_handler = response_metadata != nullptr;
    if (done.exchange(true)) return false;
    client_ctx->RemoveCancelCallback(cancel_handle);
    // A reply that lost the race against the caller's deadline or cancel
    // is not delivered: the caller sees what ended the call.
    if (response_metadata != nullptr && client_ctx->IsCancelled()) {
      result = StatusForEndedCall(*client_ctx);
      response_metadata = nullptr;
    }
    if (response_metadata != nullptr) {
      client_ctx->response_metadata() = *response_metadata;
    }
    if (handles && from_handler) {
      if (result.ok()) {
        absl::Status dup = internal::DuplicateHandles(
            internal::CallHandles::reply(server_ctx),
            internal::CallHandles::reply(*client_ctx));
        if (!dup.ok()) result = std::move(dup);
      }
      // The server's side is closed before the client sees the reply.
      internal::CallHandles::Reset(server_ctx);
    }
    ReceivedCallback cb = std::move(callback);
    cb(std::move(result));
    return true;
  }

  void Expire() override {
    if (done.load()) return;
    Complete(absl::DeadlineExceededError("deadline exceeded"), nullptr);
    // A deadline, not a cancel: the handler and its children see one.
    internal::CallContextAccess::ExpireNow(server_ctx);
  }
};

// What a channel resolved an interface to.
struct InProcessBinding {
  absl::Status status;
  const BoundInterface* bound = nullptr;
};

// The server side as its channels see it (InProcessTransport::Impl).
class InProcessServer : public StreamHost {
 public:
  // The bind check and the bound interface for `iface`. Not running:
  // UNAVAILABLE, and `*cacheable` false.
  virtual InProcessBinding Bind(const InterfaceDescriptor& iface,
                                bool* cacheable) = 0;
  // A stream's limits: the server's window and size limit, the channel's.
  virtual StreamCore::Limits Limits(const ChannelOptions& channel) = 0;
  // Runs a plain unary call on the handler pool. Not OK (the call
  // untouched) when the transport is not running or the pool is full.
  virtual absl::Status StartUnary(const std::shared_ptr<InProcessCall>& call) = 0;
  // Runs a plain unary call on the calling thread: `dispatch` runs its
  // handler (Dispatcher::DispatchBound or DispatchBoundWith) with the
  // server context, which is built here from `ctx` (deadline, metadata,
  // the process as peer, `contexts` as the context-handle table); `ctx`'s
  // cancellation reaches it while the handler runs. Returns the call's
  // status as the caller sees it; `dispatch` left the reply with the
  // caller. The call is in flight for shutdown from entry to return:
  // shutdown waits for it, and after the grace cancels its handler and
  // fails it with UNAVAILABLE. `handles`: the request's and the reply's
  // descriptors are duplicated, as StartUnary does. UNAVAILABLE when the
  // transport is not running (`dispatch` not run).
  using InlineDispatch =
      absl::FunctionRef<absl::Status(Dispatcher&, CallContext& server_ctx)>;
  virtual absl::Status CallInline(CallContext& ctx, bool handles,
                                  std::shared_ptr<ContextTable> contexts,
                                  InlineDispatch dispatch) = 0;
  // Starts `core` through Dispatcher::StartCall on the pool, or ends it.
  virtual void StartStream(const std::shared_ptr<StreamCore>& core,
                           const BoundInterface* bound,
                           const BoundInterface::Method* method) = 0;
  // A stream opened on a plain unary method: reads the one request, runs
  // the handler on the pool, answers with one message and the status.
  virtual void StartUnaryOverStream(const std::shared_ptr<StreamCore>& core,
                                    const BoundInterface* bound,
                                    const BoundInterface::Method* method) = 0;
  virtual std::weak_ptr<StreamHost> host() = 0;
};

std::shared_ptr<Channel> MakeInProcessChannel(
    std::weak_ptr<InProcessServer> server, ChannelOptions options);

}  // namespace lpc::inprocess_internal

#endif  // LPC_RUNTIME_INTERNAL_INPROCESS_SERVER_H_
