// foo.lpc.cc: unary methods on the zero-copy path (docs/zero-copy.md): per
// method, the request and reply MessageWriters and readers (emit_wire.cc),
// the server's <M>_DispatchWith, and the client stubs that call
// Channel::CallWith / StartCallWith / SendOnewayWith.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

std::vector<Emitter::WireField> Emitter::RequestFields(const MethodDecl& m,
                                                       bool server) {
  std::vector<WireField> out;
  const pb::Descriptor* req = Message(InPackage(RequestMessageName(m)));
  if (req == nullptr) return out;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kOut) continue;
    const pb::FieldDescriptor* f = Field(req, p.name);
    if (f == nullptr) continue;
    out.push_back({static_cast<uint32_t>(f->number()), &p.type,
                   server ? P(i) : "", p.name,
                   p.direction == ParamDirection::kInOut});
  }
  return out;
}

std::vector<Emitter::WireField> Emitter::ReplyFields(const MethodDecl& m,
                                                     const std::string& prefix) {
  std::vector<WireField> out;
  const pb::Descriptor* resp = Message(InPackage(ResponseMessageName(m)));
  if (resp == nullptr) return out;
  if (m.return_type.kind != Kind::kVoid) {
    if (const pb::FieldDescriptor* f = Field(resp, kResultFieldName)) {
      out.push_back({static_cast<uint32_t>(f->number()), &m.return_type,
                     prefix.empty() ? "" : prefix + "value", "the return value",
                     false});
    }
  }
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kIn) continue;
    if (const pb::FieldDescriptor* f = Field(resp, p.name)) {
      out.push_back({static_cast<uint32_t>(f->number()), &p.type,
                     prefix.empty() ? "" : prefix + p.name, p.name, false});
    }
  }
  return out;
}

void Emitter::EmitUnaryWire(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  const bool handles = m.carries_handles();
  const std::string path = MethodPath(iface, m);
  // The client's side: the request writer and the reply reader.
  EmitWriterClass(m.name + "_RequestWriter", RequestFields(m, false), handles);
  if (!m.oneway) {
    const std::string result = ns_ + iface.name + "Client::" + m.name + "Result";
    cc_ += "::absl::Status " + m.name +
           "_ReadReply(::lpc::ReceivedMessage& lpc_reply, " + result + "* lpc_result" +
           (handles ? ", ::lpc::HandleTable& lpc_handles" : "") + ") {\n";
    cc_ += "  [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n";
    cc_ += "    return ::absl::InternalError(" +
           CppString("lpc: malformed reply from " + path + ": ") + " + lpc_what);\n  };\n";
    FailFn fail = [](const std::string& what) { return "return lpc_fail(" + what + ");"; };
    EmitReadFields(ReplyFields(m, "lpc_result->"), "lpc_reply", fail, 2);
    if (handles) {
      cc_ += "  return lpc_handles.CheckAllTaken();\n}\n\n";
    } else {
      cc_ += "  return ::absl::OkStatus();\n}\n\n";
    }
  }
  if (UsesStartCall(m)) return;  // [async]: served through StartCall.
  // The server's side: the reply writer and <M>_DispatchWith.
  if (!m.oneway) EmitWriterClass(m.name + "_ReplyWriter", ReplyFields(m, ""), handles);
  cc_ += "::absl::Status " + m.name + "_DispatchWith(" + ns_ + iface.name +
         "Service& lpc_service, ::lpc::CallContext& lpc_ctx,\n"
         "    ::lpc::ReceivedMessage& lpc_request, ::lpc::ReplySink& lpc_reply) {\n";
  cc_ += "  [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n";
  cc_ += "    return ::absl::InvalidArgumentError(" +
         CppString("lpc: bad request to " + path + ": ") + " + lpc_what);\n  };\n";
  if (handles) {
    // The request's descriptors: each taken out exactly once, and all of
    // them named (docs/handles.md, "Checks on receipt").
    cc_ += "  ::lpc::HandleTable& lpc_handles =\n"
           "      ::lpc::internal::CallHandles::request(lpc_ctx);\n";
  }
  std::string args = "lpc_ctx";
  std::string reply_args;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    cc_ += "  " + CppType(p.type) + " " + P(i) + "{};\n";
    args += p.direction == ParamDirection::kIn ? ", " + P(i) : ", &" + P(i);
  }
  cc_ += "  {\n";
  FailFn fail = [](const std::string& what) { return "return lpc_fail(" + what + ");"; };
  EmitReadFields(RequestFields(m, true), "lpc_request", fail, 4);
  cc_ += "  }\n";
  if (handles) {
    cc_ += "  if (::absl::Status lpc_st = lpc_handles.CheckAllTaken(); !lpc_st.ok()) {\n"
           "    return lpc_st;\n  }\n";
  }
  if (m.oneway) {
    cc_ += "  lpc_service." + m.name + "(" + args + ");\n";
    cc_ += "  (void)lpc_reply;\n  return ::absl::OkStatus();\n}\n\n";
    return;
  }
  if (m.return_type.kind == Kind::kVoid) {
    cc_ += "  ::absl::Status lpc_status = lpc_service." + m.name + "(" + args + ");\n";
    cc_ += "  if (!lpc_status.ok()) return lpc_status;\n";
  } else {
    cc_ += "  " + SyncReturn(m, /*handler=*/true) + " lpc_result = lpc_service." + m.name + "(" + args +
           ");\n";
    cc_ += "  if (!lpc_result.ok()) return lpc_result.status();\n";
    reply_args = "*lpc_result";
  }
  for (size_t i = 0; i < m.params.size(); ++i) {
    if (m.params[i].direction != ParamDirection::kIn) reply_args = Join(reply_args, P(i));
  }
  if (handles) {
    cc_ += "  ::lpc::HandleTable& lpc_reply_handles =\n"
           "      ::lpc::internal::CallHandles::reply(lpc_ctx);\n"
           "  lpc_reply_handles.Clear();\n";
    reply_args = Join(reply_args, "lpc_reply_handles");
  }
  cc_ += "  const " + m.name + "_ReplyWriter lpc_writer" +
         (reply_args.empty() ? "" : "(" + reply_args + ")") + ";\n";
  if (handles) cc_ += "  if (!lpc_writer.status().ok()) return lpc_writer.status();\n";
  cc_ += "  return lpc_reply.Write(lpc_writer);\n}\n\n";
}

