// QueuedCall: one unary call of GrpcServerTransport served on its
// completion queue (gRPC's asynchronous API, raw bytes), from the request
// that asks gRPC for a call of the method until gRPC is done with it.
//
// Life: Request() asks gRPC for a call. Its arrival (with the request
// message read) makes the ServerCall and hands it to the Owner, which asks
// for the next call, sets the call up and runs the handler on the polling
// thread. The call is answered once through UnaryResponder::Finish. gRPC
// then delivers two more events: the reply sent (or failed), and "done" (answered, cancelled
// by the client, past its deadline, or the connection broke); after both,
// and after Finish returned, the QueuedCall deletes itself. A request that
// gRPC fails (the server shuts down) deletes it at once.
//
// Thread safety: the events run on any poller thread; Finish on any thread,
// once (ServerCall::finished guards it).
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_QUEUED_CALL_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_QUEUED_CALL_H_

#include <atomic>
#include <memory>

#include <grpcpp/completion_queue.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/byte_buffer.h>

#include "runtime/mutex.h"
#include "transports/grpc/internal/cq_pollers.h"
#include "transports/grpc/internal/server_call.h"
#include "transports/grpc/internal/server_parts.h"

namespace lpc::grpc_transport {

class QueuedCall final : public UnaryResponder {
 public:
  // What the transport does with the calls.
  class Owner {
   public:
    // A call arrived in `slot` (slot.call() is made, unregistered): ask for
    // the next one and register this one, or answer it. Whether its
    // handler is to run. Runs on the poller thread that took the call,
    // before gRPC's done event for it is handled; must not block.
    virtual bool SetUpQueuedCall(QueuedCall& slot) = 0;
    // Runs the handler of a call SetUpQueuedCall accepted, on the same
    // thread, after it. The slot may be gone by now.
    virtual void RunQueuedCall(const std::shared_ptr<ServerCall>& call) = 0;
    // gRPC is done with the call; `cancelled`: it ended before it was
    // answered (client cancel, deadline, broken connection).
    virtual void OnQueuedCallDone(const std::shared_ptr<ServerCall>& call,
                                  bool cancelled) = 0;

   protected:
    ~Owner() = default;
  };

  // A slot for the next call of method `index` of `service`; `route` is the
  // owner's, handed back with the call.
  QueuedCall(Owner* owner, CallOwner* call_owner, InterfaceService* service,
             int index, const void* route)
      : owner_(owner),
        call_owner_(call_owner),
        service_(service),
        index_(index),
        route_(route) {}
  QueuedCall(const QueuedCall&) = delete;
  QueuedCall& operator=(const QueuedCall&) = delete;

  // Asks gRPC for a call; the events come out of `cq`.
  void Request(grpc::ServerCompletionQueue* cq);

  InterfaceService* service() const { return service_; }
  int index() const { return index_; }
  const void* route() const { return route_; }
  // Set when the call arrived; for SetUpQueuedCall.
  const std::shared_ptr<ServerCall>& call() const { return call_; }
  // The request message, until the handler takes it.
  grpc::ByteBuffer& request() { return request_; }

  // UnaryResponder:
  void Finish(const grpc::ByteBuffer* reply,
              const grpc::Status& status) override;

 private:
  class Event final : public CqEvent {
   public:
    Event(QueuedCall* call, void (QueuedCall::*fn)(bool))
        : call_(call), fn_(fn) {}
    void OnEvent(bool ok) override { (call_->*fn_)(ok); }

   private:
    QueuedCall* const call_;
    void (QueuedCall::*const fn_)(bool);
  };

  ~QueuedCall() = default;
  void OnArrived(bool ok);
  void OnFinished(bool ok);
  void OnDone(bool ok);
  // gRPC is done with the call: tells the owner, drops the event's
  // reference.
  void HandleDone(const std::shared_ptr<ServerCall>& call);
  void Release();

  Owner* const owner_;
  CallOwner* const call_owner_;
  InterfaceService* const service_;
  const int index_;
  const void* const route_;
  grpc::ServerContext grpc_ctx_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_{&grpc_ctx_};
  // Held while the call is set up. gRPC's done event may come on another
  // thread as soon as the call arrived, even before the arrival's thread
  // takes mu_: then it leaves the done to the arrival (done_early_).
  Mutex mu_;
  std::shared_ptr<ServerCall> call_;  // Written under mu_, at arrival.
  // Under mu_: the arrival set the call up; the done event came before
  // that (on another poller thread), and the arrival is to handle it.
  bool arrival_handled_ = false;
  bool done_early_ = false;
  // What still uses the QueuedCall: Request() until it returns, and the
  // arrival; once the call arrived, Finish (until it returns; every
  // arrived call is finished once) and the two events, reply sent and done.
  // The last one deletes it.
  std::atomic<int> pending_{2};
  Event arrived_{this, &QueuedCall::OnArrived};
  Event finished_{this, &QueuedCall::OnFinished};
  Event done_{this, &QueuedCall::OnDone};
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_QUEUED_CALL_H_
