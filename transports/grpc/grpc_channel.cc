// GrpcChannel: lpc calls as generic unary gRPC calls, and the "grpc" scheme.
#include "transports/grpc/grpc_channel.h"

#include <grpc/grpc.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/target.h"
#include "runtime/handles.h"
#include "transports/grpc/internal/client_call.h"
#include "transports/grpc/internal/leases.h"
#include "transports/grpc/internal/client_stream.h"
#include "transports/grpc/internal/tls.h"
#include "transports/grpc/mapping.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;

using grpc_transport::CallbackScope;
using grpc_transport::CallToken;
using grpc_transport::CopyResponseMetadata;
using grpc_transport::FromByteBuffer;
using grpc_transport::FromGrpcStatus;
using grpc_transport::ReceiveByteBuffer;
using grpc_transport::SetUpContext;
using grpc_transport::ToByteBuffer;
using grpc_transport::WriteToByteBuffer;

namespace {

int ClampToInt(size_t n) {
  return static_cast<int>(std::min<size_t>(n, INT_MAX));
}

int DurationToMillis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d),
                                            INT_MAX));
}

// A duration option: zero (gRPC's default) or from `min` to INT_MAX ms.
absl::Status CheckDuration(const char* name, absl::Duration d,
                           absl::Duration min) {
  if (d == absl::ZeroDuration()) return absl::OkStatus();
  if (d < min || d > absl::Milliseconds(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gRPC channel option ", name, " = ", absl::FormatDuration(d),
        " is out of range; use zero for gRPC's default or ",
        absl::FormatDuration(min), " to ", INT_MAX, "ms"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const GrpcChannelOptions& o) {
  if (!o.lb_policy.empty() && o.lb_policy != "pick_first" &&
      o.lb_policy != "round_robin") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown gRPC load-balancing policy '", o.lb_policy,
                     "'; expected pick_first or round_robin"));
  }
  // gRPC raises reconnect settings below 100 ms to 100 ms silently.
  const absl::Duration floor = absl::Milliseconds(100);
  const struct {
    const char* name;
    absl::Duration value;
    absl::Duration min;
  } durations[] = {
      {"keepalive_time", o.keepalive_time, absl::Milliseconds(1)},
      {"keepalive_timeout", o.keepalive_timeout, absl::Milliseconds(1)},
      {"reconnect_initial_backoff", o.reconnect_initial_backoff, floor},
      {"reconnect_max_backoff", o.reconnect_max_backoff, floor},
      {"min_connect_timeout", o.min_connect_timeout, floor},
  };
  for (const auto& d : durations) {
    absl::Status s = CheckDuration(d.name, d.value, d.min);
    if (!s.ok()) return s;
  }
  if (o.reconnect_initial_backoff > absl::ZeroDuration() &&
      o.reconnect_max_backoff > absl::ZeroDuration() &&
      o.reconnect_max_backoff < o.reconnect_initial_backoff) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gRPC channel option reconnect_max_backoff = ",
        absl::FormatDuration(o.reconnect_max_backoff),
        " is less than reconnect_initial_backoff = ",
        absl::FormatDuration(o.reconnect_initial_backoff)));
  }
  return absl::OkStatus();
}

// Releases gRPC channels that must not be released where their GrpcChannel
// died: on a gRPC callback thread (gRPC 1.51's callback queue would join
// its own thread), or while calls still hold the channel. Holds each one
// until its calls are gone, so that the last reference drops here.
// Process-wide and never destroyed, like gRPC's own globals.
class ChannelReaper {
 public:
  static ChannelReaper& Get() {
    static ChannelReaper* reaper = new ChannelReaper;
    return *reaper;
  }

  void Add(std::shared_ptr<grpc::Channel> channel,
           std::shared_ptr<GrpcChannel::CallTracker> tracker) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back({std::move(channel), std::move(tracker)});
    cv_.notify_one();
  }

 private:
  struct Item {
    std::shared_ptr<grpc::Channel> channel;
    std::shared_ptr<GrpcChannel::CallTracker> tracker;
  };

  ChannelReaper() { std::thread([this] { Loop(); }).detach(); }

  void Loop() {
    while (true) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1),
                     [&] { return !items_.empty(); });
        if (items_.empty()) continue;
        item = std::move(items_.front());
        items_.pop_front();
      }
      {
        GrpcChannel::CallTracker& t = *item.tracker;
        std::unique_lock<std::mutex> lock(t.mu);
        absl::Time limit = std::max(t.latest_deadline, absl::Now()) +
                           absl::Seconds(10);
        while (t.in_flight > 0 && absl::Now() < limit) {
          t.cv.wait_until(lock, absl::ToChronoTime(limit));
        }
      }
      item.channel.reset();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;  // Guarded by mu_.
};

