// Static descriptions of IDL interfaces, emitted by lpcc for every interface.
//
// A descriptor names the interface the way the emitted .proto does
// ("<package>.<Interface>"), carries its uuid and version for the bind check,
// and lists its methods by ordinal. Descriptors are constant data with static
// storage duration; transports keep pointers to them.
#ifndef LPC_RUNTIME_INTERFACE_H_
#define LPC_RUNTIME_INTERFACE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace lpc {

// Which of the call's two message flows carry more than one message.
enum class MethodKind : uint8_t {
  kUnary = 0,            // one request, one reply (or none, if oneway)
  kServerStreaming = 1,  // one request, a stream of replies
  kClientStreaming = 2,  // a stream of requests, one reply
  kBidiStreaming = 3,    // a stream each way
};

// "unary", "server-streaming", "client-streaming" or "bidi-streaming".
std::string_view MethodKindName(MethodKind kind);

struct MethodDescriptor {
  std::string_view name;  // "Add": the gRPC method name.
  uint32_t id = 0;        // The method's ordinal, stable across versions.
  bool oneway = false;
  MethodKind kind = MethodKind::kUnary;
  // A handle method: its request or reply can carry file descriptors
  // (docs/handles.md), which only the in-process and local transports
  // carry.
  bool handles = false;

  bool streaming() const { return kind != MethodKind::kUnary; }
  bool client_streams() const {
    return kind == MethodKind::kClientStreaming ||
           kind == MethodKind::kBidiStreaming;
  }
  bool server_streams() const {
    return kind == MethodKind::kServerStreaming ||
           kind == MethodKind::kBidiStreaming;
  }
};

struct InterfaceVersion {
  uint32_t major = 0;
  uint32_t minor = 0;
};

struct InterfaceDescriptor {
  std::string_view full_name;  // "example.calc.Calculator".
  std::string_view uuid;       // Lower-case 8-4-4-4-12.
  InterfaceVersion version;
  absl::Span<const MethodDescriptor> methods;

  // Returns the method with ordinal `id`, or nullptr.
  const MethodDescriptor* FindMethod(uint32_t id) const;
  // Returns the method called `name`, or nullptr.
  const MethodDescriptor* FindMethodByName(std::string_view name) const;
  // "/example.calc.Calculator/Add", the gRPC path of method `m`.
  std::string MethodPath(const MethodDescriptor& m) const;
};

// The bind check every transport applies when a client binds to an
// interface: same uuid and same major version. Minor versions may differ
// either way. The error names both sides' versions.
absl::Status CheckInterfaceCompatible(std::string_view full_name,
                                      std::string_view client_uuid,
                                      InterfaceVersion client_version,
                                      std::string_view server_uuid,
                                      InterfaceVersion server_version);

}  // namespace lpc

#endif  // LPC_RUNTIME_INTERFACE_H_
