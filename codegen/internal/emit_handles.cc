// File descriptor handles (docs/handles.md): the plain C++ structs of the
// structs that carry one, their conversions to and from their protobuf
// ("wire") messages, and the statements that move descriptors between
// C++ values and a message's handle table.
#include <cstring>
#include <map>

#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {
namespace {

bool IsPlainStruct(const TypeRef& t) {
  return t.kind == Kind::kNamed && t.resolved_struct != nullptr &&
         t.resolved_struct->carries_handle;
}

}  // namespace

bool Emitter::AnyHandles() const {
  bool any = false;
  std::function<void(const idl::StructDecl&)> scan = [&](const idl::StructDecl& d) {
    any = any || d.carries_handle;
    for (const auto& n : d.nested_structs) scan(*n);
  };
  for (const auto& s : file_.structs) scan(*s);
  for (const auto& iface : file_.interfaces) {
    for (const MethodDecl& m : iface->methods) any = any || m.carries_handles();
  }
  return any;
}

std::string Emitter::HandleKindEnum(const TypeRef& t) {
  using HK = TypeRef::HandleKind;
  switch (t.handle_kind) {
    case HK::kAny: return "::lpc::HandleKind::kAny";
    case HK::kMemfd: return "::lpc::HandleKind::kMemfd";
    case HK::kSealedMemfd: return "::lpc::HandleKind::kSealedMemfd";
    case HK::kPipe: return "::lpc::HandleKind::kPipe";
    case HK::kSocket: return "::lpc::HandleKind::kSocket";
    case HK::kFile: return "::lpc::HandleKind::kFile";
  }
  return "::lpc::HandleKind::kAny";
}

std::string Emitter::WireClass(const idl::StructDecl* s) {
  const pb::Descriptor* d = Message(WireMessageName(*s));
  return d == nullptr ? "void" : cpp::QualifiedClassName(d);
}

std::string Emitter::PlainStructClass(const idl::StructDecl* s) {
  // protobuf's flattening of nested names ("Outer_Inner"), of the IDL names.
  std::string name = s->name;
  for (const idl::StructDecl* p = s->parent; p != nullptr; p = p->parent) {
    name = p->name + "_" + name;
  }
  std::string ns = LpcInternalNs(s);
  return ns.substr(0, ns.size() - std::strlen("lpc_internal::")) + name;
}

std::string Emitter::LpcInternalNs(const idl::StructDecl* s) {
  const pb::Descriptor* d = Message(WireMessageName(*s));
  std::string ns = "::";
  if (d != nullptr && !d->file()->package().empty()) {
    for (char c : d->file()->package()) {
      if (c == '.') {
        ns += "::";
      } else {
        ns += c;
      }
    }
    ns += "::";
  }
  return ns + "lpc_internal::";
}

std::string Emitter::HandleToProto(const TypeRef& t, const pb::FieldDescriptor* f,
                                   const std::string& msg, const std::string& src,
                                   int indent) {
  if (f == nullptr) return "";
  const std::string n = cpp::FieldName(f);
  const std::string p = Pad(indent);
  const std::string& h = handles_var_;
  // Stores element `v`: a descriptor through `store` ("set_x", "add_x"), a
  // struct into the message `target` points to.
  auto put = [&](const TypeRef& e, const std::string& v, const std::string& store,
                 const std::string& target, const std::string& pad) {
    if (e.kind == Kind::kHandle) {
      return pad + "{\n" + pad + "  ::absl::StatusOr<uint32_t> lpc_h = " + h +
             ".Add(" + v + ");\n" + pad +
             "  if (!lpc_h.ok()) return lpc_h.status();\n" + pad + "  " + msg +
             "." + store + "(*lpc_h);\n" + pad + "}\n";
    }
    return pad + "if (::absl::Status lpc_st = " + LpcInternalNs(e.resolved_struct) +
           "ToWire(" + v + ", " + h + ", " + target + ");\n" + pad +
           "    !lpc_st.ok()) {\n" + pad + "  return lpc_st;\n" + pad + "}\n";
  };
  switch (t.kind) {
    case Kind::kSequence: {
      const TypeRef& e = t.args.at(0);
      return p + "for (const auto& lpc_e : " + src + ") {\n" +
             put(e, "lpc_e", "add_" + n, msg + ".add_" + n + "()", p + "  ") +
             p + "}\n";
    }
    case Kind::kOptional: {
      const TypeRef& e = t.args.at(0);
      return p + "if (" + src + ".has_value()) {\n" +
             put(e, "*" + src, "set_" + n, msg + ".mutable_" + n + "()", p + "  ") +
             p + "}\n";
    }
    default:
      return put(t, src, "set_" + n, msg + ".mutable_" + n + "()", p);
  }
}

