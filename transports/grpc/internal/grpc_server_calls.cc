// The life of a call on GrpcServerTransport (see grpc_server.cc): the
// callback API's reactors, the calls from the completion queue, the
// generic service's answers, admission, running the handler and finishing
// the gRPC call.
#include <grpcpp/security/auth_context.h>
#include <grpcpp/support/server_callback.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/channel.h"
#include "runtime/context_handle.h"
#include "runtime/handles.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/internal/serving_thread.h"
#include "transports/grpc/internal/grpc_server_impl.h"
#include "transports/grpc/internal/leases.h"
#include "transports/grpc/internal/tls.h"
#include "transports/grpc/mapping.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;

using grpc_transport::ReceiveByteBuffer;
using grpc_transport::FromGrpcDeadline;
using grpc_transport::IsReservedMetadataKey;
using grpc_transport::WriteToByteBuffer;
using grpc_transport::ToGrpcStatus;

namespace {

using grpc_transport::ServerCall;

std::string_view ToStringView(grpc::string_ref s) {
  return std::string_view(s.data(), s.size());
}

// A unary handler's reply, written into one gRPC slice.
class ByteBufferSink final : public ReplySink {
 public:
  explicit ByteBufferSink(grpc::ByteBuffer* out) : out_(out) {}
  absl::Status Write(const MessageWriter& reply) override {
    *out_ = WriteToByteBuffer(reply);
    return absl::OkStatus();
  }

 private:
  grpc::ByteBuffer* const out_;
};

}  // namespace

class GrpcServerTransport::Impl::Reactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  Reactor(Impl* impl, grpc::CallbackServerContext* grpc_ctx,
          const Route* route)
      : impl_(impl),
        call_(std::make_shared<ServerCall>(this, grpc_ctx, impl)) {
    absl::Status s = impl_->OnNewCall(call_, route);
    (s.ok() ? impl_->counters_.calls_started : impl_->counters_.calls_refused)
        .fetch_add(1, std::memory_order_relaxed);
    if (!s.ok()) {
      impl_->TryFinish(*call_, s, nullptr, /*with_reply=*/false);
      return;
    }
    if (call_->uses_stream && call_->method->descriptor->client_streams()) {
      // The stream reads for itself; the handler starts at once.
      stream_reads_ = true;
      call_->StartStream(impl_->dispatcher_->options().stream_window,
                         impl_->max_message_size_);
      impl_->Enqueue(call_, /*on_poller=*/false);
      return;
    }
    StartRead(&call_->request);
  }

  // The callbacks below run on gRPC's threads and may reach user code
  // (stream callbacks, cancel callbacks), which may call Server::Shutdown.
  void OnReadDone(bool ok) override {
    internal::ServingThreadScope serving;
    if (stream_reads_) {
      call_->OnStreamReadDone(ok);
    } else {
      impl_->OnRequestRead(call_, ok);
    }
  }

  void OnWriteDone(bool ok) override {
    internal::ServingThreadScope serving;
    call_->OnWriteDone(ok);
  }

  // The client cancelled, its deadline passed, or the connection broke.
  // A oneway call has already been answered; its handler keeps running.
  // At the deadline the handler's context is not cancelled but marked
  // expired: the handler and its children see a deadline.
  void OnCancel() override {
    internal::ServingThreadScope serving;
    if (call_->uses_stream) {
      call_->OnCancel();
    } else if (!call_->oneway) {
      call_->EndContext(call_->DeadlinePassed());
    }
  }

  void OnDone() override {
    internal::ServingThreadScope serving;
    impl_->OnCallDone(call_);
    delete this;
  }

 private:
  Impl* const impl_;
  const std::shared_ptr<ServerCall> call_;
  bool stream_reads_ = false;  // Set in the constructor.
};

class GrpcServerTransport::Impl::AnswerReactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  explicit AnswerReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

grpc::ServerGenericBidiReactor* GrpcServerTransport::Impl::CreateReactor(
    grpc::GenericCallbackServerContext* grpc_ctx) {
  return new AnswerReactor(
      AnswerGenericCall(grpc_ctx->method(), grpc_ctx->client_metadata()));
}

