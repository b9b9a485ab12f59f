// foo.lpc.cc: the zero-copy wire code of unary methods (docs/zero-copy.md):
// the MessageWriter classes that write a request or reply straight into a
// transport's memory, and the readers that decode one straight into the
// C++ values, both through runtime/wire.h. No std::string and no protobuf
// message object of the method's request or reply stands between.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {
namespace {

bool IsPlainStruct(const TypeRef& t) {
  return t.kind == Kind::kNamed && t.resolved_struct != nullptr &&
         t.resolved_struct->carries_handle;
}

bool IsProtoStruct(const TypeRef& t) {
  return t.kind == Kind::kNamed && t.resolved_struct != nullptr &&
         !t.resolved_struct->carries_handle;
}

// The element type of a sequence or optional, else `t`.
const TypeRef& Elem(const TypeRef& t) {
  return (t.kind == Kind::kSequence || t.kind == Kind::kOptional) ? t.args.at(0)
                                                                  : t;
}

}  // namespace

std::string Emitter::WireCodec(const TypeRef& t) {
  const std::string w = "::lpc::wire::";
  switch (t.kind) {
    case Kind::kBool: return w + "Bool";
    case Kind::kInt8:
    case Kind::kInt16:
    case Kind::kInt32: return w + "Int32";
    case Kind::kInt64: return w + "Int64";
    case Kind::kUint8:
    case Kind::kUint16:
    case Kind::kUint32:
    case Kind::kHandle: return w + "UInt32";
    case Kind::kUint64: return w + "UInt64";
    case Kind::kFloat: return w + "Float";
    case Kind::kDouble: return w + "Double";
    case Kind::kString: return w + "String";
    case Kind::kBytes:
    case Kind::kBuffer: return w + "Bytes";
    case Kind::kContext: return w + "Context<" + ContextAlias(t) + ">";
    case Kind::kNamed:
      if (t.resolved_enum != nullptr) return w + "Enum";
      if (t.resolved_struct != nullptr) {
        return w + "Message<" +
               (t.resolved_struct->carries_handle ? WireClass(t.resolved_struct)
                                                  : StructClass(t.resolved_struct)) +
               ">";
      }
      break;
    case Kind::kSequence:
    case Kind::kOptional:
      return WireCodec(t.args.at(0));
    default:
      break;
  }
  Error(t.loc, "internal: no wire codec for this type");
  return w + "Bytes";
}

std::string Emitter::StagedType(const TypeRef& t) {
  switch (t.kind) {
    case Kind::kHandle: return "uint32_t";
    case Kind::kSequence: return "::std::vector<" + StagedType(t.args.at(0)) + ">";
    case Kind::kOptional:
      return "::std::optional<" + StagedType(t.args.at(0)) + ">";
    default:
      return WireClass(t.resolved_struct);
  }
}

// Statements that put the descriptors of C++ value `src` into the table
// lpc_handles and store the value's wire form into `dst` (of StagedType).
std::string Emitter::StageOut(const TypeRef& t, const std::string& src,
                              const std::string& dst, int indent) {
  const std::string p = Pad(indent);
  auto one = [&](const TypeRef& e, const std::string& v, const std::string& out,
                 const std::string& pad) {
    if (e.kind == Kind::kHandle) {
      return pad + "{\n" + pad + "  ::absl::StatusOr<uint32_t> lpc_h = lpc_handles.Add(" +
             v + ");\n" + pad + "  if (!lpc_h.ok()) {\n" + pad +
             "    lpc_status_ = lpc_h.status();\n" + pad + "    return;\n" + pad +
             "  }\n" + pad + "  " + out + " = *lpc_h;\n" + pad + "}\n";
    }
    return pad + "if (::absl::Status lpc_st = " + LpcInternalNs(e.resolved_struct) +
           "ToWire(" + v + ", lpc_handles, &" + out + ");\n" + pad +
           "    !lpc_st.ok()) {\n" + pad + "  lpc_status_ = lpc_st;\n" + pad +
           "  return;\n" + pad + "}\n";
  };
  switch (t.kind) {
    case Kind::kSequence:
      return p + "for (const auto& lpc_e : " + src + ") {\n" + p + "  " + dst +
             ".emplace_back();\n" +
             one(t.args.at(0), "lpc_e", dst + ".back()", p + "  ") + p + "}\n";
    case Kind::kOptional:
      return p + "if (" + src + ".has_value()) {\n" + p + "  " + dst +
             ".emplace();\n" + one(t.args.at(0), "*" + src, "*" + dst, p + "  ") +
             p + "}\n";
    default:
      return one(t, src, dst, p);
  }
}

