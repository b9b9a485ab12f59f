// foo.lpc.cc: CheckRanges, and the request encoders and reply decoders
// with their field writer and reader helpers.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

void Emitter::EmitCheckRanges(const idl::StructDecl& s) {
  if (s.carries_handle) return;  // Checked by FromWire.
  const pb::Descriptor* d = Message(s.full_name);
  if (d == nullptr) return;
  cc_ += "bool CheckRanges(const " + cpp::QualifiedClassName(d) +
         "& lpc_m, ::std::string* lpc_bad_field) {\n";
  FailFn fail = [](const std::string& what) {
    return "{ *lpc_bad_field = " + what + "; return false; }";
  };
  for (const idl::FieldDecl& f : s.fields) {
    cc_ += CheckField(f.type, Field(d, f.name), "lpc_m", f.name, fail, 2);
  }
  cc_ += "  return true;\n}\n\n";
}

bool Emitter::HasDirectFields(const MethodDecl& m) {
  for (const ParamDecl& p : m.params) {
    if (p.direction != ParamDirection::kOut && DirectWritable(p.type)) return true;
  }
  return false;
}

void Emitter::EmitEncode(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  const pb::Descriptor* req =
      Message(InPackage(RequestMessageName(m)));
  if (req == nullptr) return;
  std::string params;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kOut) continue;
    std::string decl = p.direction == ParamDirection::kIn
                           ? InType(p.type) + " " + P(i)
                           : "const " + CppType(p.type) + "* " + P(i);
    params = Join(params, decl);
  }
  if (m.carries_handles()) params = Join(params, "::lpc::HandleTable& lpc_handles");
  handles_var_ = "lpc_handles";
  cc_ += "::absl::Status " + m.name + "_Encode(" +
         Join(params, "::std::string* lpc_out") + ") {\n";
  cc_ += "  " + cpp::QualifiedClassName(req) + " lpc_msg;\n";
  struct Direct {
    size_t index;
    const pb::FieldDescriptor* field;
    bool is_string;
    std::string guard;  // C++ condition under which the field is written.
    std::string value;  // The C++ object.
  };
  std::vector<Direct> direct;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kOut) continue;
    const pb::FieldDescriptor* f = Field(req, p.name);
    bool in = p.direction == ParamDirection::kIn;
    std::string value = in ? P(i) : "(*" + P(i) + ")";
    if (DirectWritable(p.type) && f != nullptr) {
      bool is_string = p.type.kind != Kind::kNamed;
      // proto3 leaves an empty string out; a struct argument is always
      // present.
      std::string guard = in ? "" : P(i) + " != nullptr";
      if (is_string) guard = Join(guard, "!" + value + ".empty()");
      for (size_t c = guard.find(", "); c != std::string::npos;
           c = guard.find(", ")) {
        guard.replace(c, 2, " && ");
      }
      direct.push_back({i, f, is_string, guard, value});
      continue;
    }
    if (in) {
      cc_ += ToProto(p.type, f, "lpc_msg", value, 2);
    } else {
      cc_ += "  if (" + P(i) + " != nullptr) {\n";
      cc_ += ToProto(p.type, f, "lpc_msg", value, 4);
      cc_ += "  }\n";
    }
  }
  std::string cannot = "    return ::absl::InternalError(" +
                       CppString("lpc: cannot serialize the request of " +
                                 MethodPath(iface, m)) +
                       ");\n  }\n";
  if (direct.empty()) {
    cc_ += "  if (!lpc_msg.SerializeToString(lpc_out)) {\n" + cannot;
    cc_ += "  return ::absl::OkStatus();\n}\n\n";
    return;
  }
  cc_ += "  size_t lpc_size = lpc_msg.ByteSizeLong();\n";
  for (const Direct& d : direct) {
    std::string number = std::to_string(d.field->number());
    std::string size = d.is_string ? d.value + ".size()"
                                   : "lpc_size" + std::to_string(d.index);
    std::string add = "lpc_size += lpc_FieldSize(" + number + ", " + size + ");\n";
    if (d.guard.empty()) {
      if (!d.is_string) {
        cc_ += "  const size_t " + size + " = " + d.value + ".ByteSizeLong();\n";
      }
      cc_ += "  " + add;
    } else if (d.is_string) {
      cc_ += "  if (" + d.guard + ") " + add;
    } else {
      cc_ += "  size_t " + size + " = 0;\n";
      cc_ += "  if (" + d.guard + ") {\n";
      cc_ += "    " + size + " = " + d.value + ".ByteSizeLong();\n";
      cc_ += "    " + add + "  }\n";
    }
  }
  cc_ += "  if (lpc_size > static_cast<size_t>(INT_MAX)) {\n" + cannot;
  cc_ += "  lpc_out->clear();\n  lpc_out->reserve(lpc_size);\n";
  cc_ += "  lpc_out->resize(static_cast<size_t>(lpc_msg.GetCachedSize()));\n";
  cc_ += "  lpc_msg.SerializeWithCachedSizesToArray(\n"
         "      reinterpret_cast<uint8_t*>(lpc_out->data()));\n";
  for (const Direct& d : direct) {
    std::string number = std::to_string(d.field->number());
    std::string call =
        d.is_string
            ? "lpc_AppendBytes(" + number + ", " + d.value + ", lpc_out);\n"
            : "lpc_AppendMessage(" + number + ", " + d.value + ", lpc_size" +
                  std::to_string(d.index) + ", lpc_out);\n";
    cc_ += d.guard.empty() ? "  " + call
                           : "  if (" + d.guard + ") " + call;
  }
  cc_ += "  return ::absl::OkStatus();\n}\n\n";
}

