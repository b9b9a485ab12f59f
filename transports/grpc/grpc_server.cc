// GrpcServerTransport: lpc handlers behind gRPC, through the Dispatcher.
//
// Unary methods with a synchronous handler (oneway ones too) are raw
// asynchronous gRPC methods served on the transport's completion queue
// (internal/queued_call.h) by the threads that poll it
// (internal/cq_pollers.h), as gRPC's synchronous server does:
//   1. A QueuedCall asks gRPC for a call of its method (resolved at Start,
//      Dispatcher::Bind; nothing is looked up by name per call). It arrives
//      with its request read, on a poller thread, which asks for the next
//      call, checks the binding headers, fills the handler's CallContext
//      and registers the call.
//   2. The same thread runs the handler (Dispatcher::DispatchBound) and
//      finishes the gRPC call with the reply: no queue hop. (When
//      max_workers handlers run, the call waits in the pollers' FIFO.)
//   3. gRPC's "done" event, on another poller, cancels the handler's
//      context if the client cancelled or the deadline passed.
// Calls of paths no interface has (unknown paths, the lease calls) reach
// the generic service: on the completion queue too (internal/generic_call.h)
// unless some interface has callback methods (below), which bring gRPC's
// callback generic service; either way they are answered at once, on the
// thread that takes them, without reading their messages.
// Every other call (streaming methods, [async] handlers) comes through
// gRPC's callback API:
//   1. gRPC creates a Reactor (on one of gRPC's threads), which does the
//      same checks, registers the call and asks for the request message.
//   2. When the message arrives the call is queued for a worker of the
//      handler pool. (A call whose client streams is queued at once.)
//   3. A worker runs the handler through Dispatcher::StartCall with the
//      ServerCall as its ServerStream (internal/server_call.h), which the
//      handler finishes, from any thread, when it is done.
// Whoever flips ServerCall::finished first (the handler or its thread, an
// early error, or Shutdown) finishes the gRPC call; the others leave it
// alone. gRPC's OnDone (or done event) comes after that and releases the
// call.
#include "transports/grpc/grpc_server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/context_handle.h"
#include "transports/grpc/internal/grpc_server_impl.h"
#include "transports/grpc/internal/server_parts.h"
#include "transports/grpc/internal/tls.h"

