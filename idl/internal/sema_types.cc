// Type resolution, container rules and struct recursion
// (idl/internal/file_analysis.h).
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

namespace lpc::idl::internal {
namespace {

bool IsContainer(Kind k) {
  return k == Kind::kSequence || k == Kind::kMap || k == Kind::kOptional;
}

const char* SymbolKindName(Symbol::Kind k) {
  switch (k) {
    case Symbol::Kind::kStruct: return "a struct";
    case Symbol::Kind::kEnum: return "an enum";
    case Symbol::Kind::kInterface: return "an interface";
    case Symbol::Kind::kConst: return "a constant";
    case Symbol::Kind::kEnumerator: return "an enumerator";
    case Symbol::Kind::kContext: return "a context type";
  }
  return "a name";
}

}  // namespace

// Resolves named types and enforces the container rules, recursively.
// `allow_stream`: the type is a method's return type or parameter, where
// stream<T> may appear (AnalyzeMethod checks the rest of its rules).
void FileAnalysis::CheckType(TypeRef* type,
                             const std::vector<const void*>& chain,
                             bool allow_void, int depth, bool allow_stream) {
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
      if (arg.kind == Kind::kBuffer) {
        Error(arg.loc, std::string("the element type of stream<> cannot be "
                                   "a buffer: ") + kBufferPlaces +
                           "; use a struct with a bytes field");
        return;
      }
      if (arg.kind == Kind::kNamed) {
        size_t errors_before = a_->sink_->size();
        CheckType(&arg, chain, false, depth + 1);
        if (a_->sink_->size() != errors_before) return;
        if (arg.resolved_struct != nullptr) {
          CheckNoContextInStream(arg.resolved_struct, arg.loc);
          return;
        }
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
      } else if (s->kind == Symbol::Kind::kContext) {
        type->kind = Kind::kContext;
        type->resolved_context = static_cast<const ContextDecl*>(s->decl);
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
      if (arg.kind == Kind::kBuffer) {
        Error(arg.loc, std::string(what) + " cannot be a buffer: " +
                           kBufferPlaces + "; use bytes");
        return;
      }
      CheckType(&arg, chain, false, depth + 1);
      if (arg.kind == Kind::kContext) {
        Error(arg.loc, std::string(what) + " cannot be the context type '" +
                           arg.name + "'; a context handle is a single "
                           "parameter, result or struct field");
      }
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
      if (value.kind == Kind::kBuffer) {
        Error(value.loc, std::string("a map value cannot be a buffer: ") +
                             kBufferPlaces + "; use bytes");
        return;
      }
      CheckType(&value, chain, false, depth + 1);
      if (value.kind == Kind::kContext) {
        Error(value.loc, "a map value cannot be the context type '" +
                             value.name + "'; a context handle is a single "
                             "parameter, result or struct field");
      }
      return;
    }
    default:
      return;
  }
}

// A stream's element type may not hold a context handle, at any depth: the
// stream protocol carries none.
void FileAnalysis::CheckNoContextInStream(const StructDecl* element,
                                          const SourceLocation& loc) {
  std::vector<const StructDecl*> todo = {element};
  std::unordered_map<const StructDecl*, bool> seen;
  while (!todo.empty()) {
    const StructDecl* s = todo.back();
    todo.pop_back();
    if (seen[s]) continue;
    seen[s] = true;
    for (const FieldDecl& f : s->fields) {
      const TypeRef* t = &f.type;
      if (!t->args.empty()) t = &t->args.back();
      if (t->kind == Kind::kContext) {
        Error(loc, "the element type of stream<> cannot hold a context "
                   "handle (field '" + f.name + "' of struct '" +
                   s->full_name + "' is the context type '" + t->name +
                   "'); pass it as a parameter of the method");
        return;
      }
      if (t->resolved_struct != nullptr) todo.push_back(t->resolved_struct);
    }
  }
}

// Rejects structs that contain themselves by value (through fields that
// are not sequence, map or optional). Iterative, so deep chains cannot
// exhaust the stack.
void FileAnalysis::CheckRecursion() {
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

}  // namespace lpc::idl::internal
