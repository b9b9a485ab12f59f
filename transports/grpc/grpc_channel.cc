// GrpcChannel: lpc calls as generic unary gRPC calls, and the "grpc" scheme.
#include "transports/grpc/grpc_channel.h"

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include <grpc/grpc.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/target.h"
#include "transports/grpc/mapping.h"

namespace lpc {

using grpc_transport::FromByteBuffer;
using grpc_transport::FromGrpcStatus;
using grpc_transport::IsReservedMetadataKey;
using grpc_transport::ToByteBuffer;
using grpc_transport::ToGrpcDeadline;
using grpc_transport::ValidateMetadataEntry;

struct GrpcChannel::OnewayTracker {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;                               // Guarded by mu.
  absl::Time latest_deadline = absl::InfinitePast();  // Guarded by mu.
};

namespace {

int ClampToInt(size_t n) {
  return static_cast<int>(std::min<size_t>(n, INT_MAX));
}

int DurationToMillis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d),
                                            INT_MAX));
}

// One call in flight. Shared by the completion callback (which owns it) and
// the context's cancel callback (which only borrows it while it exists).
struct ClientCall {
  grpc::ClientContext grpc_ctx;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  CallContext* ctx = nullptr;  // Valid until `done` runs.
  ResponseCallback done;
  uint64_t cancel_handle = 0;
};

// Copies the deadline, the user metadata and the interface binding headers
// into the gRPC context.
absl::Status SetUpContext(const InterfaceDescriptor& iface,
                          const CallContext& ctx,
                          grpc::ClientContext* grpc_ctx) {
  grpc_ctx->set_deadline(ToGrpcDeadline(ctx.deadline()));
  for (const auto& [key, value] : ctx.metadata()) {
    if (IsReservedMetadataKey(key)) continue;
    absl::Status s = ValidateMetadataEntry(key, value);
    if (!s.ok()) return s;
    grpc_ctx->AddMetadata(key, value);
  }
  std::string uuid(iface.uuid);
  absl::Status s =
      ValidateMetadataEntry(grpc_transport::kInterfaceUuidKey, uuid);
  if (!s.ok()) return s;
  grpc_ctx->AddMetadata(grpc_transport::kInterfaceUuidKey, uuid);
  grpc_ctx->AddMetadata(grpc_transport::kInterfaceVersionKey,
                        grpc_transport::FormatVersion(iface.version));
  return absl::OkStatus();
}

void CopyResponseMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& from,
    Metadata* to) {
  for (const auto& [key, value] : from) {
    std::string_view k(key.data(), key.size());
    if (IsReservedMetadataKey(k)) continue;
    to->emplace(std::string(k), std::string(value.data(), value.size()));
  }
}

void Complete(ClientCall& call, const grpc::Status& grpc_status) {
  CallContext* ctx = call.ctx;
  ctx->RemoveCancelCallback(call.cancel_handle);
  // Both are empty when the call failed before reaching the server.
  CopyResponseMetadata(call.grpc_ctx.GetServerInitialMetadata(),
                       &ctx->response_metadata());
  CopyResponseMetadata(call.grpc_ctx.GetServerTrailingMetadata(),
                       &ctx->response_metadata());
  ResponseCallback done = std::move(call.done);
  if (!grpc_status.ok()) {
    absl::Status status = FromGrpcStatus(grpc_status);
    if (status.code() == absl::StatusCode::kCancelled &&
        ctx->WasCancelledExplicitly()) {
      status = StatusForEndedCall(*ctx);
    }
    done(std::move(status));
    return;
  }
  std::string response;
  absl::Status s = FromByteBuffer(call.response, &response);
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  done(std::move(response));
}

}  // namespace

absl::StatusOr<std::shared_ptr<GrpcChannel>> GrpcChannel::Create(
    std::string_view grpc_target, ChannelOptions options,
    const GrpcChannelOptions& grpc_options) {
  if (grpc_target.empty()) {
    return absl::InvalidArgumentError("empty gRPC target");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc_options.credentials;
  if (credentials == nullptr && !grpc_options.tls_root_certs_path.empty()) {
    std::ifstream in(grpc_options.tls_root_certs_path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read TLS root certificates from ",
                       grpc_options.tls_root_certs_path));
    }
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(ClampToInt(options.max_message_size));
  args.SetMaxSendMessageSize(ClampToInt(options.max_message_size));
  if (!grpc_options.lb_policy.empty()) {
    args.SetLoadBalancingPolicyName(grpc_options.lb_policy);
  }
  if (grpc_options.keepalive_time > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                DurationToMillis(grpc_options.keepalive_time));
  }
  if (grpc_options.keepalive_timeout > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                DurationToMillis(grpc_options.keepalive_timeout));
  }
  if (grpc_options.keepalive_permit_without_calls) {
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  for (const auto& [name, value] : grpc_options.channel_args) {
    if (const int* i = std::get_if<int>(&value)) {
      args.SetInt(name, *i);
    } else {
      args.SetString(name, std::get<std::string>(value));
    }
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      std::string(grpc_target), credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gRPC could not create a channel to ", std::string(grpc_target)));
  }
  return std::make_shared<GrpcChannel>(std::move(channel), std::move(options));
}