void GrpcServerTransport::Impl::RequestGenericCall() {
  requests_.Run([this] {
    (new grpc_transport::GenericCall(this))->Request(&async_generic_, cq_.get());
  });
}

grpc::Status GrpcServerTransport::Impl::AnswerGenericCall(
    const std::string& path,
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  const bool release = path == grpc_transport::kReleasePath;
  if (release || path == grpc_transport::kRenewPath) {
    auto it = metadata.find(grpc_transport::kLeaseKey);
    const std::string lease =
        it == metadata.end() ? "" : std::string(ToStringView(it->second));
    absl::Status s = grpc_transport::CheckLeaseId(lease);
    if (s.ok() && leases_ != nullptr) {
      if (release) {
        leases_->Release(lease);
      } else {
        leases_->Renew(lease);
      }
    }
    return ToGrpcStatus(s);
  }
  counters_.calls_refused.fetch_add(1, std::memory_order_relaxed);
  return ToGrpcStatus(grpc_transport::UnknownPathStatus(path, *dispatcher_));
}

grpc::ServerGenericBidiReactor* GrpcServerTransport::Impl::MakeReactor(
    grpc::CallbackServerContext* grpc_ctx, const Route* route) {
  return new Reactor(this, grpc_ctx, route);
}

bool GrpcServerTransport::Impl::SetUpQueuedCall(
    grpc_transport::QueuedCall& slot) {
  // The next call of this method may arrive while this one runs.
  RequestQueuedCall(slot.service(), slot.index(), slot.route());
  const std::shared_ptr<ServerCall>& call = slot.call();
  call->request.Swap(&slot.request());
  const Route* route = static_cast<const Route*>(slot.route());
  absl::Status s = OnNewCall(call, route);
  (s.ok() ? counters_.calls_started : counters_.calls_refused)
      .fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) {
    TryFinish(*call, s, nullptr, /*with_reply=*/false);
    return false;
  }
  return true;
}

void GrpcServerTransport::Impl::RunQueuedCall(
    const std::shared_ptr<ServerCall>& call) {
  Enqueue(call, /*on_poller=*/true);
}

void GrpcServerTransport::Impl::OnQueuedCallDone(
    const std::shared_ptr<ServerCall>& call, bool cancelled) {
  // As the Reactor's OnCancel: a oneway call has been answered already and
  // its handler keeps running; at the deadline the handler's context is
  // marked expired rather than cancelled.
  if (cancelled && !call->oneway) call->EndContext(call->DeadlinePassed());
  OnCallDone(call);
}

void GrpcServerTransport::Impl::OnAnswered() {
  { std::lock_guard<std::mutex> lock(mu_); }
  idle_cv_.notify_all();
}

absl::Status GrpcServerTransport::Impl::OnNewCall(
    const std::shared_ptr<ServerCall>& call, const Route* route) {
  grpc::ServerContextBase& g = *call->grpc_ctx();
  const InterfaceDescriptor* iface = route->iface->descriptor;
  const MethodDescriptor* method = route->method->descriptor;
  // A stock gRPC client calling a method that carries descriptors.
  if (method->handles) {
    return internal::HandlesNeedLocalTransport(*iface, *method);
  }

  const auto& client_metadata = g.client_metadata();
  absl::Status bind =
      grpc_transport::CheckBindingHeaders(client_metadata, *iface);
  if (!bind.ok()) return bind;

  call->iface = route->iface;
  call->method = route->method;
  call->oneway = method->oneway;
  // A oneway method is answered before its handler runs, so it always
  // takes the unary path.
  call->uses_stream = route->method->uses_start_call && !method->oneway;
  CallContext& ctx = call->ctx;
  call->SetDeadline(FromGrpcDeadline(g.deadline()));
  CallContextAccess::SetMethodPathRef(ctx, &route->method->path);
  for (const auto& [key, value] : client_metadata) {
    std::string_view k = ToStringView(key);
    if (IsReservedMetadataKey(k)) continue;
    ctx.metadata().emplace(std::string(k), std::string(ToStringView(value)));
  }
  PeerIdentity peer;
  peer.transport = "grpc";
  peer.address = g.peer();
  if (std::shared_ptr<const grpc::AuthContext> auth = g.auth_context()) {
    grpc_transport::FillTlsIdentity(*auth, &peer);
  }
  ctx.set_peer(std::move(peer));

  // The call's context handle lease: the client's, or a new one that the
  // reply's initial metadata hands to a client that sent none.
  std::string lease;
  auto lease_it = client_metadata.find(grpc_transport::kLeaseKey);
  if (lease_it != client_metadata.end()) {
    lease = std::string(ToStringView(lease_it->second));
    absl::Status s = grpc_transport::CheckLeaseId(lease);
    if (!s.ok()) return s;
  } else {
    lease = grpc_transport::NewLeaseId();
    g.AddInitialMetadata(grpc_transport::kLeaseKey, lease);
  }

  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRunning) {
    return absl::UnavailableError("server is shutting down");
  }
  CallContextAccess::SetContextTable(ctx, leases_->Acquire(lease));
  call->lease = std::move(lease);
  calls_.insert(call);
  return absl::OkStatus();
}

