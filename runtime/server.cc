// Server: service registry, dispatch and transport lifecycle.
#include "runtime/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/interceptor.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/internal/introspection_service.h"
#include "runtime/internal/serving_thread.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;

Server::Server(ServerOptions options) : options_(std::move(options)) {}

Server::~Server() {
  Shutdown();  // Waits for a shutdown that a handler started, too.
  std::thread t;
  {
    MutexLock lock(&mu_);
    t.swap(shutdown_thread_);
  }
  if (t.joinable()) t.join();
}

absl::Status Server::RegisterService(Service* service) {
  if (service == nullptr) return absl::InvalidArgumentError("null service");
  MutexLock lock(&mu_);
  if (started_) {
    return absl::FailedPreconditionError(
        "RegisterService must be called before Start");
  }
  return RegisterServiceLocked(service);
}

absl::Status Server::RegisterServiceLocked(Service* service) {
  const InterfaceDescriptor& d = service->descriptor();
  if (FindService(d.full_name) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("interface ", std::string(d.full_name), " is already registered"));
  }
  services_.push_back(service);
  auto bound = std::make_unique<BoundInterface>();
  bound->descriptor = &d;
  bound->service_index = static_cast<int>(services_.size() - 1);
  for (size_t i = 0; i < d.methods.size(); ++i) {
    BoundInterface::Method m;
    m.descriptor = &d.methods[i];
    m.path = d.MethodPath(d.methods[i]);
    m.uses_start_call =
        d.methods[i].streaming() || service->UsesStartCall(d.methods[i].id);
    m.start_call_blocks =
        m.uses_start_call && service->StartCallBlocks(d.methods[i].id);
    bound->methods.push_back(std::move(m));
  }
  bound_.push_back(std::move(bound));
  return absl::OkStatus();
}

absl::Status Server::AddTransport(std::unique_ptr<ServerTransport> transport) {
  if (transport == nullptr) return absl::InvalidArgumentError("null transport");
  MutexLock lock(&mu_);
  if (started_) {
    return absl::FailedPreconditionError(
        "AddTransport must be called before Start");
  }
  transports_.push_back(std::move(transport));
  return absl::OkStatus();
}

absl::Status Server::AddInterceptor(
    std::shared_ptr<ServerInterceptor> interceptor) {
  if (interceptor == nullptr) {
    return absl::InvalidArgumentError("null interceptor");
  }
  MutexLock lock(&mu_);
  if (started_) {
    return absl::FailedPreconditionError(
        "AddInterceptor must be called before Start");
  }
  interceptors_.push_back(std::move(interceptor));
  return absl::OkStatus();
}

std::string Server::Metrics() const {
  std::string out;
  for (const auto& i : interceptors_) out += i->Report();
  return out;
}

absl::Status Server::Start() {
  MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("server already started");
  if (transports_.empty()) {
    return absl::FailedPreconditionError("server has no transport");
  }
  if (options_.introspection && introspection_ == nullptr &&
      FindService(internal::IntrospectionInterfaceName()) == nullptr) {
    introspection_ = internal::MakeIntrospectionService(this);
    absl::Status s = RegisterServiceLocked(introspection_.get());
    if (!s.ok()) return s;
  }
  start_unix_ns_.store(absl::ToUnixNanos(absl::Now()));
  serving_.store(true, std::memory_order_release);
  for (size_t i = 0; i < transports_.size(); ++i) {
    absl::Status s = transports_[i]->Start(this);
    if (!s.ok()) {
      absl::Time deadline = absl::Now();
      serving_.store(false, std::memory_order_release);
      for (size_t j = 0; j < i; ++j) transports_[j]->Shutdown(deadline);
      return s;
    }
  }
  started_ = true;
  return absl::OkStatus();
}

