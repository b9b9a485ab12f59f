// Streaming methods and [async] handlers: the client stubs that return the
// typed streams of runtime/stream.h, the handler declarations, and the
// service's StartCall, which runs a handler on a ServerStream through the
// runtime's Serve* functions.
//
// Per method M that runs through StartCall, the .lpc.cc holds, in the
// interface's lpc_<Interface> namespace:
//   M_EncodeUp / M_DecodeUp      a client-to-server stream message
//   M_EncodeDown / M_DecodeDown  a server-to-client stream message
//   M_DecodeRequest              the one request (unary, server-streaming)
//   M_EncodeReply / M_DecodeReply  the one reply (unary, client-streaming)
//   M_Start                      runs the handler
// (only those that the method's kind needs).
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

bool Emitter::AnyStartCall(const idl::InterfaceDecl& iface) {
  for (const MethodDecl& m : iface.methods) {
    if (UsesStartCall(m)) return true;
  }
  return false;
}

bool Emitter::AnyStartCall() const {
  for (const auto& iface : file_.interfaces) {
    if (AnyStartCall(*iface)) return true;
  }
  return false;
}

std::string Emitter::MethodKindEnumerator(const MethodDecl& m) {
  const char* kind = m.client_streaming()
                         ? (m.server_streaming() ? "kBidiStreaming"
                                                 : "kClientStreaming")
                         : (m.server_streaming() ? "kServerStreaming"
                                                 : "kUnary");
  return std::string("::lpc::MethodKind::") + kind;
}

std::string Emitter::StreamElement(const TypeRef& stream) {
  if (stream.kind != Kind::kStream || stream.args.size() != 1 ||
      stream.args[0].resolved_struct == nullptr) {
    Error(stream.loc, "internal: not a resolved stream<> type");
    return "void";
  }
  return StructClass(stream.args[0].resolved_struct);
}

std::string Emitter::StreamReply(const idl::InterfaceDecl& iface,
                                 const MethodDecl& m, bool qualified) {
  if (m.return_type.kind != Kind::kVoid) return CppType(m.return_type);
  return (qualified ? ns_ + iface.name + "Client::" : std::string()) + m.name +
         "Result";
}

std::string Emitter::ClientStreamType(const idl::InterfaceDecl& iface,
                                      const MethodDecl& m, bool qualified) {
  if (m.client_streaming() && m.server_streaming()) {
    return "::lpc::ClientReaderWriter<" + StreamElement(m.params[0].type) +
           ", " + StreamElement(m.return_type) + ">";
  }
  if (m.client_streaming()) {
    return "::lpc::ClientWriter<" + StreamElement(m.params[0].type) + ", " +
           StreamReply(iface, m, qualified) + ">";
  }
  return "::lpc::ClientReader<" + StreamElement(m.return_type) + ">";
}

// ------------------------------------------------------------------ header

void Emitter::EmitStreamingClientDecl(const idl::InterfaceDecl& iface,
                                      const MethodDecl& m) {
  auto idl_name = [&](size_t i) { return m.params[i].name; };
  std::string ctx = FreeName(m, "ctx");
  if (m.client_streaming() && !m.server_streaming()) {
    h_ += "  struct " + m.name + "Result {";
    if (m.return_type.kind == Kind::kVoid) {
      h_ += "};  // The reply (empty).\n";
    } else {
      h_ += "  // The reply.\n    " + CppType(m.return_type) +
            " value{};\n  };\n";
    }
  }
  if (m.client_streaming()) {
    h_ += m.server_streaming()
              ? "  // Streams both ways: Write, WritesDone, Read, then Finish.\n"
              : "  // Streams: Write each message, then Finish for the reply.\n";
    h_ += "  " + ClientStreamType(iface, m, false) + " " + m.name +
          "(::lpc::CallContext* " + ctx + " = nullptr);\n";
    return;
  }
  h_ += "  // Streams: Read until it returns false, then Finish.\n";
  h_ += "  " + ClientStreamType(iface, m, false) + " " + m.name + "(" +
        Join(ParamList(m, idl_name),
             "::lpc::CallContext* " + ctx + " = nullptr") +
        ");\n";
}

