// The names of generated C++, checked before protobuf sees them
// (name_check.h).
#include "codegen/internal/name_check.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codegen/internal/struct_chains.h"
#include "idl/cpp_names.h"

namespace lpc::codegen::internal {
namespace {

using idl::TypeRef;
using Kind = idl::TypeRef::Kind;

// The members of every message class libprotoc 3.21 generates, and the
// members of its base classes that the generated code calls unqualified.
constexpr std::string_view kMessageMembers[] = {
    "Impl_", "_impl_", "_Internal", "InternalHelper", "GetDescriptor",
    "GetReflection", "GetMetadata", "descriptor", "default_instance",
    "internal_default_instance", "kIndexInFileMessages", "swap", "Swap",
    "UnsafeArenaSwap", "New", "CopyFrom", "MergeFrom", "Clear",
    "IsInitialized", "ByteSizeLong", "_InternalParse", "_InternalSerialize",
    "GetCachedSize", "SetCachedSize", "SharedCtor", "SharedDtor",
    "InternalSwap", "FullMessageName", "ArenaDtor", "MergeImpl",
    "_class_data_", "GetClassData", "ClassData", "InternalArenaConstructable_",
    "DestructorSkippable_", "GetOwningArena", "GetArenaForAllocation",
    "GetArena", "_internal_metadata_", "unknown_fields",
    "mutable_unknown_fields", "MaybeArenaPtr", "GetMaybeArenaPointer",
};

// The accessor prefixes libprotoc derives from a field's lower-case name
// (not every field gets every one; the check takes them all).
constexpr std::string_view kAccessorPrefixes[] = {
    "has_", "clear_", "set_", "mutable_", "add_", "release_",
    "set_allocated_", "unsafe_arena_set_allocated_", "unsafe_arena_release_",
    "_internal_", "_internal_has_", "_internal_set_", "_internal_mutable_",
    "_internal_add_"};

constexpr std::string_view kReservedPrefix = "lpc_";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

char Upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// libprotoc's UnderscoresToCamelCase: '_' dropped, the letter after it or
// after a digit capitalised.
std::string CamelCase(std::string_view s, bool cap_first) {
  std::string out;
  bool cap = cap_first;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      out += cap ? Upper(c) : c;
      cap = false;
    } else if (c >= 'A' && c <= 'Z') {
      out += c;
      cap = false;
    } else if (c >= '0' && c <= '9') {
      out += c;
      cap = true;
    } else {
      cap = true;
    }
  }
  return out;
}

// protobuf's JSON name of a field: '_' dropped, the next letter capitalised.
std::string JsonName(std::string_view s) {
  std::string out;
  bool cap = false;
  for (char c : s) {
    if (c == '_') {
      cap = true;
    } else {
      out += cap ? Upper(c) : c;
      cap = false;
    }
  }
  return out;
}

// protobuf's name of a map field's entry message.
std::string MapEntryName(std::string_view field) {
  std::string out;
  bool cap = true;
  for (char c : field) {
    if (c == '_') {
      cap = true;
    } else {
      out += cap ? Upper(c) : c;
      cap = false;
    }
  }
  return out + "Entry";
}

// A field or parameter, for the class checks.
struct Member {
  std::string name;
  const TypeRef* type;
  idl::SourceLocation loc;
  std::string what;  // "field 'x'", "parameter 'x' of M".
};

class Checker {
 public:
  Checker(const idl::File& file, std::vector<CodegenError>* errors)
      : file_(file), errors_(errors), package_(PackageName(file)) {}

  bool Run() {
    CheckPackage();
    CheckPackageScope();
    for (const auto& s : file_.structs) CheckStructClasses(*s, "");
    for (const auto& iface : file_.interfaces) {
      for (const idl::MethodDecl& m : iface->methods) CheckMethodMessages(*iface, m);
    }
    return !failed_;
  }

 private:
  void Error(const idl::SourceLocation& loc, std::string message) {
    errors_->push_back({loc, std::move(message)});
    failed_ = true;
  }

  // "Outer.Inner" for a declaration's full name "pkg.Outer.Inner".
  std::string Local(const std::string& full_name) const {
    if (!package_.empty() && full_name.size() > package_.size() &&
        full_name.compare(0, package_.size() + 1, package_ + ".") == 0) {
      return full_name.substr(package_.size() + 1);
    }
    return full_name;
  }

  // ---- The package against the names of imported files ----

