// GenericCall: one call that reaches GrpcServerTransport's generic service
// (gRPC's AsyncGenericService) on its completion queue: a path no
// interface has, or a lease call (/lpc.Lease/Renew, /lpc.Lease/Release).
//
// Life: Request() asks gRPC for a call. When one arrives (its metadata
// only: no message is read), the poller thread that takes it asks the
// Owner for the next one and for the answer, and finishes the call with
// that status at once. The client's messages are never read, so a client
// that streams to an unknown path gets its answer without the server
// reading the stream. gRPC then delivers the "finished" event and the
// GenericCall deletes itself. A request that gRPC fails (the server shuts
// down) deletes it at once.
//
// Thread safety: each event runs on one poller thread; nothing is shared
// but the reference count.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_GENERIC_CALL_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_GENERIC_CALL_H_

#include <atomic>
#include <map>
#include <string>

#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include "transports/grpc/internal/cq_pollers.h"

namespace lpc::grpc_transport {

class GenericCall final {
 public:
  class Owner {
   public:
    // Asks gRPC for the next generic call, unless the queue shuts down.
    virtual void RequestGenericCall() = 0;
    // The status that answers a call of `path` bearing `metadata`. Runs on
    // the poller thread that took the call; must not block.
    virtual grpc::Status AnswerGenericCall(
        const std::string& path,
        const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) = 0;

   protected:
    ~Owner() = default;
  };

  explicit GenericCall(Owner* owner) : owner_(owner) {}
  GenericCall(const GenericCall&) = delete;
  GenericCall& operator=(const GenericCall&) = delete;

  // Asks `service` for a call; the events come out of `cq`.
  void Request(grpc::AsyncGenericService* service,
               grpc::ServerCompletionQueue* cq);

 private:
  ~GenericCall() = default;
  void OnArrived(bool ok);
  void OnFinished(bool ok);
  void Release();

  Owner* const owner_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_{&ctx_};
  // What still uses the GenericCall: Request() until it returns, the
  // arrival until it returns, and the finished event. The last deletes it.
  std::atomic<int> pending_{2};
  CqMemberEvent<GenericCall> arrived_{this, &GenericCall::OnArrived};
  CqMemberEvent<GenericCall> finished_{this, &GenericCall::OnFinished};
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_GENERIC_CALL_H_