void Emitter::EmitStartCallHandlerDecl(const idl::InterfaceDecl& iface,
                                       const MethodDecl& m) {
  auto idl_name = [&](size_t i) { return m.params[i].name; };
  const std::string ctx = "::lpc::CallContext& " + FreeName(m, "ctx");
  const std::string call = FreeName(m, "call");
  const std::string up =
      m.client_streaming() ? StreamElement(m.params[0].type) : "";
  const std::string down =
      m.server_streaming() ? StreamElement(m.return_type) : "";
  const std::string stream_name =
      m.client_streaming() ? m.params[0].name : FreeName(m, "writer");
  if (m.async) {
    std::string handle;
    std::string inputs =
        m.client_streaming() ? "" : InputParamList(m, idl_name);
    if (m.client_streaming() && m.server_streaming()) {
      handle = "::lpc::AsyncServerReaderWriter<" + down + ", " + up + ">";
    } else if (m.client_streaming()) {
      handle = "::lpc::AsyncServerReader<" + up + ", " +
               StreamReply(iface, m, true) + ">";
    } else if (m.server_streaming()) {
      handle = "::lpc::AsyncServerStream<" + down + ">";
    } else {
      h_ += "  using " + m.name + "Result = " + iface.name + "Client::" +
            m.name + "Result;\n";
      handle = "::lpc::AsyncUnaryCall<" + m.name + "Result>";
    }
    h_ += "  // [async]: return at once; `" + call +
          "` finishes the call later, from\n  // any thread.\n";
    h_ += "  virtual void " + m.name + "(" + Join(handle + " " + call, inputs) +
          ") = 0;\n";
    return;
  }
  if (m.client_streaming() && m.server_streaming()) {
    h_ += "  virtual ::absl::Status " + m.name + "(" + ctx +
          ", ::lpc::ServerReaderWriter<" + down + ", " + up + ">& " +
          stream_name + ") = 0;\n";
  } else if (m.client_streaming()) {
    h_ += "  virtual " + SyncReturn(m) + " " + m.name + "(" + ctx +
          ", ::lpc::ServerReader<" + up + ">& " + stream_name + ") = 0;\n";
  } else {
    h_ += "  virtual ::absl::Status " + m.name + "(" +
          Join(Join(ctx, ParamList(m, idl_name)),
               "::lpc::ServerWriter<" + down + ">& " + stream_name) +
          ") = 0;\n";
  }
}

// ------------------------------------------------------------------ client

void Emitter::EmitStreamingClientMethod(const idl::InterfaceDecl& iface,
                                        const MethodDecl& m, size_t index) {
  const std::string cls = iface.name + "Client";
  const std::string impl = "lpc_" + iface.name;
  const std::string type = ClientStreamType(iface, m, true);
  const std::string method_ref = impl + "::kDescriptor, " + impl +
                                 "::kMethods[" + std::to_string(index) + "]";
  if (m.client_streaming()) {
    cc_ += type + " " + cls + "::" + m.name +
           "(::lpc::CallContext* lpc_ctx) {\n";
    cc_ += "  return " + type + "::Start(\n      channel_, " + method_ref +
           ", lpc_ctx,\n      &" + impl + "::" + m.name + "_EncodeUp, &" +
           impl + "::" + m.name +
           (m.server_streaming() ? "_DecodeDown" : "_DecodeReply") +
           ");\n}\n\n";
    return;
  }
  cc_ += type + " " + cls + "::" + m.name + "(" +
         Join(ParamList(m, P), "::lpc::CallContext* lpc_ctx") + ") {\n";
  cc_ += "  ::std::string lpc_request;\n";
  cc_ += "  ::absl::Status lpc_status = " + impl + "::" + m.name +
         "_Encode(" + EncodeArgs(m, true) + ");\n";
  cc_ += "  ::absl::StatusOr<::std::string> lpc_encoded =\n"
         "      lpc_status.ok() ? ::absl::StatusOr<::std::string>(\n"
         "                            ::std::move(lpc_request))\n"
         "                      : ::absl::StatusOr<::std::string>(lpc_status);\n";
  cc_ += "  return " + type + "::Start(\n      channel_, " + method_ref +
         ", lpc_ctx,\n      ::std::move(lpc_encoded), &" + impl + "::" +
         m.name + "_DecodeDown);\n}\n\n";
}

// ------------------------------------------------------------------ server