void Server::Shutdown() {
  // A thread the transports run or join must not wait for their shutdown:
  // the shutdown waits for its handler, then joins it.
  const bool serving_thread = internal::OnServingThread();
  absl::Time deadline;
  {
    MutexLock lock(&mu_);
    if (!started_) return;
    if (shut_down_) {
      while (!serving_thread && !shutdown_done_) {
        shutdown_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
      }
      return;
    }
    shut_down_ = true;
    serving_.store(false, std::memory_order_release);
    deadline = absl::Now() + options_.shutdown_grace;
    if (serving_thread) {
      shutdown_thread_ =
          std::thread([this, deadline] { ShutdownTransports(deadline); });
      return;
    }
  }
  ShutdownTransports(deadline);
}

void Server::ShutdownTransports(absl::Time deadline) {
  for (auto& t : transports_) t->Shutdown(deadline);
  MutexLock lock(&mu_);
  shutdown_done_ = true;
  shutdown_cv_.SignalAll();
}

void Server::Wait() {
  if (internal::OnServingThread()) return;
  MutexLock lock(&mu_);
  while (started_ && !shutdown_done_) {
    shutdown_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
  }
}

std::vector<std::string> Server::targets() const {
  std::vector<std::string> out;
  for (const auto& t : transports_) out.push_back(t->target());
  return out;
}

absl::Time Server::start_time() const {
  const int64_t ns = start_unix_ns_.load();
  return ns == 0 ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

std::vector<TransportReport> Server::TransportReports() const {
  std::vector<TransportReport> out(transports_.size());
  for (size_t i = 0; i < transports_.size(); ++i) {
    transports_[i]->Report(&out[i]);
  }
  return out;
}

int Server::FindServiceIndex(std::string_view full_name) const {
  for (size_t i = 0; i < services_.size(); ++i) {
    if (services_[i]->descriptor().full_name == full_name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

Service* Server::FindService(std::string_view full_name) const {
  const int i = FindServiceIndex(full_name);
  return i < 0 ? nullptr : services_[i];
}

const InterfaceDescriptor* Server::FindInterface(
    std::string_view full_name) const {
  Service* s = FindService(full_name);
  return s == nullptr ? nullptr : &s->descriptor();
}

std::vector<const InterfaceDescriptor*> Server::Interfaces() const {
  std::vector<const InterfaceDescriptor*> out;
  out.reserve(services_.size());
  for (const Service* s : services_) out.push_back(&s->descriptor());
  return out;
}

absl::Status Server::CheckBinding(std::string_view full_name,
                                  std::string_view uuid,
                                  InterfaceVersion version) const {
  const InterfaceDescriptor* d = FindInterface(full_name);
  if (d == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("unknown interface ", std::string(full_name)));
  }
  return CheckInterfaceCompatible(full_name, uuid, version, d->uuid,
                                  d->version);
}

absl::Status Server::Dispatch(std::string_view full_name, uint32_t method_id,
                              CallContext& ctx, std::string_view request,
                              std::string* response) {
  internal::ServingThreadScope serving;
  const BoundInterface* iface = Bind(full_name);
  const BoundInterface::Method* m =
      iface == nullptr ? nullptr : iface->FindMethod(method_id);
  if (m != nullptr) {
    if (!interceptors_.empty() && !m->uses_start_call) {
      return DispatchIntercepted(*iface, *m, ctx, request, response);
    }
    return RunBound(*iface, *m, ctx, request, response);
  }
  calls_.fetch_add(1, std::memory_order_relaxed);
  failed_.fetch_add(1, std::memory_order_relaxed);
  if (iface == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("unknown interface ", std::string(full_name)));
  }
  return absl::UnimplementedError(absl::StrCat(
      "unknown method ", method_id, " on interface ", std::string(full_name)));
}

const BoundInterface::Method* BoundInterface::FindMethod(uint32_t id) const {
  // Ordinals are usually 1..n in order: try the direct slot first.
  if (id >= 1 && id <= methods.size() &&
      methods[id - 1].descriptor->id == id) {
    return &methods[id - 1];
  }
  for (const Method& m : methods) {
    if (m.descriptor->id == id) return &m;
  }
  return nullptr;
}

const BoundInterface* Server::Bind(std::string_view full_name) const {
  const int i = FindServiceIndex(full_name);
  return i < 0 ? nullptr : bound_[i].get();
}

absl::Status Server::DispatchBound(const BoundInterface& iface,
                                   const BoundInterface::Method& method,
                                   CallContext& ctx, std::string_view request,
                                   std::string* response) {
  internal::ServingThreadScope serving;
  if (!interceptors_.empty()) {
    return DispatchIntercepted(iface, method, ctx, request, response);
  }
  return RunBound(iface, method, ctx, request, response);
}

absl::Status Server::RunBound(const BoundInterface& iface,
                              const BoundInterface::Method& method,
                              CallContext& ctx, std::string_view request,
                              std::string* response) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  absl::Status status = [&]() -> absl::Status {
    if (request.size() > options_.max_message_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "request of ", request.size(), " bytes exceeds the server's limit of ",
          options_.max_message_size, " bytes"));
    }
    if (ctx.method_path().empty())
      CallContextAccess::SetMethodPathRef(ctx, &method.path);
    absl::Status s = services_[iface.service_index]->Dispatch(
        method.descriptor->id, ctx, request, response);
    if (s.ok() && response->size() > options_.max_message_size) {
      response->clear();
      return absl::ResourceExhaustedError(absl::StrCat(
          "reply exceeds the server's maximum message size of ",
          options_.max_message_size, " bytes"));
    }
    return s;
  }();
  if (!status.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
  return status;
}

