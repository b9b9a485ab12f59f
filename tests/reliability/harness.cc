// Servers and channels of the reliability suite; see harness.h.
#include "tests/reliability/harness.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"

namespace lpc::reliability {

std::string GrpcAddress(const std::string& dir) {
  return absl::StrCat("unix:", dir, "/g.sock");
}

TestServer::TestServer(TestServerOptions options)
    : options_(std::move(options)),
      service_(options_.count_log_fd),
      server_(options_.server) {
  start_ = server_.RegisterService(&service_);
  if (!start_.ok()) return;
  if (!options_.local_name.empty()) {
    local::LocalPortOptions po = options_.local;
    po.runtime_dir = options_.dir;
    if (po.socket_mode == 0600) po.socket_mode = 0666;
    auto t = local::MakeLocalServerTransport(options_.local_name, po);
    if (!t.ok()) {
      start_ = t.status();
      return;
    }
    local_ = t->get();
    start_ = server_.AddTransport(std::move(*t));
    if (!start_.ok()) return;
  }
  if (options_.grpc) {
    GrpcServerOptions go;
    go.listen_addresses = {GrpcAddress(options_.dir)};
    go.max_workers = 128;
    start_ = server_.AddTransport(MakeGrpcServerTransport(go));
    if (!start_.ok()) return;
  }
  start_ = server_.Start();
}

TestServer::~TestServer() { server_.Shutdown(); }

std::string TestServer::local_target() const {
  return options_.local_name.empty() ? ""
                                     : absl::StrCat("local:", options_.local_name);
}

std::string TestServer::grpc_target() const {
  return options_.grpc ? absl::StrCat("grpc:", GrpcAddress(options_.dir)) : "";
}

absl::StatusOr<std::shared_ptr<Channel>> MakeChannel(
    const std::string& target, const std::string& dir, ChannelOptions options,
    local::LocalChannelOptions local) {
  if (absl::StartsWith(target, "local:")) {
    local.runtime_dir = dir;
    return local::CreateLocalChannel(target.substr(6), options, local);
  }
  if (absl::StartsWith(target, "grpc:")) {
    // Reconnect backoff as the local transport's (10 ms doubling to 1 s);
    // gRPC's own default starts at 1 s and grows to 120 s.
    GrpcChannelOptions go;
    go.channel_args["grpc.initial_reconnect_backoff_ms"] = 10;
    go.channel_args["grpc.min_reconnect_backoff_ms"] = 10;
    go.channel_args["grpc.max_reconnect_backoff_ms"] = 1000;
    absl::StatusOr<std::shared_ptr<GrpcChannel>> ch =
        GrpcChannel::Create(target.substr(5), options, go);
    if (!ch.ok()) return ch.status();
    return std::shared_ptr<Channel>(*ch);
  }
  return absl::InvalidArgumentError(absl::StrCat("bad target ", target));
}

absl::StatusOr<std::string> CallRel(Channel& ch, const MethodDescriptor& method,
                                    std::string request,
                                    absl::Duration timeout) {
  CallContext ctx;
  ctx.set_timeout(timeout);
  return ch.Call(RelDescriptor(), method, &ctx, std::move(request));
}

void PendingHold::Start(Channel& ch, const std::string& key) {
  ctx.set_timeout(absl::Seconds(60));
  ch.StartCall(RelDescriptor(), HoldMethod(), &ctx, key,
               [this](absl::StatusOr<std::string> r) {
                 code = r.status().code();
                 done.store(true);
               });
}

}  // namespace lpc::reliability
