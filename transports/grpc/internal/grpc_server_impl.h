// GrpcServerTransport::Impl, shared by grpc_server.cc (start, build and
// shutdown) and internal/grpc_server_calls.cc (the life of a call, which
// grpc_server.cc describes). Private to //transports/grpc:grpc.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_GRPC_SERVER_IMPL_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_GRPC_SERVER_IMPL_H_

#include <grpc/grpc.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_callback.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/handles.h"
#include "runtime/channel.h"
#include "runtime/context_handle.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/internal/handler_pool.h"
#include "runtime/internal/serving_thread.h"
#include "transports/grpc/internal/cq_pollers.h"
#include "transports/grpc/internal/generic_call.h"
#include "transports/grpc/internal/health_service.h"
#include "transports/grpc/internal/leases.h"
#include "transports/grpc/internal/queued_call.h"
#include "transports/grpc/internal/server_call.h"
#include "transports/grpc/internal/server_parts.h"
#include "transports/grpc/internal/tls.h"
#include "transports/grpc/mapping.h"
#include "transports/grpc/grpc_server.h"

namespace lpc {

class GrpcServerTransport::Impl final
    : public grpc::CallbackGenericService,
      public grpc_transport::CallOwner,
      public grpc_transport::QueuedCall::Owner,
      public grpc_transport::GenericCall::Owner {
 public:
  using ServerCall = grpc_transport::ServerCall;

  explicit Impl(GrpcServerOptions options)
      : options_(std::move(options)),
        pool_({options_.min_workers, options_.max_workers,
               options_.max_queued_calls}) {}

  ~Impl() override {
    Shutdown(absl::Now());
    if (leases_ != nullptr) leases_->Shutdown();
  }

  absl::Status Start(Dispatcher* dispatcher);
  void Shutdown(absl::Time deadline);

  std::string target() const {
    std::lock_guard<std::mutex> lock(mu_);
    return target_;
  }
  std::vector<int> ports() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_;
  }
  void Report(TransportReport* report) const {
    // Not under mu_: the pools' own locks.
    const size_t queued =
        pool_.queued() + (pollers_ != nullptr ? pollers_->queued() : 0);
    std::lock_guard<std::mutex> lock(mu_);
    counters_.Report(calls_.size(), queued, report);
  }

  // The callback generic service's calls (a server with callback methods):
  // answered at once with AnswerGenericCall's status.
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* grpc_ctx) override;

  // A method resolved at Start.
  struct Route {
    const BoundInterface* iface = nullptr;
    const BoundInterface::Method* method = nullptr;
  };

  // The reactor of a call through gRPC's callback API to a method of one
  // of the Server's interfaces.
  grpc::ServerGenericBidiReactor* MakeReactor(
      grpc::CallbackServerContext* grpc_ctx, const Route* route);

  // Called when a call of `route` arrives: checks it, fills the handler's
  // context and registers the call.
  absl::Status OnNewCall(const std::shared_ptr<ServerCall>& call,
                         const Route* route);
  void OnRequestRead(const std::shared_ptr<ServerCall>& call, bool ok);
  void OnCallDone(const std::shared_ptr<ServerCall>& call);
  // Runs a call's handler: on this poller thread (`on_poller`, a call from
  // the completion queue) or on a worker of the handler pool. Fails the
  // call if the server is draining or too many calls wait.
  void Enqueue(const std::shared_ptr<ServerCall>& call, bool on_poller);

  // CallOwner:
  void OnAnswered() override;

  // QueuedCall::Owner:
  bool SetUpQueuedCall(grpc_transport::QueuedCall& slot) override;
  void RunQueuedCall(const std::shared_ptr<ServerCall>& call) override;
  void OnQueuedCallDone(const std::shared_ptr<ServerCall>& call,
                        bool cancelled) override;

  // GenericCall::Owner (and CreateReactor): the paths that reach the
  // generic service, which are never a method of an interface (those are
  // registered): a lease call is done at once and answered OK (or
  // INVALID_ARGUMENT for a malformed lease); anything else is UNIMPLEMENTED
  // naming the unknown interface or method (counted as refused).
  void RequestGenericCall() override;
  grpc::Status AnswerGenericCall(
      const std::string& path,
      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata)
      override;

 private:
  enum class State { kNew, kRunning, kDraining, kStopped };

  class Reactor;

  // Finishes the gRPC call once. With `with_reply`, sends the handler's
  // response metadata (as trailing metadata); on OK, `reply` (may be moved
  // from); without it only the status (the handler may still be running).
  void TryFinish(ServerCall& call, const absl::Status& status,
                 grpc::ByteBuffer* reply, bool with_reply);

  void RunCall(const std::shared_ptr<ServerCall>& call);
  void ForgetIfIdleLocked(const std::shared_ptr<ServerCall>& call);
  // Whether some call still runs a handler or has no answer yet. (A call
  // whose answer gRPC is still delivering does not delay shutdown.)
  bool HasUnansweredCallsLocked() const;

  // A call of the callback generic service, finished at once.
  class AnswerReactor;

  // Builds and starts server_ (Start's second half).
  absl::Status BuildLocked();
  // Asks gRPC for the next call of a method served on the completion queue,
  // unless the queue is shutting down.
  void RequestQueuedCall(grpc_transport::InterfaceService* service, int index,
                         const void* route);
  // Shuts cq_ down and waits until it is drained (after server_ is shut
  // down).
  void StopQueue();

  const GrpcServerOptions options_;
  // Runs handlers and starts call-model calls (never on gRPC's threads).
  internal::HandlerPool pool_;
  Dispatcher* dispatcher_ = nullptr;  // Set by Start, before any call.
  // The completion queue of the unary calls; it outlives server_, and its
  // pollers outlive neither.
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  // The Server's interfaces as gRPC services; they outlive server_.
  std::vector<std::unique_ptr<grpc_transport::InterfaceService>> services_;
  // Serves the paths no interface has on cq_, unless some interface has a
  // method on gRPC's callback API: gRPC 1.51 then serves unknown paths
  // through a callback generic service of its own, which would take them
  // from this one, so Impl itself is registered as that service. Outlives
  // server_.
  grpc::AsyncGenericService async_generic_;
  bool uses_async_generic_ = false;  // Set by Start.
  // grpc.health.v1.Health on cq_ (null without health_service); made by
  // Start, outlives server_.
  std::unique_ptr<grpc_transport::HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  // Run unary handlers where their calls arrive (made by Start).
  std::unique_ptr<grpc_transport::CqPollers> pollers_;
  // Requests for calls on cq_, closed before cq_ shuts down.
  grpc_transport::RequestGate requests_;
  // Every method of every interface by gRPC path (the addresses registered
  // calls carry). Built by Start, then read-only.
  std::unordered_map<std::string, Route> routes_;
  size_t max_message_size_ = 0;  // Set by Start.
  grpc_transport::ServerCounters counters_;
  // The context handle leases (made by Start, before any call).
  std::unique_ptr<grpc_transport::LeaseTable> leases_;

  mutable std::mutex mu_;  // Guards everything below.
  std::condition_variable idle_cv_;  // A call was answered or left calls_.
  State state_ = State::kNew;
  std::string target_;
  std::vector<int> ports_;
  // Every registered call until both its gRPC side and its handler are done.
  std::set<std::shared_ptr<ServerCall>> calls_;
};

}  // namespace lpc

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_GRPC_SERVER_IMPL_H_
