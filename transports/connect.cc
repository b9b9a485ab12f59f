// Config entries to transport options, and the auto: scheme.
#include "transports/connect.h"

#include <algorithm>
#include <climits>

#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "runtime/handles.h"
#include "runtime/inprocess.h"
#include "runtime/target.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

namespace lpc {
namespace {

ChannelOptions CommonOptions(const config::Endpoint* e) {
  ChannelOptions o;
  if (e == nullptr) return o;
  if (e->default_timeout_ms() > 0) {
    o.default_timeout = absl::Milliseconds(e->default_timeout_ms());
  }
  if (e->max_message_size() > 0) o.max_message_size = e->max_message_size();
  return o;
}

absl::Duration SpinFor(config::SpinPolicy policy, uint32_t spin_ns,
                       absl::Duration fallback) {
  switch (policy) {
    case config::BLOCK:
      return absl::ZeroDuration();
    case config::SPIN:
      // Spin until the reply or the deadline; never sleep.
      return absl::InfiniteDuration();
    default:
      return spin_ns > 0 ? absl::Nanoseconds(spin_ns) : fallback;
  }
}

local::LocalChannelOptions LocalOptions(const config::Endpoint* e) {
  local::LocalChannelOptions o;
  if (e == nullptr) return o;
  const config::LocalClientOptions& l = e->local();
  o.runtime_dir = l.runtime_dir();
  if (l.has_expected_server_uid()) o.expected_server_uid = l.expected_server_uid();
  o.spin = SpinFor(l.spin(), l.spin_ns(), o.spin);
  o.same_uid_buffer_pool = l.same_uid_buffer_pool();
  if (l.buffer_pool_chunk_bytes() > 0) {
    o.buffer_pool_chunk_bytes = l.buffer_pool_chunk_bytes();
  }
  if (l.buffer_pool_chunks() > 0) o.buffer_pool_chunks = l.buffer_pool_chunks();
  // Past INT_MAX it means "no limit" as well as INT_MAX does.
  o.spinning_callers = static_cast<int>(
      std::min<uint32_t>(l.spinning_callers(), INT_MAX));
  return o;
}

absl::StatusOr<GrpcChannelOptions> GrpcOptions(const config::Endpoint* e) {
  GrpcChannelOptions o;
  if (e == nullptr) return o;
  const config::GrpcClientOptions& g = e->grpc();
  o.lb_policy = g.lb_policy();
  if (g.keepalive_time_ms() > 0) o.keepalive_time = absl::Milliseconds(g.keepalive_time_ms());
  if (g.keepalive_timeout_ms() > 0) {
    o.keepalive_timeout = absl::Milliseconds(g.keepalive_timeout_ms());
  }
  o.keepalive_permit_without_calls = g.keepalive_permit_without_calls();
  const config::GrpcReconnect& r = g.reconnect();
  o.reconnect_initial_backoff = absl::Milliseconds(r.initial_backoff_ms());
  o.reconnect_max_backoff = absl::Milliseconds(r.max_backoff_ms());
  o.min_connect_timeout = absl::Milliseconds(r.min_connect_timeout_ms());
  o.tls_root_certs_path = g.tls_root_certs_file();
  o.tls_cert_chain_path = g.tls_cert_chain_file();
  o.tls_private_key_path = g.tls_private_key_file();
  if (!g.tls_target_name_override().empty()) {
    o.channel_args["grpc.ssl_target_name_override"] = g.tls_target_name_override();
  }
  for (const auto& [k, v] : g.string_args()) o.channel_args[k] = v;
  for (const auto& [k, v] : g.int_args()) {
    if (v < INT32_MIN || v > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gRPC channel argument ", k, " = ", v, " does not fit in an int"));
    }
    o.channel_args[k] = static_cast<int>(v);
  }
  return o;
}

absl::StatusOr<std::shared_ptr<Channel>> ConnectLocal(std::string_view port,
                                                      const config::Endpoint* e) {
  return local::CreateLocalChannel(std::string(port), CommonOptions(e),
                                   LocalOptions(e));
}

absl::StatusOr<std::shared_ptr<Channel>> ConnectGrpc(std::string_view target,
                                                     const config::Endpoint* e) {
  absl::StatusOr<GrpcChannelOptions> g = GrpcOptions(e);
  if (!g.ok()) return g.status();
  absl::StatusOr<std::shared_ptr<GrpcChannel>> c =
      GrpcChannel::Create(target, CommonOptions(e), *g);
  if (!c.ok()) return c.status();
  return std::shared_ptr<Channel>(*std::move(c));
}

// The gRPC channel auto: chose because the local port did not answer: a
// handle method (which gRPC cannot carry) fails at once, saying why the
// local transport was not used. Everything else goes to gRPC as it is.
class AutoGrpcChannel final : public Channel {
 public:
  AutoGrpcChannel(std::shared_ptr<Channel> grpc, std::string why)
      : Channel(grpc->options()), grpc_(std::move(grpc)), why_(std::move(why)) {}

