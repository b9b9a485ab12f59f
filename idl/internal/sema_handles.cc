// The rules of file descriptor handles (docs/handles.md): which structs
// carry one, and where a handle may not appear (idl/internal/file_analysis.h).
#include <string>
#include <unordered_map>
#include <vector>

#include "idl/frontend.h"
#include "idl/internal/file_analysis.h"

namespace lpc::idl::internal {
namespace {

// The first node of `type` that carries a handle (a handle, or a struct
// that carries one), or nullptr.
const TypeRef* FindHandle(const TypeRef& type) {
  if (type.kind == Kind::kHandle) return &type;
  if (type.resolved_struct != nullptr) {
    return type.resolved_struct->carries_handle ? &type : nullptr;
  }
  for (const TypeRef& arg : type.args) {
    if (const TypeRef* found = FindHandle(arg)) return found;
  }
  return nullptr;
}

std::string WhatCarries(const TypeRef& node) {
  if (node.kind == Kind::kHandle) return "'" + TypeToString(node) + "'";
  return "'" + TypeToString(node) + "' (it contains a handle)";
}

// Adds the structs `type` names, anywhere in it, to `out`; returns true
// when it holds a handle itself.
bool Collect(const TypeRef& type, std::vector<const StructDecl*>* out) {
  if (type.kind == Kind::kHandle) return true;
  if (type.resolved_struct != nullptr) out->push_back(type.resolved_struct);
  bool direct = false;
  for (const TypeRef& arg : type.args) direct = Collect(arg, out) || direct;
  return direct;
}

}  // namespace

void FileAnalysis::MarkHandleStructs() {
  std::vector<StructDecl*> all;
  std::vector<StructDecl*> todo;
  for (auto& s : file_.structs) todo.push_back(s.get());
  while (!todo.empty()) {
    StructDecl* s = todo.back();
    todo.pop_back();
    all.push_back(s);
    for (auto& n : s->nested_structs) {
      n->parent = s;
      todo.push_back(n.get());
    }
  }
  // Marks the structs with a handle or a marked (imported) struct in a
  // field, then everything that refers to a marked struct, breadth first.
  std::unordered_map<const StructDecl*, std::vector<StructDecl*>> referrers;
  std::vector<StructDecl*> marked;
  for (StructDecl* s : all) {
    bool direct = false;
    std::vector<const StructDecl*> named;
    for (const FieldDecl& f : s->fields) direct = Collect(f.type, &named) || direct;
    for (const StructDecl* t : named) {
      if (t->carries_handle) {
        direct = true;
      } else {
        referrers[t].push_back(s);
      }
    }
    if (direct && !s->carries_handle) {
      s->carries_handle = true;
      marked.push_back(s);
    }
  }
  for (size_t i = 0; i < marked.size(); ++i) {
    auto it = referrers.find(marked[i]);
    if (it == referrers.end()) continue;
    for (StructDecl* s : it->second) {
      if (!s->carries_handle) {
        s->carries_handle = true;
        marked.push_back(s);
      }
    }
  }
}

// Maps cannot hold a handle, directly or through a struct.
void FileAnalysis::CheckHandleMaps(const TypeRef& type) {
  if (type.kind == Kind::kMap && type.args.size() == 2) {
    for (const TypeRef& arg : type.args) {
      if (const TypeRef* h = FindHandle(arg)) {
        Error(h->loc, "a map cannot hold a file descriptor: " + WhatCarries(*h) +
                          " is a map " + (&arg == &type.args[0] ? "key" : "value") +
                          "; use a sequence of structs");
        return;
      }
    }
  }
  for (const TypeRef& arg : type.args) CheckHandleMaps(arg);
}

void FileAnalysis::CheckHandles() {
  MarkHandleStructs();
  std::vector<const StructDecl*> todo;
  for (auto& s : file_.structs) todo.push_back(s.get());
  while (!todo.empty()) {
    const StructDecl* s = todo.back();
    todo.pop_back();
    for (auto& n : s->nested_structs) todo.push_back(n.get());
    for (const FieldDecl& f : s->fields) CheckHandleMaps(f.type);
  }
  for (auto& iface : file_.interfaces) {
    for (const MethodDecl& m : iface->methods) {
      std::vector<const TypeRef*> types = {&m.return_type};
      for (const ParamDecl& p : m.params) types.push_back(&p.type);
      for (const TypeRef* t : types) CheckHandleMaps(*t);
      if (m.async && !m.streaming()) {
        for (const TypeRef* t : types) {
          const TypeRef* h = FindHandle(*t);
          if (h == nullptr) continue;
          Error(h->loc, "[async] method '" + m.name + "' cannot carry a file "
                        "descriptor (" + WhatCarries(*h) + "): an [async] "
                        "handler's call carries no descriptors; declare it "
                        "without [async]");
          break;
        }
      }
      if (!m.streaming()) continue;
      for (const TypeRef* t : types) {
        const TypeRef* h = FindHandle(*t);
        if (h == nullptr) continue;
        Error(h->loc, "streaming method '" + m.name + "' cannot carry a file "
                      "descriptor (" + WhatCarries(*h) + "): the stream "
                      "protocol carries no descriptors");
        break;
      }
    }
  }
}

}  // namespace lpc::idl::internal