  // Every full name a file puts into protobuf's pool (types, enumerators,
  // services, the request and response messages), with what declares it.
  static void PoolNames(const idl::File& f,
                        std::map<std::string, std::string>* out) {
    std::string pkg = PackageName(f);
    std::string prefix = pkg.empty() ? "" : pkg + ".";
    auto add_enum = [&](const idl::EnumDecl& e, const std::string& scope) {
      (*out)[e.full_name] = "enum " + e.full_name;
      for (const idl::EnumValue& v : e.values) {
        (*out)[scope + v.name] = "enumerator " + e.full_name + "." + v.name;
      }
    };
    std::function<void(const idl::StructDecl&)> add_struct =
        [&](const idl::StructDecl& s) {
          (*out)[s.full_name] = "struct " + s.full_name;
          for (const auto& e : s.nested_enums) add_enum(*e, s.full_name + ".");
          for (const auto& n : s.nested_structs) add_struct(*n);
        };
    for (const auto& e : f.enums) add_enum(*e, prefix);
    for (const auto& s : f.structs) add_struct(*s);
    for (const auto& i : f.interfaces) {
      (*out)[i->full_name] = "interface " + i->full_name;
      for (const idl::MethodDecl& m : i->methods) {
        std::string by = "the messages of method " + i->full_name + "." + m.name;
        for (const std::string& msg : GeneratedMessageNames(m)) {
          (*out)[prefix + msg] = by;
        }
      }
    }
  }

  static void Reachable(const idl::File& f, std::set<const idl::File*>* seen) {
    for (const idl::ImportDecl& imp : f.imports) {
      if (imp.file != nullptr && seen->insert(imp.file).second) {
        Reachable(*imp.file, seen);
      }
    }
  }

  // A package and a type cannot share a full name in protobuf (nor a
  // namespace and a class in C++): this file's package against the imports'
  // declarations, and this file's declarations against the imports'
  // packages.
  void CheckPackage() {
    std::set<const idl::File*> imported;
    Reachable(file_, &imported);
    imported.erase(&file_);
    std::map<std::string, std::string> theirs;
    std::map<std::string, const idl::File*> their_packages;
    for (const idl::File* f : imported) {
      std::map<std::string, std::string> names;
      PoolNames(*f, &names);
      for (auto& [name, what] : names) {
        theirs.emplace(name, what + " in " + f->relative_path);
      }
      std::string p;
      for (const std::string& part : f->package) {
        p += (p.empty() ? "" : ".") + part;
        their_packages.emplace(p, f);
      }
    }
    std::string p;
    for (const std::string& part : file_.package) {
      p += (p.empty() ? "" : ".") + part;
      auto it = theirs.find(p);
      if (it != theirs.end()) {
        Error(file_.package_loc,
              "package '" + package_ + "' needs the namespace '" + p +
                  "', which is the name of " + it->second +
                  "; a package cannot share a name with a type, so rename "
                  "one of them");
        return;
      }
    }
    std::map<std::string, std::string> ours;
    PoolNames(file_, &ours);
    for (const auto& [name, what] : ours) {
      auto it = their_packages.find(name);
      if (it == their_packages.end()) continue;
      Error(LocationOf(name), what + " has the full name '" + name +
                                  "', which is a package of the imported " +
                                  it->second->relative_path +
                                  "; a type cannot share a name with a "
                                  "package, so rename one of them");
    }
  }

  // The location of the declaration with full name `name` in this file.
  idl::SourceLocation LocationOf(const std::string& name) const {
    idl::SourceLocation found = file_.package_loc;
    std::function<void(const idl::StructDecl&)> visit =
        [&](const idl::StructDecl& s) {
          if (s.full_name == name) found = s.loc;
          for (const auto& e : s.nested_enums) {
            if (e->full_name == name) found = e->loc;
            for (const idl::EnumValue& v : e->values) {
              if (s.full_name + "." + v.name == name) found = v.loc;
            }
          }
          for (const auto& n : s.nested_structs) visit(*n);
        };
    std::string prefix = package_.empty() ? "" : package_ + ".";
    for (const auto& e : file_.enums) {
      if (e->full_name == name) found = e->loc;
      for (const idl::EnumValue& v : e->values) {
        if (prefix + v.name == name) found = v.loc;
      }
    }
    for (const auto& s : file_.structs) visit(*s);
    for (const auto& i : file_.interfaces) {
      if (i->full_name == name) found = i->loc;
      for (const idl::MethodDecl& m : i->methods) {
        if (prefix + RequestMessageName(m) == name ||
            prefix + ResponseMessageName(m) == name) {
          found = m.loc;
        }
      }
    }
    return found;
  }

  // ---- The package's namespace ----

  using Scope = std::map<std::string, std::string>;

