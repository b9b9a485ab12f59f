// Server dispatch with interceptors: the unary path (DispatchBound) and the
// call-model path (StartCall, whose ServerStream is wrapped so that the
// interceptors see each message and the final status). Servers without
// interceptors never come here.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "runtime/channel.h"
#include "runtime/interceptor.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/server.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;
namespace {

using Interceptors = std::vector<std::shared_ptr<ServerInterceptor>>;

// The status the client gets: a handler's OK after the call was cancelled
// or its deadline passed does not reach it.
absl::Status Reported(const CallContext& ctx, const absl::Status& status) {
  if (status.ok() && ctx.IsCancelled()) return StatusForEndedCall(ctx);
  return status;
}

// Runs OnStart in order until one rejects; returns how many ran (the
// rejecting one included) and sets *status.
size_t RunStarts(const Interceptors& interceptors, const InterceptedCall& call,
                 CallContext& ctx, absl::Status* status) {
  size_t started = 0;
  while (started < interceptors.size()) {
    *status = interceptors[started++]->OnStart(call, ctx);
    if (!status->ok()) break;
  }
  return started;
}

void RunFinishes(const Interceptors& interceptors, size_t started,
                 const InterceptedCall& call, CallContext& ctx,
                 const absl::Status& status, const CallStats& stats) {
  for (size_t i = started; i-- > 0;) {
    interceptors[i]->OnFinish(call, ctx, status, stats);
  }
}

void RunMessages(const Interceptors& interceptors, const InterceptedCall& call,
                 CallContext& ctx, MessageDirection direction,
                 std::string_view message) {
  for (const auto& i : interceptors) i->OnMessage(call, ctx, direction, message);
}

// The stream a handler gets when the server has interceptors: it counts
// and shows every message and reports the first Finish. Dropped without a
// Finish (which the runtime's call handles never do), it finishes the call
// with INTERNAL, as the contract of Dispatcher::StartCall requires.
class InterceptedServerStream final
    : public ServerStream,
      public std::enable_shared_from_this<InterceptedServerStream> {
 public:
  InterceptedServerStream(std::shared_ptr<ServerStream> inner,
                          const Interceptors* interceptors, InterceptedCall call)
      : inner_(std::move(inner)), interceptors_(interceptors), call_(call) {}

  ~InterceptedServerStream() override {
    if (!finished_.load(std::memory_order_acquire)) {
      Finish(absl::InternalError("handler dropped the call"));
    }
  }

  CallContext& context() override { return inner_->context(); }

  void Read(ReadCallback done) override {
    inner_->Read([self = shared_from_this(), done = std::move(done)](
                     absl::StatusOr<std::optional<std::string>> r) {
      if (r.ok() && r->has_value()) {
        self->request_messages_.fetch_add(1, std::memory_order_relaxed);
        self->request_bytes_.fetch_add((*r)->size(), std::memory_order_relaxed);
        RunMessages(*self->interceptors_, self->call_, self->context(),
                    MessageDirection::kClientToServer, **r);
      }
      done(std::move(r));
    });
  }

  void Write(std::string message, WriteCallback done) override {
    response_messages_.fetch_add(1, std::memory_order_relaxed);
    response_bytes_.fetch_add(message.size(), std::memory_order_relaxed);
    RunMessages(*interceptors_, call_, context(),
                MessageDirection::kServerToClient, message);
    inner_->Write(std::move(message), std::move(done));
  }

  void Finish(absl::Status status) override {
    if (!finished_.exchange(true, std::memory_order_acq_rel)) {
      CallStats stats;
      stats.duration = absl::Now() - call_.start;
      stats.request_messages = request_messages_.load();
      stats.request_bytes = request_bytes_.load();
      stats.response_messages = response_messages_.load();
      stats.response_bytes = response_bytes_.load();
      RunFinishes(*interceptors_, interceptors_->size(), call_, context(),
                  Reported(context(), status), stats);
    }
    inner_->Finish(std::move(status));
  }

 private:
  const std::shared_ptr<ServerStream> inner_;
  const Interceptors* const interceptors_;  // The server's; outlives calls.
  const InterceptedCall call_;
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> request_messages_{0};
  std::atomic<uint64_t> request_bytes_{0};
  std::atomic<uint64_t> response_messages_{0};
  std::atomic<uint64_t> response_bytes_{0};
};

}  // namespace

absl::Status Server::DispatchIntercepted(const BoundInterface& iface,
                                         const BoundInterface::Method& method,
                                         CallContext& ctx,
                                         std::string_view request,
                                         std::string* response) {
  const InterceptedCall call{iface.descriptor, method.descriptor, method.path,
                             absl::Now()};
  if (ctx.method_path().empty())
    CallContextAccess::SetMethodPathRef(ctx, &method.path);
  absl::Status status;
  const size_t started = RunStarts(interceptors_, call, ctx, &status);
  CallStats stats;
  stats.request_messages = 1;
  stats.request_bytes = request.size();
  if (status.ok()) {
    RunMessages(interceptors_, call, ctx, MessageDirection::kClientToServer,
                request);
    status = RunBound(iface, method, ctx, request, response);
    if (status.ok() && !method.descriptor->oneway) {
      stats.response_messages = 1;
      stats.response_bytes = response->size();
      RunMessages(interceptors_, call, ctx, MessageDirection::kServerToClient,
                  *response);
    }
  } else {
    calls_.fetch_add(1, std::memory_order_relaxed);
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
  stats.duration = absl::Now() - call.start;
  RunFinishes(interceptors_, started, call, ctx, Reported(ctx, status), stats);
  return status;
}

void Server::StartCallIntercepted(const BoundInterface& iface,
                                  const BoundInterface::Method& method,
                                  std::shared_ptr<ServerStream> call) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  CallContext& ctx = call->context();
  if (ctx.method_path().empty())
    CallContextAccess::SetMethodPathRef(ctx, &method.path);
  const InterceptedCall info{iface.descriptor, method.descriptor, method.path,
                             absl::Now()};
  absl::Status status;
  const size_t started = RunStarts(interceptors_, info, ctx, &status);
  if (!status.ok()) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    CallStats stats;
    stats.duration = absl::Now() - info.start;
    RunFinishes(interceptors_, started, info, ctx, status, stats);
    call->Finish(std::move(status));
    return;
  }
  services_[iface.service_index]->StartCall(
      method.descriptor->id, std::make_shared<InterceptedServerStream>(
                                 std::move(call), &interceptors_, info));
}

}  // namespace lpc
