// See generic_call.h.
#include "transports/grpc/internal/generic_call.h"

namespace lpc::grpc_transport {

void GenericCall::Request(grpc::AsyncGenericService* service,
                          grpc::ServerCompletionQueue* cq) {
  HandToQueue(&arrived_);
  service->RequestCall(&ctx_, &stream_, cq, cq,
                       static_cast<CqEvent*>(&arrived_));
  // gRPC's inline code above may still read the GenericCall after handing
  // the tag over; the reference counting orders that before the delete.
  Release();
}

void GenericCall::OnArrived(bool ok) {
  if (!ok) {
    // The server is shutting down; no call came, and no other event will.
    Release();
    return;
  }
  pending_.fetch_add(1, std::memory_order_relaxed);  // The finished event.
  owner_->RequestGenericCall();
  const grpc::Status status =
      owner_->AnswerGenericCall(ctx_.method(), ctx_.client_metadata());
  HandToQueue(&finished_);
  stream_.Finish(status, static_cast<CqEvent*>(&finished_));
  Release();
}

void GenericCall::OnFinished(bool) { Release(); }

void GenericCall::Release() {
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace lpc::grpc_transport
