// LocalChannel's calls (local_channel.h): how a unary or oneway call is
// bound to its interface, registered with the connection, sent (with its
// descriptors and a buffer beside it) and, for a synchronous call, waited
// for. See local_channel.h.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/internal/call_context_access.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/client_connection.h"
#include "transports/local/internal/pending_call.h"
#include "transports/local/local_channel.h"
#include "transports/local/metadata.h"

namespace lpc::local {

using ::lpc::internal::CallContextAccess;
namespace {

using internal::AsyncCallback;
using internal::ClientConnection;
using internal::Completion;
using internal::Finish;
using internal::PendingCall;

// The field number of the request's buffer field; 0 when it has none.
uint32_t BufferFieldNumberOf(const MessageWriter* body) {
  if (body == nullptr) return 0;
  const BufferField* f = body->buffer();
  return f == nullptr ? 0 : f->field_number;
}

// The request's buffer field if it is a chunk of `c`'s pool (a chunk of
// another connection's pool is appended to the bytes, as a heap buffer).
Buffer* PoolBufferOf(const MessageWriter* body, const ClientConnection& c) {
  if (body == nullptr || c.pool() == nullptr) return nullptr;
  const BufferField* f = body->buffer();
  if (f == nullptr || f->buffer == nullptr || f->buffer->empty() ||
      !c.pool()->ChunkOf(*f->buffer).has_value()) {
    return nullptr;
  }
  return f->buffer;
}

// The request's buffer field, sealed to go beside it, if it is a shared
// buffer (a heap one is appended to the bytes); nullopt otherwise.
absl::StatusOr<std::optional<::lpc::internal::SealedBuffer>>
SealBufferOf(const MessageWriter* body) {
  if (body == nullptr) return std::nullopt;
  const BufferField* f = body->buffer();
  if (f == nullptr || f->buffer == nullptr || f->buffer->empty() ||
      !f->buffer->shared()) {
    return std::nullopt;
  }
  absl::StatusOr<::lpc::internal::SealedBuffer> sealed =
      SealForSending(f->buffer);
  if (!sealed.ok()) return sealed.status();
  return std::optional<::lpc::internal::SealedBuffer>(std::move(*sealed));
}

absl::Status CheckRequestHandles(const std::vector<int>& handles) {
  if (handles.size() > kMaxHandlesHardLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a request carries ", handles.size(),
        " descriptors; the local transport carries at most ",
        kMaxHandlesHardLimit));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LocalChannel::SendOnewayImpl(const InterfaceDescriptor& iface,
                                          const MethodDescriptor& method,
                                          CallContext* ctx,
                                          std::string_view request,
                                          const MessageWriter* body) {
  const size_t size =
      request.size() + (body != nullptr ? SerializedSize(*body) : 0);
  if (absl::Status s = PrepareCall(ctx, size); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<ClientConnection>> conn =
      GetConnection(ctx->deadline(), MonotonicNowNs());
  if (!conn.ok()) return conn.status();
  std::optional<uint32_t> slot = (*conn)->BoundSlot(iface.full_name);
  if (!slot.has_value()) {
    absl::StatusOr<uint32_t> bound = Bind(*conn, iface, ctx->deadline());
    if (!bound.ok()) return bound.status();
    slot = *bound;
  }
  OutgoingMessage m;
  m.type = MessageType::kOneway;
  m.message_id = 0;
  m.interface_slot = *slot;
  m.method_id = method.id;
  m.deadline_ns = ToMonotonicDeadlineNs(ctx->deadline());
  m.payload = request;
  m.body = body;
  // Descriptors and a buffer travel in packets that name the message: a
  // oneway call that carries some takes an id.
  const std::vector<int> handles = internal::BorrowRequestHandles(*ctx);
  if (absl::Status s = CheckRequestHandles(handles); !s.ok()) return s;
  if (!handles.empty()) {
    m.message_id = (*conn)->NextId();
    m.handles = handles;
  }
  // The field number is read before sealing: a writer may stop naming
  // its buffer field once the buffer has been moved from.
  const uint32_t buffer_field = BufferFieldNumberOf(body);
  Buffer* pool_buffer = PoolBufferOf(body, **conn);
  absl::StatusOr<std::optional<::lpc::internal::SealedBuffer>> sealed =
      pool_buffer != nullptr
          ? std::optional<::lpc::internal::SealedBuffer>()
          : SealBufferOf(body);
  if (!sealed.ok()) return sealed.status();
  if (sealed->has_value() || pool_buffer != nullptr) {
    if (m.message_id == 0) m.message_id = (*conn)->NextId();
    m.sealed_buffer = sealed->has_value() ? &**sealed : nullptr;
    m.pool_buffer = pool_buffer;
    m.buffer_field = buffer_field;
  }
  std::string with_metadata;
  if (HasSendableMetadata(ctx->metadata())) {
    if (absl::Status s = EncodeMetadata(ctx->metadata(), &with_metadata);
        !s.ok()) {
      return s;
    }
    with_metadata += request;  // (Empty on the zero-copy path.)
    m.flags = kFlagMetadata;
    m.payload = with_metadata;
  }
  return (*conn)->Send(m, ctx->deadline());
}

absl::StatusOr<std::string> LocalChannel::CallImpl(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx, std::string_view request, const MessageWriter* body,
    std::string* give_back, std::shared_ptr<ClientConnection>* conn_out,
    std::optional<AttachedBuffer>* attached_out) {
  std::shared_ptr<ClientConnection>& conn = *conn_out;
  PendingCall call;  // Registered until done; then only ours.
  call.ctx = ctx;
  call.attached_out = attached_out;
  if (absl::Status s =
          Begin(iface, method, ctx, request, body, &call, &conn);
      !s.ok()) {
    return s;
  }
  // Sent (copied into the section): a large buffer holds the reply next.
  if (give_back != nullptr) conn->buffers().Give(std::move(*give_back));
  // The cancel callback is registered only if the caller is about to
  // sleep (or saw the cancel while spinning): a reply that arrives within
  // the spin costs no CancelState, mutex or std::function. It names the
  // call by id, so it is harmless if it runs after this returns.
  std::optional<uint64_t> handle;
  const uint64_t id = call.id;
  conn->Wait(
      &call, [ctx] { return ctx->WasCancelledExplicitly(); },
      [&] {
        if (handle.has_value()) return;
        // Raw pointer (no heap for the std::function): removed below,
        // while `conn` is held, and removal waits for a running callback.
        ClientConnection* c = conn.get();
        handle = CallContextAccess::AddTransportCancelCallback(*ctx, [c, id] {
          c->CompleteAndCancel(id, absl::CancelledError("call cancelled"));
          c->WakeLeader();
        });
      });
  if (handle.has_value()) ctx->RemoveCancelCallback(*handle);
  return Finish(ctx, call.deadline_ns, std::move(call.result));
}

void LocalChannel::StartCallImpl(const InterfaceDescriptor& iface,
                                 const MethodDescriptor& method,
                                 CallContext* ctx, std::string_view request,
                                 const MessageWriter* body,
                                 std::string* give_back, AsyncCallback done) {
  // Deleted by whoever completes it (ClientConnection::CompleteLocked),
  // or below if it never got registered.
  auto* call = new PendingCall;
  call->ctx = ctx;
  if (done.received) call->attached_out = &call->attached;
  call->callback = std::move(done);
  std::shared_ptr<ClientConnection> conn;
  bool registered = false;
  absl::Status s =
      Begin(iface, method, ctx, request, body, call, &conn, &registered);
  if (s.ok() && give_back != nullptr) {
    conn->buffers().Give(std::move(*give_back));
  }
  if (!s.ok() && !registered) {
    // Also removes its cancel callback, if Begin registered one.
    Completion c{std::move(call->callback), ctx, call->deadline_ns,
                 call->cancel_handle, std::move(s)};
    delete call;
    c.Run();
  }
  // Registered: the call now belongs to the connection (if sending failed,
  // Begin completed it and its callback ran).
}

absl::Status LocalChannel::Begin(const InterfaceDescriptor& iface,
                                 const MethodDescriptor& method,
                                 CallContext* ctx, std::string_view request,
                                 const MessageWriter* body, PendingCall* call,
                                 std::shared_ptr<ClientConnection>* conn_out,
                                 bool* registered) {
  absl::Time now;
  const size_t size =
      request.size() + (body != nullptr ? SerializedSize(*body) : 0);
  if (absl::Status s = PrepareCall(ctx, size, &now); !s.ok()) {
    return s;
  }
  const absl::Time deadline = ctx->deadline();
  const int64_t mono_now = MonotonicNowNs();
  call->deadline_ns = ToMonotonicDeadlineNs(deadline, now, mono_now);
  absl::StatusOr<std::shared_ptr<ClientConnection>> conn =
      GetConnection(deadline, mono_now);
  if (!conn.ok()) return conn.status();
  ClientConnection& c = **conn;
  std::string with_metadata;
  const bool has_metadata = HasSendableMetadata(ctx->metadata());
  if (has_metadata) {
    if (absl::Status s = EncodeMetadata(ctx->metadata(), &with_metadata);
        !s.ok()) {
      return s;
    }
    with_metadata += request;  // (Empty on the zero-copy path.)
  }
  call->deadline = deadline;
  const int64_t deadline_ns = call->deadline_ns;
  // The request's table, borrowed: sent (the kernel duplicates them)
  // before the record is published; the context keeps its own.
  const std::vector<int> handles = internal::BorrowRequestHandles(*ctx);
  if (absl::Status s = CheckRequestHandles(handles); !s.ok()) return s;
  // A shared buffer argument goes beside the request, sealed: no copy.
  // The field number is read before sealing: a writer may stop naming
  // its buffer field once the buffer has been moved from.
  const uint32_t buffer_field = BufferFieldNumberOf(body);
  Buffer* pool_buffer = PoolBufferOf(body, c);
  absl::StatusOr<std::optional<::lpc::internal::SealedBuffer>> sealed =
      pool_buffer != nullptr
          ? std::optional<::lpc::internal::SealedBuffer>()
          : SealBufferOf(body);
  if (!sealed.ok()) return sealed.status();
  uint64_t async_id = 0;
  if (registered != nullptr) {
    // An async call's cancel callback is registered before the call is:
    // once sent, the reply may complete the call, and `done` may destroy
    // `ctx`, at any moment. It holds a raw pointer (16 bytes: no heap for
    // the std::function); it is removed before `done` runs
    // (Completion::Run) or, for a call still pending when the connection
    // dies, by the connection's destructor. A cancel that comes before
    // the call is registered finds nothing; Register then refuses it.
    call->id = async_id = c.NextId();
    ClientConnection* raw = conn->get();
    const uint64_t id = async_id;
    // The CANCEL goes out before `done` runs (CompleteAndCancel).
    call->cancel_handle =
        CallContextAccess::AddTransportCancelCallback(*ctx, [raw, id] {
          raw->CompleteAndCancel(id, absl::CancelledError("call cancelled"));
        });
  }
  absl::StatusOr<uint32_t> slot = c.Register(call, &iface);
  if (absl::IsNotFound(slot.status())) {  // First call of this interface.
    absl::StatusOr<uint32_t> bound = Bind(*conn, iface, deadline);
    if (!bound.ok()) return bound.status();
    slot = c.Register(call, &iface);
    if (absl::IsNotFound(slot.status())) {
      return absl::UnavailableError("interface binding lost");
    }
  }
  if (!slot.ok()) return slot.status();
  // From here on an async call belongs to the connection: it may be
  // completed and deleted at any moment (a cancel, a dead connection), so
  // `call` is not touched again; a sync call's record is ours.
  if (registered != nullptr) *registered = true;
  const uint64_t id = async_id != 0 ? async_id : call->id;
  OutgoingMessage m;
  m.type = MessageType::kRequest;
  m.message_id = id;
  m.interface_slot = *slot;
  m.method_id = method.id;
  m.deadline_ns = deadline_ns;
  m.payload = request;
  m.body = body;
  m.handles = handles;
  if (sealed->has_value()) {
    m.sealed_buffer = &**sealed;
    m.buffer_field = buffer_field;
  }
  if (pool_buffer != nullptr) {
    m.pool_buffer = pool_buffer;
    m.buffer_field = buffer_field;
  }
  if (has_metadata) {
    m.flags = kFlagMetadata;
    m.payload = with_metadata;
  }
  if (absl::Status s = c.Send(m, deadline); !s.ok()) {
    c.Complete(id, s);  // Runs an async call's callback.
    return s;
  }
  *conn_out = std::move(*conn);
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> LocalChannel::Bind(
    const std::shared_ptr<ClientConnection>& conn,
    const InterfaceDescriptor& iface, absl::Time deadline) {
  const std::string name(iface.full_name);
  PendingCall call;
  call.deadline = deadline;
  if (absl::StatusOr<uint32_t> r = conn->Register(&call, nullptr); !r.ok()) {
    return r.status();
  }
  BindRequest req{name, std::string(iface.uuid), iface.version.major,
                  iface.version.minor};
  const std::string payload = EncodeBindRequest(req);
  OutgoingMessage m;
  m.type = MessageType::kBind;
  m.message_id = call.id;
  m.payload = payload;
  if (absl::Status s = conn->Send(m, deadline); !s.ok()) {
    conn->Complete(call.id, s);
    return s;
  }
  conn->Wait(&call);
  if (!call.result.ok()) return call.result.status();
  conn->SetBound(name, call.bind_slot);
  return call.bind_slot;
}

}  // namespace lpc::local