void Emitter::EmitUnaryClientMethods(const idl::InterfaceDecl& iface,
                                     const MethodDecl& m, size_t mi) {
  const std::string cls = iface.name + "Client";
  const std::string impl = "lpc_" + iface.name;
  const std::string method_ref =
      impl + "::kDescriptor, " + impl + "::kMethods[" + std::to_string(mi) + "]";
  const std::string no_channel =
      "::absl::FailedPreconditionError(" +
      CppString("lpc: " + cls + " was constructed without a channel") + ")";
  const bool handles = m.carries_handles();
  const std::string reset =
      handles ? "::lpc::internal::CallHandles::Reset(*lpc_ctx);\n" : "";
  // The writer's arguments: `sync` passes [in,out] pointers as they are,
  // async the address of its copy.
  auto writer = [&](bool sync, const std::string& pad) {
    std::string args;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const ParamDecl& p = m.params[i];
      if (p.direction == ParamDirection::kOut) continue;
      args = Join(args, p.direction == ParamDirection::kInOut && !sync ? "&" + P(i) : P(i));
    }
    if (handles) args = Join(args, "::lpc::internal::CallHandles::request(*lpc_ctx)");
    return pad + "const " + impl + "::" + m.name + "_RequestWriter lpc_request" +
           (args.empty() ? "" : "(" + args + ")") + ";\n";
  };
  const std::string read_handles =
      handles ? ",\n            ::lpc::internal::CallHandles::reply(*lpc_ctx)" : "";
  const std::string sync_ctx =
      "  ::std::optional<::lpc::CallContext> lpc_own_ctx;\n"
      "  if (lpc_ctx == nullptr) lpc_ctx = &lpc_own_ctx.emplace();\n" +
      (handles ? "  " + reset : std::string());
  const std::string check_writer =
      handles ? "  if (!lpc_request.status().ok()) {\n    " + reset +
                    "    return lpc_request.status();\n  }\n"
              : "";
  const std::string sync_head =
      "(" + Join(ParamList(m, P, /*client=*/true), "::lpc::CallContext* lpc_ctx") +
      ") {\n" +
      "  if (channel_ == nullptr) return " + no_channel + ";\n" + sync_ctx +
      writer(true, "  ") + check_writer;
  if (m.oneway) {
    cc_ += "::absl::Status " + cls + "::" + m.name + sync_head;
    if (handles) {
      cc_ += "  const ::absl::Status lpc_status = channel_->SendOnewayWith(\n      " +
             method_ref + ", lpc_ctx, lpc_request);\n  " + reset +
             "  return lpc_status;\n}\n\n";
    } else {
      cc_ += "  return channel_->SendOnewayWith(" + method_ref +
             ", lpc_ctx,\n                                lpc_request);\n}\n\n";
    }
    return;
  }
  const std::string result = cls + "::" + m.name + "Result";
  // Sync.
  cc_ += SyncReturn(m) + " " + cls + "::" + m.name + sync_head;
  cc_ += "  " + result + " lpc_result;\n";
  cc_ += "  const ::absl::Status lpc_status = channel_->CallWith(\n      " + method_ref +
         ", lpc_ctx, lpc_request,\n"
         "      [&](::lpc::ReceivedMessage& lpc_reply) {\n"
         "        return " + impl + "::" + m.name + "_ReadReply(lpc_reply, &lpc_result" +
         read_handles + ");\n      });\n";
  if (handles) cc_ += "  " + reset;
  cc_ += "  if (!lpc_status.ok()) return lpc_status;\n";
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kIn) continue;
    cc_ += "  if (" + P(i) + " != nullptr) *" + P(i) + " = ::std::move(lpc_result." +
           p.name + ");\n";
  }
  cc_ += m.return_type.kind == Kind::kVoid
             ? "  return ::absl::OkStatus();\n}\n\n"
             : "  return ::std::move(lpc_result.value);\n}\n\n";
  // Async.
  const std::string callback = "::std::function<void(::absl::StatusOr<" + result + ">)>";
  cc_ += "void " + cls + "::" + m.name + "Async(" +
         Join(InputParamList(m, P), callback + " lpc_done, ::lpc::CallContext* lpc_ctx") +
         ") {\n";
  cc_ += "  if (!lpc_done) lpc_done = [](::absl::StatusOr<" + result + ">) {};\n";
  cc_ += "  if (channel_ == nullptr) {\n    lpc_done(" + no_channel + ");\n    return;\n  }\n";
  cc_ += "  // A context made here lives in the callback, so until `done` ran.\n";
  cc_ += "  ::std::shared_ptr<::lpc::CallContext> lpc_own_ctx;\n";
  cc_ += "  if (lpc_ctx == nullptr) {\n"
         "    lpc_own_ctx = ::std::make_shared<::lpc::CallContext>();\n"
         "    lpc_ctx = lpc_own_ctx.get();\n  }\n";
  if (handles) cc_ += "  " + reset;
  cc_ += writer(false, "  ");
  if (handles) {
    cc_ += "  if (!lpc_request.status().ok()) {\n    " + reset +
           "    lpc_done(lpc_request.status());\n    return;\n  }\n";
    cc_ += "  // The context may be gone once `done` ran: its tables are closed in\n"
           "  // the callback, before `done`.\n";
  }
  cc_ += "  channel_->StartCallWith(\n      " + method_ref + ", lpc_ctx, lpc_request,\n"
         "      [lpc_done = ::std::move(lpc_done),\n"
         "       lpc_own_ctx = ::std::move(lpc_own_ctx)" +
         std::string(handles ? ", lpc_ctx" : "") +
         "](\n          ::absl::StatusOr<::lpc::ReceivedMessage> lpc_reply) {\n";
  cc_ += "        if (!lpc_reply.ok()) {\n" +
         (handles ? "          " + reset : std::string()) +
         "          lpc_done(lpc_reply.status());\n          return;\n        }\n";
  cc_ += "        " + result + " lpc_result;\n";
  cc_ += "        ::absl::Status lpc_status = " + impl + "::" + m.name +
         "_ReadReply(*lpc_reply, &lpc_result" + read_handles + ");\n";
  if (handles) cc_ += "        " + reset;
  cc_ += "        if (!lpc_status.ok()) {\n"
         "          lpc_done(::std::move(lpc_status));\n          return;\n        }\n"
         "        lpc_done(::std::move(lpc_result));\n      });\n}\n\n";
  EmitClientFuture(m, cls, result);
}

}  // namespace lpc::codegen::internal
