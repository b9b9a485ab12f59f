// Emits foo.lpc.h and foo.lpc.cc.
//
// Naming in generated definitions: parameters and locals are spelled
// lpc_p<N>, lpc_ctx, lpc_msg, ... so that no IDL name can clash with them;
// only declarations in the header use the IDL's parameter names. Every
// reference to a library or generated type is fully qualified ("::lpc::",
// "::std::", "::a::b::"), so that a package component called "std" or "lpc"
// cannot change what a name means.
#include "codegen/comments.h"
#include "codegen/cpp_emitter.h"

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <utility>
#include <variant>

#include "google/protobuf/compiler/cpp/names.h"

namespace lpc::codegen {
namespace {

namespace pb = google::protobuf;
namespace cpp = google::protobuf::compiler::cpp;
using idl::MethodDecl;
using idl::ParamDecl;
using idl::ParamDirection;
using idl::TypeRef;
using Kind = idl::TypeRef::Kind;

// Builds a statement that fails the current check with the C++ string
// expression `what`.
using FailFn = std::function<std::string(const std::string& what)>;

std::string Pad(int indent) { return std::string(static_cast<size_t>(indent), ' '); }

// A C++ string literal with the bytes of `s`.
std::string CppString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '?') {
      out += "\\?";  // Never forms a trigraph.
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\%03o", c);
      out += buf;
    }
  }
  return out + "\"";
}

// `doc` as // comment lines at `indent`. Lines are made safe for C++: no
// control bytes, and no trailing backslash (which would continue the comment
// onto the next line of code).
std::string Comment(const std::string& doc, int indent) {
  std::string out;
  for (const std::string& line : SafeCommentLines(doc)) {
    out += Pad(indent) + (line.empty() ? "//" : "// " + line) + "\n";
  }
  return out;
}

// Wraps a declaration or call that is longer than 80 columns at the commas
// of its (first) parenthesised list, Google style: continuation lines align
// after the '(' when they fit there, else indent by 4. Lines that hold
// string literals, comments or statements are left alone.
std::string WrapLine(const std::string& line) {
  constexpr size_t kWidth = 80;
  if (line.size() <= kWidth) return line;
  size_t indent = line.find_first_not_of(' ');
  if (indent == std::string::npos) return line;
  std::string_view body(line);
  body.remove_prefix(indent);
  for (std::string_view skip : {"//", "if ", "for ", "return ", "switch ", "case "}) {
    if (body.substr(0, skip.size()) == skip) return line;
  }
  if (line.find('"') != std::string::npos || line.find("->") != std::string::npos) {
    return line;
  }
  size_t open = line.find('(');
  if (open == std::string::npos) return line;
  // Split the list at depth-1 commas; find its closing parenthesis.
  std::vector<std::string> items;
  size_t close = std::string::npos;
  int paren = 0;
  int angle = 0;
  size_t start = open + 1;
  for (size_t i = open; i < line.size(); ++i) {
    char c = line[i];
    if (c == '(') ++paren;
    if (c == ')' && --paren == 0) {
      close = i;
      break;
    }
    if (c == '<') ++angle;
    if (c == '>') --angle;
    if (c == ',' && paren == 1 && angle == 0) {
      items.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  if (close == std::string::npos) return line;
  items.push_back(line.substr(start, close - start));
  for (std::string& item : items) {
    size_t b = item.find_first_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b);
  }
  std::string head = line.substr(0, open + 1);
  std::string tail = line.substr(close);  // ")..." to the end.
  auto fill = [&](size_t column, std::string out) -> std::string {
    size_t width = column;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string piece = items[i] + (i + 1 < items.size() ? "," : tail);
      if (i > 0) {
        if (width + 1 + piece.size() > kWidth) {
          out += "\n" + std::string(column, ' ');
          width = column;
        } else {
          out += " ";
          width += 1;
        }
      }
      out += piece;
      width += piece.size();
    }
    return out;
  };
  size_t longest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    longest = std::max(longest, items[i].size() + (i + 1 < items.size() ? 1 : tail.size()));
  }
  if (open + 1 + longest <= kWidth) return fill(open + 1, head);
  return fill(indent + 4, head + "\n" + std::string(indent + 4, ' '));
}

