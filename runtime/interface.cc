// Method lookup and the interface bind check.
#include "runtime/interface.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lpc {

std::string_view MethodKindName(MethodKind kind) {
  switch (kind) {
    case MethodKind::kUnary:
      return "unary";
    case MethodKind::kServerStreaming:
      return "server-streaming";
    case MethodKind::kClientStreaming:
      return "client-streaming";
    case MethodKind::kBidiStreaming:
      return "bidi-streaming";
  }
  return "unknown";
}

const MethodDescriptor* InterfaceDescriptor::FindMethod(uint32_t id) const {
  for (const MethodDescriptor& m : methods) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

const MethodDescriptor* InterfaceDescriptor::FindMethodByName(
    std::string_view name) const {
  for (const MethodDescriptor& m : methods) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string InterfaceDescriptor::MethodPath(const MethodDescriptor& m) const {
  return absl::StrCat("/", std::string(full_name), "/", std::string(m.name));
}

absl::Status CheckInterfaceCompatible(std::string_view full_name,
                                      std::string_view client_uuid,
                                      InterfaceVersion client_version,
                                      std::string_view server_uuid,
                                      InterfaceVersion server_version) {
  if (client_uuid != server_uuid || client_version.major != server_version.major) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "interface %s is incompatible: client has version %d.%d (uuid %s), "
        "server has version %d.%d (uuid %s)",
        std::string(full_name), client_version.major, client_version.minor,
        std::string(client_uuid), server_version.major, server_version.minor,
        std::string(server_uuid)));
  }
  return absl::OkStatus();
}

}  // namespace lpc