  // Declares C++ name `name` at package scope for `what`. `loc` is null
  // for declarations of other files, which were checked with their file.
  void Declare(Scope* scope, const std::string& name, const std::string& what,
               const idl::SourceLocation* loc) {
    if (loc == nullptr) {
      scope->emplace(name, what);
      return;
    }
    if (std::optional<std::string> why = idl::CppNameProblem(name)) {
      Error(*loc, what + " gets the C++ name '" + name + "', which " +
                      "cannot be used: " + *why + "; rename it");
      return;
    }
    auto [it, inserted] = scope->emplace(name, what);
    if (!inserted) {
      Error(*loc, what + " needs the C++ name '" + name + "' in namespace " +
                      Namespace() + ", which is taken by " + it->second +
                      "; rename one of them");
    }
  }

  std::string Namespace() const {
    std::string ns;
    for (const std::string& p : file_.package) ns += (ns.empty() ? "" : "::") + p;
    return ns;
  }

  // The names of a message class (`cls`) at package scope.
  void DeclareMessage(Scope* scope, const std::string& cls,
                      const std::string& what, const idl::SourceLocation* loc) {
    Declare(scope, cls, what, loc);
    Declare(scope, cls + "DefaultTypeInternal", what, loc);
    Declare(scope, "_" + cls + "_default_instance_", what, loc);
  }

  void DeclareEnum(Scope* scope, const idl::EnumDecl& e, const std::string& prefix,
                   bool own) {
    std::string cls = prefix + e.name;
    std::string what = "enum " + Local(e.full_name);
    const idl::SourceLocation* loc = own ? &e.loc : nullptr;
    if (own && prefix.empty()) CheckReservedPrefix(e.name, what, e.loc);
    if (own && (e.name == "name" || e.name == "value" || e.name == "enum_t_value")) {
      // libprotoc declares E_Parse(ConstStringParam name, E* value) and
      // E_Name(T enum_t_value) for it.
      Error(e.loc, what + ": an enum cannot be named 'name', 'value' or "
                          "'enum_t_value', the parameter names of the helpers "
                          "protobuf generates for it; rename it");
    }
    Declare(scope, cls, what, loc);
    for (const char* helper : {"_IsValid", "_descriptor", "_Name", "_Parse"}) {
      Declare(scope, cls + helper, what, loc);
    }
    std::string limits = prefix.empty() ? cls : cls + "_" + e.name;
    for (const char* limit : {"_MIN", "_MAX", "_ARRAYSIZE"}) {
      Declare(scope, limits + limit, what, loc);
    }
    for (const idl::EnumValue& v : e.values) {
      std::string vwhat = "enumerator " + Local(e.full_name) + "." + v.name;
      if (own && prefix.empty()) CheckReservedPrefix(v.name, vwhat, v.loc);
      Declare(scope, prefix.empty() ? v.name : cls + "_" + v.name, vwhat,
              own ? &v.loc : nullptr);
    }
  }

  void DeclareStruct(Scope* scope, const idl::StructDecl& s,
                     const std::string& prefix, bool own) {
    std::string cls = prefix + s.name;
    std::string what = "struct " + Local(s.full_name);
    if (own && prefix.empty()) CheckReservedPrefix(s.name, what, s.loc);
    DeclareMessage(scope, cls, what, own ? &s.loc : nullptr);
    for (const idl::FieldDecl& f : s.fields) {
      if (f.type.kind != Kind::kMap) continue;
      DeclareMessage(scope, cls + "_" + MapEntryName(f.name) + "_DoNotUse",
                     "the map entry type of field " + Local(s.full_name) + "." +
                         f.name,
                     own ? &f.loc : nullptr);
    }
    for (const auto& c : s.nested_consts) {
      Declare(scope, cls + "_" + c->name,
              "const " + Local(s.full_name) + "." + c->name,
              own ? &c->loc : nullptr);
    }
    for (const auto& e : s.nested_enums) DeclareEnum(scope, *e, cls + "_", own);
    for (const auto& n : s.nested_structs) DeclareStruct(scope, *n, cls + "_", own);
  }

