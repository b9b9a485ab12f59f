// The built-in introspection service (runtime/introspection.idl): what
// lpc::Server registers at Start unless ServerOptions::introspection is
// false. Private to //runtime; docs/lpcctl.md describes what it answers.
#ifndef LPC_RUNTIME_INTERNAL_INTROSPECTION_SERVICE_H_
#define LPC_RUNTIME_INTERNAL_INTROSPECTION_SERVICE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/service.h"

namespace lpc {

class Server;

namespace internal {

// "lpc.introspection.Introspection".
std::string_view IntrospectionInterfaceName();

// The service for `server`, which must outlive it. Thread-safe.
std::unique_ptr<Service> MakeIntrospectionService(const Server* server);

// A serialized google.protobuf.FileDescriptorSet of the .proto file that
// declares service `full_name` and of every file it imports, dependencies
// first, from protobuf's generated pool (the descriptors that the generated
// code of every linked lpc_cc_library registers there). NOT_FOUND if no
// linked file declares it.
absl::StatusOr<std::string> FileDescriptorSetFor(std::string_view full_name);

}  // namespace internal
}  // namespace lpc

#endif  // LPC_RUNTIME_INTERNAL_INTROSPECTION_SERVICE_H_
