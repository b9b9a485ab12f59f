// foo.lpc.h: constants, the CheckRanges declarations, and the client and
// service classes.
#include "codegen/internal/emitter.h"

#include <cstring>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>
#include <variant>

namespace lpc::codegen::internal {

std::string Emitter::ConstValueLiteral(const idl::ConstDecl& c) {
  const TypeRef& t = c.type;
  const idl::ConstValue& v = c.value;
  auto as_int = [&]() -> std::pair<bool, int64_t> {  // {is_negative_ok, value}
    if (const int64_t* i = std::get_if<int64_t>(&v)) return {true, *i};
    if (const uint64_t* u = std::get_if<uint64_t>(&v)) {
      return {true, static_cast<int64_t>(*u)};
    }
    if (const bool* b = std::get_if<bool>(&v)) return {true, *b ? 1 : 0};
    if (const double* d = std::get_if<double>(&v)) {
      return {true, static_cast<int64_t>(*d)};
    }
    return {false, 0};
  };
  switch (t.kind) {
    case Kind::kBool: {
      bool b = false;
      if (const bool* pb = std::get_if<bool>(&v)) {
        b = *pb;
      } else {
        b = as_int().second != 0;
      }
      return b ? "true" : "false";
    }
    case Kind::kInt8:
    case Kind::kInt16:
    case Kind::kInt32:
    case Kind::kInt64: {
      int64_t i = as_int().second;
      if (i == std::numeric_limits<int64_t>::min()) {
        return "(-9223372036854775807LL - 1)";
      }
      return std::to_string(i) + (t.kind == Kind::kInt64 ? "LL" : "");
    }
    case Kind::kUint8:
    case Kind::kUint16:
    case Kind::kUint32:
    case Kind::kUint64: {
      uint64_t u = 0;
      if (const uint64_t* pu = std::get_if<uint64_t>(&v)) {
        u = *pu;
      } else {
        u = static_cast<uint64_t>(as_int().second);
      }
      return std::to_string(u) + (t.kind == Kind::kUint64 ? "ULL" : "u");
    }
    case Kind::kFloat:
    case Kind::kDouble: {
      double d = 0;
      if (const double* pd = std::get_if<double>(&v)) {
        d = *pd;
      } else if (const uint64_t* pu = std::get_if<uint64_t>(&v)) {
        d = static_cast<double>(*pu);
      } else {
        d = static_cast<double>(as_int().second);
      }
      std::string type = t.kind == Kind::kFloat ? "float" : "double";
      if (std::isnan(d)) return "::std::numeric_limits<" + type + ">::quiet_NaN()";
      if (std::isinf(d)) {
        return std::string(d < 0 ? "-" : "") + "::std::numeric_limits<" +
               type + ">::infinity()";
      }
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.17g", d);
      std::string s = buf;
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      if (t.kind == Kind::kFloat) s = "static_cast<float>(" + s + ")";
      return s;
    }
    case Kind::kString:
    case Kind::kBytes: {
      std::string s;
      if (const std::string* ps = std::get_if<std::string>(&v)) s = *ps;
      return "::std::string_view(" + CppString(s) + ", " +
             std::to_string(s.size()) + ")";
    }
    case Kind::kNamed: {
      if (t.resolved_enum == nullptr) break;
      int64_t i = as_int().second;
      const pb::EnumDescriptor* ed =
          pool_->FindEnumTypeByName(t.resolved_enum->full_name);
      if (ed != nullptr && i >= INT32_MIN && i <= INT32_MAX) {
        const pb::EnumValueDescriptor* ev =
            ed->FindValueByNumber(static_cast<int>(i));
        if (ev != nullptr) {
          if (ed->containing_type() != nullptr) {
            return cpp::QualifiedClassName(ed) + "_" + cpp::EnumValueName(ev);
          }
          std::string ns = "::";
          for (char ch : ed->file()->package()) {
            if (ch == '.') {
              ns += "::";
            } else {
              ns += ch;
            }
          }
          if (!ed->file()->package().empty()) ns += "::";
          return ns + cpp::EnumValueName(ev);
        }
      }
      return "static_cast<" + EnumClass(t.resolved_enum) + ">(" +
             std::to_string(i) + ")";
    }
    default:
      break;
  }
  Error(c.loc, "constant " + c.name + " has a type lpcc cannot emit");
  return "0";
}

void Emitter::EmitConst(const idl::ConstDecl& c, const std::string& name) {
  std::string type;
  if (c.type.kind == Kind::kString || c.type.kind == Kind::kBytes) {
    type = "::std::string_view";
  } else {
    type = CppType(c.type);
  }
  h_ += Comment(c.doc, 0);
  h_ += "inline constexpr " + type + " " + name + " = " + ConstValueLiteral(c) +
        ";\n";
}

void Emitter::EmitNestedConsts(const idl::StructDecl& s) {
  const pb::Descriptor* d = Message(WireMessageName(s));
  if (d == nullptr) return;
  std::string prefix = cpp::ClassName(d);
  if (s.carries_handle) prefix.resize(prefix.size() - std::strlen(kWireSuffix));
  for (const auto& c : s.nested_consts) {
    EmitConst(*c, prefix + "_" + c->name);
  }
  for (const auto& n : s.nested_structs) EmitNestedConsts(*n);
}

void Emitter::EmitClientClass(const idl::InterfaceDecl& iface) {
  std::string cls = iface.name + "Client";
  h_ += Comment(iface.doc, 0);
  h_ += "//\n// The client of " + package_ + (package_.empty() ? "" : ".") +
        iface.name +
        ". Thread-safe; cheap to copy\n// (it holds a shared Channel). A call "
        "with ctx == nullptr uses a context\n// of its own; an async call's "
        "caller-provided ctx must outlive the call.\n";
  h_ += "class " + cls + " {\n public:\n";
  h_ += "  static const ::lpc::InterfaceDescriptor& Descriptor();\n\n";
  h_ += "  explicit " + cls + "(::std::shared_ptr<::lpc::Channel> channel);\n";
  if (HasBufferArg(iface)) {
    h_ += "\n  // A writable buffer of `size` bytes for a `buffer` argument\n"
          "  // (runtime/buffer.h): shared memory that the channel's transport\n"
          "  // sends without a copy where it can, heap memory otherwise.\n"
          "  ::absl::StatusOr<::lpc::Buffer> NewBuffer(size_t size);\n";
  }
  for (const MethodDecl& m : iface.methods) {
    auto idl_name = [&](size_t i) { return m.params[i].name; };
    std::string ctx = FreeName(m, "ctx");
    h_ += "\n";
    h_ += Comment(m.doc, 2);
    if (m.streaming()) {
      EmitStreamingClientDecl(iface, m);
      continue;
    }
    if (m.oneway) {
      h_ += "  // Oneway: returns once the transport accepted the message.\n";
      h_ += "  ::absl::Status " + m.name + "(" +
            Join(ParamList(m, idl_name, /*client=*/true), "::lpc::CallContext* " + ctx + " = nullptr") +
            ");\n";
      continue;
    }
    h_ += "  " + SyncReturn(m) + " " + m.name + "(" +
          Join(ParamList(m, idl_name, /*client=*/true), "::lpc::CallContext* " + ctx + " = nullptr") +
          ");\n";
    // The async result.
    h_ += "  struct " + m.name + "Result {\n";
    if (m.return_type.kind != Kind::kVoid) {
      h_ += "    " + CppType(m.return_type) + " value{};\n";
    }
    for (const ParamDecl& p : m.params) {
      if (p.direction == ParamDirection::kIn) continue;
      h_ += "    " + CppType(p.type) + " " + p.name + "{};\n";
    }
    h_ += "  };\n";
    std::string done = FreeName(m, "done");
    h_ += "  void " + m.name + "Async(" +
          Join(InputParamList(m, idl_name),
               "::std::function<void(::absl::StatusOr<" + m.name + "Result>)> " +
                   done + ", ::lpc::CallContext* " + ctx + " = nullptr") +
          ");\n";
    h_ += "  ::std::future<::absl::StatusOr<" + m.name + "Result>> " + m.name +
          "Future(" +
          Join(InputParamList(m, idl_name), "::lpc::CallContext* " + ctx + " = nullptr") +
          ");\n";
  }
  h_ += "\n private:\n  ::std::shared_ptr<::lpc::Channel> channel_;\n};\n\n";
}

void Emitter::EmitServiceClass(const idl::InterfaceDecl& iface) {
  std::string cls = iface.name + "Service";
  h_ += Comment(iface.doc, 0);
  h_ += "//\n// The server side of " + package_ + (package_.empty() ? "" : ".") +
        iface.name +
        ": derive from it, implement\n// the handlers, and register the "
        "object with an lpc::Server. Handlers run\n// concurrently and must "
        "be thread-safe.\n";
  h_ += "class " + cls + " : public ::lpc::Service {\n public:\n";
  h_ += "  static const ::lpc::InterfaceDescriptor& Descriptor();\n";
  h_ += "  const ::lpc::InterfaceDescriptor& descriptor() const override;\n";
  h_ += "  ::absl::Status DispatchWith(uint32_t method_id, ::lpc::CallContext& ctx,\n"
        "                              ::lpc::ReceivedMessage& request,\n"
        "                              ::lpc::ReplySink& reply) override;\n";
  if (AnyStartCall(iface)) {
    h_ += "  // Streaming and [async] methods run through StartCall.\n";
    h_ += "  bool UsesStartCall(uint32_t method_id) const override;\n";
    h_ += "  bool StartCallBlocks(uint32_t method_id) const override;\n";
    h_ += "  void StartCall(uint32_t method_id,\n"
          "                 ::std::shared_ptr<::lpc::ServerStream> call) override;\n";
  }
  for (const MethodDecl& m : iface.methods) {
    auto idl_name = [&](size_t i) { return m.params[i].name; };
    std::string ctx = FreeName(m, "ctx");
    h_ += "\n";
    h_ += Comment(m.doc, 2);
    if (UsesStartCall(m)) {
      EmitStartCallHandlerDecl(iface, m);
      continue;
    }
    std::string params =
        Join("::lpc::CallContext& " + ctx, ParamList(m, idl_name));
    if (m.oneway) {
      h_ += "  // Oneway: nothing is sent back.\n";
      h_ += "  virtual void " + m.name + "(" + params + ") = 0;\n";
    } else {
      h_ += "  virtual " + SyncReturn(m, /*handler=*/true) + " " + m.name + "(" + params +
            ") = 0;\n";
    }
  }
  h_ += "};\n\n";
}

void Emitter::EmitHeader() {
  std::string stem = OutputStem(file_);
  h_ += "// Generated by lpcc from " + stem + ".idl. Do not edit.\n";
  if (!file_.doc.empty()) h_ += "//\n" + Comment(file_.doc, 0);
  std::string guard = HeaderGuard();
  h_ += "#ifndef " + guard + "\n#define " + guard + "\n\n";
  for (const char* inc : {"cstdint", "functional", "future", "map", "memory",
                          "optional", "string", "string_view", "vector"}) {
    h_ += "#include <" + std::string(inc) + ">\n";
  }
  h_ += "\n";
  for (const char* inc :
       {"absl/status/status.h", "absl/status/statusor.h",
        "runtime/call_context.h", "runtime/channel.h", "runtime/interface.h",
        "runtime/service.h"}) {
    h_ += "#include \"" + std::string(inc) + "\"\n";
  }
  if (!file_.contexts.empty()) {
    h_ += "#include \"runtime/context_handle.h\"\n";
  }
  if (AnyHandles()) {
    h_ += "#include \"runtime/fd.h\"\n#include \"runtime/handles.h\"\n";
  }
  if (AnyStartCall()) h_ += "#include \"runtime/stream.h\"\n";
  h_ += "#include \"" + stem + ".pb.h\"\n";
  for (const idl::ImportDecl& imp : file_.imports) {
    if (imp.file != nullptr) {
      h_ += "#include \"" + OutputStem(*imp.file) + ".lpc.h\"\n";
    }
  }
  h_ += "\n" + NamespaceOpen();

  bool any_const = !file_.consts.empty();
  for (const auto& c : file_.consts) EmitConst(*c, c->name);
  for (const auto& s : file_.structs) {
    std::string before = h_;
    EmitNestedConsts(*s);
    any_const = any_const || h_ != before;
  }
  if (any_const) h_ += "\n";
  EmitPlainStructs();

  h_ += "namespace lpc_internal {\n\n";
  h_ += "// Whether every int8/int16/uint8/uint16 field of the message, at any\n"
        "// depth, is in its IDL type's range (protobuf carries them widened).\n"
        "// On false, *bad_field names the first offending field.\n";
  for (const auto& s : file_.structs) {
    ForEachStruct(*s, [&](const idl::StructDecl& d) {
      if (d.carries_handle) return;
      h_ += "bool CheckRanges(const " + StructClass(&d) +
            "& message, ::std::string* bad_field);\n";
    });
  }
  h_ += "\n}  // namespace lpc_internal\n\n";

  // Context handle types (runtime/context_handle.h): each a distinct
  // lpc::ContextHandle, told apart by its tag.
  if (!file_.contexts.empty()) {
    h_ += "namespace lpc_internal {\n";
    for (const auto& c : file_.contexts) {
      h_ += "struct " + c->name + "_ContextTag;\n";
    }
    h_ += "}  // namespace lpc_internal\n\n";
    for (const auto& c : file_.contexts) {
      h_ += Comment(c->doc, 0);
      h_ += "using " + c->name + " = ::lpc::ContextHandle<lpc_internal::" +
            c->name + "_ContextTag>;\n";
    }
    h_ += "\n";
  }

  for (const auto& iface : file_.interfaces) {
    EmitClientClass(*iface);
    EmitServiceClass(*iface);
  }
  h_ += NamespaceClose();
  h_ += "\n#endif  // " + guard + "\n";
}

}  // namespace lpc::codegen::internal
