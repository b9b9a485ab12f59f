// The service each replica serves: Who (1) replies with the replica's name,
// so a client sees which replica answered each call.
//
// Thread safety: Dispatch is thread-safe.
#ifndef LPC_TESTS_REPLICAS_REPLICA_SERVICE_H_
#define LPC_TESTS_REPLICAS_REPLICA_SERVICE_H_

#include <string>
#include <string_view>
#include <utility>

#include "runtime/service.h"

namespace lpc::replicas {

inline constexpr MethodDescriptor kReplicaMethods[] = {{"Who", 1, false}};

inline const InterfaceDescriptor& ReplicaInterface() {
  static const InterfaceDescriptor iface{
      "lpc.test.Replica", "6f1d3c2a-8b4e-4f7a-9c1d-2e5b7a9c0d11", {1, 0},
      kReplicaMethods};
  return iface;
}

class ReplicaService final : public Service {
 public:
  explicit ReplicaService(std::string name) : name_(std::move(name)) {}

  const InterfaceDescriptor& descriptor() const override {
    return ReplicaInterface();
  }
  absl::Status Dispatch(uint32_t method_id, CallContext&, std::string_view,
                        std::string* response) override {
    if (method_id != 1) return absl::UnimplementedError("no such method");
    *response = name_;
    return absl::OkStatus();
  }

 private:
  const std::string name_;
};

}  // namespace lpc::replicas

#endif  // LPC_TESTS_REPLICAS_REPLICA_SERVICE_H_