void Emitter::EmitUnpackRequest(const MethodDecl& m, const pb::Descriptor* req,
                                const FailFn& fail, int indent,
                                std::string* args, bool inputs_only) {
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (inputs_only && p.direction == ParamDirection::kOut) continue;
    const pb::FieldDescriptor* f =
        p.direction == ParamDirection::kOut ? nullptr : Field(req, p.name);
    if (p.direction == ParamDirection::kIn && DirectWritable(p.type) && f != nullptr) {
      // The handler takes a const reference: hand it the parsed field.
      std::string get = "lpc_msg." + cpp::FieldName(f) + "()";
      cc_ += ElemCheck(p.type, get, p.name, fail, indent);
      *args += ", " + get;
      continue;
    }
    cc_ += Pad(indent) + CppType(p.type) + " " + P(i) + "{};\n";
    if (p.direction != ParamDirection::kOut) {
      cc_ += FromProto(p.type, f, "lpc_msg", P(i), p.name, fail, indent,
                       /*move=*/true);
    }
    *args += p.direction == ParamDirection::kIn || inputs_only ? ", " + P(i)
                                                               : ", &" + P(i);
  }
}

void Emitter::EmitStartFn(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  const std::string path = MethodPath(iface, m);
  const std::string svc = ns_ + iface.name + "Service";
  const std::string result = ns_ + iface.name + "Client::" + m.name + "Result";
  const pb::Descriptor* req =
      m.client_streaming() ? nullptr : Message(InPackage(RequestMessageName(m)));
  const pb::Descriptor* resp =
      m.server_streaming() ? nullptr : Message(InPackage(ResponseMessageName(m)));
  const std::string bad_request =
      "::absl::InvalidArgumentError(" +
      CppString("lpc: bad request to " + path + ": ") + " + lpc_what)";
  const std::string bad_reply =
      "::absl::InternalError(" +
      CppString("lpc: malformed reply from " + path + ": ") + " + lpc_what)";

  // A stream message codec: `type` is the protobuf class, `error` the
  // status a bad message gets.
  auto codec = [&](const std::string& suffix, const TypeRef& elem,
                   const std::string& error) {
    const std::string type = StreamElement(elem);
    cc_ += "void " + m.name + "_Encode" + suffix + "(const " + type +
           "& lpc_m, ::std::string* lpc_out) {\n";
    cc_ += "  lpc_out->clear();\n  lpc_m.SerializeToString(lpc_out);\n}\n\n";
    cc_ += "::absl::Status " + m.name + "_Decode" + suffix +
           "(::std::string_view lpc_in, " + type + "* lpc_m) {\n";
    cc_ += "  [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n"
           "    return " + error + ";\n  };\n";
    cc_ += "  if (lpc_in.size() > static_cast<size_t>(INT_MAX) ||\n"
           "      !lpc_m->ParseFromArray(lpc_in.data(),\n"
           "                             static_cast<int>(lpc_in.size()))) {\n"
           "    return lpc_fail(\"a message does not parse\");\n  }\n";
    FailFn fail = [](const std::string& what) {
      return "return lpc_fail(" + what + ");";
    };
    cc_ += ElemCheck(elem.args[0], "(*lpc_m)", "message", fail, 2);
    cc_ += "  return ::absl::OkStatus();\n}\n\n";
  };
  if (m.client_streaming()) codec("Up", m.params[0].type, bad_request);
  if (m.server_streaming()) codec("Down", m.return_type, bad_reply);

  if (req != nullptr) {
    cc_ += "::absl::Status " + m.name + "_DecodeRequest(::std::string_view lpc_in, " +
           cpp::QualifiedClassName(req) + "* lpc_m) {\n";
    cc_ += "  if (lpc_in.size() > static_cast<size_t>(INT_MAX) ||\n"
           "      !lpc_m->ParseFromArray(lpc_in.data(),\n"
           "                             static_cast<int>(lpc_in.size()))) {\n"
           "    const ::std::string lpc_what = \"it does not parse\";\n"
           "    return " + bad_request + ";\n  }\n"
           "  return ::absl::OkStatus();\n}\n\n";
  }

  // The one reply: of a client-streaming method (its StreamReply type), or
  // of an [async] unary one (its <M>Result, with [out] parameters).
  const std::string reply_type =
      m.server_streaming()   ? std::string()
      : m.client_streaming() ? StreamReply(iface, m, true)
                             : result;
  if (resp != nullptr) {
    cc_ += "void " + m.name + "_EncodeReply(const " + reply_type +
           "& lpc_r, ::std::string* lpc_out) {\n";
    cc_ += "  " + cpp::QualifiedClassName(resp) + " lpc_msg;\n";
    const bool whole = m.client_streaming();
    if (m.return_type.kind != Kind::kVoid) {
      cc_ += ToProto(m.return_type, Field(resp, kResultFieldName), "lpc_msg",
                     whole ? "lpc_r" : "lpc_r.value", 2);
    }
    for (const ParamDecl& p : m.params) {
      if (p.direction == ParamDirection::kIn) continue;
      cc_ += ToProto(p.type, Field(resp, p.name), "lpc_msg", "lpc_r." + p.name,
                     2);
    }
    cc_ += "  lpc_out->clear();\n  lpc_msg.SerializeToString(lpc_out);\n}\n\n";
  }
  if (m.client_streaming() && !m.server_streaming()) {
    // The client's decoder: M_Decode (the unary reply decoder) into the
    // reply type.
    cc_ += "::absl::Status " + m.name + "_DecodeReply(::std::string_view lpc_in, " +
           reply_type + "* lpc_r) {\n";
    cc_ += "  ::absl::StatusOr<" + result + "> lpc_result =\n      " + m.name +
           "_Decode(::std::string(lpc_in));\n";
    cc_ += "  if (!lpc_result.ok()) return lpc_result.status();\n";
    if (m.return_type.kind != Kind::kVoid) {
      cc_ += "  *lpc_r = ::std::move(lpc_result->value);\n";
    } else {
      cc_ += "  (void)lpc_r;\n";
    }
    cc_ += "  return ::absl::OkStatus();\n}\n\n";
  }

  // M_Start.
  cc_ += "void " + m.name + "_Start(" + svc +
         "& lpc_service, ::std::shared_ptr<::lpc::ServerStream> lpc_call) {\n";
  const std::string up =
      m.client_streaming() ? StreamElement(m.params[0].type) : "";
  const std::string down =
      m.server_streaming() ? StreamElement(m.return_type) : "";
  const std::string req_class =
      req != nullptr ? cpp::QualifiedClassName(req) : "";
  const std::string call_args = "::std::move(lpc_call), ";
  if (m.client_streaming() && m.server_streaming()) {
    const std::string rw = "::lpc::ServerReaderWriter<" + down + ", " + up + ">";
    if (m.async) {
      cc_ += "  ::lpc::ServeAsyncBidiStreaming<" + down + ", " + up + ">(\n      " +
             call_args + "&" + m.name + "_DecodeUp, &" + m.name +
             "_EncodeDown,\n      [lpc_s = &lpc_service](::lpc::AsyncServerReaderWriter<" +
             down + ", " + up + "> lpc_async) {\n        lpc_s->" + m.name +
             "(::std::move(lpc_async));\n      });\n}\n\n";
    } else {
      cc_ += "  ::lpc::ServeBidiStreaming<" + down + ", " + up + ">(\n      " +
             call_args + "&" + m.name + "_DecodeUp, &" + m.name +
             "_EncodeDown,\n      [&lpc_service](::lpc::CallContext& lpc_ctx, " +
             rw + "& lpc_stream) {\n        return lpc_service." + m.name +
             "(lpc_ctx, lpc_stream);\n      });\n}\n\n";
    }
    return;
  }
  if (m.client_streaming()) {
    if (m.async) {
      cc_ += "  ::lpc::ServeAsyncClientStreaming<" + up + ", " + reply_type +
             ">(\n      " + call_args + "&" + m.name + "_DecodeUp, &" + m.name +
             "_EncodeReply,\n      [lpc_s = &lpc_service](::lpc::AsyncServerReader<" +
             up + ", " + reply_type + "> lpc_async) {\n        lpc_s->" +
             m.name + "(::std::move(lpc_async));\n      });\n}\n\n";
      return;
    }
    cc_ += "  ::lpc::ServeClientStreaming<" + up + ", " + reply_type +
           ">(\n      " + call_args + "&" + m.name + "_DecodeUp, &" + m.name +
           "_EncodeReply,\n      [&lpc_service](::lpc::CallContext& lpc_ctx,\n"
           "                     ::lpc::ServerReader<" + up +
           ">& lpc_reader) -> ::absl::StatusOr<" + reply_type + "> {\n";
    if (m.return_type.kind == Kind::kVoid) {
      cc_ += "        ::absl::Status lpc_status = lpc_service." + m.name +
             "(lpc_ctx, lpc_reader);\n"
             "        if (!lpc_status.ok()) return lpc_status;\n"
             "        return " + reply_type + "{};\n";
    } else {
      cc_ += "        return lpc_service." + m.name + "(lpc_ctx, lpc_reader);\n";
    }
    cc_ += "      });\n}\n\n";
    return;
  }
  // One request: unary [async], or server-streaming.
  if (req == nullptr) {
    cc_ += "}\n\n";
    return;
  }
  std::string args;
  if (!m.async) {
    // Synchronous server-streaming.
    cc_ += "  ::lpc::ServeServerStreaming<" + req_class + ", " + down +
           ">(\n      " + call_args + "&" + m.name + "_DecodeRequest, &" +
           m.name + "_EncodeDown,\n      [&lpc_service](::lpc::CallContext& lpc_ctx, " +
           req_class + "& lpc_msg,\n                     ::lpc::ServerWriter<" +
           down + ">& lpc_writer) -> ::absl::Status {\n";
    cc_ += "        [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n"
           "          return " + bad_request + ";\n        };\n";
    FailFn fail = [](const std::string& what) {
      return "return lpc_fail(" + what + ");";
    };
    EmitUnpackRequest(m, req, fail, 8, &args);
    cc_ += "        return lpc_service." + m.name + "(lpc_ctx" + args +
           ", lpc_writer);\n      });\n}\n\n";
    return;
  }
  std::string handle;
  std::string serve;
  std::string encode;
  if (m.server_streaming()) {
    handle = "::lpc::AsyncServerStream<" + down + ">";
    serve = "::lpc::ServeAsyncServerStreaming<" + req_class + ", " + down + ">";
    encode = m.name + "_EncodeDown";
  } else {
    handle = "::lpc::AsyncUnaryCall<" + result + ">";
    serve = "::lpc::ServeAsyncUnary<" + req_class + ", " + result + ">";
    encode = m.name + "_EncodeReply";
  }
  cc_ += "  " + serve + "(\n      " + call_args + "&" + m.name +
         "_DecodeRequest, &" + encode +
         ",\n      [lpc_s = &lpc_service](" + handle + " lpc_async, " +
         req_class + "& lpc_msg) {\n";
  cc_ += "        [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n"
         "          return " + bad_request + ";\n        };\n";
  const std::string finish = m.server_streaming() ? "Finish" : "Fail";
  FailFn fail = [finish](const std::string& what) {
    return "{\n          lpc_async." + finish + "(lpc_fail(" + what +
           "));\n          return;\n        }";
  };
  EmitUnpackRequest(m, req, fail, 8, &args, /*inputs_only=*/true);
  cc_ += "        lpc_s->" + m.name + "(::std::move(lpc_async)" + args +
         ");\n      });\n}\n\n";
}