// One call in flight. Shared by the completion callback (which owns it) and
// the context's cancel callback (which only borrows it while it exists).
struct ClientCall {
  ClientCall(std::shared_ptr<GrpcChannel::CallTracker> tracker,
             absl::Time deadline)
      : token(std::move(tracker), deadline) {}

  CallToken token;  // First: destroyed last.
  grpc::ClientContext grpc_ctx;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  CallContext* ctx = nullptr;  // Valid until `done` runs.
  ResponseCallback done;
  uint64_t cancel_handle = 0;
  size_t max_message_size = 0;  // For the reply.
  GrpcChannel::CallTracker* tracker = nullptr;  // Kept alive by `token`.
};

// A reply that says the channel's lease holds contexts: keep renewing it.
void KeepLeaseIfAsked(GrpcChannel::CallTracker& tracker,
                      const grpc::ClientContext& grpc_ctx) {
  const auto& trailing = grpc_ctx.GetServerTrailingMetadata();
  auto it = trailing.find(grpc_transport::kLeaseTimeoutKey);
  if (it == trailing.end() || tracker.kept.load(std::memory_order_relaxed)) {
    return;
  }
  int64_t ms = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()),
                        &ms) ||
      ms <= 0) {
    return;
  }
  if (tracker.kept.exchange(true)) return;
  grpc_transport::LeaseKeeper::Get().Keep(tracker.channel, tracker.lease,
                                          absl::Milliseconds(ms) / 3);
}

// The caller's answer once gRPC is done with a call (the cancel callback
// already removed): response metadata copied into `ctx`, the lease kept if
// the reply asks, then the status or the reply's bytes. Shared by Call
// (the calling thread) and StartCall (gRPC's callback thread).
// ReplyStatus is the same up to the reply's bytes: OK when `response`
// holds the reply.
absl::Status ReplyStatus(CallContext* ctx, const grpc::ClientContext& grpc_ctx,
                         GrpcChannel::CallTracker* tracker,
                         const grpc::Status& grpc_status,
                         const grpc::ByteBuffer& response, size_t max_size) {
  // Both are empty when the call failed before reaching the server.
  CopyResponseMetadata(grpc_ctx.GetServerInitialMetadata(),
                       &ctx->response_metadata());
  CopyResponseMetadata(grpc_ctx.GetServerTrailingMetadata(),
                       &ctx->response_metadata());
  if (tracker != nullptr) KeepLeaseIfAsked(*tracker, grpc_ctx);
  // Once the caller cancelled or its deadline passed, that is the answer,
  // whatever the server (which saw the same) replied meanwhile: a reply that
  // loses the race against the deadline is not delivered, as on every
  // transport.
  if (ctx->WasCancelledExplicitly() || absl::Now() >= ctx->deadline()) {
    return StatusForEndedCall(*ctx);
  }
  if (!grpc_status.ok()) return FromGrpcStatus(grpc_status);
  if (response.Length() > max_size) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "reply of ", response.Length(),
        " bytes exceeds the maximum message size of ", max_size, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Reply(CallContext* ctx,
                                  const grpc::ClientContext& grpc_ctx,
                                  GrpcChannel::CallTracker* tracker,
                                  const grpc::Status& grpc_status,
                                  const grpc::ByteBuffer& response,
                                  size_t max_size) {
  absl::Status s =
      ReplyStatus(ctx, grpc_ctx, tracker, grpc_status, response, max_size);
  if (!s.ok()) return s;
  std::string bytes;
  s = FromByteBuffer(response, &bytes);
  if (!s.ok()) return s;
  return bytes;
}

void Complete(ClientCall& call, const grpc::Status& grpc_status) {
  call.ctx->RemoveCancelCallback(call.cancel_handle);
  ResponseCallback done = std::move(call.done);
  done(Reply(call.ctx, call.grpc_ctx, call.tracker, grpc_status, call.response,
             call.max_message_size));
}

}  // namespace