void GrpcServerTransport::Impl::OnRequestRead(
    const std::shared_ptr<ServerCall>& call, bool ok) {
  if (!ok) {
    // Cancelled, or the client half-closed without a message.
    TryFinish(*call, absl::InvalidArgumentError("the call carried no request"),
              nullptr, /*with_reply=*/false);
    return;
  }
  if (call->uses_stream) {
    call->StartStream(dispatcher_->options().stream_window, max_message_size_);
  }
  Enqueue(call, /*on_poller=*/false);
}

void GrpcServerTransport::Impl::Enqueue(
    const std::shared_ptr<ServerCall>& call, bool on_poller) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kRunning) {
      refused = absl::UnavailableError("server is shutting down");
    } else {
      call->handler_pending = true;
    }
  }
  auto task = [this, call](bool run) {
    if (run) {
      RunCall(call);
    } else {
      TryFinish(*call,
                absl::UnavailableError(
                    "server shut down before the call started"),
                nullptr, /*with_reply=*/false);
    }
    std::lock_guard<std::mutex> lock(mu_);
    call->handler_pending = false;
    ForgetIfIdleLocked(call);
    idle_cv_.notify_all();
  };
  bool run_here = false;
  grpc_transport::CqPollers::Task admitted;
  if (refused.ok() && on_poller) {
    admitted = std::move(task);
    absl::StatusOr<grpc_transport::CqPollers::Admission> a =
        pollers_->Admit(&admitted);
    if (a.ok()) {
      run_here = *a == grpc_transport::CqPollers::Admission::kRunHere;
    } else {
      refused = a.status();
    }
  } else if (refused.ok()) {
    refused = pool_.Submit(std::move(task));
    if (refused.code() == absl::StatusCode::kResourceExhausted) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("server overloaded: ", pool_.queued(),
                       " calls are waiting for a worker"));
    }
  }
  if (!refused.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->handler_pending = false;
    }
    TryFinish(*call, refused, nullptr, /*with_reply=*/false);
    return;
  }
  if (call->oneway) {
    // Fire and forget: the client learns only that the message arrived
    // (an empty reply message: one empty slice).
    grpc::Slice nothing;
    grpc::ByteBuffer empty(&nothing, 1);
    TryFinish(*call, absl::OkStatus(), &empty, /*with_reply=*/false);
  }
  if (run_here) pollers_->RunAdmitted(std::move(admitted));
}

bool GrpcServerTransport::Impl::HasUnansweredCallsLocked() const {
  for (const auto& call : calls_) {
    if (call->handler_pending || !call->finished.load()) return true;
  }
  return false;
}

void GrpcServerTransport::Impl::OnCallDone(
    const std::shared_ptr<ServerCall>& call) {
  // The lease's lapse clock starts when its last call is done.
  if (!call->lease.empty()) leases_->Done(call->lease);
  std::lock_guard<std::mutex> lock(mu_);
  call->grpc_done = true;
  ForgetIfIdleLocked(call);
}

