// foo.lpc.cc: the interface descriptor, the per-method code, and the
// service class's DispatchWith.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

void Emitter::EmitServiceMethods(const idl::InterfaceDecl& iface) {
  std::string cls = iface.name + "Service";
  std::string impl = "lpc_" + iface.name;
  cc_ += "const ::lpc::InterfaceDescriptor& " + cls + "::Descriptor() {\n";
  cc_ += "  return " + impl + "::kDescriptor;\n}\n\n";
  cc_ += "const ::lpc::InterfaceDescriptor& " + cls + "::descriptor() const {\n";
  cc_ += "  return " + impl + "::kDescriptor;\n}\n\n";
  cc_ += "::absl::Status " + cls +
         "::DispatchWith(uint32_t method_id, ::lpc::CallContext& ctx,\n"
         "    ::lpc::ReceivedMessage& request, ::lpc::ReplySink& reply) {\n";
  if (!iface.methods.empty()) {
    cc_ += "  switch (method_id) {\n";
    for (const MethodDecl& m : iface.methods) {
      cc_ += "    case " + std::to_string(m.ordinal) + ":\n";
      if (UsesStartCall(m)) {
        cc_ += "      return ::absl::UnimplementedError(" +
               CppString("lpc: " + MethodPath(iface, m) +
                         " is streaming or [async]: it runs through "
                         "StartCall, which this transport does not call") +
               ");\n";
        continue;
      }
      cc_ += "      return " + impl + "::" + m.name +
             "_DispatchWith(*this, ctx, request, reply);\n";
    }
    cc_ += "    default:\n      break;\n  }\n";
  }
  std::string full = InPackage(iface.name);
  cc_ += "  return ::absl::UnimplementedError(" +
         CppString("lpc: " + full + " has no method with id ") +
         " +\n                                     ::std::to_string(method_id));\n}\n\n";
  if (AnyStartCall(iface)) EmitStartCall(iface);
}

void Emitter::EmitInterfaceImpl(const idl::InterfaceDecl& iface) {
  std::string impl = "lpc_" + iface.name;
  std::string full = InPackage(iface.name);
  cc_ += "namespace " + impl + " {\n\n";
  if (!iface.methods.empty()) {
    cc_ += "constexpr ::lpc::MethodDescriptor kMethods[] = {\n";
    for (const MethodDecl& m : iface.methods) {
      cc_ += "    {" + CppString(m.name) + ", " + std::to_string(m.ordinal) +
             ", " + (m.oneway ? "true" : "false") + ", " +
             MethodKindEnumerator(m) + (m.carries_handles() ? ", true" : "") +
             "},\n";
    }
    cc_ += "};\n";
  }
  cc_ += "constexpr ::lpc::InterfaceDescriptor kDescriptor = {\n";
  cc_ += "    " + CppString(full) + ",\n";
  cc_ += "    " + CppString(iface.uuid) + ",\n";
  cc_ += "    {" + std::to_string(iface.version_major) + ", " +
         std::to_string(iface.version_minor) + "},\n";
  cc_ += std::string("    ") +
         (iface.methods.empty()
              ? "::absl::Span<const ::lpc::MethodDescriptor>()"
              : "::absl::Span<const ::lpc::MethodDescriptor>(kMethods)") +
         ",\n};\n\n";
  for (const MethodDecl& m : iface.methods) {
    if (m.streaming()) {
      // Streams keep the string path (docs/zero-copy.md).
      if (!m.client_streaming()) EmitEncode(iface, m);
      if (!m.server_streaming()) EmitDecode(iface, m);
      EmitStartFn(iface, m);
      continue;
    }
    EmitUnaryWire(iface, m);
    if (m.async) EmitStartFn(iface, m);
  }
  cc_ += "}  // namespace " + impl + "\n\n";
}

}  // namespace lpc::codegen::internal
