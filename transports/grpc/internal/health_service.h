// HealthService: gRPC's standard health service (grpc.health.v1.Health)
// for GrpcServerTransport, served on the transport's completion queue by
// its poller threads (gRPC's asynchronous API), so that it brings no
// callback-API service into the server. Check and Watch answer:
//
//   ""  and each name given     SERVING, NOT_SERVING after SetNotServing()
//   any other name              Check: NOT_FOUND; Watch: SERVICE_UNKNOWN
//
// Check is answered on the thread that takes the call. A Watch beyond the
// cap (max_watches) ends at once with RESOURCE_EXHAUSTED. Watch sends the
// current status at once and then each change, one write at a time (a
// client that does not read holds back only its own stream, which keeps
// only the latest status); it ends when the client cancels, or at
// StopWatches() with UNAVAILABLE, after the write in flight if there is
// one. A write that gRPC does not take (flow control, a client that has
// not read for long) is ended by the gRPC server's shutdown deadline,
// which cancels the call; nothing waits on a peer beyond that deadline.
//
// Life: the service is registered with the gRPC server and outlives it;
// Start() asks for the first calls once the pollers run; every call object
// deletes itself once gRPC delivered its last event, which it has done
// when the completion queue is drained.
//
// Thread safety: thread-safe. mu_ is a leaf lock; gRPC operations are
// started under it (the completion queue API never calls back inline).
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_HEALTH_SERVICE_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_HEALTH_SERVICE_H_

#include <set>
#include <string>
#include <vector>

#include <grpcpp/completion_queue.h>
#include <grpcpp/impl/service_type.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "runtime/mutex.h"
#include "transports/grpc/internal/cq_pollers.h"
#include "transports/grpc/internal/health.pb.h"

namespace lpc::grpc_transport {

class HealthService final : public grpc::Service {
 public:
  // `services` are the names with a status besides "" (the server); all are
  // SERVING. At most `max_watches` (>= 1) Watch calls stay open at once;
  // one more ends at once with RESOURCE_EXHAUSTED. Requests for calls go
  // through `requests`.
  HealthService(const std::vector<std::string>& services, size_t max_watches,
                RequestGate* requests);
  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  // Asks gRPC for the first Check and Watch calls, on `cq` (once the
  // server started and its pollers run).
  void Start(grpc::ServerCompletionQueue* cq) ABSL_LOCKS_EXCLUDED(mu_);
  // Every name turns NOT_SERVING; each Watch sends it.
  void SetNotServing() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every Watch, and those that arrive later, with UNAVAILABLE (see
  // above). Returns at once.
  void StopWatches() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Status =
      ::lpc::internal::grpc_health::HealthCheckResponse::ServingStatus;
  class CheckCall;
  class WatchCall;

  void RequestCheck();
  void RequestWatch();
  // The status of `service`; SERVICE_UNKNOWN for a name not served.
  Status StatusOf(const std::string& service) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::flat_hash_set<std::string> names_;
  const size_t max_watches_;
  RequestGate* const requests_;
  grpc::ServerCompletionQueue* cq_ = nullptr;  // Set by Start.

  mutable Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // StopWatches ran.
  // The Watch calls that arrived and are not done.
  std::set<WatchCall*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_HEALTH_SERVICE_H_
