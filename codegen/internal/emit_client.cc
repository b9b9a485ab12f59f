// foo.lpc.cc: the client class, and the future form of the stubs (the
// unary ones are in emit_unary.cc, the streaming ones in emit_streams.cc).
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

bool Emitter::HasBufferArg(const idl::InterfaceDecl& iface) {
  for (const MethodDecl& m : iface.methods) {
    for (const ParamDecl& p : m.params) {
      if (p.type.kind == Kind::kBuffer) return true;
    }
  }
  return false;
}

std::string Emitter::EncodeArgs(const MethodDecl& m, bool sync) {
  std::string args;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kOut) continue;
    if (p.direction == ParamDirection::kInOut && !sync) {
      args = Join(args, "&" + P(i));
    } else {
      args = Join(args, P(i));
    }
  }
  if (m.carries_handles()) {
    args = Join(args, "::lpc::internal::CallHandles::request(*lpc_ctx)");
  }
  return Join(args, "&lpc_request");
}

void Emitter::EmitClientMethods(const idl::InterfaceDecl& iface, size_t index) {
  std::string cls = iface.name + "Client";
  std::string impl = "lpc_" + iface.name;
  cc_ += "const ::lpc::InterfaceDescriptor& " + cls + "::Descriptor() {\n";
  cc_ += "  return " + impl + "::kDescriptor;\n}\n\n";
  cc_ += cls + "::" + cls + "(::std::shared_ptr<::lpc::Channel> channel)\n";
  cc_ += "    : channel_(::std::move(channel)) {}\n\n";
  if (HasBufferArg(iface)) {
    cc_ += "::absl::StatusOr<::lpc::Buffer> " + cls + "::NewBuffer(size_t lpc_size) {\n";
    cc_ += "  if (channel_ == nullptr) {\n    return ::absl::FailedPreconditionError(" +
           CppString("lpc: " + cls + " was constructed without a channel") +
           ");\n  }\n";
    cc_ += "  return channel_->NewBuffer(lpc_size);\n}\n\n";
  }
  for (size_t mi = 0; mi < iface.methods.size(); ++mi) {
    const MethodDecl& m = iface.methods[mi];
    if (m.streaming()) {
      EmitStreamingClientMethod(iface, m, mi);
      continue;
    }
    EmitUnaryClientMethods(iface, m, mi);
  }
  (void)index;
}

// `<Method>Future`: the async form's result through a promise.
void Emitter::EmitClientFuture(const MethodDecl& m, const std::string& cls,
                               const std::string& result) {
  const std::string fut = "::std::future<::absl::StatusOr<" + result + ">>";
  cc_ += fut + " " + cls + "::" + m.name + "Future(" +
         Join(InputParamList(m, P), "::lpc::CallContext* lpc_ctx") + ") {\n";
  cc_ += "  auto lpc_promise =\n      ::std::make_shared<::std::promise<::absl::StatusOr<" +
         result + ">>>();\n";
  cc_ += "  " + fut + " lpc_future = lpc_promise->get_future();\n";
  std::string inputs;
  for (size_t i = 0; i < m.params.size(); ++i) {
    if (m.params[i].direction == ParamDirection::kOut) continue;
    inputs = Join(inputs, m.params[i].type.kind == Kind::kBuffer
                              ? "::std::move(" + P(i) + ")"
                              : P(i));
  }
  cc_ += "  " + m.name + "Async(" +
         Join(inputs, "[lpc_promise](::absl::StatusOr<" + result +
                          "> lpc_r) {\n        lpc_promise->set_value(::std::move(lpc_r));\n      }") +
         ",\n      lpc_ctx);\n";
  cc_ += "  return lpc_future;\n}\n\n";
}

}  // namespace lpc::codegen::internal
