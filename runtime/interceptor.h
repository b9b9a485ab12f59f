// Interceptors: code that sees every call of a server or a channel, on
// every transport, without the handlers or the callers knowing.
//
// Server interceptors run inside the runtime's dispatch (Server), so every
// server transport runs them; client interceptors run in a channel wrapper
// (InterceptChannel). Both see the method, the metadata, the deadline, the
// peer (server side), each message, and the final status with the call's
// timing; both can reject a call with a status and add or change metadata.
//
//   class RequireTenant : public lpc::ServerInterceptor {
//    public:
//     absl::Status OnStart(const lpc::InterceptedCall& call,
//                          lpc::CallContext& ctx) override {
//       if (ctx.metadata().count("tenant") == 0) {
//         return absl::PermissionDeniedError("no tenant");
//       }
//       return absl::OkStatus();
//     }
//   };
//   server.AddInterceptor(std::make_shared<RequireTenant>());   // before Start
//
// Two ship with lpc, registered by name for the config file
// (ServerEndpoint.interceptor, docs/config.md): "access_log" and "metrics"
// (runtime/interceptors.h). docs/interceptors.md has the details.
//
// Thread safety: an interceptor is called from any number of threads at
// once, for different calls; its hooks must be thread-safe and must not
// block for long (they run on the call's path). The hooks of one call are
// ordered: OnStart, then OnMessage for each message, then OnFinish, except
// that a stream's OnMessage for the two directions may run concurrently.
#ifndef LPC_RUNTIME_INTERCEPTOR_H_
#define LPC_RUNTIME_INTERCEPTOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/interface.h"

namespace lpc {

enum class MessageDirection { kClientToServer, kServerToClient };

// The call an interceptor sees. Valid for the duration of each hook.
struct InterceptedCall {
  const InterfaceDescriptor* iface = nullptr;
  const MethodDescriptor* method = nullptr;
  std::string_view method_path;  // "/example.calc.Calculator/Add"
  absl::Time start;              // When the runtime took the call.
};

// What a call moved and how long it took, for OnFinish.
struct CallStats {
  absl::Duration duration;  // From `start` to the final status.
  uint64_t request_messages = 0;
  uint64_t request_bytes = 0;  // Serialized, all messages.
  uint64_t response_messages = 0;
  uint64_t response_bytes = 0;
};

namespace interceptor_internal {

// The hooks ServerInterceptor and ClientInterceptor share; each of those
// says what the hooks mean on its side. A hook not overridden does nothing
// (OnStart accepts the call).
class CallHooks {
 public:
  virtual ~CallHooks() = default;

  virtual absl::Status OnStart(const InterceptedCall& /*call*/,
                               CallContext& /*ctx*/) {
    return absl::OkStatus();
  }
  virtual void OnMessage(const InterceptedCall& /*call*/, CallContext& /*ctx*/,
                         MessageDirection /*direction*/,
                         std::string_view /*message*/) {}
  virtual void OnFinish(const InterceptedCall& /*call*/, CallContext& /*ctx*/,
                        const absl::Status& /*status*/,
                        const CallStats& /*stats*/) {}
};

}  // namespace interceptor_internal

// A server interceptor overrides any of:
//
// OnStart(call, ctx): before the handler runs. `ctx` has the request
//   metadata (which this may change; the handler sees the changes), the
//   deadline and the peer; response metadata added here is sent with the
//   reply. A non-OK status rejects the call: no later interceptor's OnStart
//   and no handler run, and the client gets that status.
// OnMessage(call, ctx, direction, message): each message as the handler
//   reads or writes it: for a unary call the request before the handler and
//   the reply after it.
// OnFinish(call, ctx, status, stats): once for every call whose OnStart this
//   interceptor ran (also when it or a later one rejected it), in the
//   reverse order of OnStart. `status` is what the client gets: a handler's
//   OK after the call was cancelled or its deadline passed is reported as
//   CANCELLED or DEADLINE_EXCEEDED.
class ServerInterceptor : public interceptor_internal::CallHooks {
 public:
  // What Server::Metrics() prints for this interceptor; "" for nothing.
  virtual std::string Report() const { return ""; }
};

// A client interceptor overrides any of:
//
// OnStart(call, ctx): before the call is sent. `ctx` has the deadline (the
//   channel's default if the caller set none) and the request metadata,
//   which this may change. A non-OK status fails the call with it; nothing
//   is sent.
// OnMessage(call, ctx, direction, message): each message the caller sends
//   or receives.
// OnFinish(call, ctx, status, stats): once per call whose OnStart this ran,
//   with the status the caller gets (response metadata is in ctx by then),
//   in the reverse order of OnStart. A stream dropped without Finish
//   reports CANCELLED.
class ClientInterceptor : public interceptor_internal::CallHooks {};

// A channel that runs `interceptors` (in order) around every call of
// `channel`: StartCall, Call, SendOneway and OpenStream. With no
// interceptors it returns `channel` itself.
std::shared_ptr<Channel> InterceptChannel(
    std::shared_ptr<Channel> channel,
    std::vector<std::shared_ptr<ClientInterceptor>> interceptors);

// Server interceptors by name, for the config file. The built-in
// "access_log" and "metrics" are always there.
using ServerInterceptorFactory =
    std::function<absl::StatusOr<std::shared_ptr<ServerInterceptor>>()>;

// Registers `factory` under `name`; ALREADY_EXISTS if the name is taken.
absl::Status RegisterServerInterceptor(std::string name,
                                       ServerInterceptorFactory factory);

// A new interceptor from the factory called `name`; NOT_FOUND, naming the
// registered ones, if there is none.
absl::StatusOr<std::shared_ptr<ServerInterceptor>> MakeServerInterceptor(
    std::string_view name);

// The registered names, sorted.
std::vector<std::string> ServerInterceptorNames();

}  // namespace lpc

#endif  // LPC_RUNTIME_INTERCEPTOR_H_
