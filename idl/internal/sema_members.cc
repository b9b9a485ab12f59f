// Struct fields, ordinals, interfaces, methods and the stream rules
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

}  // namespace

void FileAnalysis::AnalyzeStruct(StructDecl* s,
                                 std::vector<const void*>* chain) {
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

void FileAnalysis::AnalyzeFields(StructDecl* s,
                                 const std::vector<const void*>& chain) {
  const SymbolTable* members = ScopeOf(s);
  std::unordered_map<std::string, const FieldDecl*> names;
  std::unordered_map<std::string, const FieldDecl*> folded;
  std::unordered_map<uint32_t, const FieldDecl*> ordinals;
  uint32_t largest = 0;
  for (FieldDecl& f : s->fields) {
    CheckType(&f.type, chain, false, 1);
    if (f.type.kind == Kind::kBuffer) {
      Error(f.type.loc, "field '" + f.name + "' of struct '" + s->full_name +
                            "' cannot be a buffer: " + kBufferPlaces +
                            "; use bytes");
    }
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
void FileAnalysis::AssignOrdinal(
    const std::string& name, const SourceLocation& loc, uint32_t* ordinal,
    bool is_explicit, uint32_t* largest,
    std::unordered_map<uint32_t, const Decl*>* used, NameOf name_of,
    const Decl* decl) {
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

void FileAnalysis::AnalyzeInterface(InterfaceDecl* iface,
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

std::string FileAnalysis::DirectionName(ParamDirection d) {
  return d == ParamDirection::kIn    ? "[in]"
         : d == ParamDirection::kOut ? "[out]"
                                     : "[in, out]";
}

bool FileAnalysis::TwoStreams(const MethodDecl& m) {
  return std::count_if(m.params.begin(), m.params.end(),
                       [](const ParamDecl& p) {
                         return p.type.kind == Kind::kStream &&
                                p.direction == ParamDirection::kIn;
                       }) > 1;
}

// Types, [oneway] and the stream<T> rules of one method (docs/idl.md).
void FileAnalysis::AnalyzeMethod(MethodDecl* m,
                                 const std::vector<const void*>& chain) {
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
  CheckMethodBuffers(*m);
}

}  // namespace lpc::idl::internal
