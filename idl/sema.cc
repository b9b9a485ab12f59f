// Semantic analysis of one parsed .idl file: scopes, name lookup and the
// driver. The other rules are in idl/internal/sema_*.cc.
#include "idl/sema.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "idl/frontend.h"
#include "idl/internal/file_analysis.h"

namespace lpc::idl {
namespace internal {

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

bool Before(const SourceLocation& a, const SourceLocation& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

bool FileAnalysis::Run() {
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
  if (!failed_) CheckHandles();
  if (failed_ || a_->sink_->size() != errors_before || a_->sink_->full()) {
    Rollback();
    return false;
  }
  return true;
}

void FileAnalysis::AddAll(std::vector<Pending> pending, SymbolTable* table,
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

void FileAnalysis::AddEnum(const EnumDecl* e, std::vector<Pending>* pending) {
  pending->push_back({e->name, {Symbol::Kind::kEnum, e, e->loc}});
  for (const EnumValue& v : e->values) {
    pending->push_back({v.name, {Symbol::Kind::kEnumerator, &v, v.loc}});
  }
}

SymbolTable* FileAnalysis::NewScope(const void* key) {
  added_scopes_.push_back(key);
  SymbolTable* table = &a_->scopes_[key];
  table->clear();
  return table;
}

void FileAnalysis::BuildFileScope() {
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
  for (auto& c : file_.contexts) {
    c->full_name = prefix + c->name;
    pending.push_back({c->name, {Symbol::Kind::kContext, c.get(), c->loc}});
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

void FileAnalysis::BuildStructScope(StructDecl* s, const std::string& outer,
                                    int depth) {
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

const SymbolTable* FileAnalysis::ScopeOf(const void* key) const {
  auto it = a_->scopes_.find(key);
  return it == a_->scopes_.end() ? nullptr : &it->second;
}

const Symbol* FileAnalysis::Find(const void* scope,
                                 const std::string& name) const {
  const SymbolTable* table = ScopeOf(scope);
  if (table == nullptr) return nullptr;
  auto it = table->find(name);
  return it == table->end() ? nullptr : &it->second;
}

// Follows parts[1..] from `first` through nested declarations.
const Symbol* FileAnalysis::Descend(const Symbol* first,
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
const Symbol* FileAnalysis::Lookup(const std::string& dotted,
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

void FileAnalysis::Rollback() {
  for (const void* key : added_scopes_) a_->scopes_.erase(key);
  SymbolTable& package_table = a_->packages_[package_];
  for (const std::string& name : added_package_names_) {
    package_table.erase(name);
  }
  for (const std::string& uuid : added_uuids_) a_->uuids_.erase(uuid);
}

}  // namespace internal

Analyzer::Analyzer(DiagnosticSink* sink) : sink_(sink) {}
Analyzer::~Analyzer() = default;

bool Analyzer::Analyze(ParsedFile& parsed, std::string_view source) {
  if (parsed.file == nullptr) return false;
  internal::FileAnalysis analysis(this, parsed, source);
  return analysis.Run();
}

}  // namespace lpc::idl