void GrpcServerTransport::Impl::ForgetIfIdleLocked(
    const std::shared_ptr<ServerCall>& call) {
  if (call->grpc_done && !call->handler_pending) {
    if (calls_.erase(call) > 0) idle_cv_.notify_all();
  }
}

void GrpcServerTransport::Impl::TryFinish(ServerCall& call,
                                          const absl::Status& status,
                                          grpc::ByteBuffer* reply,
                                          bool with_reply) {
  if (call.uses_stream) {
    call.Abort(status);
    return;
  }
  if (call.finished.exchange(true)) return;
  if (with_reply) {
    for (const auto& [key, value] :
         grpc_transport::SendableResponseMetadata(call.ctx)) {
      call.grpc_ctx()->AddTrailingMetadata(key, value);
    }
    // The lease holds contexts: the lpc channel renews it from now on.
    const ContextTable* table = CallContextAccess::context_table(call.ctx);
    if (table != nullptr && table->size() > 0) {
      call.grpc_ctx()->AddTrailingMetadata(
          grpc_transport::kLeaseTimeoutKey,
          std::to_string(absl::ToInt64Milliseconds(leases_->timeout())));
    }
  }
  // Wake a draining Shutdown, which waits for this call's gRPC side.
  OnAnswered();
  // From here on gRPC may run OnDone and delete the reactor (and `call`)
  // at any time.
  if (call.responder() != nullptr) {
    if (status.ok() && reply != nullptr) {
      call.responder()->Finish(reply, grpc::Status::OK);
    } else {
      call.responder()->Finish(nullptr, ToGrpcStatus(status));
    }
  } else if (status.ok() && reply != nullptr) {
    call.response = std::move(*reply);
    call.reactor()->StartWriteAndFinish(&call.response, grpc::WriteOptions(),
                                        grpc::Status::OK);
  } else {
    call.reactor()->Finish(ToGrpcStatus(status));
  }
}

void GrpcServerTransport::Impl::RunCall(
    const std::shared_ptr<ServerCall>& shared) {
  ServerCall& call = *shared;
  if (!call.oneway && call.ctx.IsCancelled()) {
    // Cancelled or expired while queued: the client has its answer already.
    TryFinish(call, StatusForEndedCall(call.ctx), nullptr,
              /*with_reply=*/false);
    return;
  }
  if (call.uses_stream) {
    // Returns when the handler returns; the call may go on long after.
    dispatcher_->StartCall(*call.iface, *call.method, shared);
    return;
  }
  // The request is decoded where gRPC received it (one slice, the usual
  // case) and the reply written straight into a gRPC slice.
  grpc::Slice slice;
  ReceivedMessage request;
  absl::Status status = ReceiveByteBuffer(call.request, &slice, &request);
  grpc::ByteBuffer response;
  if (status.ok()) {
    counters_.bytes_in.fetch_add(request.bytes().size(),
                                 std::memory_order_relaxed);
    ByteBufferSink sink(&response);
    status = dispatcher_->DispatchBoundWith(*call.iface, *call.method,
                                            call.ctx, request, sink);
    counters_.bytes_out.fetch_add(response.Length(),
                                  std::memory_order_relaxed);
    if (status.ok() && !response.Valid()) {
      // No reply written: an empty message, which a unary call must carry.
      grpc::Slice nothing;
      response = grpc::ByteBuffer(&nothing, 1);
    }
  }
  request = ReceivedMessage();
  slice = grpc::Slice();
  call.request.Clear();
  if (call.oneway) {
    if (!status.ok()) {
      fprintf(stderr, "lpc grpc: oneway %s failed: %s\n",
              call.ctx.method_path().c_str(), status.ToString().c_str());
    }
    return;
  }
  status = call.AnswerFor(std::move(status));
  TryFinish(call, status, status.ok() ? &response : nullptr,
            /*with_reply=*/true);
}

}  // namespace lpc