std::string Emitter::HandleFromProto(const TypeRef& t, const pb::FieldDescriptor* f,
                                     const std::string& msg, const std::string& dst,
                                     const std::string& what_expr, int indent) {
  if (f == nullptr) return "";
  const std::string n = cpp::FieldName(f);
  const std::string p = Pad(indent);
  const std::string& h = handles_var_;
  // Reads element `v` (a mutable lvalue) into `out`: `assign` is "=" for a
  // value or optional, "push_back" for a vector.
  auto take = [&](const TypeRef& e, const std::string& v, const std::string& out,
                  bool push, const std::string& pad) {
    if (e.kind == Kind::kHandle) {
      return pad + "{\n" + pad + "  ::absl::StatusOr<::lpc::Fd> lpc_h = ::lpc::internal::TakeHandle(\n" +
             pad + "      " + h + ", " + v + ", " + HandleKindEnum(e) + ", " +
             what_expr + ");\n" + pad + "  if (!lpc_h.ok()) return lpc_h.status();\n" +
             pad + "  " + (push ? out + ".push_back(*::std::move(lpc_h));\n"
                                : out + " = *::std::move(lpc_h);\n") +
             pad + "}\n";
    }
    std::string into = push ? (pad + out + ".emplace_back();\n") : std::string();
    std::string target = push ? "&" + out + ".back()" : "&" + out;
    return into + pad + "if (::absl::Status lpc_st = " +
           LpcInternalNs(e.resolved_struct) + "FromWire(" + v + ", " + h + ", " +
           target + ", " + what_expr + ");\n" + pad + "    !lpc_st.ok()) {\n" + pad +
           "  return lpc_st;\n" + pad + "}\n";
  };
  const std::string mut = "(*" + msg + ".mutable_" + n + "())";
  switch (t.kind) {
    case Kind::kSequence: {
      const TypeRef& e = t.args.at(0);
      return p + dst + ".reserve(static_cast<size_t>(" + msg + "." + n +
             "_size()));\n" + p + "for (auto& lpc_e : " + mut + ") {\n" +
             take(e, "lpc_e", dst, true, p + "  ") + p + "}\n";
    }
    case Kind::kOptional: {
      const TypeRef& e = t.args.at(0);
      if (e.kind == Kind::kHandle) {
        return p + "if (" + msg + ".has_" + n + "()) {\n" +
               take(e, msg + "." + n + "()", dst, false, p + "  ") + p + "}\n";
      }
      return p + "if (" + msg + ".has_" + n + "()) {\n" + p + "  " + dst +
             ".emplace();\n" + take(e, mut, "*" + dst, false, p + "  ") + p + "}\n";
    }
    default:
      if (t.kind == Kind::kHandle) {
        return take(t, msg + "." + n + "()", dst, false, p);
      }
      return take(t, mut, dst, false, p);
  }
}

