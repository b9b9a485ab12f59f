// foo.lpc.cc: the interface descriptor, the per-method dispatch functions
// and the service class's Dispatch.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

void Emitter::EmitDispatchFn(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  const pb::Descriptor* req =
      Message(InPackage(RequestMessageName(m)));
  const pb::Descriptor* resp =
      Message(InPackage(ResponseMessageName(m)));
  if (req == nullptr || resp == nullptr) return;
  cc_ += "::absl::Status " + m.name + "_Dispatch(" + ns_ + iface.name +
         "Service& lpc_service, ::lpc::CallContext& lpc_ctx, "
         "::std::string_view lpc_request, ::std::string* lpc_response) {\n";
  cc_ += "  auto lpc_fail = [](const ::std::string& lpc_what) {\n";
  cc_ += "    return ::absl::InvalidArgumentError(" +
         CppString("lpc: bad request to " + MethodPath(iface, m) + ": ") +
         " + lpc_what);\n  };\n";
  cc_ += "  " + cpp::QualifiedClassName(req) + " lpc_msg;\n";
  cc_ += "  if (lpc_request.size() > static_cast<size_t>(INT_MAX) ||\n"
         "      !lpc_msg.ParseFromArray(lpc_request.data(),\n"
         "                              static_cast<int>(lpc_request.size()))) {\n"
         "    return lpc_fail(\"it does not parse\");\n  }\n";
  FailFn fail = [](const std::string& what) {
    return "return lpc_fail(" + what + ");";
  };
  std::string args = "lpc_ctx";
  const bool handles = m.carries_handles();
  if (handles) {
    // The request's descriptors: each taken out exactly once, and all of
    // them named (docs/handles.md, "Checks on receipt").
    cc_ += "  ::lpc::HandleTable& lpc_handles =\n"
           "      ::lpc::internal::CallHandles::request(lpc_ctx);\n";
    handles_var_ = "lpc_handles";
  }
  EmitUnpackRequest(m, req, fail, 2, &args);
  if (handles) {
    cc_ += "  if (::absl::Status lpc_st = lpc_handles.CheckAllTaken(); !lpc_st.ok()) {\n"
           "    return lpc_st;\n  }\n";
  }
  if (m.oneway) {
    cc_ += "  lpc_service." + m.name + "(" + args + ");\n";
    cc_ += "  lpc_response->clear();\n  return ::absl::OkStatus();\n}\n\n";
    return;
  }
  if (m.return_type.kind == Kind::kVoid) {
    cc_ += "  ::absl::Status lpc_status = lpc_service." + m.name + "(" + args +
           ");\n";
    cc_ += "  if (!lpc_status.ok()) return lpc_status;\n";
  } else {
    cc_ += "  " + SyncReturn(m) + " lpc_result = lpc_service." + m.name + "(" +
           args + ");\n";
    cc_ += "  if (!lpc_result.ok()) return lpc_result.status();\n";
  }
  bool request_holds_memory = false;
  for (const ParamDecl& p : m.params) {
    if (p.direction != ParamDirection::kOut && !ByValue(p.type)) {
      request_holds_memory = true;
    }
  }
  // Large buffers freed before the reply's is allocated can be reused for
  // it (warm pages instead of fresh ones).
  const std::string free_request =
      request_holds_memory
          ? "  lpc_msg = " + cpp::QualifiedClassName(req) +
                "();  // Frees the request's buffers before the reply's.\n"
          : std::string();
  if (const pb::FieldDescriptor* f = DirectReplyField(m, resp)) {
    // The reply is the handler's bytes and nothing else: written straight
    // into the response buffer (which may already have the capacity),
    // byte for byte as protobuf would write it, without a reply message
    // and without zero-filling the buffer first.
    const std::string number = std::to_string(f->number());
    cc_ += "  const ::std::string& lpc_value = *lpc_result;\n";
    cc_ += free_request;
    cc_ += "  lpc_response->clear();\n";
    cc_ += "  if (lpc_value.empty()) return ::absl::OkStatus();\n";
    cc_ += "  const size_t lpc_size = lpc_FieldSize(" + number +
           ", lpc_value.size());\n";
    cc_ += "  if (lpc_size > static_cast<size_t>(INT_MAX)) {\n";
    cc_ += "    return ::absl::InternalError(" +
           CppString("lpc: cannot serialize the reply of " +
                     MethodPath(iface, m)) +
           ");\n  }\n";
    cc_ += "  lpc_response->reserve(lpc_size);\n";
    cc_ += "  lpc_AppendBytes(" + number + ", lpc_value, lpc_response);\n";
    cc_ += "  return ::absl::OkStatus();\n}\n\n";
    return;
  }
  cc_ += "  " + cpp::QualifiedClassName(resp) + " lpc_out;\n";
  if (handles) {
    cc_ += "  ::lpc::HandleTable& lpc_reply_handles =\n"
           "      ::lpc::internal::CallHandles::reply(lpc_ctx);\n"
           "  lpc_reply_handles.Clear();\n";
    handles_var_ = "lpc_reply_handles";
  }
  if (m.return_type.kind != Kind::kVoid) {
    cc_ += ToProto(m.return_type, Field(resp, kResultFieldName), "lpc_out",
                   "(*lpc_result)", 2, /*move=*/true);
  }
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kIn) continue;
    cc_ += ToProto(p.type, Field(resp, p.name), "lpc_out", P(i), 2,
                   /*move=*/true);
  }
  cc_ += free_request;
  cc_ += "  lpc_response->clear();\n";
  cc_ += "  if (!lpc_out.SerializeToString(lpc_response)) {\n";
  cc_ += "    return ::absl::InternalError(" +
         CppString("lpc: cannot serialize the reply of " + MethodPath(iface, m)) +
         ");\n  }\n";
  cc_ += "  return ::absl::OkStatus();\n}\n\n";
}

void Emitter::EmitServiceMethods(const idl::InterfaceDecl& iface) {
  std::string cls = iface.name + "Service";
  std::string impl = "lpc_" + iface.name;
  cc_ += "const ::lpc::InterfaceDescriptor& " + cls + "::Descriptor() {\n";
  cc_ += "  return " + impl + "::kDescriptor;\n}\n\n";
  cc_ += "const ::lpc::InterfaceDescriptor& " + cls + "::descriptor() const {\n";
  cc_ += "  return " + impl + "::kDescriptor;\n}\n\n";
  cc_ += "::absl::Status " + cls +
         "::Dispatch(uint32_t method_id, ::lpc::CallContext& ctx,\n"
         "    ::std::string_view request, ::std::string* response) {\n";
  cc_ += "  if (response == nullptr) {\n"
         "    return ::absl::InvalidArgumentError(\"lpc: Dispatch needs a response buffer\");\n"
         "  }\n";
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
             "_Dispatch(*this, ctx, request, response);\n";
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
    if (!m.client_streaming()) EmitEncode(iface, m);
    if (!m.oneway && !m.server_streaming()) EmitDecode(iface, m);
    if (UsesStartCall(m)) {
      EmitStartFn(iface, m);
    } else {
      EmitDispatchFn(iface, m);
    }
  }
  cc_ += "}  // namespace " + impl + "\n\n";
}

}  // namespace lpc::codegen::internal
