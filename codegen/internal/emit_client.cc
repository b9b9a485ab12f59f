// foo.lpc.cc: the client stubs (sync, async and future forms).
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

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
  std::string no_channel =
      "::absl::FailedPreconditionError(" +
      CppString("lpc: " + cls + " was constructed without a channel") + ")";
  for (size_t mi = 0; mi < iface.methods.size(); ++mi) {
    const MethodDecl& m = iface.methods[mi];
    std::string method_ref =
        impl + "::kDescriptor, " + impl + "::kMethods[" + std::to_string(mi) + "]";
    std::string encode = "  ::std::string lpc_request;\n"
                         "  ::absl::Status lpc_status = " + impl + "::" +
                         m.name + "_Encode(";
    if (m.streaming()) {
      EmitStreamingClientMethod(iface, m, mi);
      continue;
    }
    if (m.carries_handles()) {
      EmitHandleClientMethods(iface, m, mi);
      continue;
    }
    if (m.oneway) {
      cc_ += "::absl::Status " + cls + "::" + m.name + "(" +
             Join(ParamList(m, P), "::lpc::CallContext* lpc_ctx") + ") {\n";
      cc_ += "  if (channel_ == nullptr) return " + no_channel + ";\n";
      cc_ += encode + EncodeArgs(m, true) + ");\n";
      cc_ += "  if (!lpc_status.ok()) return lpc_status;\n";
      cc_ += "  ::std::optional<::lpc::CallContext> lpc_own_ctx;\n";
      cc_ += "  if (lpc_ctx == nullptr) lpc_ctx = &lpc_own_ctx.emplace();\n";
      cc_ += "  return channel_->SendOneway(" + method_ref +
             ", lpc_ctx,\n                              ::std::move(lpc_request));\n}\n\n";
      continue;
    }
    std::string result = cls + "::" + m.name + "Result";
    // Sync.
    cc_ += SyncReturn(m) + " " + cls + "::" + m.name + "(" +
           Join(ParamList(m, P), "::lpc::CallContext* lpc_ctx") + ") {\n";
    cc_ += "  if (channel_ == nullptr) return " + no_channel + ";\n";
    cc_ += encode + EncodeArgs(m, true) + ");\n";
    cc_ += "  if (!lpc_status.ok()) return lpc_status;\n";
    cc_ += "  ::std::optional<::lpc::CallContext> lpc_own_ctx;\n";
    cc_ += "  if (lpc_ctx == nullptr) lpc_ctx = &lpc_own_ctx.emplace();\n";
    cc_ += "  ::absl::StatusOr<" + result + "> lpc_result = " + impl + "::" +
           m.name + "_Decode(\n      channel_->Call(" + method_ref +
           ", lpc_ctx, ::std::move(lpc_request)));\n";
    cc_ += "  if (!lpc_result.ok()) return lpc_result.status();\n";
    for (size_t i = 0; i < m.params.size(); ++i) {
      const ParamDecl& p = m.params[i];
      if (p.direction == ParamDirection::kIn) continue;
      cc_ += "  if (" + P(i) + " != nullptr) *" + P(i) +
             " = ::std::move(lpc_result->" + p.name + ");\n";
    }
    if (m.return_type.kind == Kind::kVoid) {
      cc_ += "  return ::absl::OkStatus();\n}\n\n";
    } else {
      cc_ += "  return ::std::move(lpc_result->value);\n}\n\n";
    }
    // Async.
    std::string callback = "::std::function<void(::absl::StatusOr<" + result + ">)>";
    cc_ += "void " + cls + "::" + m.name + "Async(" +
           Join(InputParamList(m, P),
                callback + " lpc_done, ::lpc::CallContext* lpc_ctx") +
           ") {\n";
    cc_ += "  if (!lpc_done) lpc_done = [](::absl::StatusOr<" + result + ">) {};\n";
    cc_ += "  if (channel_ == nullptr) {\n    lpc_done(" + no_channel +
           ");\n    return;\n  }\n";
    cc_ += encode + EncodeArgs(m, false) + ");\n";
    cc_ += "  if (!lpc_status.ok()) {\n    lpc_done(::std::move(lpc_status));\n"
           "    return;\n  }\n";
    cc_ += "  // A context made here lives in the callback, so until `done` ran.\n";
    cc_ += "  ::std::shared_ptr<::lpc::CallContext> lpc_own_ctx;\n";
    cc_ += "  if (lpc_ctx == nullptr) {\n"
           "    lpc_own_ctx = ::std::make_shared<::lpc::CallContext>();\n"
           "    lpc_ctx = lpc_own_ctx.get();\n  }\n";
    cc_ += "  channel_->StartCall(\n      " + method_ref +
           ", lpc_ctx, ::std::move(lpc_request),\n"
           "      [lpc_done = ::std::move(lpc_done),\n"
           "       lpc_own_ctx = ::std::move(lpc_own_ctx)](\n"
           "          ::absl::StatusOr<::std::string> lpc_reply) {\n"
           "        lpc_done(" + impl + "::" + m.name +
           "_Decode(::std::move(lpc_reply)));\n      });\n}\n\n";
    EmitClientFuture(m, cls, result);
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
    if (m.params[i].direction != ParamDirection::kOut) inputs = Join(inputs, P(i));
  }
  cc_ += "  " + m.name + "Async(" +
         Join(inputs, "[lpc_promise](::absl::StatusOr<" + result +
                          "> lpc_r) {\n        lpc_promise->set_value(::std::move(lpc_r));\n      }") +
         ",\n      lpc_ctx);\n";
  cc_ += "  return lpc_future;\n}\n\n";
}

}  // namespace lpc::codegen::internal
