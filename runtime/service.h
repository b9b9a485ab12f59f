// Service: the server-side base of every generated service class.
//
// lpcc emits, for interface Foo, an abstract `FooService` deriving from
// Service, with one virtual handler per method; users derive from it. The
// generated Dispatch() decodes the request, calls the handler and encodes the
// response, so transports only move bytes.
//
// Thread safety: Dispatch is called concurrently from the transports' worker
// threads; handlers must be thread-safe.
#ifndef LPC_RUNTIME_SERVICE_H_
#define LPC_RUNTIME_SERVICE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include <memory>

#include "absl/status/status.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/interface.h"
#include "runtime/message.h"

namespace lpc {

class Service {
 public:
  virtual ~Service() = default;

  virtual const InterfaceDescriptor& descriptor() const = 0;

  // Runs method `method_id` on the serialized `request` and writes the
  // serialized reply to `*response` (left empty for oneway methods).
  // Returns UNIMPLEMENTED for an unknown method, INVALID_ARGUMENT for a
  // request that does not decode, and otherwise the handler's status.
  //
  // A service overrides Dispatch or DispatchWith (generated services
  // override DispatchWith); each default calls the other.
  virtual absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                                std::string_view request,
                                std::string* response);

  // The zero-copy form of Dispatch (docs/zero-copy.md): decodes the request
  // in place from `request`, runs the handler, and on success writes the
  // reply through `reply` (not for oneway methods). Returns what Dispatch
  // returns; a status that reply.Write returned becomes the call's.
  virtual absl::Status DispatchWith(uint32_t method_id, CallContext& ctx,
                                    ReceivedMessage& request,
                                    ReplySink& reply);

  // Whether method `method_id` runs through StartCall instead of Dispatch:
  // true for streaming methods and for methods whose handler is
  // asynchronous ([async] in the IDL). Constant for a given service.
  virtual bool UsesStartCall(uint32_t method_id) const {
    (void)method_id;
    return false;
  }

  // Starts method `method_id` on `call` and returns, usually before the
  // call ends: the handler (or the generated code around a synchronous
  // streaming handler) finishes `call` later, from any thread. Called only
  // for methods where UsesStartCall is true. The default finishes the call
  // with UNIMPLEMENTED.
  virtual void StartCall(uint32_t method_id,
                         std::shared_ptr<ServerStream> call);

  // Whether StartCall for method `method_id` holds the calling thread for
  // the life of the call (a synchronous streaming handler) rather than
  // returning at once (an [async] handler). A transport whose own threads
  // must not block long (the local transport's workers) runs such calls on
  // the handler pool. Asked only where UsesStartCall is true. The default,
  // true, is the safe answer for a hand-written StartCall; generated
  // services answer per method.
  virtual bool StartCallBlocks(uint32_t method_id) const {
    (void)method_id;
    return true;
  }
};

}  // namespace lpc

#endif  // LPC_RUNTIME_SERVICE_H_