// Statements that take the descriptors of wire form `src` out of the table
// lpc_handles into C++ value `dst`; `what` names the value in errors.
std::string Emitter::StageIn(const TypeRef& t, const std::string& src,
                             const std::string& dst, const std::string& what,
                             int indent) {
  const std::string p = Pad(indent);
  const std::string what_expr = "::std::string(" + CppString(what) + ")";
  auto one = [&](const TypeRef& e, const std::string& v, const std::string& out,
                 const std::string& pad) {
    if (e.kind == Kind::kHandle) {
      return pad + "{\n" + pad +
             "  ::absl::StatusOr<::lpc::Fd> lpc_h = ::lpc::internal::TakeHandle(\n" +
             pad + "      lpc_handles, " + v + ", " + HandleKindEnum(e) + ", " +
             what_expr + ");\n" + pad + "  if (!lpc_h.ok()) return lpc_h.status();\n" +
             pad + "  " + out + " = *::std::move(lpc_h);\n" + pad + "}\n";
    }
    return pad + "if (::absl::Status lpc_st = " + LpcInternalNs(e.resolved_struct) +
           "FromWire(" + v + ", lpc_handles, &" + out + ", " + what_expr + ");\n" +
           pad + "    !lpc_st.ok()) {\n" + pad + "  return lpc_st;\n" + pad + "}\n";
  };
  switch (t.kind) {
    case Kind::kSequence:
      return p + dst + ".reserve(" + src + ".size());\n" + p +
             "for (auto& lpc_e : " + src + ") {\n" + p + "  " + dst +
             ".emplace_back();\n" +
             one(t.args.at(0), "lpc_e", dst + ".back()", p + "  ") + p + "}\n";
    case Kind::kOptional:
      return p + "if (" + src + ".has_value()) {\n" + p + "  " + dst +
             ".emplace();\n" + one(t.args.at(0), "*" + src, "*" + dst, p + "  ") +
             p + "}\n";
    default:
      return one(t, src, dst, p);
  }
}

void Emitter::EmitWriterClass(const std::string& cls,
                              const std::vector<WireField>& fields,
                              bool handles) {
  std::string params;
  std::string inits;
  std::string members;
  std::string stage;
  std::string sizes;
  std::string writes;
  std::string buffer;
  for (size_t i = 0; i < fields.size(); ++i) {
    const WireField& f = fields[i];
    const TypeRef& t = *f.type;
    const std::string a = "lpc_a" + std::to_string(i);
    const std::string m = "lpc_f" + std::to_string(i) + "_";
    const std::string number = std::to_string(f.number);
    if (t.kind == Kind::kBuffer) {
      // Not in size() or WriteTo: the transport sends it (buffer()).
      params = Join(params, "::lpc::Buffer& " + a);
      // Initialized last: the member is declared after the others.
      buffer = "lpc_buffer_{" + number + ", &" + a + "}";
      continue;
    }
    const std::string type = CppType(t);
    params = Join(params, (f.pointer ? "const " + type + "* " : "const " + type + "& ") + a);
    std::string value;
    if (idl::CarriesHandle(t)) {
      // The wire form, with the descriptors in the table.
      const bool boxed = f.pointer && IsPlainStruct(t);
      members += "  " + (boxed ? "::std::optional<" + StagedType(t) + ">" : StagedType(t)) +
                 " " + m + ";\n";
      const std::string src = f.pointer ? "(*" + a + ")" : a;
      std::string code = StageOut(t, src, boxed ? "(*" + m + ")" : m, f.pointer ? 6 : 4);
      if (boxed) code = "      " + m + ".emplace();\n" + code;
      stage += f.pointer ? "    if (" + a + " != nullptr) {\n" + code + "    }\n" : code;
      value = m;
    } else {
      members += "  const " + type + "* " + m + ";\n";
      inits = Join(inits, m + "(" + (f.pointer ? a : "&" + a) + ")");
      value = "*" + m;
    }
    const bool guard = f.pointer && !idl::CarriesHandle(t);
    std::string size;
    std::string write;
    if (t.kind == Kind::kMap) {
      const std::string codecs = WireCodec(t.args.at(0)) + ", " + WireCodec(t.args.at(1));
      size = "::lpc::wire::MapFieldSize<" + codecs + ">(" + number + ", " + value + ")";
      write = "::lpc::wire::WriteMapField<" + codecs + ">(" + number + ", " + value +
              ", lpc_p)";
    } else {
      const std::string codec = WireCodec(t);
      size = "::lpc::wire::FieldSize<" + codec + ">(" + number + ", " + value + ")";
      write = "::lpc::wire::WriteField<" + codec + ">(" + number + ", " + value +
              ", lpc_p)";
    }
    if (guard) {
      sizes += "    if (" + m + " != nullptr) lpc_size_ += " + size + ";\n";
      writes += "    if (" + m + " != nullptr) lpc_p = " + write + ";\n";
    } else {
      sizes += "    lpc_size_ += " + size + ";\n";
      writes += "    lpc_p = " + write + ";\n";
    }
  }
  if (!buffer.empty()) inits = Join(inits, buffer);
  if (handles) params = Join(params, "::lpc::HandleTable& lpc_handles");
  cc_ += "class " + cls + " final : public ::lpc::MessageWriter {\n public:\n";
  cc_ += "  " + std::string(fields.size() == 1 && !handles ? "explicit " : "") + cls +
         "(" + params + ")";
  cc_ += inits.empty() ? " {\n" : "\n      : " + inits + " {\n";
  cc_ += stage + sizes + "  }\n";
  if (handles) {
    cc_ += "  // Not OK when a descriptor could not be added: nothing to send.\n";
    cc_ += "  const ::absl::Status& status() const { return lpc_status_; }\n";
  }
  cc_ += "  size_t size() const override { return lpc_size_; }\n";
  if (!buffer.empty()) {
    cc_ += "  const ::lpc::BufferField* buffer() const override {\n"
           "    return lpc_buffer_.buffer->empty() ? nullptr : &lpc_buffer_;\n  }\n";
  }
  cc_ += "  void WriteTo(uint8_t* lpc_p) const override {\n" + writes +
         "    (void)lpc_p;\n  }\n\n private:\n" + members;
  if (handles) cc_ += "  ::absl::Status lpc_status_;\n";
  if (!buffer.empty()) cc_ += "  ::lpc::BufferField lpc_buffer_;\n";
  cc_ += "  size_t lpc_size_ = 0;\n};\n\n";
}

