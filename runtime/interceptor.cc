// Client interceptors (InterceptChannel) and the registry of named server
// interceptors.
#include "runtime/interceptor.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "runtime/interceptors.h"

namespace lpc {
namespace {

using Interceptors = std::vector<std::shared_ptr<ClientInterceptor>>;

// One intercepted client call: what OnFinish needs, shared by the
// callbacks that may outlive the channel wrapper.
struct ClientCallState {
  std::shared_ptr<const Interceptors> interceptors;
  std::string path;
  InterceptedCall call;
  CallContext* ctx = nullptr;
  size_t started = 0;
  std::atomic<bool> finished{false};
  std::atomic<uint64_t> request_messages{0};
  std::atomic<uint64_t> request_bytes{0};
  std::atomic<uint64_t> response_messages{0};
  std::atomic<uint64_t> response_bytes{0};

  void Message(MessageDirection direction, std::string_view message) {
    if (direction == MessageDirection::kClientToServer) {
      request_messages.fetch_add(1, std::memory_order_relaxed);
      request_bytes.fetch_add(message.size(), std::memory_order_relaxed);
    } else {
      response_messages.fetch_add(1, std::memory_order_relaxed);
      response_bytes.fetch_add(message.size(), std::memory_order_relaxed);
    }
    for (const auto& i : *interceptors) {
      i->OnMessage(call, *ctx, direction, message);
    }
  }

  // Reports the end once; later calls do nothing.
  void Finish(const absl::Status& status) {
    if (finished.exchange(true, std::memory_order_acq_rel)) return;
    CallStats stats;
    stats.duration = absl::Now() - call.start;
    stats.request_messages = request_messages.load();
    stats.request_bytes = request_bytes.load();
    stats.response_messages = response_messages.load();
    stats.response_bytes = response_bytes.load();
    for (size_t i = started; i-- > 0;) {
      (*interceptors)[i]->OnFinish(call, *ctx, status, stats);
    }
  }
};

class InterceptedClientStream final : public ClientStream {
 public:
  InterceptedClientStream(std::shared_ptr<ClientStream> inner,
                          std::shared_ptr<ClientCallState> state)
      : inner_(std::move(inner)), state_(std::move(state)) {}
  ~InterceptedClientStream() override {
    if (!finish_called_.load(std::memory_order_acquire)) {
      state_->Finish(absl::CancelledError("stream dropped before Finish"));
    }
  }

  CallContext& context() override { return inner_->context(); }
  void Write(std::string message, WriteCallback done) override {
    state_->Message(MessageDirection::kClientToServer, message);
    inner_->Write(std::move(message), std::move(done));
  }
  void WritesDone() override { inner_->WritesDone(); }
  void Read(ReadCallback done) override {
    inner_->Read([state = state_, done = std::move(done)](
                     absl::StatusOr<std::optional<std::string>> r) {
      if (r.ok() && r->has_value()) {
        state->Message(MessageDirection::kServerToClient, **r);
      }
      done(std::move(r));
    });
  }
  void Finish(FinishCallback done) override {
    finish_called_.store(true, std::memory_order_release);
    inner_->Finish([state = state_, done = std::move(done)](absl::Status s) {
      state->Finish(s);
      done(std::move(s));
    });
  }

 private:
  const std::shared_ptr<ClientStream> inner_;
  const std::shared_ptr<ClientCallState> state_;
  std::atomic<bool> finish_called_{false};
};

class InterceptingChannel final : public Channel {
 public:
  InterceptingChannel(std::shared_ptr<Channel> inner,
                      std::shared_ptr<const Interceptors> interceptors)
      : Channel(inner->options()),
        inner_(std::move(inner)),
        interceptors_(std::move(interceptors)) {}

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    std::shared_ptr<ClientCallState> state = Begin(iface, method, ctx);
    if (absl::Status s = Start(*state); !s.ok()) {
      done(std::move(s));
      return;
    }
    state->Message(MessageDirection::kClientToServer, request);
    inner_->StartCall(iface, method, ctx, std::move(request),
                      [state, done = std::move(done)](
                          absl::StatusOr<std::string> r) {
                        End(*state, r);
                        done(std::move(r));
                      });
  }

  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override {
    std::shared_ptr<ClientCallState> state = Begin(iface, method, ctx);
    if (absl::Status s = Start(*state); !s.ok()) return s;
    state->Message(MessageDirection::kClientToServer, request);
    absl::StatusOr<std::string> r =
        inner_->Call(iface, method, ctx, std::move(request));
    End(*state, r);
    return r;
  }

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    std::shared_ptr<ClientCallState> state = Begin(iface, method, ctx);
    if (absl::Status s = Start(*state); !s.ok()) return s;
    state->Message(MessageDirection::kClientToServer, request);
    absl::Status s = inner_->SendOneway(iface, method, ctx, std::move(request));
    state->Finish(s);
    return s;
  }

  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override {
    std::shared_ptr<ClientCallState> state = Begin(iface, method, ctx);
    if (absl::Status s = Start(*state); !s.ok()) {
      return MakeEndedClientStream(ctx, std::move(s));
    }
    return std::make_shared<InterceptedClientStream>(
        inner_->OpenStream(iface, method, ctx), std::move(state));
  }

