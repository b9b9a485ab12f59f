// Descriptors, C++ types, and the conversions between C++ values and
// protobuf fields.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

void Emitter::Error(const idl::SourceLocation& loc, std::string message) {
  errors_->push_back({loc, std::move(message)});
  failed_ = true;
}

const pb::Descriptor* Emitter::Message(const std::string& full_name) {
  const pb::Descriptor* d = pool_->FindMessageTypeByName(full_name);
  if (d == nullptr) {
    Error({file_.path, 0, 0}, "internal: no message " + full_name);
  }
  return d;
}

std::string Emitter::InPackage(const std::string& name) const {
  return (package_.empty() ? "" : package_ + ".") + name;
}

const pb::Descriptor* Emitter::ResponseOf(const MethodDecl& m) const {
  return pool_->FindMessageTypeByName(InPackage(ResponseMessageName(m)));
}

const pb::FieldDescriptor* Emitter::Field(const pb::Descriptor* d,
                                          const std::string& name) {
  if (d == nullptr) return nullptr;
  const pb::FieldDescriptor* f = d->FindFieldByName(name);
  if (f == nullptr) {
    Error({file_.path, 0, 0},
          "internal: no field " + name + " in " + d->full_name());
  }
  return f;
}

std::string Emitter::StructClass(const idl::StructDecl* s) {
  if (s->carries_handle) return PlainStructClass(s);
  const pb::Descriptor* d = Message(s->full_name);
  return d == nullptr ? "void" : cpp::QualifiedClassName(d);
}

std::string Emitter::EnumClass(const idl::EnumDecl* e) {
  const pb::EnumDescriptor* d = pool_->FindEnumTypeByName(e->full_name);
  if (d == nullptr) {
    Error(e->loc, "internal: no enum " + e->full_name);
    return "int";
  }
  return cpp::QualifiedClassName(d);
}

std::string Emitter::CheckRangesFn(const idl::StructDecl* s) {
  return LpcInternalNs(s) + "CheckRanges";
}