std::string Emitter::PostCheck(const TypeRef& t, const std::string& dst,
                               const std::string& what, const FailFn& fail,
                               int indent) {
  const std::string p = Pad(indent);
  switch (t.kind) {
    case Kind::kSequence:
      if (!IsProtoStruct(t.args.at(0))) return "";
      return p + "for (const auto& lpc_e : " + dst + ") {\n" +
             ElemCheck(t.args.at(0), "lpc_e", what, fail, indent + 2) + p + "}\n";
    case Kind::kOptional:
      if (!IsProtoStruct(t.args.at(0))) return "";
      return p + "if (" + dst + ".has_value()) {\n" +
             ElemCheck(t.args.at(0), "*" + dst, what, fail, indent + 2) + p + "}\n";
    case Kind::kMap:
      if (!IsProtoStruct(t.args.at(1))) return "";
      return p + "for (const auto& lpc_e : " + dst + ") {\n" +
             ElemCheck(t.args.at(1), "lpc_e.second", what, fail, indent + 2) + p +
             "}\n";
    default:
      return IsProtoStruct(t) ? ElemCheck(t, dst, what, fail, indent) : "";
  }
}

void Emitter::EmitReadFields(const std::vector<WireField>& fields,
                             const std::string& msg, const FailFn& fail,
                             int indent) {
  const std::string bytes = "lpc_bytes";
  const std::string p = Pad(indent);
  const std::string malformed = fail("\"it does not parse\"");
  std::string post;
  std::string staging;
  std::string cases;
  for (size_t i = 0; i < fields.size(); ++i) {
    const WireField& f = fields[i];
    const TypeRef& t = *f.type;
    std::string dst = f.value;
    if (t.kind == Kind::kBuffer) {
      // A view into the message's bytes, unless the transport attached the
      // field (it counts as appended, so it wins).
      const std::string n = std::to_string(f.number);
      dst = "lpc_b" + std::to_string(i);
      staging += p + "::lpc::wire::BufferRange " + dst + ";\n";
      post += p + "if (" + dst + ".found) {\n" + p +
              "  ::std::shared_ptr<const void> lpc_keep = " + msg + ".Retain();\n" + p +
              "  " + f.value + " = ::lpc::internal::BufferAccess::MakeView(\n" + p +
              "      ::std::move(lpc_keep),\n" + p +
              "      reinterpret_cast<const uint8_t*>(" + msg + ".bytes().data()) + " +
              dst + ".offset,\n" + p + "      " + dst + ".length);\n" + p + "}\n";
      post += p + "if (" + msg + ".attached().has_value() && " + msg +
              ".attached()->field_number == " + n + ") {\n" + p + "  " + f.value +
              " = " + msg + ".attached()->view;\n" + p + "}\n";
      cases += p + "    case " + n + ":\n";
      cases += p + "      lpc_r = ::lpc::wire::ReadBufferField(&lpc_in, lpc_tag, &" +
               dst + ");\n";
      cases += p + "      if (lpc_r != ::lpc::wire::kOk) " +
               fail(CppString(f.what + ": it does not parse")) + "\n";
      cases += p + "      break;\n";
      continue;
    }
    const bool optional = t.kind == Kind::kOptional;
    if (const char* narrow = NarrowType(Elem(t).kind);
        narrow != nullptr && t.kind != Kind::kSequence) {
      // Read as its protobuf type and checked at the end: the last value
      // of the field counts, an earlier one may be out of range.
      const bool is_signed = Elem(t).kind == Kind::kInt8 || Elem(t).kind == Kind::kInt16;
      const std::string wire = is_signed ? "int32_t" : "uint32_t";
      dst = "lpc_w" + std::to_string(i);
      staging += p + (optional ? "::std::optional<" + wire + ">" : wire) + " " + dst +
                 "{};\n";
      const std::string v = optional ? "*" + dst : dst;
      const std::string pad = optional ? p + "  " : p;
      std::string body = ElemCheck(Elem(t), v, f.what, fail, optional ? indent + 2 : indent) +
                         pad + f.value + " = " + ElemValue(Elem(t), v) + ";\n";
      post += optional ? p + "if (" + dst + ".has_value()) {\n" + body + p + "}\n" : body;
    } else if (idl::CarriesHandle(t)) {
      dst = "lpc_w" + std::to_string(i);
      staging += p + StagedType(t) + " " + dst + "{};\n";
      post += StageIn(t, dst, f.value, f.what, indent);
    } else {
      post += PostCheck(t, f.value, f.what, fail, indent);
    }
    std::string read;
    std::string why = CppString(f.what + ": it does not parse");
    if (t.kind == Kind::kMap) {
      read = "::lpc::wire::ReadMapField<" + WireCodec(t.args.at(0)) + ", " +
             WireCodec(t.args.at(1)) + ">";
      const char* kn = NarrowType(t.args.at(0).kind);
      const char* vn = NarrowType(t.args.at(1).kind);
      if (vn != nullptr) {
        why = "lpc_r == ::lpc::wire::kRange ? " +
              CppString(f.what + ": value out of range for " +
                        IdlKindName(t.args.at(1).kind)) +
              " : " + why;
      }
      if (kn != nullptr) {
        why = "lpc_r == ::lpc::wire::kKeyRange ? " +
              CppString(f.what + " key: value out of range for " +
                        IdlKindName(t.args.at(0).kind)) +
              " : " + why;
      }
    } else {
      read = "::lpc::wire::ReadField<" + WireCodec(t) + ">";
      if (NarrowType(Elem(t).kind) != nullptr) {
        why = "lpc_r == ::lpc::wire::kRange ? " +
              CppString(f.what + ": value out of range for " +
                        IdlKindName(Elem(t).kind)) +
              " : " + why;
      }
    }
    cases += p + "    case " + std::to_string(f.number) + ":\n";
    cases += p + "      lpc_r = " + read + "(&lpc_in, lpc_tag, &" + dst + ");\n";
    cases += p + "      if (lpc_r != ::lpc::wire::kOk) " +
             fail("::std::string(" + why + ")") + "\n";
    cases += p + "      break;\n";
  }
  cc_ += staging;
  cc_ += p + "const ::std::string_view " + bytes + " = " + msg + ".bytes();\n";
  cc_ += p + "if (" + bytes + ".size() > static_cast<size_t>(INT_MAX)) " + malformed +
         "\n";
  cc_ += p + "::google::protobuf::io::CodedInputStream lpc_in(\n" + p +
         "    reinterpret_cast<const uint8_t*>(" + bytes + ".data()),\n" + p +
         "    static_cast<int>(" + bytes + ".size()));\n";
  cc_ += p + "for (uint32_t lpc_tag = lpc_in.ReadTag(); lpc_tag != 0;\n" + p +
         "     lpc_tag = lpc_in.ReadTag()) {\n";
  cc_ += p + "  int lpc_r = ::lpc::wire::kOk;\n";
  cc_ += p + "  switch (lpc_tag >> 3) {\n" + cases;
  cc_ += p + "    default:\n" + p +
         "      if (::lpc::wire::Skip(&lpc_in, lpc_tag) != ::lpc::wire::kOk) " +
         malformed + "\n" + p + "      break;\n" + p + "  }\n";
  cc_ += p + "  (void)lpc_r;\n" + p + "}\n";
  cc_ += p + "if (!lpc_in.ConsumedEntireMessage()) " + malformed + "\n";
  cc_ += post;
}

}  // namespace lpc::codegen::internal