// Plain structs are defined after those they hold by value or in a
// vector; an optional<> of a struct in its own cycle cannot be (a struct
// cannot hold an optional of itself).
void Emitter::EmitPlainStructs() {
  std::vector<const idl::StructDecl*> plain;
  for (const auto& s : file_.structs) {
    ForEachStruct(*s, [&](const idl::StructDecl& d) {
      if (d.carries_handle) plain.push_back(&d);
    });
  }
  if (plain.empty()) return;
  h_ += "// The structs that carry handles (file descriptors): plain C++ structs,\n"
        "// move-only, converted to and from their <Name>Wire messages.\n";
  for (const idl::StructDecl* s : plain) {
    h_ += "struct " + PlainStructClass(s).substr(ns_.size()) + ";\n";
  }
  h_ += "\n";
  std::map<const idl::StructDecl*, int> state;  // 1: in progress, 2: done
  std::function<void(const idl::StructDecl*)> visit = [&](const idl::StructDecl* s) {
    state[s] = 1;
    for (const idl::FieldDecl& f : s->fields) {
      const TypeRef* target = &f.type;
      bool optional = false;
      if ((f.type.kind == Kind::kSequence || f.type.kind == Kind::kOptional) &&
          !f.type.args.empty()) {
        optional = f.type.kind == Kind::kOptional;
        target = &f.type.args[0];
      }
      if (!IsPlainStruct(*target)) continue;
      const idl::StructDecl* d = target->resolved_struct;
      if (d->loc.file != s->loc.file) continue;  // Imported: defined already.
      if (state[d] == 1) {
        if (optional) {
          Error(f.loc, "field '" + f.name + "' holds optional<" + d->name +
                           "> inside " + d->name + "'s own definition, and " +
                           d->name + " carries a handle (a plain C++ struct); "
                           "use sequence<" + d->name + "> instead");
        }
        continue;
      }
      if (state[d] == 0) visit(d);
    }
    state[s] = 2;
    h_ += Comment(s->doc, 0);
    h_ += "struct " + PlainStructClass(s).substr(ns_.size()) + " {\n";
    for (const idl::FieldDecl& f : s->fields) {
      h_ += Comment(f.doc, 2);
      h_ += "  " + CppType(f.type) + " " + f.name + "{};\n";
    }
    h_ += "};\n\n";
  };
  for (const idl::StructDecl* s : plain) {
    if (state[s] == 0) visit(s);
  }
  h_ += "namespace lpc_internal {\n\n";
  h_ += "// A plain struct to its message (descriptors duplicated into\n"
        "// `handles`), and a message to its plain struct (descriptors taken out\n"
        "// of `handles`; `what` names the value in errors).\n";
  for (const idl::StructDecl* s : plain) {
    h_ += "::absl::Status ToWire(const " + PlainStructClass(s) +
          "& value, ::lpc::HandleTable& handles, " + WireClass(s) + "* message);\n";
    h_ += "::absl::Status FromWire(" + WireClass(s) +
          "& message, ::lpc::HandleTable& handles, " + PlainStructClass(s) +
          "* value, const ::std::string& what);\n";
  }
  h_ += "\n}  // namespace lpc_internal\n\n";
}

void Emitter::EmitWireConversions(const idl::StructDecl& s) {
  if (!s.carries_handle) return;
  const pb::Descriptor* d = Message(WireMessageName(s));
  if (d == nullptr) return;
  const std::string plain = PlainStructClass(&s);
  const std::string wire = WireClass(&s);
  handles_var_ = "lpc_handles";
  cc_ += "::absl::Status ToWire(const " + plain +
         "& lpc_in, ::lpc::HandleTable& lpc_handles, " + wire + "* lpc_out) {\n";
  for (const idl::FieldDecl& f : s.fields) {
    const std::string src = "lpc_in." + f.name;
    cc_ += idl::CarriesHandle(f.type)
               ? HandleToProto(f.type, Field(d, f.name), "(*lpc_out)", src, 2)
               : ToProto(f.type, Field(d, f.name), "(*lpc_out)", src, 2);
  }
  cc_ += "  return ::absl::OkStatus();\n}\n\n";
  cc_ += "::absl::Status FromWire(" + wire +
         "& lpc_in, ::lpc::HandleTable& lpc_handles, " + plain +
         "* lpc_out, const ::std::string& lpc_what) {\n";
  FailFn fail = [](const std::string& what) {
    return "return ::absl::InvalidArgumentError(\"lpc: \" + lpc_what + \".\" + " +
           what + ");";
  };
  for (const idl::FieldDecl& f : s.fields) {
    const std::string dst = "lpc_out->" + f.name;
    cc_ += idl::CarriesHandle(f.type)
               ? HandleFromProto(f.type, Field(d, f.name), "lpc_in", dst,
                                 "lpc_what + " + CppString("." + f.name), 2)
               : FromProto(f.type, Field(d, f.name), "lpc_in", dst, f.name, fail, 2,
                           /*move=*/true);
  }
  cc_ += "  return ::absl::OkStatus();\n}\n\n";
}

}  // namespace lpc::codegen::internal
