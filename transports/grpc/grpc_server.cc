// GrpcServerTransport: gRPC's callback generic service feeding a worker pool
// that runs lpc handlers through the Dispatcher.
//
// Life of a call:
//   1. gRPC creates a Reactor (on one of gRPC's threads) for a method that
//      was resolved when the server started (Dispatcher::Bind; nothing is
//      looked up by name per call). It checks the binding headers, fills
//      the handler's CallContext, registers the call and asks for the
//      request message.
//   2. When the message arrives the call is queued for a worker. (A call
//      whose client streams is queued at once.)
//   3. A worker runs the handler: a plain unary call through
//      Dispatcher::DispatchBound, after which the worker finishes the gRPC
//      call with the reply; any other call through Dispatcher::StartCall
//      with the ServerCall as its ServerStream (internal/server_call.h),
//      which the handler finishes, from any thread, when it is done.
// Whoever flips ServerCall::finished first (the worker or handler, an early
// error, or Shutdown) finishes the gRPC call; the others leave it alone.
// gRPC calls OnDone after that, which releases the reactor.
#include "transports/grpc/grpc_server.h"

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
#include "transports/grpc/internal/leases.h"
#include "transports/grpc/internal/server_call.h"
#include "transports/grpc/internal/server_parts.h"
#include "transports/grpc/internal/tls.h"
#include "transports/grpc/mapping.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;

using grpc_transport::FromByteBuffer;
using grpc_transport::FromGrpcDeadline;
using grpc_transport::IsReservedMetadataKey;
using grpc_transport::ToByteBuffer;
using grpc_transport::ToGrpcStatus;