std::vector<Emitter::SoleField> Emitter::SoleFields(const MethodDecl& m,
                                                    const pb::Descriptor* resp) {
  std::vector<SoleField> out;
  if (m.oneway || resp == nullptr || m.carries_handles()) return out;
  auto add = [&](const TypeRef& t, const std::string& field,
                 const std::string& member) {
    if (t.kind != Kind::kString && t.kind != Kind::kBytes) return;
    const pb::FieldDescriptor* f = resp->FindFieldByName(field);
    if (f == nullptr) return;
    out.push_back({f, member, t.kind == Kind::kString});
  };
  add(m.return_type, kResultFieldName, "value");
  for (const ParamDecl& p : m.params) {
    if (p.direction != ParamDirection::kIn) add(p.type, p.name, p.name);
  }
  return out;
}

bool Emitter::AnySoleFields() {
  for (const auto& iface : file_.interfaces) {
    for (const MethodDecl& m : iface->methods) {
      // Only a client-streaming call's reply is decoded this way.
      if (!m.client_streaming() || m.server_streaming()) continue;
      if (!SoleFields(m, ResponseOf(m)).empty()) return true;
    }
  }
  return false;
}

void Emitter::EmitDecode(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  const pb::Descriptor* resp =
      Message(InPackage(ResponseMessageName(m)));
  if (resp == nullptr) return;
  std::string result = ns_ + iface.name + "Client::" + m.name + "Result";
  const bool handles = m.carries_handles();
  handles_var_ = "lpc_handles";
  cc_ += "::absl::StatusOr<" + result + "> " + m.name +
         "_Decode(::absl::StatusOr<::std::string> lpc_reply" +
         (handles ? ", ::lpc::HandleTable& lpc_handles" : "") + ") {\n";
  cc_ += "  if (!lpc_reply.ok()) return lpc_reply.status();\n";
  cc_ += "  [[maybe_unused]] auto lpc_fail = [](const ::std::string& lpc_what) {\n";
  cc_ += "    return ::absl::InternalError(" +
         CppString("lpc: malformed reply from " + MethodPath(iface, m) + ": ") +
         " + lpc_what);\n  };\n";
  // A reply that is one string or bytes value and nothing else (the usual
  // shape of a large reply) becomes that value in place: the reply buffer
  // is handed to the caller instead of being parsed into a new one.
  for (const SoleField& sole : SoleFields(m, resp)) {
    cc_ += "  if (const size_t lpc_head = lpc_SoleFieldHeader(" +
           std::to_string(sole.field->number()) + ", *lpc_reply);\n"
           "      lpc_head != 0";
    if (sole.is_utf8) {
      cc_ += " &&\n      ::google::protobuf::internal::IsStructurallyValidUTF8(\n"
             "          lpc_reply->data() + lpc_head,\n"
             "          static_cast<int>(lpc_reply->size() - lpc_head))";
    }
    cc_ += ") {\n";
    cc_ += "    " + result + " lpc_result;\n";
    cc_ += "    lpc_reply->erase(0, lpc_head);\n";
    cc_ += "    lpc_result." + sole.member + " = ::std::move(*lpc_reply);\n";
    cc_ += "    return lpc_result;\n  }\n";
  }
  cc_ += "  " + cpp::QualifiedClassName(resp) + " lpc_msg;\n";
  cc_ += "  if (!lpc_msg.ParseFromString(*lpc_reply)) {\n";
  cc_ += "    return lpc_fail(\"it does not parse\");\n  }\n";
  cc_ += "  *lpc_reply = ::std::string();  // Parsed: free it now.\n";
  cc_ += "  " + result + " lpc_result;\n";
  FailFn fail = [](const std::string& what) {
    return "return lpc_fail(" + what + ");";
  };
  if (m.return_type.kind != Kind::kVoid) {
    cc_ += FromProto(m.return_type, Field(resp, kResultFieldName), "lpc_msg",
                     "lpc_result.value", "the return value", fail, 2,
                     /*move=*/true);
  }
  for (const ParamDecl& p : m.params) {
    if (p.direction == ParamDirection::kIn) continue;
    cc_ += FromProto(p.type, Field(resp, p.name), "lpc_msg",
                     "lpc_result." + p.name, p.name, fail, 2, /*move=*/true);
  }
  if (handles) {
    cc_ += "  if (::absl::Status lpc_st = lpc_handles.CheckAllTaken(); !lpc_st.ok()) {\n"
           "    return lpc_st;\n  }\n";
  }
  cc_ += "  return lpc_result;\n}\n\n";
}

