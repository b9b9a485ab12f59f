// The gRPC client transport: an lpc::Channel that carries calls as gRPC
// calls through gRPC's generic stub (unary calls as unary gRPC calls,
// streams through OpenStream), so no per-service gRPC code exists.
//
//   // Either through the target registry ("grpc:" + any gRPC target) ...
//   auto channel = lpc::CreateChannel("grpc:dns:///calc.example.com:4000");
//   // ... or directly, with gRPC-specific options.
//   lpc::GrpcChannelOptions grpc_options;
//   grpc_options.lb_policy = "round_robin";
//   auto channel = lpc::GrpcChannel::Create("dns:///calc.example.com:4000",
//                                           {}, grpc_options);
//
// A call of method M of interface I (full name "pkg.I") is a unary call to
// the path "/pkg.I/M" whose request and response are the serialized lpc
// messages. See docs/grpc-transport.md for the whole mapping.
//
// Thread safety: a GrpcChannel is thread-safe; calls may be started from any
// number of threads. Call waits on the calling thread; StartCall's
// completion callbacks run on gRPC's threads.
#ifndef LPC_TRANSPORTS_GRPC_GRPC_CHANNEL_H_
#define LPC_TRANSPORTS_GRPC_GRPC_CHANNEL_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"

namespace lpc {

// gRPC features that lpc passes through untouched. ChannelOptions (the
// common options) still govern the default timeout and the message size.
struct GrpcChannelOptions {
  // Channel credentials. nullptr means insecure, unless tls_root_certs_path
  // is set.
  // Default: nullptr.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // A PEM file of root certificates; when set and `credentials` is nullptr,
  // the channel uses TLS trusting these roots.
  // Default: empty (no TLS).
  std::string tls_root_certs_path;
  // A client certificate chain and its private key (PEM files), sent to
  // servers that ask for one (mTLS). Both or neither; they need
  // tls_root_certs_path. Read and checked by Create.
  // Default: empty.
  std::string tls_cert_chain_path;
  std::string tls_private_key_path;
  // gRPC's load-balancing policy, "pick_first" or "round_robin", set as the
  // channel's default service config (a service config from the resolver,
  // or a "grpc.service_config" in channel_args, replaces it).
  // Default: empty (gRPC's default, pick_first).
  std::string lb_policy;
  // Interval between keepalive pings; zero leaves gRPC's default (off).
  // Default: zero.
  absl::Duration keepalive_time = absl::ZeroDuration();
  // How long to wait for a keepalive ping's ack; zero leaves gRPC's default.
  // Default: zero.
  absl::Duration keepalive_timeout = absl::ZeroDuration();
  // Whether keepalive pings are sent while no call is active.
  // Default: false.
  bool keepalive_permit_without_calls = false;
  // Reconnect backoff (gRPC's doc/connection-backoff.md): the wait after the
  // first failed connection attempt (later waits grow 1.6-fold, with 20%
  // jitter), the longest wait, and the least time one attempt is given.
  // Zero leaves gRPC's default (1 s, 120 s, 20 s); a set value is at least
  // 100 ms, gRPC's floor.
  // Default: zero.
  absl::Duration reconnect_initial_backoff = absl::ZeroDuration();
  absl::Duration reconnect_max_backoff = absl::ZeroDuration();
  absl::Duration min_connect_timeout = absl::ZeroDuration();
  // The reply size gRPC itself enforces while receiving, in bytes; -1 means
  // no limit in gRPC, and lpc then checks ChannelOptions::max_message_size
  // once the reply has arrived. The default avoids a gRPC 1.51 problem: a
  // reply that breaks gRPC's own receive limit can leave the connection
  // stalled for later calls. A positive value bounds the memory a hostile
  // server can make the client buffer, at that risk.
  // Default: -1.
  int grpc_max_receive_message_size = -1;
  // Any other gRPC channel argument (GRPC_ARG_*), applied last so it wins
  // over the fields above.
  // Default: empty.
  std::map<std::string, std::variant<int, std::string>> channel_args;
};

class GrpcChannel final : public Channel {
 public:
  // Creates a channel to `grpc_target`, any target gRPC resolves
  // ("dns:///host:port", "host:port", "ipv4:1.2.3.4:5", "unix:/path").
  // Connecting is lazy: an unreachable server shows up as UNAVAILABLE on
  // the first call. Fails with INVALID_ARGUMENT for an empty target or an
  // option out of range (an unknown lb_policy, a negative duration, a
  // backoff below 100 ms or a max backoff below the initial one), and for a
  // TLS file that is missing (NOT_FOUND), unreadable (PERMISSION_DENIED) or
  // not valid PEM (INVALID_ARGUMENT), naming it.
  static absl::StatusOr<std::shared_ptr<GrpcChannel>> Create(
      std::string_view grpc_target, ChannelOptions options = {},
      const GrpcChannelOptions& grpc_options = {});

  // Wraps an existing gRPC channel, e.g. one built with custom interceptors.
  GrpcChannel(std::shared_ptr<grpc::Channel> channel, ChannelOptions options);

  // Waits for the calls still in flight (oneway ones included) to end,
  // which gRPC guarantees by their deadlines. Safe to run anywhere,
  // including inside a completion callback: the gRPC channel is then
  // released on a background thread, because gRPC 1.51 must not destroy a
  // channel on its own callback threads.
  ~GrpcChannel() override;

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override;

  // Makes the call on the calling thread, as a generated gRPC synchronous
  // stub does: the thread waits on a completion queue of its own and drives
  // gRPC's I/O itself, with no hand-off to gRPC's callback threads. Same
  // deadline, cancellation (ctx->Cancel() cancels the gRPC call), metadata,
  // size limits and status mapping as StartCall.
  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override;

  // Call without the std::strings (what a generated stub's synchronous
  // method calls): the request writes itself into one gRPC slice, and a
  // reply in one slice (the usual case) is decoded where gRPC received it.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override;

  // Sends the message as a unary call whose response is ignored. The call
  // still carries the context's deadline, so it never outlives it.
  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override;

  // A call of any method kind as a gRPC streaming call (gRPC's callback
  // generic API), with the context's deadline and metadata, cancelled by
  // ctx->Cancel() or by dropping the stream. Server messages are read ahead
  // up to ChannelOptions::stream_window; gRPC's own flow control does the
  // rest.
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override;

  std::string_view transport_name() const override { return "grpc"; }

  // The underlying gRPC channel (for connectivity state and the like).
  const std::shared_ptr<grpc::Channel>& grpc_channel() const {
    return channel_;
  }

  struct CallTracker;  // Counts calls whose gRPC context still exists.

 private:
  // Call and CallWith once the request is in `request`: the blocking call
  // and the checks of its outcome. OK when `*response` holds the reply.
  absl::Status Exchange(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const grpc::ByteBuffer& request,
                        grpc::ByteBuffer* response);

  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<CallTracker> tracker_;
};

// Makes CreateChannel understand "grpc:<gRPC target>". ChannelArgs::
// transport_options may point to a GrpcChannelOptions (nullptr: defaults).
// Linking //transports/grpc registers it already; calling it again is
// harmless.
void RegisterGrpcTransport();

}  // namespace lpc

#endif  // LPC_TRANSPORTS_GRPC_GRPC_CHANNEL_H_