  void DeclareFile(Scope* scope, const idl::File& f, bool own) {
    for (const auto& e : f.enums) DeclareEnum(scope, *e, "", own);
    for (const auto& s : f.structs) DeclareStruct(scope, *s, "", own);
    for (const auto& c : f.consts) {
      std::string what = "const " + c->name;
      if (own) CheckReservedPrefix(c->name, what, c->loc);
      Declare(scope, c->name, what, own ? &c->loc : nullptr);
    }
    for (const auto& c : f.contexts) {
      std::string what = "context " + c->name;
      if (own) CheckReservedPrefix(c->name, what, c->loc);
      Declare(scope, c->name, what, own ? &c->loc : nullptr);
    }
    for (const auto& i : f.interfaces) {
      std::string what = "interface " + i->name;
      const idl::SourceLocation* loc = own ? &i->loc : nullptr;
      if (own) CheckReservedPrefix(i->name, what, i->loc);
      Declare(scope, i->name + "Client", what, loc);
      Declare(scope, i->name + "Service", what, loc);
      Declare(scope, "lpc_" + i->name, what + " (the namespace of its "
                                            "descriptor in the .lpc.cc)", loc);
      for (const idl::MethodDecl& m : i->methods) {
        std::string mwhat = "method " + i->name + "." + m.name;
        const idl::SourceLocation* mloc = own ? &m.loc : nullptr;
        for (const std::string& msg : GeneratedMessageNames(m)) {
          DeclareMessage(scope, msg, mwhat, mloc);
        }
        if (m.streaming()) continue;  // No map parameters.
        for (const idl::ParamDecl& p : m.params) {
          if (p.type.kind != Kind::kMap) continue;
          const idl::SourceLocation* ploc = own ? &p.loc : nullptr;
          std::string entry = "_" + MapEntryName(p.name) + "_DoNotUse";
          std::string pwhat = "the map entry type of parameter " + p.name +
                              " of " + i->name + "." + m.name;
          if (p.direction != idl::ParamDirection::kOut) {
            DeclareMessage(scope, RequestMessageName(m) + entry, pwhat, ploc);
          }
          if (p.direction != idl::ParamDirection::kIn) {
            DeclareMessage(scope, ResponseMessageName(m) + entry, pwhat, ploc);
          }
        }
      }
    }
  }

  void CheckReservedPrefix(const std::string& name, const std::string& what,
                           const idl::SourceLocation& loc) {
    if (name.compare(0, kReservedPrefix.size(), kReservedPrefix) == 0) {
      Error(loc, what + ": names starting with 'lpc_' are reserved for "
                        "generated code at package scope; rename it");
    }
  }

  static void SamePackage(const idl::File& f, const std::string& package,
                          std::set<const idl::File*>* seen,
                          std::vector<const idl::File*>* out) {
    if (!seen->insert(&f).second) return;
    if (PackageName(f) == package) out->push_back(&f);
    for (const idl::ImportDecl& imp : f.imports) {
      if (imp.file != nullptr) SamePackage(*imp.file, package, seen, out);
    }
  }

  // Every name at package scope in C++: libprotoc's classes, enums,
  // enumerators and helpers, lpc's constants and classes, across the files
  // of the package that this one sees.
  void CheckPackageScope() {
    Scope scope;
    scope.emplace("lpc_internal", "the namespace lpc_internal");
    std::set<const idl::File*> seen;
    std::vector<const idl::File*> files;
    SamePackage(file_, package_, &seen, &files);
    for (const idl::File* f : files) {
      if (f != &file_) DeclareFile(&scope, *f, /*own=*/false);
    }
    DeclareFile(&scope, file_, /*own=*/true);
  }

  // ---- Message classes ----

