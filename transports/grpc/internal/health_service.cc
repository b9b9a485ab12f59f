// See health_service.h.
#include "transports/grpc/internal/health_service.h"

#include <atomic>
#include <utility>

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>

#include "absl/strings/str_cat.h"

namespace lpc::grpc_transport {

namespace {

using ::lpc::internal::grpc_health::HealthCheckRequest;
using ::lpc::internal::grpc_health::HealthCheckResponse;

constexpr int kCheck = 0;
constexpr int kWatch = 1;

}  // namespace

// One Check call: answered on the thread that takes it.
class HealthService::CheckCall final {
 public:
  explicit CheckCall(HealthService* service) : service_(service) {}

  void Request(grpc::ServerCompletionQueue* cq) {
    HandToQueue(&arrived_);
    service_->RequestAsyncUnary(kCheck, &ctx_, &request_, &responder_, cq, cq,
                                static_cast<CqEvent*>(&arrived_));
    Release();  // See GenericCall::Request.
  }

 private:
  ~CheckCall() = default;

  void OnArrived(bool ok) {
    if (!ok) {  // The server is shutting down: no call, no other event.
      Release();
      return;
    }
    pending_.fetch_add(1, std::memory_order_relaxed);  // The finished event.
    service_->RequestCheck();
    Status status;
    {
      MutexLock lock(&service_->mu_);
      status = service_->StatusOf(request_.service());
    }
    HandToQueue(&finished_);
    if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
      responder_.FinishWithError(
          grpc::Status(grpc::StatusCode::NOT_FOUND, "service name unknown"),
          static_cast<CqEvent*>(&finished_));
    } else {
      response_.set_status(status);
      responder_.Finish(response_, grpc::Status::OK,
                        static_cast<CqEvent*>(&finished_));
    }
    Release();
  }
  void OnFinished(bool) { Release(); }
  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  HealthService* const service_;
  grpc::ServerContext ctx_;
  HealthCheckRequest request_;
  HealthCheckResponse response_;
  grpc::ServerAsyncResponseWriter<HealthCheckResponse> responder_{&ctx_};
  // Request() until it returns, the arrival, the finished event.
  std::atomic<int> pending_{2};
  CqMemberEvent<CheckCall> arrived_{this, &CheckCall::OnArrived};
  CqMemberEvent<CheckCall> finished_{this, &CheckCall::OnFinished};
};

// One Watch call. Its state is guarded by the service's mu_; its events
// (arrival, a write done, the finish done, the call done) come on any
// poller thread, and SetNotServing/StopWatches act on it from the
// transport's Shutdown.
class HealthService::WatchCall final {
 public:
  explicit WatchCall(HealthService* service) : service_(service) {}

  void Request(grpc::ServerCompletionQueue* cq) {
    HandToQueue(&done_event_);
    ctx_.AsyncNotifyWhenDone(static_cast<CqEvent*>(&done_event_));
    HandToQueue(&arrived_);
    service_->RequestAsyncServerStreaming(kWatch, &ctx_, &request_, &writer_,
                                          cq, cq,
                                          static_cast<CqEvent*>(&arrived_));
    Release();  // See GenericCall::Request.
  }

  // Sends the current status if it is not the last one sent and nothing is
  // in flight.
  void UpdateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(service_->mu_) {
    if (done_ || writing_ || finishing_) return;
    const Status status = service_->StatusOf(request_.service());
    if (status == sent_) return;
    sent_ = status;
    writing_ = true;
    pending_.fetch_add(1, std::memory_order_relaxed);  // The written event.
    out_.set_status(status);
    HandToQueue(&written_);
    writer_.Write(out_, static_cast<CqEvent*>(&written_));
  }

