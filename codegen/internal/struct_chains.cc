// The bound on chains of structs (struct_chains.h).
#include "codegen/internal/struct_chains.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "idl/frontend.h"

namespace lpc::codegen::internal {
namespace {

class ChainChecker {
 public:
  // The number of structs in the longest chain from `s` along field types
  // (cycles, which only containers allow, are cut), or more than
  // kMaxStructChainLength when it is longer; the recursion is at most that
  // deep.
  int Longest(const idl::StructDecl* s, int depth) {
    auto memo = longest_.find(s);
    if (memo != longest_.end()) return memo->second;
    if (depth > idl::kMaxStructChainLength) return depth;
    on_path_.insert(s);
    int best = 1;
    auto visit = [&](const idl::TypeRef& t, auto& self) -> void {
      if (t.resolved_struct != nullptr && on_path_.count(t.resolved_struct) == 0) {
        best = std::max(best, 1 + Longest(t.resolved_struct, depth + 1));
      }
      for (const idl::TypeRef& a : t.args) self(a, self);
    };
    for (const idl::FieldDecl& f : s->fields) {
      visit(f.type, visit);
      if (best > idl::kMaxStructChainLength) break;
    }
    on_path_.erase(s);
    if (best <= idl::kMaxStructChainLength) longest_[s] = best;
    return best;
  }

 private:
  std::map<const idl::StructDecl*, int> longest_;
  std::set<const idl::StructDecl*> on_path_;
};

// The first struct at or under `s` whose chain is too long, or null.
const idl::StructDecl* TooLong(ChainChecker* checker, const idl::StructDecl& s) {
  if (checker->Longest(&s, 1) > idl::kMaxStructChainLength) return &s;
  for (const auto& n : s.nested_structs) {
    if (const idl::StructDecl* found = TooLong(checker, *n)) return found;
  }
  return nullptr;
}

}  // namespace

bool CheckStructChains(const idl::File& file, std::vector<CodegenError>* errors) {
  ChainChecker checker;
  std::string package = PackageName(file);
  for (const auto& top : file.structs) {
    const idl::StructDecl* s = TooLong(&checker, *top);
    if (s == nullptr) continue;
    std::string name = s->full_name;
    if (!package.empty() && name.compare(0, package.size() + 1, package + ".") == 0) {
      name = name.substr(package.size() + 1);
    }
    errors->push_back(
        {s->loc, "struct " + name + " starts a chain of more than " +
                     std::to_string(idl::kMaxStructChainLength) +
                     " structs that hold one another (through fields of any "
                     "type), more than protobuf's C++ generator handles; "
                     "shorten it"});
    return false;
  }
  return true;
}

}  // namespace lpc::codegen::internal