namespace {

using grpc_transport::ServerCall;

std::string_view ToStringView(grpc::string_ref s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace

class GrpcServerTransport::Impl final : public grpc::CallbackGenericService,
                                        public grpc_transport::CallOwner {
 public:
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
    const size_t queued = pool_.queued();  // Not under mu_: the pool's lock.
    std::lock_guard<std::mutex> lock(mu_);
    counters_.Report(calls_.size(), queued, report);
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* grpc_ctx) override;

  // A method resolved at Start.
  struct Route {
    const BoundInterface* iface = nullptr;
    const BoundInterface::Method* method = nullptr;
  };

  // Called by the reactor. `route` is null for a path no interface has.
  absl::Status OnNewCall(const std::shared_ptr<ServerCall>& call,
                         const Route* route, const std::string& path);
  void OnRequestRead(const std::shared_ptr<ServerCall>& call, bool ok);
  void OnCallDone(const std::shared_ptr<ServerCall>& call);
  // Queues a call for a worker; fails it if the server is draining or the
  // queue is full.
  void Enqueue(const std::shared_ptr<ServerCall>& call);

  // CallOwner:
  void OnAnswered() override;

 private:
  enum class State { kNew, kRunning, kDraining, kStopped };

  class Reactor;

  // Finishes the gRPC call once. With `with_reply`, sends the handler's
  // response metadata (as trailing metadata) and, on OK, `response`;
  // without it only the status (the handler may still be running).
  void TryFinish(ServerCall& call, const absl::Status& status,
                 std::string* response, bool with_reply);

  void RunCall(const std::shared_ptr<ServerCall>& call);
  void ForgetIfIdleLocked(const std::shared_ptr<ServerCall>& call);
  // Whether some call still runs a handler or has no answer yet. (A call
  // whose answer gRPC is still delivering does not delay shutdown.)
  bool HasUnansweredCallsLocked() const;

  // A call to /lpc.Lease/Renew or /lpc.Lease/Release: done at once.
  class LeaseReactor;

  // Builds and starts server_ (Start's second half).
  absl::Status BuildLocked();

  const GrpcServerOptions options_;
  // Runs handlers and starts call-model calls (never on gRPC's threads).
  internal::HandlerPool pool_;
  Dispatcher* dispatcher_ = nullptr;  // Set by Start, before any call.
  // The Server's interfaces as gRPC services; they outlive server_.
  std::vector<std::unique_ptr<grpc_transport::InterfaceService>> services_;
  std::unique_ptr<grpc::Server> server_;
  // Every method of every interface by gRPC path, for calls that reach the
  // generic service. Built by Start, then read-only.
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

// The per-call gRPC reactor. It owns a reference to its ServerCall; gRPC
// owns the reactor and calls OnDone last.
class GrpcServerTransport::Impl::Reactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  Reactor(Impl* impl, grpc::CallbackServerContext* grpc_ctx,
          const Route* route, const std::string& path)
      : impl_(impl),
        call_(std::make_shared<ServerCall>(this, grpc_ctx, impl)) {
    absl::Status s = impl_->OnNewCall(call_, route, path);
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
      impl_->Enqueue(call_);
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

class GrpcServerTransport::Impl::LeaseReactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  LeaseReactor(grpc_transport::LeaseTable* leases,
               grpc::CallbackServerContext* grpc_ctx, bool release) {
    const auto& md = grpc_ctx->client_metadata();
    auto it = md.find(grpc_transport::kLeaseKey);
    std::string lease =
        it == md.end() ? "" : std::string(ToStringView(it->second));
    absl::Status s = grpc_transport::CheckLeaseId(lease);
    if (s.ok() && leases != nullptr) {
      if (release) {
        leases->Release(lease);
      } else {
        leases->Renew(lease);
      }
    }
    Finish(ToGrpcStatus(s));
  }
  void OnDone() override { delete this; }
};

grpc::ServerGenericBidiReactor* GrpcServerTransport::Impl::CreateReactor(
    grpc::GenericCallbackServerContext* grpc_ctx) {
  const std::string& path = grpc_ctx->method();
  if (path == grpc_transport::kRenewPath ||
      path == grpc_transport::kReleasePath) {
    return new LeaseReactor(leases_.get(), grpc_ctx,
                            path == grpc_transport::kReleasePath);
  }
  auto it = routes_.find(path);
  return new Reactor(this, grpc_ctx, it == routes_.end() ? nullptr : &it->second,
                     path);
}

void GrpcServerTransport::Impl::OnAnswered() {
  { std::lock_guard<std::mutex> lock(mu_); }
  idle_cv_.notify_all();
}

absl::Status GrpcServerTransport::Impl::OnNewCall(
    const std::shared_ptr<ServerCall>& call, const Route* route,
    const std::string& path) {
  grpc::CallbackServerContext& g = *call->grpc_ctx();
  if (route == nullptr) {
    return grpc_transport::UnknownPathStatus(path, *dispatcher_);
  }
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
  Enqueue(call);
}

void GrpcServerTransport::Impl::Enqueue(
    const std::shared_ptr<ServerCall>& call) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kRunning) {
      refused = absl::UnavailableError("server is shutting down");
    } else {
      call->handler_pending = true;
    }
  }
  if (refused.ok()) {
    refused = pool_.Submit([this, call](bool run) {
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
    });
    if (!refused.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      call->handler_pending = false;
    }
    if (refused.code() == absl::StatusCode::kResourceExhausted) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("server overloaded: ", pool_.queued(),
                       " calls are waiting for a worker"));
    }
  }
  if (!refused.ok()) {
    TryFinish(*call, refused, nullptr, /*with_reply=*/false);
    return;
  }
  if (call->oneway) {
    // Fire and forget: the client learns only that the message arrived.
    std::string empty;
    TryFinish(*call, absl::OkStatus(), &empty, /*with_reply=*/false);
  }
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
                                          std::string* response,
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
  if (status.ok() && response != nullptr) {
    call.response = ToByteBuffer(std::move(*response));
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
  std::string request;
  absl::Status status = FromByteBuffer(call.request, &request);
  call.request.Clear();
  std::string response;
  if (status.ok()) {
    counters_.bytes_in.fetch_add(request.size(), std::memory_order_relaxed);
    status = dispatcher_->DispatchBound(*call.iface, *call.method, call.ctx,
                                        request, &response);
    counters_.bytes_out.fetch_add(response.size(), std::memory_order_relaxed);
  }
  if (call.oneway) {
    if (!status.ok()) {
      fprintf(stderr, "lpc grpc: oneway %s failed: %s\n",
              call.ctx.method_path().c_str(), status.ToString().c_str());
    }
    return;
  }
  TryFinish(call, status, &response, /*with_reply=*/true);
}