  void StartCall(const InterfaceDescriptor& iface, const MethodDescriptor& method,
                 CallContext* ctx, std::string request, ResponseCallback done) override {
    if (method.handles) {
      done(NoHandles(iface, method));
      return;
    }
    grpc_->StartCall(iface, method, ctx, std::move(request), std::move(done));
  }
  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    if (method.handles) return NoHandles(iface, method);
    return grpc_->SendOneway(iface, method, ctx, std::move(request));
  }
  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method, CallContext* ctx,
                                   std::string request) override {
    if (method.handles) return NoHandles(iface, method);
    return grpc_->Call(iface, method, ctx, std::move(request));
  }
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override {
    return grpc_->OpenStream(iface, method, ctx);
  }
  std::string_view transport_name() const override { return grpc_->transport_name(); }

 private:
  absl::Status NoHandles(const InterfaceDescriptor& iface,
                         const MethodDescriptor& method) const {
    absl::Status s = internal::HandlesNeedLocalTransport(iface, method);
    return absl::Status(s.code(), absl::StrCat(s.message(), "; ", why_));
  }

  const std::shared_ptr<Channel> grpc_;
  const std::string why_;
};

absl::StatusOr<std::shared_ptr<Channel>> ConnectAuto(std::string_view address,
                                                     const config::Endpoint* e) {
  size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auto target '", std::string(address),
        "' is not of the form auto:<port>@<grpc-target>"));
  }
  std::string_view port = address.substr(0, at);
  std::string_view grpc_target = address.substr(at + 1);
  absl::Status probe = ProbeLocalPort(port, e);
  if (probe.ok()) return ConnectLocal(port, e);
  absl::StatusOr<std::shared_ptr<Channel>> grpc = ConnectGrpc(grpc_target, e);
  if (!grpc.ok()) return grpc;
  return std::shared_ptr<Channel>(std::make_shared<AutoGrpcChannel>(
      *std::move(grpc),
      absl::StrCat("auto:", std::string(address), " chose gRPC because local port '",
                   std::string(port), "' did not answer: ", probe.ToString())));
}

// The interface no server has: a call to it that comes back UNIMPLEMENTED
// proves a server answered.
constexpr MethodDescriptor kProbeMethods[] = {{"Probe", 1, false}};
const InterfaceDescriptor kProbeInterface{
    "lpc.internal.Probe", "00000000-0000-4000-8000-000000000000", {1, 0},
    kProbeMethods};

}  // namespace

absl::Status ProbeLocalPort(std::string_view port, const config::Endpoint* e,
                            absl::Duration timeout) {
  local::LocalChannelOptions local_options = LocalOptions(e);
  local_options.connect_timeout = timeout;
  local_options.reconnect_backoff_initial = absl::ZeroDuration();
  absl::StatusOr<std::shared_ptr<Channel>> channel = local::CreateLocalChannel(
      std::string(port), CommonOptions(e), local_options);
  if (!channel.ok()) return channel.status();
  CallContext ctx;
  ctx.set_timeout(timeout);
  absl::StatusOr<std::string> r =
      (*channel)->Call(kProbeInterface, kProbeMethods[0], &ctx, "");
  if (r.status().code() == absl::StatusCode::kUnimplemented) {
    return absl::OkStatus();
  }
  if (r.ok()) return absl::OkStatus();
  return r.status();
}

void RegisterAllTransports() {
  static std::once_flag once;
  std::call_once(once, [] {
    local::RegisterLocalTransport();
    RegisterGrpcTransport();
    RegisterInProcessTransport();
    RegisterChannelFactory(
        "auto", [](std::string_view address, const ChannelArgs& args)
                    -> absl::StatusOr<std::shared_ptr<Channel>> {
          config::Endpoint e;
          e.set_default_timeout_ms(static_cast<uint32_t>(
              absl::ToInt64Milliseconds(args.common.default_timeout)));
          e.set_max_message_size(args.common.max_message_size);
          return ConnectAuto(address, &e);
        });
  });
}

absl::StatusOr<std::shared_ptr<Channel>> ConnectTarget(
    std::string_view target, const config::Endpoint* endpoint) {
  RegisterAllTransports();
  absl::StatusOr<Target> t = ParseTarget(target);
  if (!t.ok()) return t.status();
  if (t->scheme == "local") return ConnectLocal(t->address, endpoint);
  if (t->scheme == "grpc") return ConnectGrpc(t->address, endpoint);
  if (t->scheme == "auto") return ConnectAuto(t->address, endpoint);
  ChannelArgs args;
  args.common = CommonOptions(endpoint);
  return CreateChannel(target, args);
}