GrpcChannel::GrpcChannel(std::shared_ptr<grpc::Channel> channel,
                         ChannelOptions options)
    : Channel(std::move(options)),
      channel_(std::move(channel)),
      stub_(channel_),
      oneways_(std::make_shared<OnewayTracker>()) {}

GrpcChannel::~GrpcChannel() {
  // Oneway calls end by their deadline at the latest (gRPC enforces it);
  // wait for them so that none outlives the channel unnoticed. The margin
  // covers gRPC's timer granularity.
  std::unique_lock<std::mutex> lock(oneways_->mu);
  absl::Time limit = oneways_->latest_deadline + absl::Seconds(2);
  while (oneways_->in_flight > 0 && absl::Now() < limit) {
    oneways_->cv.wait_until(lock, absl::ToChronoTime(limit));
  }
  if (oneways_->in_flight > 0) {
    fprintf(stderr, "lpc grpc: %d oneway call(s) still in flight past their "
                    "deadline at channel destruction\n",
            oneways_->in_flight);
  }
}

void GrpcChannel::StartCall(const InterfaceDescriptor& iface,
                            const MethodDescriptor& method, CallContext* ctx,
                            std::string request, ResponseCallback done) {
  absl::Status s = PrepareCall(ctx, request.size());
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  auto call = std::make_shared<ClientCall>();
  s = SetUpContext(iface, *ctx, &call->grpc_ctx);
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  call->request = ToByteBuffer(std::move(request));
  call->ctx = ctx;
  call->done = std::move(done);
  // gRPC remembers a cancel that comes before the call starts, so the
  // callback may be registered first.
  std::weak_ptr<ClientCall> weak = call;
  call->cancel_handle = ctx->AddCancelCallback([weak] {
    if (std::shared_ptr<ClientCall> c = weak.lock()) c->grpc_ctx.TryCancel();
  });
  ClientCall* raw = call.get();
  stub_.UnaryCall(&raw->grpc_ctx, iface.MethodPath(method), grpc::StubOptions(),
                  &raw->request, &raw->response,
                  [call = std::move(call)](grpc::Status status) {
                    Complete(*call, status);
                  });
}

absl::Status GrpcChannel::SendOneway(const InterfaceDescriptor& iface,
                                     const MethodDescriptor& method,
                                     CallContext* ctx, std::string request) {
  absl::Status s = PrepareCall(ctx, request.size());
  if (!s.ok()) return s;
  struct OnewayCall {
    grpc::ClientContext grpc_ctx;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto call = std::make_shared<OnewayCall>();
  s = SetUpContext(iface, *ctx, &call->grpc_ctx);
  if (!s.ok()) return s;
  call->request = ToByteBuffer(std::move(request));
  {
    std::lock_guard<std::mutex> lock(oneways_->mu);
    ++oneways_->in_flight;
    oneways_->latest_deadline =
        std::max(oneways_->latest_deadline, ctx->deadline());
  }
  OnewayCall* raw = call.get();
  stub_.UnaryCall(&raw->grpc_ctx, iface.MethodPath(method), grpc::StubOptions(),
                  &raw->request, &raw->response,
                  [call = std::move(call), tracker = oneways_](grpc::Status) {
                    std::lock_guard<std::mutex> lock(tracker->mu);
                    --tracker->in_flight;
                    tracker->cv.notify_all();
                  });
  return absl::OkStatus();
}

void RegisterGrpcTransport() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterChannelFactory(
        "grpc",
        [](std::string_view address, const ChannelArgs& args)
            -> absl::StatusOr<std::shared_ptr<Channel>> {
          static const GrpcChannelOptions kDefaults;
          const auto* grpc_options =
              static_cast<const GrpcChannelOptions*>(args.transport_options);
          absl::StatusOr<std::shared_ptr<GrpcChannel>> channel =
              GrpcChannel::Create(address, args.common,
                                  grpc_options ? *grpc_options : kDefaults);
          if (!channel.ok()) return channel.status();
          return std::shared_ptr<Channel>(*std::move(channel));
        });
  });
}

}  // namespace lpc