// Applies WrapLine to every line of `text`.
std::string WrapLines(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out += WrapLine(text.substr(start, nl - start));
    out += '\n';
    start = nl + 1;
  }
  return out;
}

const char* NarrowType(Kind k) {
  switch (k) {
    case Kind::kInt8: return "int8_t";
    case Kind::kInt16: return "int16_t";
    case Kind::kUint8: return "uint8_t";
    case Kind::kUint16: return "uint16_t";
    default: return nullptr;
  }
}

const char* IdlKindName(Kind k) {
  switch (k) {
    case Kind::kInt8: return "int8";
    case Kind::kInt16: return "int16";
    case Kind::kUint8: return "uint8";
    case Kind::kUint16: return "uint16";
    default: return "";
  }
}

class Emitter {
 public:
  Emitter(const idl::File& file, const pb::FileDescriptor* fd,
          std::vector<CodegenError>* errors)
      : file_(file), fd_(fd), pool_(fd->pool()), errors_(errors) {
    package_ = PackageName(file);
    ns_ = "::";
    for (const std::string& p : file.package) ns_ += p + "::";
  }

  bool Run(CppOutput* out) {
    CheckNames();
    if (failed_) return false;
    EmitHeader();
    EmitSource();
    if (failed_) return false;
    out->header = WrapLines(h_);
    out->source = WrapLines(cc_);
    return true;
  }

 private:
  void Error(const idl::SourceLocation& loc, std::string message) {
    errors_->push_back({loc, std::move(message)});
    failed_ = true;
  }

  // ---- Descriptors and types ----

  const pb::Descriptor* Message(const std::string& full_name) {
    const pb::Descriptor* d = pool_->FindMessageTypeByName(full_name);
    if (d == nullptr) {
      Error({file_.path, 0, 0}, "internal: no message " + full_name);
    }
    return d;
  }

  // `name` qualified with this file's package.
  std::string InPackage(const std::string& name) const {
    return (package_.empty() ? "" : package_ + ".") + name;
  }

  // The method's response message, looked up quietly (the scans that
  // decide which helpers to emit; the emitters report a missing one).
  const pb::Descriptor* ResponseOf(const MethodDecl& m) const {
    return pool_->FindMessageTypeByName(InPackage(ResponseMessageName(m)));
  }