absl::StatusOr<std::shared_ptr<Channel>> ConnectFromConfig(
    const config::Config& config, std::string_view service,
    std::string_view client) {
  const config::Endpoint* e = FindEndpoint(config, service, client);
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "the config has no endpoint for service '", std::string(service), "'",
        client.empty() ? "" : absl::StrCat(" or client '", std::string(client), "'")));
  }
  return ConnectTarget(e->target(), e);
}

absl::Status AddListenersFromConfig(Server* server,
                                    const config::ServerEndpoint& entry) {
  if (entry.local_port().empty() && entry.grpc_address().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server '", entry.name(), "' names neither a local port nor a gRPC address"));
  }
  if (absl::Status s = AddInterceptorsFromConfig(server, entry); !s.ok()) {
    return s;
  }
  if (!entry.local_port().empty()) {
    local::LocalPortOptions o;
    o.runtime_dir = entry.runtime_dir();
    o.allowed_uids.assign(entry.allow_uid().begin(), entry.allow_uid().end());
    o.allowed_gids.assign(entry.allow_gid().begin(), entry.allow_gid().end());
    if (o.allowed_uids.empty() && o.allowed_gids.empty()) {
      o.allowed_uids.push_back(static_cast<uint32_t>(getuid()));
      o.socket_mode = 0600;
    } else {
      o.socket_mode = 0666;
    }
    if (entry.socket_mode() != 0) o.socket_mode = entry.socket_mode();
    o.spin = SpinFor(entry.spin(), 0, o.spin);
    if (entry.max_concurrency() > 0) o.concurrency = static_cast<int>(entry.max_concurrency());
    const auto set = [](auto value, auto* field) {
      if (value > 0) *field = value;
    };
    set(entry.max_request_bytes_per_connection(), &o.max_request_bytes_per_connection);
    set(entry.max_request_bytes(), &o.max_request_bytes);
    set(entry.max_queued_reply_bytes_per_connection(),
        &o.max_queued_reply_bytes_per_connection);
    set(entry.max_queued_reply_bytes(), &o.max_queued_reply_bytes);
    set(entry.max_reply_memfd_bytes_per_connection(),
        &o.max_reply_memfd_bytes_per_connection);
    set(entry.max_reply_memfd_bytes(), &o.max_reply_memfd_bytes);
    set(entry.max_connections_per_uid(), &o.max_connections_per_uid);
    if (entry.max_workers() > 0) o.max_workers = static_cast<int>(entry.max_workers());
    if (entry.max_handlers_per_connection() > 0) {
      o.max_handlers_per_connection =
          static_cast<int>(entry.max_handlers_per_connection());
    }
    set(entry.max_streams_per_connection(), &o.max_streams_per_connection);
    if (entry.max_stream_handler_threads() > 0) {
      o.max_stream_handler_threads =
          static_cast<int>(entry.max_stream_handler_threads());
    }
    if (entry.max_handles_per_message() > 0) {
      o.max_handles_per_message = entry.max_handles_per_message();
    }
    o.same_uid_buffer_pool = entry.same_uid_buffer_pool();
    set(entry.max_buffer_pool_bytes(), &o.max_buffer_pool_bytes);
    if (entry.handshake_timeout_ms() > 0) {
      o.handshake_timeout = absl::Milliseconds(entry.handshake_timeout_ms());
    }
    if (entry.stashed_fd_timeout_ms() > 0) {
      o.stashed_fd_timeout = absl::Milliseconds(entry.stashed_fd_timeout_ms());
    }
    absl::StatusOr<std::unique_ptr<local::LocalServerTransport>> t =
        local::MakeLocalServerTransport(entry.local_port(), std::move(o));
    if (!t.ok()) return t.status();
    absl::Status s = server->AddTransport(*std::move(t));
    if (!s.ok()) return s;
  }
  if (!entry.grpc_address().empty()) {
    GrpcServerOptions o;
    o.listen_addresses.assign(entry.grpc_address().begin(), entry.grpc_address().end());
    o.max_message_size = entry.max_message_size();
    const config::GrpcServerOptions& g = entry.grpc();
    if (g.has_health_service()) o.health_service = g.health_service();
    if (g.has_reflection()) o.reflection = g.reflection();
    if (g.max_health_watches() > 0) {
      o.max_health_watches = g.max_health_watches();
    }
    o.tls.cert_chain_file = g.tls_cert_chain_file();
    o.tls.private_key_file = g.tls_private_key_file();
    o.tls.client_ca_file = g.tls_client_ca_file();
    o.tls.require_client_cert = g.tls_require_client_cert();
    absl::Status s = server->AddTransport(MakeGrpcServerTransport(std::move(o)));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace lpc