namespace lpc {

void GrpcServerTransport::Impl::RequestQueuedCall(
    grpc_transport::InterfaceService* service, int index, const void* route) {
  requests_.Run([&] {
    (new grpc_transport::QueuedCall(this, this, service, index, route))
        ->Request(cq_.get());
  });
}

void GrpcServerTransport::Impl::StopQueue() {
  requests_.Close();
  cq_->Shutdown();
  if (pollers_ != nullptr) {
    pollers_->Join();  // They drain the queue.
  } else {
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) {
    }
  }
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
  if (options_.health_service && options_.max_health_watches < 1) {
    return absl::InvalidArgumentError(
        "gRPC transport needs max_health_watches >= 1");
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
  // reflection); anything else reaches the generic service: lease calls,
  // and unknown paths answered UNIMPLEMENTED.
  // Each method is resolved here, once (Dispatcher::Bind).
  // Unary methods whose handler is synchronous (oneway ones included) are
  // served on cq_; the others through gRPC's callback API. A server with
  // none of those has no callback service at all (docs/grpc-transport.md,
  // "Threads").
  struct QueuedMethod {
    grpc_transport::InterfaceService* service;
    int index;
    const Route* route;
  };
  std::vector<QueuedMethod> queued;
  bool any_callback = false;
  std::vector<const InterfaceDescriptor*> interfaces =
      dispatcher_->Interfaces();
  for (const InterfaceDescriptor* iface : interfaces) {
    const BoundInterface* bound = dispatcher_->Bind(iface->full_name);
    if (bound == nullptr) continue;
    std::vector<const Route*> routes;
    std::vector<bool> on_queue;
    for (const BoundInterface::Method& m : bound->methods) {
      Route& route = routes_[m.path];  // Node-based: the address stays.
      route.iface = bound;
      route.method = &m;
      routes.push_back(&route);
      on_queue.push_back(m.descriptor->kind == MethodKind::kUnary &&
                         (m.descriptor->oneway || !m.uses_start_call));
      if (!on_queue.back()) any_callback = true;
    }
    services_.push_back(std::make_unique<grpc_transport::InterfaceService>(
        *iface, on_queue,
        [this, routes](grpc::CallbackServerContext* ctx, size_t index) {
          return MakeReactor(ctx, routes[index]);
        }));
    builder.RegisterService(services_.back().get());
    for (size_t i = 0; i < on_queue.size(); ++i) {
      if (on_queue[i]) {
        queued.push_back(
            {services_.back().get(), static_cast<int>(i), routes[i]});
      }
    }
  }
  cq_ = builder.AddCompletionQueue();
  uses_async_generic_ = !any_callback;
  if (uses_async_generic_) {
    builder.RegisterAsyncGenericService(&async_generic_);
  } else {
    builder.RegisterCallbackGenericService(this);
  }
  if (options_.health_service) {
    std::vector<std::string> names;
    for (const InterfaceDescriptor* iface : interfaces) {
      names.emplace_back(iface->full_name);
    }
    health_ = std::make_unique<grpc_transport::HealthService>(
        names, options_.max_health_watches, &requests_);
    builder.RegisterService(health_.get());
  }
  // Never gRPC's default health service (a callback service in 1.51).
  builder.SetOption(
      std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.SetOption(grpc_transport::MakeReflectionOption(options_.reflection));
  server_ = builder.BuildAndStart();
  bool all_bound = server_ != nullptr;
  for (int port : ports) all_bound = all_bound && port != 0;
  if (!all_bound) {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    StopQueue();
    server_.reset();
    services_.clear();
    health_.reset();
    return grpc_transport::ListenFailure(options_.listen_addresses, ports);
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
    StopQueue();
    server_.reset();
    services_.clear();
    health_.reset();
    return pool;
  }
  pollers_ = std::make_unique<grpc_transport::CqPollers>(
      cq_.get(), grpc_transport::CqPollers::Options{
                     options_.min_workers, options_.max_workers,
                     options_.max_queued_calls});
  pollers_->Start();
  for (const QueuedMethod& m : queued) {
    RequestQueuedCall(m.service, m.index, m.route);
  }
  if (uses_async_generic_) RequestGenericCall();
  if (health_ != nullptr) health_->Start(cq_.get());
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
  // Every service, and the server as a whole (""). The health service
  // keeps answering while the listener stays open.
  if (health_ != nullptr) health_->SetNotServing();
  while (HasUnansweredCallsLocked() && absl::Now() < deadline) {
    idle_cv_.wait_until(lock, absl::ToChronoTime(deadline));
  }
  std::vector<std::shared_ptr<ServerCall>> left(calls_.begin(), calls_.end());
  lock.unlock();
  // Calls waiting for a poller thread are answered UNAVAILABLE before any
  // handler is cancelled: a thread whose handler returns on the cancel must
  // not take one of them and run it.
  pollers_->StopIntake();
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
  pollers_->WaitIdle();
  lock.lock();
  state_ = State::kStopped;
  lock.unlock();
  // Every lease ends with the server; the service outlives the rundowns.
  leases_->Shutdown();
  ::lpc::internal::DrainRundowns(
      std::max(deadline, absl::Now() + absl::Seconds(5)));

  // Health Watch streams end now (without waiting for their clients).
  if (health_ != nullptr) health_->StopWatches();
  // Every call is finished, so gRPC's own shutdown has nothing to wait for;
  // the short deadline only bounds a call that slips in meanwhile (refused
  // by OnNewCall).
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  // The pollers take the last events of the calls (and the failed
  // requests), then exit.
  StopQueue();

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