  // Ends the stream with UNAVAILABLE, without waiting for the client to
  // read. With a write in flight, OnWritten does it once gRPC has taken
  // the write (a status is small, so that waits for flow control only when
  // the client has stopped reading for long; the server's shutdown
  // deadline then cancels the call).
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(service_->mu_) {
    if (done_ || finishing_ || writing_) return;
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "server is shutting down"));
  }

 private:
  ~WatchCall() = default;

  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(service_->mu_) {
    finishing_ = true;
    pending_.fetch_add(1, std::memory_order_relaxed);  // The finished event.
    HandToQueue(&finished_);
    writer_.Finish(status, static_cast<CqEvent*>(&finished_));
  }

  void OnArrived(bool ok) {
    if (!ok) {  // The server is shutting down: no call, no other event.
      Release();
      return;
    }
    pending_.fetch_add(1, std::memory_order_relaxed);  // The done event.
    service_->RequestWatch();
    {
      MutexLock lock(&service_->mu_);
      // The done event may have come first (the client cancelled at once).
      if (!done_ && service_->watches_.size() >= service_->max_watches_) {
        // Never in watches_: nothing else acts on it.
        FinishLocked(grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("too many health watches open (",
                         service_->max_watches_, ")")));
      } else if (!done_) {
        service_->watches_.insert(this);
        if (service_->stopped_) {
          StopLocked();
        } else {
          UpdateLocked();
        }
      }
    }
    Release();
  }

  void OnWritten(bool ok) {
    {
      MutexLock lock(&service_->mu_);
      writing_ = false;
      if (!ok) {
        // The call ended (cancelled, or the connection broke); its done
        // event follows.
        done_ = true;
      } else if (service_->stopped_) {
        StopLocked();
      } else {
        UpdateLocked();
      }
    }
    Release();
  }

  void OnFinished(bool) { Release(); }

  void OnDone(bool) {
    {
      MutexLock lock(&service_->mu_);
      done_ = true;
      service_->watches_.erase(this);
    }
    Release();
  }

  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  HealthService* const service_;
  grpc::ServerContext ctx_;
  HealthCheckRequest request_;
  HealthCheckResponse out_;  // The message of the write in flight.
  grpc::ServerAsyncWriter<HealthCheckResponse> writer_{&ctx_};
  // Request() until it returns, the arrival, and each event handed to
  // gRPC (done, each write, the finish). The last one deletes it.
  std::atomic<int> pending_{2};
  // No status sent yet: UNKNOWN is never a status of the table.
  Status sent_ ABSL_GUARDED_BY(service_->mu_) = HealthCheckResponse::UNKNOWN;
  bool writing_ ABSL_GUARDED_BY(service_->mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(service_->mu_) = false;
  bool done_ ABSL_GUARDED_BY(service_->mu_) = false;  // The call ended.
  CqMemberEvent<WatchCall> arrived_{this, &WatchCall::OnArrived};
  CqMemberEvent<WatchCall> written_{this, &WatchCall::OnWritten};
  CqMemberEvent<WatchCall> finished_{this, &WatchCall::OnFinished};
  CqMemberEvent<WatchCall> done_event_{this, &WatchCall::OnDone};
};

HealthService::HealthService(const std::vector<std::string>& services,
                             size_t max_watches, RequestGate* requests)
    : names_(services.begin(), services.end()),
      max_watches_(max_watches),
      requests_(requests) {
  // gRPC keeps the names as C strings: literals.
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC,
      nullptr));
  MarkMethodAsync(kCheck);
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/grpc.health.v1.Health/Watch",
      grpc::internal::RpcMethod::SERVER_STREAMING, nullptr));
  MarkMethodAsync(kWatch);
}

void HealthService::Start(grpc::ServerCompletionQueue* cq) {
  cq_ = cq;
  RequestCheck();
  RequestWatch();
}

void HealthService::RequestCheck() {
  requests_->Run([this] { (new CheckCall(this))->Request(cq_); });
}

void HealthService::RequestWatch() {
  requests_->Run([this] { (new WatchCall(this))->Request(cq_); });
}

HealthService::Status HealthService::StatusOf(
    const std::string& service) const {
  if (!service.empty() && !names_.contains(service)) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return serving_ ? HealthCheckResponse::SERVING
                  : HealthCheckResponse::NOT_SERVING;
}

// Each watch's service_ is this service, so mu_ is the lock its *Locked
// methods require; clang's analysis cannot tell watch->service_->mu_ from
// mu_, hence the two exemptions.
void HealthService::SetNotServing() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&mu_);
  serving_ = false;
  for (WatchCall* watch : watches_) watch->UpdateLocked();
}

void HealthService::StopWatches() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&mu_);
  stopped_ = true;
  for (WatchCall* watch : watches_) watch->StopLocked();
}

}  // namespace lpc::grpc_transport
