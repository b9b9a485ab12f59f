// The client side of the local transport: LocalChannel (connect on first
// use and after the server went away, interface binding, calls with
// deadlines and cancellation) and the "local" scheme's registration. The
// pieces live in internal/: the handshake (client_handshake.h), the
// connection and its waits (client_connection.h), the doorbell
// (client_doorbell.h).
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/mutex.h"
#include "runtime/target.h"
#include "transports/local/doorbell.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/client_connection.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/internal/client_streams.h"
#include "transports/local/internal/pending_call.h"
#include "transports/local/local_transport.h"
#include "transports/local/metadata.h"

namespace lpc::local {

using ::lpc::internal::CallContextAccess;
namespace {

using internal::AsyncCallback;
using internal::ClientConnection;
using internal::LocalClientStream;
using internal::Completion;
using internal::Finish;
using internal::PendingCall;

class LocalChannel final : public Channel {
 public:
  LocalChannel(std::string name, std::string path, ChannelOptions options,
               LocalChannelOptions local)
      : Channel(options),
        name_(std::move(name)),
        path_(std::move(path)),
        local_(std::move(local)),
        backoff_(local_.reconnect_backoff_initial) {}

  std::string_view transport_name() const override { return "local"; }

  LocalChannelStats Stats() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return conn_ != nullptr ? conn_->stats() : LocalChannelStats{};
  }

  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override {
    std::shared_ptr<ClientConnection> conn;
    return CallImpl(iface, method, ctx, request, nullptr, &request, &conn,
                    nullptr);
  }

  // The zero-copy path (docs/zero-copy.md): the request writes itself into
  // the ring slot, the data area or the payload memfd; the decoder reads
  // the reply from the one private copy, whose buffer is then kept for
  // the next large reply.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override {
    std::shared_ptr<ClientConnection> conn;
    std::optional<AttachedBuffer> attached;
    absl::StatusOr<std::string> reply =
        CallImpl(iface, method, ctx, {}, &request, nullptr, &conn, &attached);
    if (!reply.ok()) return reply.status();
    ReceivedMessage message(std::move(*reply));
    if (attached.has_value()) {
      message.Attach(attached->field_number, std::move(attached->view));
    }
    absl::Status s = decode(message);
    if (conn != nullptr) conn->buffers().Give(message.TakeString());
    return s;
  }

  void StartCallWith(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     const MessageWriter& request,
                     ReceivedCallback done) override {
    // The reply's buffer, if it came beside it, lands in the call's record
    // and goes to `done` attached to the reply (Completion::Run).
    StartCallImpl(iface, method, ctx, {}, &request, nullptr,
                  AsyncCallback{nullptr, std::move(done)});
  }