absl::Status GrpcServerTransport::Impl::Start(Dispatcher* dispatcher) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError("gRPC transport started twice");
  }
  if (options_.listen_addresses.empty()) {
    return absl::InvalidArgumentError("gRPC transport has no listen address");
  }
  if (options_.min_workers < 1 || options_.max_workers < options_.min_workers) {
    return absl::InvalidArgumentError(
        "gRPC transport needs 1 <= min_workers <= max_workers");
  }
  dispatcher_ = dispatcher;
  leases_ = std::make_unique<grpc_transport::LeaseTable>(
      options_.context_lease_timeout,
      dispatcher->options().max_context_handles_per_connection);
  return BuildLocked();
}

absl::Status GrpcServerTransport::Impl::BuildLocked() {
  std::shared_ptr<grpc::ServerCredentials> credentials = options_.credentials;
  const GrpcServerTlsOptions& tls = options_.tls;
  if (credentials == nullptr &&
      (!tls.cert_chain_file.empty() || !tls.private_key_file.empty() ||
       !tls.client_ca_file.empty() || tls.require_client_cert)) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> c =
        grpc_transport::MakeServerCredentials(
            {tls.cert_chain_file, tls.private_key_file, tls.client_ca_file,
             tls.require_client_cert});
    if (!c.ok()) return c.status();
    credentials = *std::move(c);
  }
  if (credentials == nullptr) credentials = grpc::InsecureServerCredentials();
  grpc::ServerBuilder builder;
  std::vector<int> ports(options_.listen_addresses.size(), 0);
  for (size_t i = 0; i < options_.listen_addresses.size(); ++i) {
    builder.AddListeningPort(options_.listen_addresses[i], credentials,
                             &ports[i]);
  }
  size_t max_size = options_.max_message_size != 0
                        ? options_.max_message_size
                        : dispatcher_->options().max_message_size;
  max_message_size_ = max_size;
  int max_int = static_cast<int>(std::min<size_t>(max_size, INT_MAX));
  builder.SetMaxReceiveMessageSize(max_int);
  builder.SetMaxSendMessageSize(max_int);
  // A port another server holds is an error, not a shared port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (const auto& [name, value] : options_.channel_args) {
    if (const int* i = std::get_if<int>(&value)) {
      builder.AddChannelArgument(name, *i);
    } else {
      builder.AddChannelArgument(name, std::get<std::string>(value));
    }
  }
  // Each interface is a registered service (so that gRPC lists it, for
  // reflection); anything else reaches the generic service and is answered
  // UNIMPLEMENTED there.
  // Each method is resolved here, once (Dispatcher::Bind).
  std::vector<const InterfaceDescriptor*> interfaces =
      dispatcher_->Interfaces();
  for (const InterfaceDescriptor* iface : interfaces) {
    const BoundInterface* bound = dispatcher_->Bind(iface->full_name);
    if (bound == nullptr) continue;
    std::vector<const Route*> routes;
    for (const BoundInterface::Method& m : bound->methods) {
      Route& route = routes_[m.path];  // Node-based: the address stays.
      route.iface = bound;
      route.method = &m;
      routes.push_back(&route);
    }
    services_.push_back(std::make_unique<grpc_transport::InterfaceService>(
        *iface, [this, routes = std::move(routes)](
                    grpc::CallbackServerContext* ctx, size_t index) {
          const Route* route = routes[index];
          return new Reactor(this, ctx, route, route->method->path);
        }));
    builder.RegisterService(services_.back().get());
  }
  builder.RegisterCallbackGenericService(this);
  builder.SetOption(grpc_transport::MakeReflectionOption(options_.reflection));
  server_ = grpc_transport::BuildServer(builder, options_.health_service);
  bool all_bound = server_ != nullptr;
  for (int port : ports) all_bound = all_bound && port != 0;
  if (!all_bound) {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    services_.clear();
    return grpc_transport::ListenFailure(options_.listen_addresses, ports);
  }
  if (grpc::HealthCheckServiceInterface* health =
          options_.health_service ? server_->GetHealthCheckService()
                                  : nullptr) {
    for (const InterfaceDescriptor* iface : interfaces) {
      health->SetServingStatus(std::string(iface->full_name), true);
    }
    health->SetServingStatus(true);
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string& a = options_.listen_addresses[i];
    if (a.starts_with("unix:") || a.starts_with("unix-abstract:")) ports[i] = 0;
  }
  ports_ = ports;
  const std::string& first = options_.listen_addresses[0];
  size_t colon = first.rfind(':');
  if (ports_[0] == 0 || colon == std::string::npos) {
    target_ = absl::StrCat("grpc:", first);
  } else {
    target_ = absl::StrCat("grpc:", first.substr(0, colon), ":", ports_[0]);
  }
  absl::Status pool = pool_.Start();
  if (!pool.ok()) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    services_.clear();
    return pool;
  }
  state_ = State::kRunning;
  return absl::OkStatus();
}