  const pb::FieldDescriptor* Field(const pb::Descriptor* d,
                                   const std::string& name) {
    if (d == nullptr) return nullptr;
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr) {
      Error({file_.path, 0, 0},
            "internal: no field " + name + " in " + d->full_name());
    }
    return f;
  }

  std::string StructClass(const idl::StructDecl* s) {
    const pb::Descriptor* d = Message(s->full_name);
    return d == nullptr ? "void" : cpp::QualifiedClassName(d);
  }

  std::string EnumClass(const idl::EnumDecl* e) {
    const pb::EnumDescriptor* d = pool_->FindEnumTypeByName(e->full_name);
    if (d == nullptr) {
      Error(e->loc, "internal: no enum " + e->full_name);
      return "int";
    }
    return cpp::QualifiedClassName(d);
  }

  // The lpc_internal namespace that holds CheckRanges for struct `s`: the one
  // of the package `s` is declared in.
  std::string CheckRangesFn(const idl::StructDecl* s) {
    const pb::Descriptor* d = Message(s->full_name);
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
    return ns + "lpc_internal::CheckRanges";
  }

  std::string CppType(const TypeRef& t) {
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
    }
    return "void";
  }

  static bool ByValue(const TypeRef& t) {
    switch (t.kind) {
      case Kind::kString:
      case Kind::kBytes:
      case Kind::kSequence:
      case Kind::kMap:
      case Kind::kOptional:
        return false;
      case Kind::kNamed:
        return t.resolved_enum != nullptr;
      default:
        return true;
    }
  }

  std::string InType(const TypeRef& t) {
    return ByValue(t) ? CppType(t) : "const " + CppType(t) + "&";
  }

  // ---- Conversions between C++ values and protobuf fields ----

  static bool NeedsCheck(const TypeRef& t) {
    return NarrowType(t.kind) != nullptr ||
           (t.kind == Kind::kNamed && t.resolved_struct != nullptr);
  }

  // Statements that check the protobuf element value `v` of element type
  // `t` (narrow integers in range, structs' nested ranges); `what` names it.
  std::string ElemCheck(const TypeRef& t, const std::string& v,
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

  // The C++ value of protobuf element value `v` (already checked).
  std::string ElemValue(const TypeRef& t, const std::string& v) {
    if (const char* narrow = NarrowType(t.kind)) {
      return "static_cast<" + std::string(narrow) + ">(" + v + ")";
    }
    if (t.kind == Kind::kNamed && t.resolved_enum != nullptr) {
      return "static_cast<" + EnumClass(t.resolved_enum) + ">(" + v + ")";
    }
    return v;
  }

  // The protobuf value of C++ element value `v`.
  std::string ProtoElem(const TypeRef& t, const std::string& v) {
    if (NarrowType(t.kind) != nullptr) {
      bool is_signed = t.kind == Kind::kInt8 || t.kind == Kind::kInt16;
      return std::string(is_signed ? "static_cast<int32_t>(" : "static_cast<uint32_t>(") +
             v + ")";
    }
    return v;
  }

  // Whether a value of IDL type `t` owns heap memory that a move hands over
  // instead of copying (strings, bytes and structs).
  static bool Movable(const TypeRef& t) {
    return t.kind == Kind::kString || t.kind == Kind::kBytes ||
           (t.kind == Kind::kNamed && t.resolved_struct != nullptr);
  }

  // Statements that store C++ value `src` of IDL type `t` into field `f` of
  // protobuf message `msg`. With `move`, `src` is owned by the caller and is
  // moved from (strings, bytes and structs, also as elements).
  std::string ToProto(const TypeRef& t, const pb::FieldDescriptor* f,
                      const std::string& msg, const std::string& src,
                      int indent, bool move = false) {
    if (f == nullptr) return "";
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

  // Statements that read field `f` of protobuf message `msg` into the C++
  // lvalue `dst` (value-initialised) of IDL type `t`, failing through `fail`
  // when a value is out of range. `what` names the value in errors. With
  // `move`, `msg` is owned by the caller and its strings, bytes and structs
  // are moved out (after their checks) instead of copied.
  std::string FromProto(const TypeRef& t, const pb::FieldDescriptor* f,
                        const std::string& msg, const std::string& dst,
                        const std::string& what, const FailFn& fail,
                        int indent, bool move = false) {
    if (f == nullptr) return "";
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

  // Statements that only check field `f` of `msg` (for CheckRanges).
  std::string CheckField(const TypeRef& t, const pb::FieldDescriptor* f,
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

  // ---- Names ----

  // A name not used by any parameter of `m`: `base`, else base + "_"...
  static std::string FreeName(const MethodDecl& m, std::string base) {
    for (;;) {
      bool used = false;
      for (const ParamDecl& p : m.params) used = used || p.name == base;
      if (!used) return base;
      base += "_";
    }
  }

  void CollectTopLevelNames(const idl::File& f, std::set<const idl::File*>* seen,
                            std::map<std::string, std::string>* names) {
    if (!seen->insert(&f).second) return;
    if (PackageName(f) == package_) {
      for (const auto& s : f.structs) names->emplace(s->name, "struct " + s->name);
      for (const auto& e : f.enums) {
        names->emplace(e->name, "enum " + e->name);
        for (const auto& v : e->values) {
          names->emplace(v.name, "enum value " + e->name + "." + v.name);
        }
      }
      for (const auto& c : f.consts) names->emplace(c->name, "const " + c->name);
      for (const auto& i : f.interfaces) {
        for (const auto& m : i->methods) {
          names->emplace(RequestMessageName(m), "message " + RequestMessageName(m));
          names->emplace(ResponseMessageName(m), "message " + ResponseMessageName(m));
        }
        if (&f != &file_) {
          names->emplace(i->name + "Client", "class " + i->name + "Client");
          names->emplace(i->name + "Service", "class " + i->name + "Service");
        }
      }
    }
    for (const idl::ImportDecl& imp : f.imports) {
      if (imp.file != nullptr) CollectTopLevelNames(*imp.file, seen, names);
    }
  }

  void CheckNames() {
    std::map<std::string, std::string> top;
    std::set<const idl::File*> seen;
    CollectTopLevelNames(file_, &seen, &top);
    top.emplace("lpc_internal", "the namespace lpc_internal");
    for (const auto& iface : file_.interfaces) {
      for (const char* suffix : {"Client", "Service"}) {
        std::string cls = iface->name + suffix;
        auto [it, inserted] = top.emplace(cls, "class " + cls);
        if (!inserted) {
          Error(iface->loc, "interface " + iface->name + " needs a C++ class '" +
                                cls + "', which collides with " + it->second +
                                "; rename one of them");
        }
      }
      std::map<std::string, std::string> client = {
          {"Descriptor", "Descriptor()"},
          {iface->name + "Client", "the constructor"}};
      std::map<std::string, std::string> service = {
          {"Descriptor", "Descriptor()"},
          {"descriptor", "descriptor()"},
          {"Dispatch", "Dispatch()"},
          {iface->name + "Service", "the constructor"}};
      for (const MethodDecl& m : iface->methods) {
        std::vector<std::string> members = {m.name};
        if (!m.oneway) {
          members.push_back(m.name + "Async");
          members.push_back(m.name + "Future");
          members.push_back(m.name + "Result");
        }
        for (const std::string& member : members) {
          auto [it, inserted] = client.emplace(member, "method " + m.name);
          if (!inserted) {
            Error(m.loc, "method " + m.name + " needs a member '" + member +
                             "' in " + iface->name + "Client, which is taken by " +
                             it->second + "; rename the method");
          }
        }
        auto [it, inserted] = service.emplace(m.name, "method " + m.name);
        if (!inserted) {
          Error(m.loc, "method " + m.name + " collides with " + it->second +
                           " of " + iface->name + "Service; rename it");
        }
        if (m.return_type.kind != Kind::kVoid && !m.oneway) {
          for (const ParamDecl& p : m.params) {
            if (p.direction != ParamDirection::kIn && p.name == "value") {
              Error(p.loc, "parameter 'value' of " + m.name +
                               " collides with the `value` member (the return "
                               "value) of " + m.name + "Result; rename it");
            }
          }
        }
      }
    }
  }

  // ---- Header ----

  std::string HeaderGuard() {
    std::string g = "LPC_GENERATED_";
    for (char c : OutputStem(file_)) {
      if ((c >= 'a' && c <= 'z')) {
        g += static_cast<char>(c - 'a' + 'A');
      } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        g += c;
      } else {
        g += '_';
      }
    }
    return g + "_LPC_H_";
  }

  std::string NamespaceOpen() {
    if (file_.package.empty()) return "";
    std::string ns;
    for (const std::string& p : file_.package) ns += (ns.empty() ? "" : "::") + p;
    return "namespace " + ns + " {\n\n";
  }

  std::string NamespaceClose() {
    if (file_.package.empty()) return "";
    std::string ns;
    for (const std::string& p : file_.package) ns += (ns.empty() ? "" : "::") + p;
    return "}  // namespace " + ns + "\n";
  }

  std::string ConstValueLiteral(const idl::ConstDecl& c) {
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

  void EmitConst(const idl::ConstDecl& c, const std::string& name) {
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

  void EmitNestedConsts(const idl::StructDecl& s) {
    const pb::Descriptor* d = Message(s.full_name);
    if (d == nullptr) return;
    for (const auto& c : s.nested_consts) {
      EmitConst(*c, cpp::ClassName(d) + "_" + c->name);
    }
    for (const auto& n : s.nested_structs) EmitNestedConsts(*n);
  }

  void ForEachStruct(const idl::StructDecl& s,
                     const std::function<void(const idl::StructDecl&)>& fn) {
    fn(s);
    for (const auto& n : s.nested_structs) ForEachStruct(*n, fn);
  }

  std::string SyncReturn(const MethodDecl& m) {
    if (m.return_type.kind == Kind::kVoid) return "::absl::Status";
    return "::absl::StatusOr<" + CppType(m.return_type) + ">";
  }

  // The IDL parameters as C++ parameters. `names` gives each one's name by
  // index. Sync and handler form: [out]/[in,out] as T*.
  std::string ParamList(const MethodDecl& m,
                        const std::function<std::string(size_t)>& names) {
    std::string out;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const ParamDecl& p = m.params[i];
      if (!out.empty()) out += ", ";
      if (p.direction == ParamDirection::kIn) {
        out += InType(p.type) + " " + names(i);
      } else {
        out += CppType(p.type) + "* " + names(i);
      }
    }
    return out;
  }

  // Async form: [in] and [in,out] as inputs; [out] omitted.
  std::string InputParamList(const MethodDecl& m,
                             const std::function<std::string(size_t)>& names) {
    std::string out;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const ParamDecl& p = m.params[i];
      if (p.direction == ParamDirection::kOut) continue;
      if (!out.empty()) out += ", ";
      out += InType(p.type) + " " + names(i);
    }
    return out;
  }

  static std::string Join(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    return a + ", " + b;
  }

  void EmitClientClass(const idl::InterfaceDecl& iface) {
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
    for (const MethodDecl& m : iface.methods) {
      auto idl_name = [&](size_t i) { return m.params[i].name; };
      std::string ctx = FreeName(m, "ctx");
      h_ += "\n";
      h_ += Comment(m.doc, 2);
      if (m.oneway) {
        h_ += "  // Oneway: returns once the transport accepted the message.\n";
        h_ += "  ::absl::Status " + m.name + "(" +
              Join(ParamList(m, idl_name), "::lpc::CallContext* " + ctx + " = nullptr") +
              ");\n";
        continue;
      }
      h_ += "  " + SyncReturn(m) + " " + m.name + "(" +
            Join(ParamList(m, idl_name), "::lpc::CallContext* " + ctx + " = nullptr") +
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

  void EmitServiceClass(const idl::InterfaceDecl& iface) {
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
    h_ += "  ::absl::Status Dispatch(uint32_t method_id, ::lpc::CallContext& ctx,\n"
          "                          ::std::string_view request,\n"
          "                          ::std::string* response) override;\n";
    for (const MethodDecl& m : iface.methods) {
      auto idl_name = [&](size_t i) { return m.params[i].name; };
      std::string ctx = FreeName(m, "ctx");
      h_ += "\n";
      h_ += Comment(m.doc, 2);
      std::string params =
          Join("::lpc::CallContext& " + ctx, ParamList(m, idl_name));
      if (m.oneway) {
        h_ += "  // Oneway: nothing is sent back.\n";
        h_ += "  virtual void " + m.name + "(" + params + ") = 0;\n";
      } else {
        h_ += "  virtual " + SyncReturn(m) + " " + m.name + "(" + params +
              ") = 0;\n";
      }
    }
    h_ += "};\n\n";
  }

  void EmitHeader() {
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

    h_ += "namespace lpc_internal {\n\n";
    h_ += "// Whether every int8/int16/uint8/uint16 field of the message, at any\n"
          "// depth, is in its IDL type's range (protobuf carries them widened).\n"
          "// On false, *bad_field names the first offending field.\n";
    for (const auto& s : file_.structs) {
      ForEachStruct(*s, [&](const idl::StructDecl& d) {
        h_ += "bool CheckRanges(const " + StructClass(&d) +
              "& message, ::std::string* bad_field);\n";
      });
    }
    h_ += "\n}  // namespace lpc_internal\n\n";

    for (const auto& iface : file_.interfaces) {
      EmitClientClass(*iface);
      EmitServiceClass(*iface);
    }
    h_ += NamespaceClose();
    h_ += "\n#endif  // " + guard + "\n";
  }

  // ---- Source ----

  void EmitCheckRanges(const idl::StructDecl& s) {
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

  std::string MethodPath(const idl::InterfaceDecl& iface, const MethodDecl& m) {
    return InPackage(iface.name + "." + m.name);
  }

  static std::string P(size_t i) { return "lpc_p" + std::to_string(i); }

  // Whether the request encoder of `m` writes a parameter straight into
  // the request buffer (see EmitEncode).
  bool HasDirectFields(const MethodDecl& m) {
    for (const ParamDecl& p : m.params) {
      if (p.direction != ParamDirection::kOut && Movable(p.type)) return true;
    }
    return false;
  }

  // <Method>_Encode: the request message. Scalars, sequences, maps and
  // optionals go through the protobuf message; a top-level string, bytes or
  // struct argument is written straight from the caller's object after the
  // rest, as one length-delimited field (a parser accepts fields in any
  // order), so that it is copied once, into a request buffer sized once.
  void EmitEncode(const idl::InterfaceDecl& iface, const MethodDecl& m) {
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
      if (Movable(p.type) && f != nullptr) {
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

  // A top-level string or bytes field of a reply, and the member of the
  // method's Result struct that receives it.
  struct SoleField {
    const pb::FieldDescriptor* field;
    std::string member;
    bool is_utf8;  // A proto3 string: protobuf's parser insists on UTF-8.
  };

  std::vector<SoleField> SoleFields(const MethodDecl& m,
                                    const pb::Descriptor* resp) {
    std::vector<SoleField> out;
    if (m.oneway || resp == nullptr) return out;
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

  bool AnySoleFields() {
    for (const auto& iface : file_.interfaces) {
      for (const MethodDecl& m : iface->methods) {
        if (m.oneway) continue;
        if (!SoleFields(m, ResponseOf(m)).empty()) return true;
      }
    }
    return false;
  }

  void EmitDecode(const idl::InterfaceDecl& iface, const MethodDecl& m) {
    const pb::Descriptor* resp =
        Message(InPackage(ResponseMessageName(m)));
    if (resp == nullptr) return;
    std::string result = ns_ + iface.name + "Client::" + m.name + "Result";
    cc_ += "::absl::StatusOr<" + result + "> " + m.name +
           "_Decode(::absl::StatusOr<::std::string> lpc_reply) {\n";
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
    cc_ += "  return lpc_result;\n}\n\n";
  }

  void EmitDispatchFn(const idl::InterfaceDecl& iface, const MethodDecl& m) {
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
    for (size_t i = 0; i < m.params.size(); ++i) {
      const ParamDecl& p = m.params[i];
      const pb::FieldDescriptor* f =
          p.direction == ParamDirection::kOut ? nullptr : Field(req, p.name);
      if (p.direction == ParamDirection::kIn && Movable(p.type) && f != nullptr) {
        // The handler takes a const reference: hand it the parsed field.
        std::string get = "lpc_msg." + cpp::FieldName(f) + "()";
        cc_ += ElemCheck(p.type, get, p.name, fail, 2);
        args += ", " + get;
        continue;
      }
      cc_ += "  " + CppType(p.type) + " " + P(i) + "{};\n";
      if (p.direction != ParamDirection::kOut) {
        cc_ += FromProto(p.type, f, "lpc_msg", P(i), p.name, fail, 2,
                         /*move=*/true);
      }
      args += p.direction == ParamDirection::kIn ? ", " + P(i) : ", &" + P(i);
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

  // Arguments for <Method>_Encode from the stub's parameters. `sync` passes
  // [in,out] pointers as they are; async passes their address.
  static std::string EncodeArgs(const MethodDecl& m, bool sync) {
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
    return Join(args, "&lpc_request");
  }

  void EmitClientMethods(const idl::InterfaceDecl& iface, size_t index) {
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
      // Future.
      std::string fut = "::std::future<::absl::StatusOr<" + result + ">>";
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
    (void)index;
  }

  void EmitServiceMethods(const idl::InterfaceDecl& iface) {
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
        cc_ += "    case " + std::to_string(m.ordinal) + ":\n      return " + impl +
               "::" + m.name + "_Dispatch(*this, ctx, request, response);\n";
      }
      cc_ += "    default:\n      break;\n  }\n";
    }
    std::string full = InPackage(iface.name);
    cc_ += "  return ::absl::UnimplementedError(" +
           CppString("lpc: " + full + " has no method with id ") +
           " +\n                                     ::std::to_string(method_id));\n}\n\n";
  }

  void EmitInterfaceImpl(const idl::InterfaceDecl& iface) {
    std::string impl = "lpc_" + iface.name;
    std::string full = InPackage(iface.name);
    cc_ += "namespace " + impl + " {\n\n";
    if (!iface.methods.empty()) {
      cc_ += "constexpr ::lpc::MethodDescriptor kMethods[] = {\n";
      for (const MethodDecl& m : iface.methods) {
        cc_ += "    {" + CppString(m.name) + ", " + std::to_string(m.ordinal) +
               ", " + (m.oneway ? "true" : "false") + "},\n";
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
      EmitEncode(iface, m);
      if (!m.oneway) EmitDecode(iface, m);
      EmitDispatchFn(iface, m);
    }
    cc_ += "}  // namespace " + impl + "\n\n";
  }

  // The reply field a server writes straight into its response (see
  // EmitDispatchFn): a method that returns bytes and has no [out] or
  // [in,out] parameter. (Not string: protobuf checks a proto3 string's
  // UTF-8 when it serializes one, and that stays with protobuf.)
  const pb::FieldDescriptor* DirectReplyField(const MethodDecl& m,
                                              const pb::Descriptor* resp) {
    if (m.oneway || resp == nullptr || m.return_type.kind != Kind::kBytes) {
      return nullptr;
    }
    for (const ParamDecl& p : m.params) {
      if (p.direction != ParamDirection::kIn) return nullptr;
    }
    return resp->FindFieldByName(kResultFieldName);
  }

  // Whether some request encoder writes a direct field: of a string or
  // bytes type (`strings`), of a struct type (`structs`); a direct reply
  // field (DirectReplyField) counts as a bytes one.
  bool AnyDirectFields(bool strings = true, bool structs = true) {
    for (const auto& iface : file_.interfaces) {
      for (const MethodDecl& m : iface->methods) {
        if (strings && DirectReplyField(m, ResponseOf(m)) != nullptr) {
          return true;
        }
        for (const ParamDecl& p : m.params) {
          if (p.direction == ParamDirection::kOut || !Movable(p.type)) continue;
          if (p.type.kind == Kind::kNamed ? structs : strings) return true;
        }
      }
    }
    return false;
  }

  // The helpers of the request encoders that write a field straight into
  // the request buffer (see EmitEncode).
  void EmitFieldWriters() {
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

  // The helper of the reply decoders that take a reply of one string or
  // bytes field in place (see EmitDecode).
  void EmitSoleFieldReader() {
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

  void EmitSource() {
    std::string stem = OutputStem(file_);
    cc_ += "// Generated by lpcc from " + stem + ".idl. Do not edit.\n";
    cc_ += "#include \"" + stem + ".lpc.h\"\n\n";
    for (const char* inc : {"climits", "cstddef", "cstdint", "memory",
                            "optional", "string", "utility"}) {
      cc_ += "#include <" + std::string(inc) + ">\n";
    }
    cc_ += "\n#include \"absl/types/span.h\"\n";
    if (AnyDirectFields() || AnySoleFields()) {
      cc_ += "#include \"google/protobuf/io/coded_stream.h\"\n";
    }
    if (AnyDirectFields(/*strings=*/false, /*structs=*/true)) {
      cc_ += "#include \"google/protobuf/message_lite.h\"\n";
    }
    if (AnySoleFields()) {
      cc_ += "#include \"google/protobuf/stubs/common.h\"\n";
    }
    cc_ += "\n";
    cc_ += NamespaceOpen();
    cc_ += "namespace lpc_internal {\n\n";
    for (const auto& s : file_.structs) {
      ForEachStruct(*s, [&](const idl::StructDecl& d) { EmitCheckRanges(d); });
    }
    cc_ += "}  // namespace lpc_internal\n\n";
    if (!file_.interfaces.empty()) {
      cc_ += "namespace {\n\n";
      if (AnyDirectFields()) EmitFieldWriters();
      if (AnySoleFields()) EmitSoleFieldReader();
      for (const auto& iface : file_.interfaces) EmitInterfaceImpl(*iface);
      cc_ += "}  // namespace\n\n";
    }
    for (size_t i = 0; i < file_.interfaces.size(); ++i) {
      EmitClientMethods(*file_.interfaces[i], i);
      EmitServiceMethods(*file_.interfaces[i]);
    }
    cc_ += NamespaceClose();
  }

  const idl::File& file_;
  const pb::FileDescriptor* fd_;
  const pb::DescriptorPool* pool_;
  std::vector<CodegenError>* errors_;
  std::string package_;
  std::string ns_;  // "::a::b::"
  std::string h_;
  std::string cc_;
  bool failed_ = false;
};

}  // namespace

bool EmitCpp(const idl::File& file,
             const google::protobuf::FileDescriptor* descriptor, CppOutput* out,
             std::vector<CodegenError>* errors) {
  return Emitter(file, descriptor, errors).Run(out);
}

}  // namespace lpc::codegen
