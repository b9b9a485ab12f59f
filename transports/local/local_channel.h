// LocalChannel, the client side of the local transport (local_transport.h
// creates it). Its members are defined in two files: local_channel.cc (the
// Channel interface, streams, buffers, connecting and reconnecting) and
// local_channel_calls.cc (how a unary or oneway call is bound, registered,
// sent and waited for). Private to :local_transport (listed in its srcs).
//
// Thread safety: thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_LOCAL_CHANNEL_H_
#define LPC_TRANSPORTS_LOCAL_LOCAL_CHANNEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/mutex.h"
#include "transports/local/internal/client_connection.h"
#include "transports/local/internal/pending_call.h"
#include "transports/local/local_transport.h"

namespace lpc::local {

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

  LocalChannelStats Stats() ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override;

  // The zero-copy path (docs/zero-copy.md): the request writes itself into
  // the ring slot, the data area or the payload memfd; the decoder reads
  // the reply from the one private copy, whose buffer is then kept for
  // the next large reply.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override;

  void StartCallWith(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     const MessageWriter& request,
                     ReceivedCallback done) override;

  absl::Status SendOnewayWith(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              const MessageWriter& request) override;

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override;

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override;

  // A oneway message: `request`, then `body` (the zero-copy path) if set.
  absl::Status SendOnewayImpl(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              std::string_view request,
                              const MessageWriter* body);

  // A chunk of the connection's same-uid buffer pool when it has one, the
  // size fits a chunk and one is free; else a shared buffer (its own
  // memfd). Either is sent beside the request without a copy.
  absl::StatusOr<Buffer> NewBuffer(size_t size) override;

  // A stream inside the connection's section (docs/local-transport.md,
  // "Streams"): registered with the connection, then STREAM_OPEN.
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override;

 private:
  // A synchronous call: `request`, then `body` (the zero-copy path) if
  // set. `*give_back`, if set, goes to the connection's buffer cache once
  // sent (its capacity holds the next large reply); `*conn_out` is the
  // connection, for the caller to give the reply's buffer back.
  absl::StatusOr<std::string> CallImpl(
      const InterfaceDescriptor& iface, const MethodDescriptor& method,
      CallContext* ctx, std::string_view request, const MessageWriter* body,
      std::string* give_back,
      std::shared_ptr<internal::ClientConnection>* conn_out,
      std::optional<AttachedBuffer>* attached_out);

  // An asynchronous call, as CallImpl.
  void StartCallImpl(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     std::string_view request, const MessageWriter* body,
                     std::string* give_back, internal::AsyncCallback done);

  // Connects, binds, registers and sends one call (`call->ctx` and, for an
  // async call, `call->callback` set). `*registered` (async calls) tells
  // whether the call was registered: then the connection owns it, and a
  // failed send has already completed it.
  absl::Status Begin(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     std::string_view request, const MessageWriter* body,
                     internal::PendingCall* call,
                     std::shared_ptr<internal::ClientConnection>* conn_out,
                     bool* registered = nullptr);

  absl::StatusOr<uint32_t> Bind(
      const std::shared_ptr<internal::ClientConnection>& conn,
      const InterfaceDescriptor& iface, absl::Time deadline);

  // The live connection, or a new one. One thread connects at a time,
  // without mu_ held; the others wait for it, each until its own deadline.
  absl::StatusOr<std::shared_ptr<internal::ClientConnection>> GetConnection(
      absl::Time deadline, int64_t mono_now_ns) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string name_;
  const std::string path_;
  const LocalChannelOptions local_;
  Mutex mu_;  // The connection and the reconnect state.
  std::shared_ptr<internal::ClientConnection> conn_ ABSL_GUARDED_BY(mu_);
  absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // A thread is connecting (without mu_); connected_ is signalled when it
  // is done.
  bool connecting_ ABSL_GUARDED_BY(mu_) = false;
  CondVar connected_;
};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_LOCAL_CHANNEL_H_