  // The members of message class `cls`: protobuf's own, the nested types'
  // typedefs, the nested enums' enumerators and helpers, and the fields'
  // accessors and number constants. A member cannot take the class's name.
  void CheckClass(const std::string& cls, const std::string& what_cls,
                  const idl::SourceLocation& cls_loc,
                  const std::vector<Member>& members,
                  const idl::StructDecl* s) {
    Scope scope;
    for (std::string_view m : kMessageMembers) {
      scope.emplace(std::string(m), "a member of every protobuf message class");
    }
    if (scope.count(cls) > 0) {
      Error(cls_loc, what_cls + " gets the C++ class name '" + cls +
                         "', which is the name of a member of every protobuf "
                         "message class; rename it");
      return;
    }
    auto declare = [&](const std::string& name, const std::string& what,
                       const idl::SourceLocation& loc) {
      if (name == cls) {
        Error(loc, what + " needs the C++ member '" + name + "' in class " +
                       cls + " (" + what_cls + "), which is the class's own "
                       "name (its constructor); rename one of them");
        return false;
      }
      auto [it, inserted] = scope.emplace(name, what);
      if (!inserted) {
        Error(loc, what + " needs the C++ member '" + name + "' in class " +
                       cls + " (" + what_cls + "), which is taken by " +
                       it->second + "; rename it");
        return false;
      }
      return true;
    };
    if (s != nullptr) {
      for (const auto& n : s->nested_structs) {
        declare(n->name, "struct " + Local(n->full_name), n->loc);
      }
      for (const auto& e : s->nested_enums) {
        std::string what = "enum " + Local(e->full_name);
        if (!declare(e->name, what, e->loc)) continue;
        for (const char* helper : {"_IsValid", "_descriptor", "_Name", "_Parse",
                                   "_MIN", "_MAX", "_ARRAYSIZE"}) {
          if (!declare(e->name + helper, what, e->loc)) break;
        }
        for (const idl::EnumValue& v : e->values) {
          declare(v.name, "enumerator " + Local(e->full_name) + "." + v.name,
                  v.loc);
        }
      }
    }
    for (const Member& m : members) {
      std::string lower = Lower(m.name);
      std::string accessor = m.what + " (its accessor " + lower + "())";
      if (std::optional<std::string> why = idl::CppNameProblem(lower)) {
        Error(m.loc, m.what + " gets the C++ accessor " + lower +
                         "(), which cannot be used: " + *why + "; rename it");
        continue;
      }
      if (!declare(lower, accessor, m.loc)) continue;
      bool ok = true;
      for (std::string_view prefix : kAccessorPrefixes) {
        ok = ok && declare(std::string(prefix) + lower, accessor, m.loc);
      }
      if (ok && (m.type->kind == Kind::kSequence || m.type->kind == Kind::kMap)) {
        ok = declare(lower + "_size", accessor, m.loc);
      }
      if (ok) {
        ok = declare("k" + CamelCase(m.name, true) + "FieldNumber",
                     m.what + " (its field number constant)", m.loc);
      }
      if (ok && m.type->kind == Kind::kMap) {
        declare(MapEntryName(m.name), m.what + " (its map entry type)", m.loc);
      }
    }
  }

  void CheckStructClasses(const idl::StructDecl& s, const std::string& prefix) {
    std::string cls = prefix + s.name;
    std::vector<Member> members;
    for (const idl::FieldDecl& f : s.fields) {
      members.push_back({f.name, &f.type, f.loc, "field '" + f.name + "'"});
    }
    CheckClass(cls, "struct " + Local(s.full_name), s.loc, members, &s);
    for (const auto& n : s.nested_structs) CheckStructClasses(*n, cls + "_");
  }

  void CheckMethodMessages(const idl::InterfaceDecl& iface,
                           const idl::MethodDecl& m) {
    std::string of = " of " + iface.name + "." + m.name;
    std::vector<Member> request;
    std::vector<Member> response;
    if (m.return_type.kind != Kind::kVoid) {
      response.push_back({kResultFieldName, &m.return_type, m.loc,
                          "the return value" + of});
    }
    for (const idl::ParamDecl& p : m.params) {
      if (p.name == m.name + "Result" && !m.oneway) {
        // The async stub's callback type names the struct after the
        // parameters are in scope.
        Error(p.loc, "parameter '" + p.name + "'" + of + " is named like the "
                     "struct " + iface.name + "Client::" + p.name + " that the "
                     "method's async stub uses; rename it");
      }
      Member member{p.name, &p.type, p.loc, "parameter '" + p.name + "'" + of};
      if (p.direction != idl::ParamDirection::kOut) request.push_back(member);
      if (p.direction != idl::ParamDirection::kIn) response.push_back(member);
    }
    for (const auto& [members, cls] :
         {std::pair{&request, RequestMessageName(m)},
          std::pair{&response, ResponseMessageName(m)}}) {
      // A stream's side is its element struct, checked as a struct.
      if (cls == RequestMessageName(m) ? m.client_streaming()
                                       : m.server_streaming()) {
        continue;
      }
      std::string what = "the message of method " + iface.name + "." + m.name;
      CheckClass(cls, what, m.loc, *members, nullptr);
      // protobuf refuses two fields with one JSON name (foo_bar, fooBar).
      std::map<std::string, const Member*> json;
      for (const Member& member : *members) {
        auto [it, inserted] = json.emplace(JsonName(member.name), &member);
        if (!inserted) {
          Error(member.loc, member.what + " and " + it->second->what +
                                " both get the JSON name '" + it->first +
                                "' in message " + cls +
                                " (names may not differ only in underscores); "
                                "rename one of them");
        }
      }
    }
  }

  const idl::File& file_;
  std::vector<CodegenError>* errors_;
  std::string package_;
  bool failed_ = false;
};

}  // namespace

bool CheckGeneratedNames(const idl::File& file, std::vector<CodegenError>* errors) {
  return Checker(file, errors).Run() && CheckStructChains(file, errors);
}

}  // namespace lpc::codegen::internal
