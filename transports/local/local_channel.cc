// The client side of the local transport: LocalChannel (local_channel.h;
// connect on first use and after the server went away, the Channel
// interface, streams and buffers) and the "local" scheme's registration.
// How a call is bound, registered, sent and waited for is in
// local_channel_calls.cc. The pieces live in internal/: the handshake
// (client_handshake.h), the connection and its waits (client_connection.h),
// the doorbell (client_doorbell.h).
#include "transports/local/local_channel.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/mutex.h"
#include "runtime/target.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/client_connection.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/internal/client_streams.h"
#include "transports/local/internal/pending_call.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

using internal::AsyncCallback;
using internal::ClientConnection;
using internal::LocalClientStream;

}  // namespace

LocalChannelStats LocalChannel::Stats() {
  MutexLock lock(&mu_);
  return conn_ != nullptr ? conn_->stats() : LocalChannelStats{};
}

absl::StatusOr<std::string> LocalChannel::Call(const InterfaceDescriptor& iface,
                                               const MethodDescriptor& method,
                                               CallContext* ctx,
                                               std::string request) {
  std::shared_ptr<ClientConnection> conn;
  return CallImpl(iface, method, ctx, request, nullptr, &request, &conn,
                  nullptr);
}

absl::Status LocalChannel::CallWith(const InterfaceDescriptor& iface,
                                    const MethodDescriptor& method,
                                    CallContext* ctx,
                                    const MessageWriter& request,
                                    ReplyDecoder decode) {
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

void LocalChannel::StartCallWith(const InterfaceDescriptor& iface,
                                 const MethodDescriptor& method,
                                 CallContext* ctx, const MessageWriter& request,
                                 ReceivedCallback done) {
  // The reply's buffer, if it came beside it, lands in the call's record
  // and goes to `done` attached to the reply (Completion::Run).
  StartCallImpl(iface, method, ctx, {}, &request, nullptr,
                AsyncCallback{nullptr, std::move(done)});
}

absl::Status LocalChannel::SendOnewayWith(const InterfaceDescriptor& iface,
                                          const MethodDescriptor& method,
                                          CallContext* ctx,
                                          const MessageWriter& request) {
  return SendOnewayImpl(iface, method, ctx, {}, &request);
}

void LocalChannel::StartCall(const InterfaceDescriptor& iface,
                             const MethodDescriptor& method, CallContext* ctx,
                             std::string request, ResponseCallback done) {
  StartCallImpl(iface, method, ctx, request, nullptr, &request,
                AsyncCallback{std::move(done), nullptr});
}

absl::Status LocalChannel::SendOneway(const InterfaceDescriptor& iface,
                                      const MethodDescriptor& method,
                                      CallContext* ctx, std::string request) {
  return SendOnewayImpl(iface, method, ctx, request, nullptr);
}

absl::StatusOr<Buffer> LocalChannel::NewBuffer(size_t size) {
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

std::shared_ptr<ClientStream> LocalChannel::OpenStream(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx) {
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

absl::StatusOr<std::shared_ptr<ClientConnection>> LocalChannel::GetConnection(
    absl::Time deadline, int64_t mono_now_ns) {
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
