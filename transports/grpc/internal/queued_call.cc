// See queued_call.h.
#include "transports/grpc/internal/queued_call.h"

namespace lpc::grpc_transport {

void QueuedCall::Request(grpc::ServerCompletionQueue* cq) {
  grpc_ctx_.AsyncNotifyWhenDone(static_cast<CqEvent*>(&done_));
  HandToQueue(&done_);
  HandToQueue(&arrived_);
  service_->RequestUnary(index_, &grpc_ctx_, &request_, &responder_, cq,
                         static_cast<CqEvent*>(&arrived_));
  // gRPC's inline code above may still read the QueuedCall after handing
  // the tag over; the reference counting orders that before the delete.
  Release();
}

void QueuedCall::OnArrived(bool ok) {
  if (!ok) {
    // The server is shutting down; no call came, and gRPC delivers none of
    // the other events.
    Release();
    return;
  }
  // The arrival's reference becomes Finish's; the two events get theirs.
  pending_.fetch_add(2, std::memory_order_relaxed);
  std::shared_ptr<ServerCall> made, call;
  bool done_early;
  {
    MutexLock lock(&mu_);
    call_ = std::make_shared<ServerCall>(this, &grpc_ctx_, call_owner_);
    made = call_;
    if (owner_->SetUpQueuedCall(*this)) call = call_;
    arrival_handled_ = true;
    done_early = done_early_;
  }
  // gRPC's done event came first (on another poller; the client cancelled
  // or its deadline passed at once): handled now, before the handler runs,
  // which then sees its context ended. Finish's reference keeps `this`
  // alive through it unless the call was answered already.
  if (done_early) HandleDone(made);
  if (call != nullptr) owner_->RunQueuedCall(call);  // `this` may be gone.
}
void QueuedCall::Finish(const grpc::ByteBuffer* reply,
                        const grpc::Status& status) {
  HandToQueue(&finished_);
  if (status.ok()) {
    grpc::Slice nothing;
    const grpc::ByteBuffer empty(&nothing, 1);
    responder_.Finish(reply != nullptr ? *reply : empty, status,
                      static_cast<CqEvent*>(&finished_));
  } else {
    responder_.FinishWithError(status, static_cast<CqEvent*>(&finished_));
  }
  // gRPC's inline code above still wrote to the QueuedCall after handing
  // the tag over; the reference counting orders that before the delete.
  Release();
}

void QueuedCall::OnFinished(bool) { Release(); }

void QueuedCall::OnDone(bool) {
  std::shared_ptr<ServerCall> call;
  {
    MutexLock lock(&mu_);
    if (!arrival_handled_) {
      // The done event can be taken by one poller while another has the
      // arrival and has not set the call up yet: OnArrived handles it.
      done_early_ = true;
      return;
    }
    call = call_;
  }
  HandleDone(call);
}

void QueuedCall::HandleDone(const std::shared_ptr<ServerCall>& call) {
  // IsCancelled may be asked once the done event was delivered.
  const bool cancelled = grpc_ctx_.IsCancelled();
  owner_->OnQueuedCallDone(call, cancelled);
  Release();
}

void QueuedCall::Release() {
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace lpc::grpc_transport
