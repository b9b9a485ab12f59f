// Semantic analysis of one parsed .idl file.
#include "idl/sema.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "idl/frontend.h"

namespace lpc::idl {
namespace {

using Kind = TypeRef::Kind;
using Symbol = Analyzer::Symbol;
using SymbolTable = Analyzer::SymbolTable;

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> Split(const std::string& dotted) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    parts.push_back(dotted.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool IsContainer(Kind k) {
  return k == Kind::kSequence || k == Kind::kMap || k == Kind::kOptional;
}

bool IsInteger(Kind k) {
  switch (k) {
    case Kind::kInt8: case Kind::kInt16: case Kind::kInt32: case Kind::kInt64:
    case Kind::kUint8: case Kind::kUint16: case Kind::kUint32:
    case Kind::kUint64:
      return true;
    default:
      return false;
  }
}

bool IsSigned(Kind k) {
  return k == Kind::kInt8 || k == Kind::kInt16 || k == Kind::kInt32 ||
         k == Kind::kInt64;
}

// Inclusive range of an integer kind, as (min, max) with min as int64 and
// max as uint64.
void IntRange(Kind k, int64_t* min, uint64_t* max) {
  switch (k) {
    case Kind::kInt8: *min = INT8_MIN; *max = INT8_MAX; return;
    case Kind::kInt16: *min = INT16_MIN; *max = INT16_MAX; return;
    case Kind::kInt32: *min = INT32_MIN; *max = INT32_MAX; return;
    case Kind::kInt64: *min = INT64_MIN; *max = INT64_MAX; return;
    case Kind::kUint8: *min = 0; *max = UINT8_MAX; return;
    case Kind::kUint16: *min = 0; *max = UINT16_MAX; return;
    case Kind::kUint32: *min = 0; *max = UINT32_MAX; return;
    default: *min = 0; *max = UINT64_MAX; return;
  }
}

const char* SymbolKindName(Symbol::Kind k) {
  switch (k) {
    case Symbol::Kind::kStruct: return "a struct";
    case Symbol::Kind::kEnum: return "an enum";
    case Symbol::Kind::kInterface: return "an interface";
    case Symbol::Kind::kConst: return "a constant";
    case Symbol::Kind::kEnumerator: return "an enumerator";
  }
  return "a name";
}

// Lower case without underscores: protobuf rejects fields that differ only
// in this form (their JSON names would collide).
std::string FoldedName(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '_') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool Before(const SourceLocation& a, const SourceLocation& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

}  // namespace

// The analysis of one file; lives for one Analyzer::Analyze call.
class FileAnalysis {
 public:
  FileAnalysis(Analyzer* analyzer, ParsedFile& parsed, std::string_view source)
      : a_(analyzer), file_(*parsed.file), literals_(parsed.const_literals),
        source_(source) {}

  bool Run() {
    size_t errors_before = a_->sink_->size();
    package_ = Join(file_.package, ".");
    BuildFileScope();
    for (auto& s : file_.structs) BuildStructScope(s.get(), package_, 1);

    // Types of everything, in declaration order per scope.
    std::vector<const void*> scope_chain = {&file_};
    for (auto& c : file_.consts) CheckConstType(c.get(), scope_chain);
    for (auto& s : file_.structs) AnalyzeStruct(s.get(), &scope_chain);
    for (auto& e : file_.enums) AnalyzeEnum(*e);
    for (auto& i : file_.interfaces) AnalyzeInterface(i.get(), scope_chain);
    for (auto& c : file_.consts) ConvertConst(c.get(), scope_chain);
    if (!failed_) CheckRecursion();
    if (failed_ || a_->sink_->size() != errors_before || a_->sink_->full()) {
      Rollback();
      return false;
    }
    return true;
  }

 private:
  void Error(const SourceLocation& loc, std::string message) {
    failed_ = true;
    a_->sink_->Report(loc, std::move(message), source_);
  }

  std::string Where(const SourceLocation& loc) const {
    if (loc.file == file_.path) return "line " + std::to_string(loc.line);
    return loc.file + ":" + std::to_string(loc.line);
  }

  void DuplicateError(const std::string& name, const SourceLocation& loc,
                      const SourceLocation& previous) {
    Error(loc, "duplicate name '" + name + "': previously declared at " +
                   Where(previous));
  }

  // Adds the declarations of a scope to `table`, reporting duplicates in
  // source order. `package_table` (file scope only) also receives them and
  // catches duplicates across files of the same package.
  struct Pending {
    std::string name;
    Symbol symbol;
  };
  void AddAll(std::vector<Pending> pending, SymbolTable* table,
              SymbolTable* package_table) {
    std::stable_sort(pending.begin(), pending.end(),
                     [](const Pending& x, const Pending& y) {
                       return Before(x.symbol.loc, y.symbol.loc);
                     });
    for (Pending& p : pending) {
      auto it = table->find(p.name);
      if (it != table->end()) {
        DuplicateError(p.name, p.symbol.loc, it->second.loc);
        continue;
      }
      if (package_table != nullptr) {
        auto pit = package_table->find(p.name);
        if (pit != package_table->end()) {
          DuplicateError(p.name, p.symbol.loc, pit->second.loc);
          continue;
        }
      }
      table->emplace(p.name, p.symbol);
    }
  }

  static void AddEnum(const EnumDecl* e, std::vector<Pending>* pending) {
    pending->push_back({e->name, {Symbol::Kind::kEnum, e, e->loc}});
    for (const EnumValue& v : e->values) {
      pending->push_back({v.name, {Symbol::Kind::kEnumerator, &v, v.loc}});
    }
  }

  SymbolTable* NewScope(const void* key) {
    added_scopes_.push_back(key);
    SymbolTable* table = &a_->scopes_[key];
    table->clear();
    return table;
  }

  void BuildFileScope() {
    std::vector<Pending> pending;
    std::string prefix = package_.empty() ? "" : package_ + ".";
    for (auto& c : file_.consts) {
      c->full_name = prefix + c->name;
      pending.push_back({c->name, {Symbol::Kind::kConst, c.get(), c->loc}});
    }
    for (auto& e : file_.enums) {
      e->full_name = prefix + e->name;
      AddEnum(e.get(), &pending);
    }
    for (auto& s : file_.structs) {
      pending.push_back({s->name, {Symbol::Kind::kStruct, s.get(), s->loc}});
    }
    for (auto& i : file_.interfaces) {
      i->full_name = prefix + i->name;
      pending.push_back(
          {i->name, {Symbol::Kind::kInterface, i.get(), i->loc}});
    }
    SymbolTable* table = NewScope(&file_);
    SymbolTable& package_table = a_->packages_[package_];
    AddAll(pending, table, &package_table);
    if (!failed_) {
      for (const auto& [name, symbol] : *table) {
        package_table.emplace(name, symbol);
        added_package_names_.push_back(name);
      }
    }
  }

  void BuildStructScope(StructDecl* s, const std::string& outer, int depth) {
    if (depth > kMaxNestingDepth) return;  // The parser already refused.
    s->full_name = outer.empty() ? s->name : outer + "." + s->name;
    std::vector<Pending> pending;
    for (auto& c : s->nested_consts) {
      c->full_name = s->full_name + "." + c->name;
      pending.push_back({c->name, {Symbol::Kind::kConst, c.get(), c->loc}});
    }
    for (auto& e : s->nested_enums) {
      e->full_name = s->full_name + "." + e->name;
      AddEnum(e.get(), &pending);
    }
    for (auto& n : s->nested_structs) {
      pending.push_back({n->name, {Symbol::Kind::kStruct, n.get(), n->loc}});
    }
    AddAll(pending, NewScope(s), nullptr);
    for (auto& n : s->nested_structs) {
      BuildStructScope(n.get(), s->full_name, depth + 1);
    }
  }

  const SymbolTable* ScopeOf(const void* key) const {
    auto it = a_->scopes_.find(key);
    return it == a_->scopes_.end() ? nullptr : &it->second;
  }

  const Symbol* Find(const void* scope, const std::string& name) const {
    const SymbolTable* table = ScopeOf(scope);
    if (table == nullptr) return nullptr;
    auto it = table->find(name);
    return it == table->end() ? nullptr : &it->second;
  }

  // Follows parts[1..] from `first` through nested declarations.
  const Symbol* Descend(const Symbol* first,
                        const std::vector<std::string>& parts,
                        size_t from) const {
    const Symbol* current = first;
    for (size_t i = from; i < parts.size() && current != nullptr; ++i) {
      if (current->kind != Symbol::Kind::kStruct) return nullptr;
      current = Find(current->decl, parts[i]);
    }
    return current;
  }

  // Resolves a dotted name from a scope chain (outermost first; the first
  // entry is the File). Sets `*ambiguous` to a message when several imported
  // packages match. Returns the symbol or nullptr.
  const Symbol* Lookup(const std::string& dotted,
                       const std::vector<const void*>& chain,
                       std::string* ambiguous) const {
    std::vector<std::string> parts = Split(dotted);
    // 1. Enclosing structs, innermost first, then the file itself and the
    //    files of the same package that it imports.
    for (size_t i = chain.size(); i-- > 0;) {
      if (const Symbol* first = Find(chain[i], parts[0])) {
        return Descend(first, parts, 1);
      }
    }
    for (const ImportDecl& imp : file_.imports) {
      if (imp.file == nullptr || imp.file->package != file_.package) continue;
      if (const Symbol* first = Find(imp.file, parts[0])) {
        return Descend(first, parts, 1);
      }
    }
    // 2. Package-qualified names of this file or a direct import.
    std::vector<const File*> visible = {&file_};
    for (const ImportDecl& imp : file_.imports) {
      if (imp.file != nullptr) visible.push_back(imp.file);
    }
    for (const File* f : visible) {
      const std::vector<std::string>& pkg = f->package;
      if (parts.size() <= pkg.size() ||
          !std::equal(pkg.begin(), pkg.end(), parts.begin())) {
        continue;
      }
      if (const Symbol* first = Find(f, parts[pkg.size()])) {
        if (const Symbol* found = Descend(first, parts, pkg.size() + 1)) {
          return found;
        }
      }
    }
    // 3. Names of imported packages, unqualified.
    const Symbol* found = nullptr;
    const File* found_in = nullptr;
    for (const ImportDecl& imp : file_.imports) {
      if (imp.file == nullptr) continue;
      const Symbol* first = Find(imp.file, parts[0]);
      if (first == nullptr) continue;
      const Symbol* candidate = Descend(first, parts, 1);
      if (candidate == nullptr || candidate == found) continue;
      if (found != nullptr && candidate->decl != found->decl) {
        *ambiguous = "ambiguous type '" + dotted + "': it could be '" +
                     Join(found_in->package, ".") + "." + dotted + "' or '" +
                     Join(imp.file->package, ".") + "." + dotted + "'";
        return nullptr;
      }
      found = candidate;
      found_in = imp.file;
    }
    return found;
  }

  // Resolves named types and enforces the container rules, recursively.
  // `allow_stream`: the type is a method's return type or parameter, where
  // stream<T> may appear (AnalyzeMethod checks the rest of its rules).
  void CheckType(TypeRef* type, const std::vector<const void*>& chain,
                 bool allow_void, int depth, bool allow_stream = false) {
    if (depth > kMaxNestingDepth) return;  // The parser already refused.
    switch (type->kind) {
      case Kind::kStream: {
        if (!allow_stream) {
          Error(type->loc, "stream<> can only be a method's return type or "
                           "its only [in] parameter");
          return;
        }
        if (type->args.size() != 1) return;
        TypeRef& arg = type->args[0];
        if (arg.kind == Kind::kNamed) {
          size_t errors_before = a_->sink_->size();
          CheckType(&arg, chain, false, depth + 1);
          if (a_->sink_->size() != errors_before) return;
          if (arg.resolved_struct != nullptr) return;
        }
        Error(arg.loc, "the element type of stream<> must be a struct (a "
                       "protobuf message), not '" + TypeToString(arg) +
                       "'; wrap it in a struct");
        return;
      }
      case Kind::kVoid:
        if (!allow_void) {
          Error(type->loc, "'void' can only be the return type of a method");
        }
        return;
      case Kind::kNamed: {
        std::string ambiguous;
        const Symbol* s = Lookup(type->name, chain, &ambiguous);
        if (!ambiguous.empty()) {
          Error(type->loc, ambiguous);
        } else if (s == nullptr) {
          Error(type->loc, "unknown type '" + type->name + "'");
        } else if (s->kind == Symbol::Kind::kStruct) {
          type->resolved_struct = static_cast<const StructDecl*>(s->decl);
        } else if (s->kind == Symbol::Kind::kEnum) {
          type->resolved_enum = static_cast<const EnumDecl*>(s->decl);
        } else {
          Error(type->loc, "'" + type->name + "' is " +
                               SymbolKindName(s->kind) + ", not a type");
        }
        return;
      }
      case Kind::kSequence:
      case Kind::kOptional: {
        if (type->args.size() != 1) return;
        TypeRef& arg = type->args[0];
        const char* what = type->kind == Kind::kSequence
                               ? "a sequence element"
                               : "optional<>";
        if (IsContainer(arg.kind)) {
          Error(arg.loc, std::string(what) + " cannot be " +
                             TypeToString(arg) + "; wrap it in a struct");
          return;
        }
        CheckType(&arg, chain, false, depth + 1);
        return;
      }
      case Kind::kMap: {
        if (type->args.size() != 2) return;
        TypeRef& key = type->args[0];
        TypeRef& value = type->args[1];
        if (!(IsInteger(key.kind) || key.kind == Kind::kBool ||
              key.kind == Kind::kString)) {
          Error(key.loc, "map key type must be an integer, bool or string, "
                         "not '" + TypeToString(key) + "'");
          return;
        }
        if (IsContainer(value.kind)) {
          Error(value.loc, "a map value cannot be " + TypeToString(value) +
                               "; wrap it in a struct");
          return;
        }
        CheckType(&value, chain, false, depth + 1);
        return;
      }
      default:
        return;
    }
  }

  void CheckConstType(ConstDecl* c, const std::vector<const void*>& chain) {
    CheckType(&c->type, chain, false, 1);
  }

  void ConvertConst(ConstDecl* c, const std::vector<const void*>& chain) {
    auto lit_it = literals_.find(c);
    if (lit_it == literals_.end()) return;
    const ConstLiteral& lit = lit_it->second;
    const TypeRef& type = c->type;
    std::string name = "'" + c->name + "'";
    using LK = ConstLiteral::Kind;
    Kind k = type.kind;
    if (k == Kind::kNamed) {
      if (type.resolved_enum == nullptr) {
        if (type.resolved_struct != nullptr) {
          Error(type.loc, "constant " + name + " cannot have struct type '" +
                              type.name + "'; use a scalar, string or enum");
        }
        return;  // Unknown types were reported already.
      }
      if (lit.kind != LK::kName) {
        Error(lit.loc, "constant " + name + " of enum type '" + type.name +
                           "' needs an enumerator such as '" + type.name +
                           "." + type.resolved_enum->values[0].name + "'");
        return;
      }
      std::vector<std::string> parts = Split(lit.text);
      std::string value_name = parts.back();
      if (parts.size() > 1) {
        parts.pop_back();
        std::string ambiguous;
        const Symbol* s = Lookup(Join(parts, "."), chain, &ambiguous);
        if (s == nullptr || s->decl != type.resolved_enum) {
          Error(lit.loc, "'" + lit.text + "' is not a value of enum '" +
                             type.name + "'");
          return;
        }
      }
      for (const EnumValue& v : type.resolved_enum->values) {
        if (v.name == value_name) {
          c->value = v.value;
          return;
        }
      }
      Error(lit.loc, "'" + lit.text + "' is not a value of enum '" +
                         type.name + "'");
      return;
    }
    if (k == Kind::kBool) {
      if (lit.kind != LK::kBool) {
        Error(lit.loc, "constant " + name + " of type bool needs true or "
                                            "false");
        return;
      }
      c->value = lit.bool_value;
      return;
    }
    if (k == Kind::kString) {
      if (lit.kind != LK::kString) {
        Error(lit.loc, "constant " + name + " of type string needs a string "
                                            "literal");
        return;
      }
      c->value = lit.text;
      return;
    }
    if (IsInteger(k)) {
      if (lit.kind != LK::kInteger) {
        Error(lit.loc, "constant " + name + " of type " + TypeToString(type) +
                           " needs an integer value");
        return;
      }
      int64_t min;
      uint64_t max;
      IntRange(k, &min, &max);
      std::string shown =
          (lit.negative && lit.int_value != 0 ? "-" : "") +
          std::to_string(lit.int_value);
      bool in_range =
          lit.negative
              ? lit.int_value <= static_cast<uint64_t>(-(min + 1)) + 1
              : lit.int_value <= max;
      if (!in_range) {
        Error(lit.loc, "value " + shown + " is out of range for constant " +
                           name + " of type " + TypeToString(type));
        return;
      }
      if (IsSigned(k)) {
        c->value = lit.negative
                       ? static_cast<int64_t>(0 - lit.int_value)
                       : static_cast<int64_t>(lit.int_value);
      } else {
        c->value = lit.int_value;
      }
      return;
    }
    if (k == Kind::kFloat || k == Kind::kDouble) {
      double v;
      if (lit.kind == LK::kInteger) {
        v = static_cast<double>(lit.int_value);
      } else if (lit.kind == LK::kFloat) {
        v = lit.float_value;
      } else {
        Error(lit.loc, "constant " + name + " of type " + TypeToString(type) +
                           " needs a number");
        return;
      }
      if (lit.negative) v = -v;
      if (k == Kind::kFloat && std::fabs(v) > FLT_MAX) {
        Error(lit.loc, "value is out of range for constant " + name +
                           " of type float");
        return;
      }
      c->value = v;
      return;
    }
    if (k == Kind::kVoid) return;  // Reported by CheckType.
    Error(type.loc, "constant " + name + " cannot have type '" +
                        TypeToString(type) +
                        "'; use bool, an integer, float, double, string or "
                        "an enum");
  }

  void AnalyzeEnum(const EnumDecl& e) {
    std::unordered_map<int64_t, const EnumValue*> seen;
    for (const EnumValue& v : e.values) {
      auto [it, inserted] = seen.emplace(v.value, &v);
      if (!inserted) {
        Error(v.loc, "value " + std::to_string(v.value) + " of '" + v.name +
                         "' is already used by '" + it->second->name + "'");
      }
    }
  }

  void AnalyzeStruct(StructDecl* s, std::vector<const void*>* chain) {
    chain->push_back(s);
    if (chain->size() <= static_cast<size_t>(kMaxNestingDepth) + 1) {
      for (auto& c : s->nested_consts) CheckConstType(c.get(), *chain);
      for (auto& e : s->nested_enums) AnalyzeEnum(*e);
      for (auto& n : s->nested_structs) AnalyzeStruct(n.get(), chain);
      AnalyzeFields(s, *chain);
      for (auto& c : s->nested_consts) ConvertConst(c.get(), *chain);
    }
    chain->pop_back();
  }

  void AnalyzeFields(StructDecl* s, const std::vector<const void*>& chain) {
    const SymbolTable* members = ScopeOf(s);
    std::unordered_map<std::string, const FieldDecl*> names;
    std::unordered_map<std::string, const FieldDecl*> folded;
    std::unordered_map<uint32_t, const FieldDecl*> ordinals;
    uint32_t largest = 0;
    for (FieldDecl& f : s->fields) {
      CheckType(&f.type, chain, false, 1);
      auto [it, inserted] = names.emplace(f.name, &f);
      if (!inserted) {
        DuplicateError(f.name, f.loc, it->second->loc);
      } else if (members != nullptr && members->count(f.name) > 0) {
        // Fields share the struct's scope with its nested declarations.
        if (Before(members->at(f.name).loc, f.loc)) {
          DuplicateError(f.name, f.loc, members->at(f.name).loc);
        } else {
          DuplicateError(f.name, members->at(f.name).loc, f.loc);
        }
      } else {
        auto [fit, fresh] = folded.emplace(FoldedName(f.name), &f);
        if (!fresh) {
          Error(f.loc, "field '" + f.name + "' conflicts with field '" +
                           fit->second->name +
                           "' in generated code (field names may not differ "
                           "only in case or underscores)");
        }
      }
      AssignOrdinal(f.name, f.loc, &f.ordinal, f.explicit_ordinal, &largest,
                    &ordinals, [](const FieldDecl* x) { return x->name; }, &f);
    }
  }

  // Assigns the implicit ordinal (largest so far + 1) and checks uniqueness.
  template <typename Decl, typename NameOf>
  void AssignOrdinal(const std::string& name, const SourceLocation& loc,
                     uint32_t* ordinal, bool is_explicit, uint32_t* largest,
                     std::unordered_map<uint32_t, const Decl*>* used,
                     NameOf name_of, const Decl* decl) {
    if (!is_explicit) {
      uint64_t next = static_cast<uint64_t>(*largest) + 1;
      if (next > kMaxOrdinal) {
        Error(loc, "implicit ordinal of '" + name + "' would be @" +
                       std::to_string(next) + ", out of range (1.." +
                       std::to_string(kMaxOrdinal) + ")");
        return;
      }
      if (next >= kReservedOrdinalFirst && next <= kReservedOrdinalLast) {
        Error(loc, "implicit ordinal of '" + name + "' would be @" +
                       std::to_string(next) +
                       ", in the range 19000..19999 reserved by protobuf; "
                       "write an explicit ordinal");
        return;
      }
      *ordinal = static_cast<uint32_t>(next);
    }
    *largest = std::max(*largest, *ordinal);
    auto [it, inserted] = used->emplace(*ordinal, decl);
    if (!inserted) {
      Error(loc, "ordinal @" + std::to_string(*ordinal) + " of '" + name +
                     "' is already used by '" + name_of(it->second) + "'");
    }
  }

  void AnalyzeInterface(InterfaceDecl* iface,
                        const std::vector<const void*>& chain) {
    auto [uit, fresh] = a_->uuids_.emplace(iface->uuid, iface);
    if (!fresh) {
      Error(iface->loc, "uuid " + iface->uuid +
                            " is already used by interface '" +
                            uit->second->full_name + "' (" +
                            Where(uit->second->loc) + ")");
    } else {
      added_uuids_.push_back(iface->uuid);
    }
    std::unordered_map<std::string, const MethodDecl*> names;
    std::unordered_map<uint32_t, const MethodDecl*> ordinals;
    uint32_t largest = 0;
    for (MethodDecl& m : iface->methods) {
      auto [it, inserted] = names.emplace(m.name, &m);
      if (!inserted) DuplicateError(m.name, m.loc, it->second->loc);
      AnalyzeMethod(&m, chain);
      AssignOrdinal(m.name, m.loc, &m.ordinal, m.explicit_ordinal, &largest,
                    &ordinals, [](const MethodDecl* x) { return x->name; },
                    &m);
    }
  }

  static std::string DirectionName(ParamDirection d) {
    return d == ParamDirection::kIn    ? "[in]"
           : d == ParamDirection::kOut ? "[out]"
                                       : "[in, out]";
  }

  static bool TwoStreams(const MethodDecl& m) {
    return std::count_if(m.params.begin(), m.params.end(),
                         [](const ParamDecl& p) {
                           return p.type.kind == Kind::kStream &&
                                  p.direction == ParamDirection::kIn;
                         }) > 1;
  }

  // Types, [oneway] and the stream<T> rules of one method (docs/idl.md).
  void AnalyzeMethod(MethodDecl* m, const std::vector<const void*>& chain) {
    const std::string method = "'" + m->name + "'";
    CheckType(&m->return_type, chain, true, 1, /*allow_stream=*/true);
    bool returns_stream = m->return_type.kind == Kind::kStream;
    if (m->oneway && returns_stream) {
      Error(m->return_type.loc, "[oneway] method " + method +
                                    " cannot return a stream: a oneway call "
                                    "has no reply");
    } else if (m->oneway && m->return_type.kind != Kind::kVoid) {
      Error(m->return_type.loc, "[oneway] method " + method +
                                    " must return void");
    }
    std::unordered_map<std::string, const ParamDecl*> params;
    const ParamDecl* stream_param = nullptr;
    for (ParamDecl& p : m->params) {
      auto [pit, pfresh] = params.emplace(p.name, &p);
      if (!pfresh) DuplicateError(p.name, p.loc, pit->second->loc);
      CheckType(&p.type, chain, false, 1, /*allow_stream=*/true);
      const std::string param = "'" + p.name + "'";
      if (p.type.kind == Kind::kStream) {
        if (m->oneway) {
          Error(p.type.loc, "[oneway] method " + method +
                                " cannot take a stream");
        } else if (p.direction != ParamDirection::kIn) {
          Error(p.type.loc, "stream<> parameter " + param + " of " + method +
                                " must be [in], not " +
                                DirectionName(p.direction));
        } else if (stream_param != nullptr) {
          Error(p.type.loc, "method " + method + " takes more than one "
                            "stream<> parameter ('" + stream_param->name +
                            "' and " + param + ")");
        } else if (m->params.size() > 1 && !TwoStreams(*m)) {
          Error(p.type.loc, "stream<> parameter " + param + " must be the "
                            "only parameter of " + method);
        }
        if (stream_param == nullptr) stream_param = &p;
        continue;
      }
      if (p.direction == ParamDirection::kIn) continue;
      if (m->oneway) {
        Error(p.loc, DirectionName(p.direction) + " parameter " + param +
                         " is not allowed on [oneway] method " + method);
      } else if (returns_stream && stream_param == nullptr) {
        // (Next to a stream parameter, the parameter's own error says it.)
        Error(p.loc, DirectionName(p.direction) + " parameter " + param +
                         " is not allowed on streaming method " + method +
                         "; send results as stream messages");
      }
    }
  }

  // Rejects structs that contain themselves by value (through fields that
  // are not sequence, map or optional). Iterative, so deep chains cannot
  // exhaust the stack.
  void CheckRecursion() {
    std::vector<const StructDecl*> all;
    std::vector<const StructDecl*> todo;
    // Depth-first, in declaration order, so that messages name the cycle
    // from the struct declared first.
    for (auto it = file_.structs.rbegin(); it != file_.structs.rend(); ++it) {
      todo.push_back(it->get());
    }
    while (!todo.empty()) {
      const StructDecl* s = todo.back();
      todo.pop_back();
      all.push_back(s);
      for (auto it = s->nested_structs.rbegin();
           it != s->nested_structs.rend(); ++it) {
        todo.push_back(it->get());
      }
    }
    enum class Color { kWhite, kGrey, kBlack };
    std::unordered_map<const StructDecl*, Color> color;
    for (const StructDecl* root : all) {
      if (color[root] != Color::kWhite) continue;
      struct Frame {
        const StructDecl* s;
        size_t next_field;
      };
      std::vector<Frame> stack = {{root, 0}};
      color[root] = Color::kGrey;
      while (!stack.empty()) {
        Frame& top = stack.back();
        if (top.next_field == top.s->fields.size()) {
          color[top.s] = Color::kBlack;
          stack.pop_back();
          continue;
        }
        const FieldDecl& f = top.s->fields[top.next_field++];
        const StructDecl* target = f.type.resolved_struct;
        if (f.type.kind != Kind::kNamed || target == nullptr) continue;
        Color c = color[target];
        if (c == Color::kBlack) continue;
        if (c == Color::kWhite) {
          color[target] = Color::kGrey;
          stack.push_back({target, 0});
          continue;
        }
        // A cycle: from `target` on the stack to `top.s`.
        std::string path;
        bool on = false;
        for (const Frame& fr : stack) {
          if (fr.s == target) on = true;
          if (on) path += fr.s->name + " -> ";
        }
        path += target->name;
        Error(f.loc, "recursive struct '" + target->name + "' contains "
                         "itself by value (" + path +
                         "); use optional<>, sequence<> or map<> for field '" +
                         f.name + "'");
        return;
      }
    }
  }

  void Rollback() {
    for (const void* key : added_scopes_) a_->scopes_.erase(key);
    SymbolTable& package_table = a_->packages_[package_];
    for (const std::string& name : added_package_names_) {
      package_table.erase(name);
    }
    for (const std::string& uuid : added_uuids_) a_->uuids_.erase(uuid);
  }

  Analyzer* a_;
  File& file_;
  const std::map<const ConstDecl*, ConstLiteral>& literals_;
  std::string_view source_;
  std::string package_;
  bool failed_ = false;
  std::vector<const void*> added_scopes_;
  std::vector<std::string> added_package_names_;
  std::vector<std::string> added_uuids_;
};

Analyzer::Analyzer(DiagnosticSink* sink) : sink_(sink) {}
Analyzer::~Analyzer() = default;

bool Analyzer::Analyze(ParsedFile& parsed, std::string_view source) {
  if (parsed.file == nullptr) return false;
  FileAnalysis analysis(this, parsed, source);
  return analysis.Run();
}

}  // namespace lpc::idl