absl::Status Dispatcher::DispatchBoundWith(const BoundInterface& iface,
                                           const BoundInterface::Method& method,
                                           CallContext& ctx,
                                           ReceivedMessage& request,
                                           ReplySink& reply) {
  std::string flat;
  std::string response;
  absl::Status s =
      DispatchBound(iface, method, ctx, Flatten(request, &flat), &response);
  if (!s.ok() || method.descriptor->oneway) return s;
  return reply.Write(BytesWriter(response));
}

namespace {

// Refuses a reply over the server's limit before the transport places it.
class LimitedReplySink final : public ReplySink {
 public:
  LimitedReplySink(ReplySink& inner, size_t limit)
      : inner_(inner), limit_(limit) {}
  absl::Status Write(const MessageWriter& reply) override {
    if (SerializedSize(reply) > limit_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "reply exceeds the server's maximum message size of ", limit_,
          " bytes"));
    }
    return inner_.Write(reply);
  }

 private:
  ReplySink& inner_;
  const size_t limit_;
};

}  // namespace

absl::Status Server::DispatchBoundWith(const BoundInterface& iface,
                                       const BoundInterface::Method& method,
                                       CallContext& ctx,
                                       ReceivedMessage& request,
                                       ReplySink& reply) {
  if (!interceptors_.empty()) {
    // Interceptors see serialized messages: the string path.
    return Dispatcher::DispatchBoundWith(iface, method, ctx, request, reply);
  }
  internal::ServingThreadScope serving;
  calls_.fetch_add(1, std::memory_order_relaxed);
  absl::Status status = [&]() -> absl::Status {
    const size_t size =
        request.bytes().size() +
        (request.attached().has_value() ? request.attached()->view.size() : 0);
    if (size > options_.max_message_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "request of ", size, " bytes exceeds the server's limit of ",
          options_.max_message_size, " bytes"));
    }
    if (ctx.method_path().empty())
      CallContextAccess::SetMethodPathRef(ctx, &method.path);
    LimitedReplySink limited(reply, options_.max_message_size);
    return services_[iface.service_index]->DispatchWith(
        method.descriptor->id, ctx, request, limited);
  }();
  if (!status.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
  return status;
}

void Server::StartCall(const BoundInterface& iface,
                       const BoundInterface::Method& method,
                       std::shared_ptr<ServerStream> call) {
  internal::ServingThreadScope serving;
  if (!interceptors_.empty()) {
    StartCallIntercepted(iface, method, std::move(call));
    return;
  }
  calls_.fetch_add(1, std::memory_order_relaxed);
  CallContext& ctx = call->context();
  if (ctx.method_path().empty())
    CallContextAccess::SetMethodPathRef(ctx, &method.path);
  services_[iface.service_index]->StartCall(method.descriptor->id,
                                            std::move(call));
}

}  // namespace lpc