  std::string_view transport_name() const override {
    return inner_->transport_name();
  }

 private:
  std::shared_ptr<ClientCallState> Begin(const InterfaceDescriptor& iface,
                                         const MethodDescriptor& method,
                                         CallContext* ctx) {
    auto state = std::make_shared<ClientCallState>();
    state->interceptors = interceptors_;
    state->path = iface.MethodPath(method);
    state->call = InterceptedCall{&iface, &method, state->path, absl::Now()};
    state->ctx = ctx;
    // What the transport would do anyway; the interceptors see the deadline
    // the call will have.
    if (!ctx->has_deadline()) {
      ctx->set_deadline(state->call.start + options().default_timeout);
    }
    return state;
  }

  // Runs OnStart in order until one rejects; a rejection is reported to
  // the ones that ran and returned.
  static absl::Status Start(ClientCallState& state) {
    absl::Status s;
    while (state.started < state.interceptors->size()) {
      s = (*state.interceptors)[state.started++]->OnStart(state.call,
                                                          *state.ctx);
      if (!s.ok()) {
        state.Finish(s);
        return s;
      }
    }
    return absl::OkStatus();
  }

  static void End(ClientCallState& state, const absl::StatusOr<std::string>& r) {
    if (r.ok()) state.Message(MessageDirection::kServerToClient, *r);
    state.Finish(r.status());
  }

  const std::shared_ptr<Channel> inner_;
  const std::shared_ptr<const Interceptors> interceptors_;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, ServerInterceptorFactory, std::less<>> factories;
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    r->factories["access_log"] =
        []() -> absl::StatusOr<std::shared_ptr<ServerInterceptor>> {
      return std::make_shared<AccessLogInterceptor>();
    };
    r->factories["metrics"] =
        []() -> absl::StatusOr<std::shared_ptr<ServerInterceptor>> {
      return std::make_shared<MetricsInterceptor>();
    };
    return r;
  }();
  return *registry;
}

}  // namespace

std::shared_ptr<Channel> InterceptChannel(
    std::shared_ptr<Channel> channel,
    std::vector<std::shared_ptr<ClientInterceptor>> interceptors) {
  interceptors.erase(
      std::remove(interceptors.begin(), interceptors.end(), nullptr),
      interceptors.end());
  if (interceptors.empty() || channel == nullptr) return channel;
  return std::make_shared<InterceptingChannel>(
      std::move(channel),
      std::make_shared<const Interceptors>(std::move(interceptors)));
}

absl::Status RegisterServerInterceptor(std::string name,
                                       ServerInterceptorFactory factory) {
  if (name.empty() || factory == nullptr) {
    return absl::InvalidArgumentError(
        "an interceptor needs a name and a factory");
  }
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.factories.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("an interceptor named '", name, "' is registered already"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ServerInterceptor>> MakeServerInterceptor(
    std::string_view name) {
  ServerInterceptorFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (factory == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no interceptor named '", std::string(name), "'; registered: ",
        absl::StrJoin(ServerInterceptorNames(), ", ")));
  }
  absl::StatusOr<std::shared_ptr<ServerInterceptor>> made = factory();
  if (made.ok() && *made == nullptr) {
    return absl::InternalError(absl::StrCat(
        "the factory of interceptor '", std::string(name), "' returned null"));
  }
  return made;
}

std::vector<std::string> ServerInterceptorNames() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

}  // namespace lpc