void GrpcServerTransport::Impl::Shutdown(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ != State::kRunning) {
    if (state_ == State::kNew) state_ = State::kStopped;
    return;
  }
  // Draining: the listener stays open, but every new call is refused with
  // UNAVAILABLE by OnNewCall. (Shutting gRPC down first would make gRPC
  // cancel late calls, which clients see as CANCELLED.)
  state_ = State::kDraining;
  if (grpc::HealthCheckServiceInterface* health =
          options_.health_service ? server_->GetHealthCheckService()
                                  : nullptr) {
    // Every service, and the server as a whole (""). The health service
    // keeps answering while the listener stays open.
    health->SetServingStatus(false);
  }
  while (HasUnansweredCallsLocked() && absl::Now() < deadline) {
    idle_cv_.wait_until(lock, absl::ToChronoTime(deadline));
  }
  std::vector<std::shared_ptr<ServerCall>> left(calls_.begin(), calls_.end());
  lock.unlock();
  // Answer first, then cancel: a handler that returns as soon as it sees
  // the cancel must not get to answer instead.
  for (auto& call : left) {
    TryFinish(*call, absl::UnavailableError(
                         "server shut down before the call finished"),
              nullptr, /*with_reply=*/false);
    call->ctx.Cancel();
  }

  // Handlers have been told to stop; wait for them to return. Calls still
  // queued are dropped (answered above).
  pool_.Join();
  lock.lock();
  state_ = State::kStopped;
  lock.unlock();
  // Every lease ends with the server; the service outlives the rundowns.
  leases_->Shutdown();
  ::lpc::internal::DrainRundowns(
      std::max(deadline, absl::Now() + absl::Seconds(5)));

  // Every call is finished, so gRPC's own shutdown has nothing to wait for;
  // the short deadline only bounds a call that slips in meanwhile (refused
  // by OnNewCall).
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));

  // Every call is finished; gRPC runs OnDone for each shortly after.
  lock.lock();
  absl::Time limit = absl::Now() + absl::Seconds(5);
  while (!calls_.empty() && absl::Now() < limit) {
    idle_cv_.wait_until(lock, absl::ToChronoTime(limit));
  }
  if (!calls_.empty()) {
    fprintf(stderr, "lpc grpc: %zu call(s) not released by gRPC at shutdown\n",
            calls_.size());
  }
  lock.unlock();
  server_.reset();
}

GrpcServerTransport::GrpcServerTransport(GrpcServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

GrpcServerTransport::~GrpcServerTransport() = default;

absl::Status GrpcServerTransport::Start(Dispatcher* dispatcher) {
  return impl_->Start(dispatcher);
}

void GrpcServerTransport::Shutdown(absl::Time deadline) {
  impl_->Shutdown(deadline);
}

std::string GrpcServerTransport::target() const { return impl_->target(); }

std::vector<int> GrpcServerTransport::ports() const { return impl_->ports(); }

void GrpcServerTransport::Report(TransportReport* report) const {
  impl_->Report(report);
}

}  // namespace lpc