absl::StatusOr<std::shared_ptr<GrpcChannel>> GrpcChannel::Create(
    std::string_view grpc_target, ChannelOptions options,
    const GrpcChannelOptions& grpc_options) {
  if (grpc_target.empty()) {
    return absl::InvalidArgumentError("empty gRPC target");
  }
  absl::Status valid = CheckOptions(grpc_options);
  if (!valid.ok()) return valid;
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc_options.credentials;
  if (credentials == nullptr &&
      (!grpc_options.tls_root_certs_path.empty() ||
       !grpc_options.tls_cert_chain_path.empty() ||
       !grpc_options.tls_private_key_path.empty())) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        grpc_transport::MakeChannelCredentials(
            {grpc_options.tls_root_certs_path, grpc_options.tls_cert_chain_path,
             grpc_options.tls_private_key_path});
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(grpc_options.grpc_max_receive_message_size);
  args.SetMaxSendMessageSize(ClampToInt(options.max_message_size));
  if (!grpc_options.lb_policy.empty()) {
    args.SetServiceConfigJSON(absl::StrCat(
        "{\"loadBalancingConfig\":[{\"", grpc_options.lb_policy, "\":{}}]}"));
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
  const struct {
    const char* arg;
    absl::Duration value;
  } backoff[] = {
      {GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
       grpc_options.reconnect_initial_backoff},
      {GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, grpc_options.reconnect_max_backoff},
      // gRPC 1.51 reads this argument as the minimum connect timeout.
      {GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, grpc_options.min_connect_timeout},
  };
  for (const auto& b : backoff) {
    if (b.value > absl::ZeroDuration()) {
      args.SetInt(b.arg, DurationToMillis(b.value));
    }
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
      tracker_(std::make_shared<CallTracker>()) {
  tracker_->lease = grpc_transport::NewLeaseId();
  tracker_->channel = channel_;
}

GrpcChannel::~GrpcChannel() {
  if (tracker_->kept.load()) {
    // The lease holds contexts: they run down now, not when it lapses.
    grpc_transport::LeaseKeeper::Get().Forget(tracker_->lease);
    grpc_transport::SendLeaseCall(channel_, grpc_transport::kReleasePath,
                                  tracker_->lease);
  }
  if (!grpc_transport::InGrpcCallback()) {
    // Calls end by their deadline at the latest (gRPC enforces it); the
    // margin covers gRPC's timer granularity.
    std::unique_lock<std::mutex> lock(tracker_->mu);
    absl::Time limit = tracker_->latest_deadline + absl::Seconds(2);
    while (tracker_->in_flight > 0 && absl::Now() < limit) {
      tracker_->cv.wait_until(lock, absl::ToChronoTime(limit));
    }
    if (tracker_->in_flight == 0) {
      lock.unlock();
      channel_.reset();
      return;
    }
    fprintf(stderr, "lpc grpc: %d call(s) still in flight past their "
                    "deadline at channel destruction\n",
            tracker_->in_flight);
  }
  ChannelReaper::Get().Add(std::move(channel_), tracker_);
}

void GrpcChannel::StartCall(const InterfaceDescriptor& iface,
                            const MethodDescriptor& method, CallContext* ctx,
                            std::string request, ResponseCallback done) {
  absl::Status s = method.handles
                       ? internal::HandlesNeedLocalTransport(iface, method)
                       : PrepareCall(ctx, request.size());
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  auto call = std::make_shared<ClientCall>(tracker_, ctx->deadline());
  s = SetUpContext(iface, *ctx, tracker_->lease, &call->grpc_ctx);
  if (!s.ok()) {
    done(std::move(s));
    return;
  }
  call->tracker = tracker_.get();
  call->request = ToByteBuffer(std::move(request));
  call->ctx = ctx;
  call->done = std::move(done);
  call->max_message_size = options().max_message_size;
  // gRPC remembers a cancel that comes before the call starts, so the
  // callback may be registered first.
  std::weak_ptr<ClientCall> weak = call;
  call->cancel_handle =
      CallContextAccess::AddTransportCancelCallback(*ctx, [weak] {
        if (std::shared_ptr<ClientCall> c = weak.lock())
          c->grpc_ctx.TryCancel();
      });
  ClientCall* raw = call.get();
  grpc::GenericStub(channel_).UnaryCall(
      &raw->grpc_ctx, iface.MethodPath(method), grpc::StubOptions(),
      &raw->request, &raw->response,
      [call = std::move(call)](grpc::Status status) mutable {
        CallbackScope scope;
        Complete(*call, status);
        call.reset();  // Inside the scope: this may end the GrpcChannel.
      });
}

absl::StatusOr<std::string> GrpcChannel::Call(const InterfaceDescriptor& iface,
                                              const MethodDescriptor& method,
                                              CallContext* ctx,
                                              std::string request) {
  absl::Status s = method.handles
                       ? internal::HandlesNeedLocalTransport(iface, method)
                       : PrepareCall(ctx, request.size());
  if (!s.ok()) return s;
  const grpc::ByteBuffer request_buffer = ToByteBuffer(std::move(request));
  grpc::ByteBuffer response;
  s = Exchange(iface, method, ctx, request_buffer, &response);
  if (!s.ok()) return s;
  std::string bytes;
  s = FromByteBuffer(response, &bytes);
  if (!s.ok()) return s;
  return bytes;
}

absl::Status GrpcChannel::CallWith(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   const MessageWriter& request,
                                   ReplyDecoder decode) {
  absl::Status s =
      method.handles
          ? internal::HandlesNeedLocalTransport(iface, method)
          : PrepareCall(ctx, request.buffer() != nullptr
                                 ? SerializedSize(request)
                                 : request.size());
  if (!s.ok()) return s;
  const grpc::ByteBuffer request_buffer = WriteToByteBuffer(request);
  grpc::ByteBuffer response;
  s = Exchange(iface, method, ctx, request_buffer, &response);
  if (!s.ok()) return s;
  grpc::Slice slice;  // Holds the reply's bytes while `decode` runs.
  ReceivedMessage reply;
  s = ReceiveByteBuffer(response, &slice, &reply);
  if (!s.ok()) return s;
  return decode(reply);
}

absl::Status GrpcChannel::Exchange(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   const grpc::ByteBuffer& request,
                                   grpc::ByteBuffer* response) {
  // The call lives on this thread's stack: `this` (and with it the gRPC
  // channel) outlives it, so it needs no CallToken.
  grpc::ClientContext grpc_ctx;
  absl::Status s = SetUpContext(iface, *ctx, tracker_->lease, &grpc_ctx);
  if (!s.ok()) return s;
  // RemoveCancelCallback waits for a cancel running on another thread, so
  // the callback may point at the stack. A cancel that comes before gRPC
  // creates the call is remembered by the ClientContext.
  const uint64_t cancel_handle = CallContextAccess::AddTransportCancelCallback(
      *ctx, [&grpc_ctx] { grpc_ctx.TryCancel(); });
  const std::string path = iface.MethodPath(method);
  // What a protoc-generated synchronous stub does: the calling thread
  // waits on a completion queue of its own, driving gRPC's I/O itself.
  const grpc::Status status = grpc::internal::BlockingUnaryCall(
      channel_.get(),
      grpc::internal::RpcMethod(path.c_str(),
                                grpc::internal::RpcMethod::NORMAL_RPC),
      &grpc_ctx, request, response);
  ctx->RemoveCancelCallback(cancel_handle);
  return ReplyStatus(ctx, grpc_ctx, tracker_.get(), status, *response,
                     options().max_message_size);
}

absl::Status GrpcChannel::SendOneway(const InterfaceDescriptor& iface,
                                     const MethodDescriptor& method,
                                     CallContext* ctx, std::string request) {
  if (method.handles) return internal::HandlesNeedLocalTransport(iface, method);
  absl::Status s = PrepareCall(ctx, request.size());
  if (!s.ok()) return s;
  struct OnewayCall {
    OnewayCall(std::shared_ptr<CallTracker> tracker, absl::Time deadline)
        : token(std::move(tracker), deadline) {}
    CallToken token;  // First: destroyed last.
    grpc::ClientContext grpc_ctx;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto call = std::make_shared<OnewayCall>(tracker_, ctx->deadline());
  s = SetUpContext(iface, *ctx, tracker_->lease, &call->grpc_ctx);
  if (!s.ok()) return s;
  call->request = ToByteBuffer(std::move(request));
  OnewayCall* raw = call.get();
  grpc::GenericStub(channel_).UnaryCall(
      &raw->grpc_ctx, iface.MethodPath(method), grpc::StubOptions(),
      &raw->request, &raw->response,
      [call = std::move(call)](grpc::Status) mutable {
        CallbackScope scope;
        call.reset();
      });
  return absl::OkStatus();
}

std::shared_ptr<ClientStream> GrpcChannel::OpenStream(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx) {
  absl::Status s = PrepareCall(ctx, 0);
  if (!s.ok()) return MakeEndedClientStream(ctx, std::move(s));
  return grpc_transport::OpenGrpcStream(channel_, tracker_, options(), iface,
                                        method, ctx);
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