bool Emitter::AnyDirectFields(bool strings, bool structs) {
  for (const auto& iface : file_.interfaces) {
    for (const MethodDecl& m : iface->methods) {
      // Only a server-streaming call's request is encoded this way.
      if (!m.server_streaming() || m.client_streaming()) continue;
      for (const ParamDecl& p : m.params) {
        if (p.direction == ParamDirection::kOut || !DirectWritable(p.type)) continue;
        if (p.type.kind == Kind::kNamed ? structs : strings) return true;
      }
    }
  }
  return false;
}

void Emitter::EmitFieldWriters() {
  cc_ += R"(// Bytes of a length-delimited field `number` with `length` bytes of data.
size_t lpc_FieldSize(uint32_t lpc_number, size_t lpc_length) {
  return ::google::protobuf::io::CodedOutputStream::VarintSize32(lpc_number << 3) +
         ::google::protobuf::io::CodedOutputStream::VarintSize64(lpc_length) +
         lpc_length;
}

// Appends the tag (wire type 2) and the length of field `number`.
void lpc_AppendFieldHeader(uint32_t lpc_number, size_t lpc_length,
                           ::std::string* lpc_out) {
  uint8_t lpc_head[16];
  uint8_t* lpc_end = ::google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      (lpc_number << 3) | 2, lpc_head);
  lpc_end = ::google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(
      lpc_length, lpc_end);
  lpc_out->append(reinterpret_cast<const char*>(lpc_head),
                  static_cast<size_t>(lpc_end - lpc_head));
}

)";
  if (AnyDirectFields(/*strings=*/true, /*structs=*/false)) {
    cc_ += R"(// Appends string or bytes field `number` with the bytes of `value`.
void lpc_AppendBytes(uint32_t lpc_number, const ::std::string& lpc_value,
                     ::std::string* lpc_out) {
  lpc_AppendFieldHeader(lpc_number, lpc_value.size(), lpc_out);
  lpc_out->append(lpc_value);
}

)";
  }
  if (AnyDirectFields(/*strings=*/false, /*structs=*/true)) {
    cc_ += R"(// Appends message field `number` holding `value`, whose ByteSizeLong()
// was `size` (so its cached sizes are set).
void lpc_AppendMessage(uint32_t lpc_number,
                       const ::google::protobuf::MessageLite& lpc_value,
                       size_t lpc_size, ::std::string* lpc_out) {
  lpc_AppendFieldHeader(lpc_number, lpc_size, lpc_out);
  const size_t lpc_at = lpc_out->size();
  lpc_out->resize(lpc_at + lpc_size);
  lpc_value.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(lpc_out->data() + lpc_at));
}

)";
  }
}

void Emitter::EmitSoleFieldReader() {
  cc_ += R"(// If `reply` is exactly one length-delimited field `number` whose data runs
// to its end, tag and length minimally encoded, the size of that tag and
// length; else 0 (then protobuf's parser decides).
size_t lpc_SoleFieldHeader(uint32_t lpc_number, const ::std::string& lpc_reply) {
  if (lpc_reply.size() > static_cast<size_t>(INT_MAX)) return 0;
  ::google::protobuf::io::CodedInputStream lpc_in(
      reinterpret_cast<const uint8_t*>(lpc_reply.data()),
      static_cast<int>(lpc_reply.size()));
  const uint32_t lpc_tag = (lpc_number << 3) | 2;
  uint32_t lpc_length = 0;
  if (lpc_in.ReadTag() != lpc_tag || !lpc_in.ReadVarint32(&lpc_length)) {
    return 0;
  }
  const size_t lpc_head = static_cast<size_t>(lpc_in.CurrentPosition());
  if (lpc_head != ::google::protobuf::io::CodedOutputStream::VarintSize32(lpc_tag) +
                      ::google::protobuf::io::CodedOutputStream::VarintSize32(lpc_length) ||
      lpc_length != lpc_reply.size() - lpc_head) {
    return 0;
  }
  return lpc_head;
}

)";
}

}  // namespace lpc::codegen::internal