void Emitter::EmitStartCall(const idl::InterfaceDecl& iface) {
  const std::string cls = iface.name + "Service";
  const std::string impl = "lpc_" + iface.name;
  cc_ += "bool " + cls + "::UsesStartCall(uint32_t method_id) const {\n";
  cc_ += "  switch (method_id) {\n";
  for (const MethodDecl& m : iface.methods) {
    if (UsesStartCall(m)) {
      cc_ += "    case " + std::to_string(m.ordinal) + ":\n";
    }
  }
  cc_ += "      return true;\n    default:\n      return false;\n  }\n}\n\n";
  // A synchronous streaming handler holds its thread until the call ends;
  // an [async] one returns at once.
  cc_ += "bool " + cls + "::StartCallBlocks(uint32_t method_id) const {\n";
  bool any_blocking = false;
  for (const MethodDecl& m : iface.methods) {
    if (UsesStartCall(m) && !m.async) {
      if (!any_blocking) cc_ += "  switch (method_id) {\n";
      any_blocking = true;
      cc_ += "    case " + std::to_string(m.ordinal) + ":\n";
    }
  }
  if (any_blocking) {
    cc_ += "      return true;\n    default:\n      return false;\n  }\n}\n\n";
  } else {
    cc_ += "  (void)method_id;\n  return false;\n}\n\n";
  }
  cc_ += "void " + cls + "::StartCall(uint32_t method_id,\n"
         "    ::std::shared_ptr<::lpc::ServerStream> call) {\n";
  cc_ += "  switch (method_id) {\n";
  for (const MethodDecl& m : iface.methods) {
    if (!UsesStartCall(m)) continue;
    cc_ += "    case " + std::to_string(m.ordinal) + ":\n      " + impl +
           "::" + m.name + "_Start(*this, ::std::move(call));\n      return;\n";
  }
  cc_ += "    default:\n      break;\n  }\n";
  cc_ += "  ::lpc::Service::StartCall(method_id, ::std::move(call));\n}\n\n";
}

}  // namespace lpc::codegen::internal