std::string Emitter::ContextAlias(const TypeRef& t) {
  if (t.resolved_context == nullptr) {
    Error(t.loc, "context type '" + t.name + "' was not resolved");
    return "void";
  }
  std::string out = "::";
  for (char c : t.resolved_context->full_name) {
    if (c == '.') {
      out += "::";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Emitter::CppType(const TypeRef& t) {
  switch (t.kind) {
    case Kind::kVoid: return "void";
    case Kind::kBool: return "bool";
    case Kind::kInt8: return "int8_t";
    case Kind::kInt16: return "int16_t";
    case Kind::kInt32: return "int32_t";
    case Kind::kInt64: return "int64_t";
    case Kind::kUint8: return "uint8_t";
    case Kind::kUint16: return "uint16_t";
    case Kind::kUint32: return "uint32_t";
    case Kind::kUint64: return "uint64_t";
    case Kind::kFloat: return "float";
    case Kind::kDouble: return "double";
    case Kind::kString:
    case Kind::kBytes: return "::std::string";
    case Kind::kSequence:
      return "::std::vector<" + CppType(t.args.at(0)) + ">";
    case Kind::kMap:
      return "::std::map<" + CppType(t.args.at(0)) + ", " +
             CppType(t.args.at(1)) + ">";
    case Kind::kOptional:
      return "::std::optional<" + CppType(t.args.at(0)) + ">";
    case Kind::kNamed:
      if (t.resolved_enum != nullptr) return EnumClass(t.resolved_enum);
      if (t.resolved_struct != nullptr) return StructClass(t.resolved_struct);
      Error(t.loc, "type '" + t.name + "' was not resolved");
      return "void";
    case Kind::kHandle:
      return "::lpc::Fd";
    case Kind::kBuffer:
      // The received form; a sender's is lpc::Buffer (ParamList, SyncReturn).
      return "::lpc::BufferView";
    case Kind::kContext:
      return ContextAlias(t);
    case Kind::kStream:
      break;
  }
  Error(t.loc, "internal: stream<> where a value type was expected");
  return "void";
}

bool Emitter::ByValue(const TypeRef& t) {
  switch (t.kind) {
    case Kind::kString:
    case Kind::kBytes:
    case Kind::kSequence:
    case Kind::kMap:
    case Kind::kOptional:
    case Kind::kHandle:
    case Kind::kBuffer:
      return false;
    case Kind::kNamed:
      return t.resolved_enum != nullptr;
    default:
      return true;
  }
}

std::string Emitter::InType(const TypeRef& t) {
  return ByValue(t) ? CppType(t) : "const " + CppType(t) + "&";
}

bool Emitter::NeedsCheck(const TypeRef& t) {
  return NarrowType(t.kind) != nullptr ||
         (t.kind == Kind::kNamed && t.resolved_struct != nullptr);
}

std::string Emitter::ElemCheck(const TypeRef& t, const std::string& v,
                               const std::string& what, const FailFn& fail,
                               int indent) {
  if (const char* narrow = NarrowType(t.kind)) {
    return Pad(indent) + "if (!::std::in_range<" + narrow + ">(" + v +
           ")) " +
           fail(CppString(what + ": value out of range for " +
                          IdlKindName(t.kind))) +
           "\n";
  }
  if (t.kind == Kind::kNamed && t.resolved_struct != nullptr) {
    return Pad(indent) + "if (::std::string lpc_bad; !" +
           CheckRangesFn(t.resolved_struct) + "(" + v + ", &lpc_bad)) " +
           fail(CppString(what + ".") + " + lpc_bad") + "\n";
  }
  return "";
}

std::string Emitter::ElemValue(const TypeRef& t, const std::string& v) {
  if (const char* narrow = NarrowType(t.kind)) {
    return "static_cast<" + std::string(narrow) + ">(" + v + ")";
  }
  if (t.kind == Kind::kNamed && t.resolved_enum != nullptr) {
    return "static_cast<" + EnumClass(t.resolved_enum) + ">(" + v + ")";
  }
  if (t.kind == Kind::kContext) return ContextAlias(t) + "::FromWire(" + v + ")";
  return v;
}

std::string Emitter::ProtoElem(const TypeRef& t, const std::string& v) {
  if (NarrowType(t.kind) != nullptr) {
    bool is_signed = t.kind == Kind::kInt8 || t.kind == Kind::kInt16;
    return std::string(is_signed ? "static_cast<int32_t>(" : "static_cast<uint32_t>(") +
           v + ")";
  }
  if (t.kind == Kind::kContext) return v + ".wire_id()";
  return v;
}

bool Emitter::Movable(const TypeRef& t) {
  return t.kind == Kind::kString || t.kind == Kind::kBytes ||
         (t.kind == Kind::kNamed && t.resolved_struct != nullptr);
}

std::string Emitter::ToProto(const TypeRef& t, const pb::FieldDescriptor* f,
                             const std::string& msg, const std::string& src,
                             int indent, bool move) {
  if (f == nullptr) return "";
  if (idl::CarriesHandle(t)) return HandleToProto(t, f, msg, src, indent);
  std::string n = cpp::FieldName(f);
  std::string p = Pad(indent);
  auto is_struct = [](const TypeRef& e) {
    return e.kind == Kind::kNamed && e.resolved_struct != nullptr;
  };
  // `v` as a value to store: moved from when allowed.
  auto take = [&](const TypeRef& e, const std::string& v) {
    return move && Movable(e) ? "::std::move(" + v + ")" : v;
  };
  switch (t.kind) {
    case Kind::kSequence: {
      const TypeRef& e = t.args.at(0);
      std::string loop = move && Movable(e) ? "for (auto& lpc_e : "
                                             : "for (const auto& lpc_e : ";
      std::string out = p + msg + ".mutable_" + n + "()->Reserve(static_cast<int>(" +
                        src + ".size()));\n";
      if (is_struct(e)) {
        return out + p + loop + src + ") *" + msg + ".add_" + n +
               "() = " + take(e, "lpc_e") + ";\n";
      }
      return out + p + loop + src + ") " + msg + ".add_" + n + "(" +
             take(e, ProtoElem(e, "lpc_e")) + ");\n";
    }
    case Kind::kMap: {
      const TypeRef& v = t.args.at(1);
      std::string loop = move && Movable(v) ? "for (auto& lpc_e : "
                                             : "for (const auto& lpc_e : ";
      return p + loop + src + ") (*" + msg + ".mutable_" + n + "())[" +
             ProtoElem(t.args.at(0), "lpc_e.first") + "] = " +
             take(v, ProtoElem(v, "lpc_e.second")) + ";\n";
    }
    case Kind::kOptional: {
      const TypeRef& e = t.args.at(0);
      if (is_struct(e)) {
        return p + "if (" + src + ".has_value()) *" + msg + ".mutable_" + n +
               "() = " + take(e, "*" + src) + ";\n";
      }
      return p + "if (" + src + ".has_value()) " + msg + ".set_" + n + "(" +
             take(e, ProtoElem(e, "*" + src)) + ");\n";
    }
    default:
      if (is_struct(t)) {
        return p + "*" + msg + ".mutable_" + n + "() = " + take(t, src) +
               ";\n";
      }
      return p + msg + ".set_" + n + "(" + take(t, ProtoElem(t, src)) +
             ");\n";
  }
}

std::string Emitter::FromProto(const TypeRef& t, const pb::FieldDescriptor* f,
                               const std::string& msg, const std::string& dst,
                               const std::string& what, const FailFn& fail,
                               int indent, bool move) {
  if (f == nullptr) return "";
  if (idl::CarriesHandle(t)) {
    return HandleFromProto(t, f, msg, dst, CppString(what), indent);
  }
  std::string n = cpp::FieldName(f);
  std::string p = Pad(indent);
  std::string get = msg + "." + n + "()";
  std::string get_mutable = "(*" + msg + ".mutable_" + n + "())";
  auto take = [&](const TypeRef& e, const std::string& v) {
    return move && Movable(e) ? "::std::move(" + v + ")" : ElemValue(e, v);
  };
  switch (t.kind) {
    case Kind::kSequence: {
      const TypeRef& e = t.args.at(0);
      bool m = move && Movable(e);
      return p + dst + ".reserve(static_cast<size_t>(" + msg + "." + n +
             "_size()));\n" + p +
             (m ? "for (auto& lpc_e : " + get_mutable
                : "for (const auto& lpc_e : " + get) +
             ") {\n" + ElemCheck(e, "lpc_e", what, fail, indent + 2) + p +
             "  " + dst + ".push_back(" + take(e, "lpc_e") + ");\n" + p +
             "}\n";
    }
    case Kind::kMap: {
      const TypeRef& k = t.args.at(0);
      const TypeRef& v = t.args.at(1);
      bool m = move && Movable(v);
      return p +
             (m ? "for (auto& lpc_e : " + get_mutable
                : "for (const auto& lpc_e : " + get) +
             ") {\n" +
             ElemCheck(k, "lpc_e.first", what + " key", fail, indent + 2) +
             ElemCheck(v, "lpc_e.second", what, fail, indent + 2) + p + "  " +
             dst + ".emplace(" + ElemValue(k, "lpc_e.first") + ", " +
             take(v, "lpc_e.second") + ");\n" + p + "}\n";
    }
    case Kind::kOptional: {
      const TypeRef& e = t.args.at(0);
      return p + "if (" + msg + ".has_" + n + "()) {\n" +
             ElemCheck(e, get, what, fail, indent + 2) + p + "  " + dst +
             " = " + take(e, move && Movable(e) ? get_mutable : get) +
             ";\n" + p + "}\n";
    }
    default:
      return ElemCheck(t, get, what, fail, indent) + p + dst + " = " +
             take(t, move && Movable(t) ? get_mutable : get) + ";\n";
  }
}

std::string Emitter::CheckField(const TypeRef& t, const pb::FieldDescriptor* f,
                                const std::string& msg, const std::string& what,
                                const FailFn& fail, int indent) {
  if (f == nullptr) return "";
  std::string n = cpp::FieldName(f);
  std::string p = Pad(indent);
  std::string get = msg + "." + n + "()";
  switch (t.kind) {
    case Kind::kSequence:
      if (!NeedsCheck(t.args.at(0))) return "";
      return p + "for (const auto& lpc_e : " + get + ") {\n" +
             ElemCheck(t.args.at(0), "lpc_e", what, fail, indent + 2) + p +
             "}\n";
    case Kind::kMap:
      if (!NeedsCheck(t.args.at(0)) && !NeedsCheck(t.args.at(1))) return "";
      return p + "for (const auto& lpc_e : " + get + ") {\n" +
             ElemCheck(t.args.at(0), "lpc_e.first", what + " key", fail,
                       indent + 2) +
             ElemCheck(t.args.at(1), "lpc_e.second", what, fail, indent + 2) +
             p + "}\n";
    case Kind::kOptional:
      if (!NeedsCheck(t.args.at(0))) return "";
      return p + "if (" + msg + ".has_" + n + "()) {\n" +
             ElemCheck(t.args.at(0), get, what, fail, indent + 2) + p + "}\n";
    default:
      return ElemCheck(t, get, what, fail, indent);
  }
}

}  // namespace lpc::codegen::internal