  absl::Status SendOnewayWith(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              const MessageWriter& request) override {
    return SendOnewayImpl(iface, method, ctx, {}, &request);
  }

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    StartCallImpl(iface, method, ctx, request, nullptr, &request,
                  AsyncCallback{std::move(done), nullptr});
  }

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    return SendOnewayImpl(iface, method, ctx, request, nullptr);
  }

  // A oneway message: `request`, then `body` (the zero-copy path) if set.
  absl::Status SendOnewayImpl(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
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

  // A chunk of the connection's same-uid buffer pool when it has one, the
  // size fits a chunk and one is free; else a shared buffer (its own
  // memfd). Either is sent beside the request without a copy.
  absl::StatusOr<Buffer> NewBuffer(size_t size) override {
    if (local_.same_uid_buffer_pool && size > 0 &&
        size <= local_.buffer_pool_chunk_bytes) {
      // Connects first if need be: the pool is the connection's.
      absl::StatusOr<std::shared_ptr<ClientConnection>> conn = GetConnection(
          absl::Now() + local_.connect_timeout, MonotonicNowNs());
      if (conn.ok()) {
        if (std::optional<Buffer> b = (*conn)->TryNewPoolBuffer(size);
            b.has_value()) {
          return *std::move(b);
        }
      }
    }
    absl::StatusOr<Buffer> b = Buffer::Shared(size);
    // A runtime without shared buffers: a heap one, sent as bytes.
    if (absl::IsUnimplemented(b.status())) return Buffer::Heap(size);
    return b;
  }

  // A stream inside the connection's section (docs/local-transport.md,
  // "Streams"): registered with the connection, then STREAM_OPEN.
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override {
    absl::Time now;
    absl::Status prepared = PrepareCall(ctx, 0, &now);
    if (prepared.ok() && !internal::BorrowRequestHandles(*ctx).empty()) {
      prepared = absl::FailedPreconditionError(
          "streams carry no descriptors (handles need a unary call)");
    }
    if (!prepared.ok()) {
      return LocalClientStream::MakeHandle(
          std::make_shared<LocalClientStream>(ctx, std::move(prepared)));
    }
    const absl::Time deadline = ctx->deadline();
    const int64_t mono_now = MonotonicNowNs();
    const int64_t deadline_ns = ToMonotonicDeadlineNs(deadline, now, mono_now);
    absl::StatusOr<std::shared_ptr<ClientConnection>> conn =
        GetConnection(deadline, mono_now);
    if (!conn.ok()) {
      return LocalClientStream::MakeHandle(
          std::make_shared<LocalClientStream>(ctx, conn.status()));
    }
    LocalClientStream::Config config;
    config.id = (*conn)->NextId();
    config.in_window = options().stream_window;
    config.in_window.messages = std::max<uint32_t>(1, config.in_window.messages);
    config.in_window.bytes = std::max<size_t>(1, config.in_window.bytes);
    config.max_message_size = options().max_message_size;
    config.deadline = deadline;
    auto stream = std::make_shared<LocalClientStream>(*conn, ctx, config);
    absl::StatusOr<uint32_t> slot =
        (*conn)->RegisterStream(config.id, stream, &iface);
    if (absl::IsNotFound(slot.status())) {  // First call of this interface.
      absl::StatusOr<uint32_t> bound = Bind(*conn, iface, deadline);
      if (!bound.ok()) {
        return LocalClientStream::MakeHandle(
            std::make_shared<LocalClientStream>(ctx, bound.status()));
      }
      slot = (*conn)->RegisterStream(config.id, stream, &iface);
    }
    if (!slot.ok()) {
      return LocalClientStream::MakeHandle(std::make_shared<LocalClientStream>(
          ctx, absl::IsNotFound(slot.status())
                   ? absl::UnavailableError("interface binding lost")
                   : slot.status()));
    }
    stream->Open(*slot, method.id, deadline_ns);
    return LocalClientStream::MakeHandle(std::move(stream));
  }

 private:
  // A synchronous call: `request`, then `body` (the zero-copy path) if
  // set. `*give_back`, if set, goes to the connection's buffer cache once
  // sent (its capacity holds the next large reply); `*conn_out` is the
  // connection, for the caller to give the reply's buffer back.
  absl::StatusOr<std::string> CallImpl(
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

  // An asynchronous call, as CallImpl.
  void StartCallImpl(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     std::string_view request, const MessageWriter* body,
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

  // The field number of the request's buffer field; 0 when it has none.
  static uint32_t BufferFieldNumberOf(const MessageWriter* body) {
    if (body == nullptr) return 0;
    const BufferField* f = body->buffer();
    return f == nullptr ? 0 : f->field_number;
  }

  // The request's buffer field if it is a chunk of `c`'s pool (a chunk of
  // another connection's pool is appended to the bytes, as a heap buffer).
  static Buffer* PoolBufferOf(const MessageWriter* body,
                              const ClientConnection& c) {
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
  static absl::StatusOr<std::optional<::lpc::internal::SealedBuffer>>
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

  static absl::Status CheckRequestHandles(const std::vector<int>& handles) {
    if (handles.size() > kMaxHandlesHardLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a request carries ", handles.size(),
          " descriptors; the local transport carries at most ",
          kMaxHandlesHardLimit));
    }
    return absl::OkStatus();
  }

  // Connects, binds, registers and sends one call (`call->ctx` and, for an
  // async call, `call->callback` set). `*registered` (async calls) tells
  // whether the call was registered: then the connection owns it, and a
  // failed send has already completed it.
  absl::Status Begin(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     std::string_view request, const MessageWriter* body,
                     PendingCall* call,
                     std::shared_ptr<ClientConnection>* conn_out,
                     bool* registered = nullptr) {
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

  absl::StatusOr<uint32_t> Bind(const std::shared_ptr<ClientConnection>& conn,
                                const InterfaceDescriptor& iface,
                                absl::Time deadline) {
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

  // The live connection, or a new one. One thread connects at a time,
  // without mu_ held; the others wait for it, each until its own deadline.
  absl::StatusOr<std::shared_ptr<ClientConnection>> GetConnection(
      absl::Time deadline, int64_t mono_now_ns) ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<ClientConnection> gone;  // Ended outside mu_.
    mu_.Lock();
    for (;;) {
      // The socket poll is rate-limited: a busy caller makes no syscall.
      if (conn_ != nullptr && !conn_->dead() &&
          (!conn_->SocketCheckDue(mono_now_ns) || !conn_->HungUp())) {
        std::shared_ptr<ClientConnection> c = conn_;
        mu_.Unlock();
        return c;
      }
      if (conn_ != nullptr) gone = std::move(conn_);
      if (!connecting_) break;
      if (gone != nullptr) break;  // Ended below; the connect goes on.
      if (!connected_.WaitWithDeadline(&mu_, deadline) && connecting_) {
        mu_.Unlock();
        return absl::DeadlineExceededError(absl::StrCat(
            "cannot connect to local port ", name_,
            ": the call's deadline passed while another call connects"));
      }
      mono_now_ns = MonotonicNowNs();
    }
    if (gone != nullptr) {
      mu_.Unlock();
      // Its pending calls fail (their callbacks run) without mu_ held.
      if (!gone->dead()) {
        gone->MarkDead(absl::UnavailableError("server closed the connection"));
      }
      gone.reset();
      return GetConnection(deadline, MonotonicNowNs());
    }
    const absl::Time now = absl::Now();
    if (now < next_attempt_) {
      absl::Status s = absl::UnavailableError(
          absl::StrCat("local port ", name_, " unavailable (retrying): ",
                       last_error_.message()));
      mu_.Unlock();
      return s;
    }
    connecting_ = true;
    mu_.Unlock();
    absl::StatusOr<internal::ClientHandshake> h =
        internal::ConnectAndHandshake(path_, local_, deadline);
    std::shared_ptr<ClientConnection> c;
    if (h.ok()) {
      c = std::make_shared<ClientConnection>(std::move(*h), local_, options());
      c->OfferPool(c);
    }
    MutexLock lock(&mu_);
    connecting_ = false;
    connected_.SignalAll();
    if (!h.ok()) {
      last_error_ = h.status();
      next_attempt_ = now + backoff_;
      backoff_ = std::min(backoff_ * 2, local_.reconnect_backoff_max);
      return h.status();
    }
    backoff_ = local_.reconnect_backoff_initial;
    next_attempt_ = absl::InfinitePast();
    conn_ = c;
    return c;
  }

  const std::string name_;
  const std::string path_;
  const LocalChannelOptions local_;
  Mutex mu_;  // The connection and the reconnect state.
  std::shared_ptr<ClientConnection> conn_ ABSL_GUARDED_BY(mu_);
  absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // A thread is connecting (without mu_); connected_ is signalled when it
  // is done.
  bool connecting_ ABSL_GUARDED_BY(mu_) = false;
  CondVar connected_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<Channel>> CreateLocalChannel(
    std::string name, ChannelOptions options, LocalChannelOptions local) {
  absl::StatusOr<std::string> path = PortPath(name, local.runtime_dir);
  if (!path.ok()) return path.status();
  if (local.max_handles_per_message > kMaxHandlesHardLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_handles_per_message must be at most ", kMaxHandlesHardLimit,
        ", not ", local.max_handles_per_message));
  }
  if (local.same_uid_buffer_pool) {
    const uint64_t chunk = local.buffer_pool_chunk_bytes;
    const uint32_t count = local.buffer_pool_chunks;
    if (chunk < 4096 || chunk % 4096 != 0 || count < 2 || count % 2 != 0 ||
        count > kMaxPoolChunks || chunk > (uint64_t{1} << 40) / count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "buffer pool of ", count, " chunks of ", chunk,
          " bytes: chunks are a multiple of 4096 bytes, their count even, "
          "2 to ", kMaxPoolChunks));
    }
  }
  return std::shared_ptr<Channel>(new LocalChannel(
      std::move(name), std::move(*path), std::move(options), std::move(local)));
}

absl::StatusOr<LocalChannelStats> GetLocalChannelStats(Channel& channel) {
  auto* local = dynamic_cast<LocalChannel*>(&channel);
  if (local == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a local channel (transport ",
        std::string(channel.transport_name()), ")"));
  }
  return local->Stats();
}

bool IsPoolChunk(const Buffer& b) { return internal::BufferPool::IsChunk(b); }

void RegisterLocalTransport() {
  RegisterChannelFactory(
      "local", [](std::string_view address, const ChannelArgs& args)
                   -> absl::StatusOr<std::shared_ptr<Channel>> {
        LocalChannelOptions local;
        if (args.transport_options != nullptr) {
          local = *static_cast<const LocalChannelOptions*>(args.transport_options);
        }
        return CreateLocalChannel(std::string(address), args.common, local);
      });
}

namespace {
const bool kRegistered = (RegisterLocalTransport(), true);
}  // namespace

}  // namespace lpc::local
