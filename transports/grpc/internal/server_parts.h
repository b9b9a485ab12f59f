// Pieces of GrpcServerTransport that talk to gRPC's server-building API:
// lpc interfaces as registered gRPC services, the reflection plugin, and
// why a listening address could not be bound.
//
// Thread safety: free functions and classes used while building a server.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_PARTS_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_PARTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/status/status.h"
#include "runtime/interface.h"
#include "runtime/server.h"

namespace lpc::grpc_transport {

using ByteBidiReactor =
    grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// Makes the reactor of one call of the method at position `method_index`
// of the interface's methods.
using ReactorFactory = std::function<ByteBidiReactor*(
    grpc::CallbackServerContext* ctx, size_t method_index)>;

// One lpc interface as a gRPC service (bytes in, bytes out). Registering
// it makes gRPC list the interface as a service (for reflection). A method
// whose `on_queue` entry is set is a raw asynchronous unary method, served
// on a completion queue through RequestUnary (internal/unary_call.h); the
// others are raw callback methods handled by `factory`, and behave exactly
// as through the generic service.
class InterfaceService final : public grpc::Service {
 public:
  InterfaceService(const InterfaceDescriptor& iface,
                   const std::vector<bool>& on_queue, ReactorFactory factory);

  // Asks gRPC for the next call of method `index` (an `on_queue` one):
  // `tag` comes out of `cq` once one arrived, with its request read.
  void RequestUnary(int index, grpc::ServerContext* ctx,
                    grpc::ByteBuffer* request,
                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                    grpc::ServerCompletionQueue* cq, void* tag) {
    RequestAsyncUnary(index, ctx, request, responder, cq, cq, tag);
  }

 private:
  // gRPC keeps the method names as C strings; they live here.
  std::vector<std::unique_ptr<std::string>> paths_;
};

// A ServerBuilder option that gives this one server gRPC's proto reflection
// service if `enabled`, and takes it away otherwise (a library may have
// registered it for every server of the process: Debian's
// libgrpc++_reflection does, when it is loaded).
std::unique_ptr<grpc::ServerBuilderOption> MakeReflectionOption(bool enabled);

// Why `address` (gRPC listen syntax) cannot be bound, found by binding it
// ourselves: "Address already in use", "Permission denied", ... Empty when
// the probe binds fine or the address is not one we can probe.
std::string DiagnoseListenFailure(const std::string& address);

// The UNAVAILABLE status for a server that did not bind every address:
// `ports[i]` is the port gRPC chose for `addresses[i]`, 0 if none. Names
// each unbound address with DiagnoseListenFailure's reason.
absl::Status ListenFailure(const std::vector<std::string>& addresses,
                           const std::vector<int>& ports);

// Why `path` reaches no method of `dispatcher`: UNIMPLEMENTED naming the
// malformed path, the unknown interface or the unknown method.
absl::Status UnknownPathStatus(const std::string& path,
                               const Dispatcher& dispatcher);

// The interface-binding headers of a call to `iface`. lpc clients always
// send both; other gRPC clients (speaking the emitted .proto) send neither
// and are bound by path alone (OK). Only one of them, or a malformed
// version, is INVALID_ARGUMENT; a different uuid or major version is
// FAILED_PRECONDITION naming both versions.
absl::Status CheckBindingHeaders(
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata,
    const InterfaceDescriptor& iface);

// The server transport's counters for the introspection service
// (ServerTransport::Report), counted with relaxed atomics. gRPC shows no
// connections to a callback server, so none are reported.
struct ServerCounters {
  std::atomic<uint64_t> calls_started{0};  // Calls admitted to a handler.
  std::atomic<uint64_t> calls_refused{0};  // Unknown path, bad binding, draining.
  // Message bytes of unary requests received and replies sent.
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};

  void Report(size_t calls_in_flight, size_t calls_queued,
              TransportReport* report) const;
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_PARTS_H_
