// Names: the checks that generated C++ names do not collide, and the
// naming helpers shared by the header and source emitters.
#include "codegen/internal/emitter.h"

namespace lpc::codegen::internal {

std::string Emitter::FreeName(const MethodDecl& m, std::string base) {
  for (;;) {
    bool used = false;
    for (const ParamDecl& p : m.params) used = used || p.name == base;
    if (!used) return base;
    base += "_";
  }
}

void Emitter::CollectTopLevelNames(const idl::File& f, std::set<const idl::File*>* seen,
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
    for (const auto& c : f.contexts) {
      names->emplace(c->name, "context " + c->name);
    }
    for (const auto& i : f.interfaces) {
      for (const auto& m : i->methods) {
        for (const std::string& gen : GeneratedMessageNames(m)) {
          names->emplace(gen, "message " + gen);
        }
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

void Emitter::CheckNames() {
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
    // NewBuffer is reserved in every client, not only in those that get it
    // (a method with a `buffer` argument): adding one must not make another
    // method's name invalid.
    std::map<std::string, std::string> client = {
        {"Descriptor", "Descriptor()"},
        {"NewBuffer", "NewBuffer(), the client's factory of `buffer` "
                      "arguments (reserved in every client)"},
        {"channel_", "the member channel_"},
        {iface->name + "Client", "the constructor"}};
    std::map<std::string, std::string> service = {
        {"Descriptor", "Descriptor()"},
        {"descriptor", "descriptor()"},
        {"Dispatch", "lpc::Service::Dispatch()"},
        {"DispatchWith", "DispatchWith(), the override that decodes the "
                         "service's requests"},
        {iface->name + "Service", "the constructor"}};
    if (AnyStartCall(*iface)) {
      service.emplace("UsesStartCall", "UsesStartCall()");
      service.emplace("StartCallBlocks", "StartCallBlocks()");
      service.emplace("StartCall", "StartCall()");
    }
    for (const MethodDecl& m : iface->methods) {
      std::vector<std::string> members = {m.name};
      if (m.client_streaming() && !m.server_streaming()) {
        members.push_back(m.name + "Result");
      } else if (!m.oneway && !m.streaming()) {
        members.push_back(m.name + "Async");
        members.push_back(m.name + "Future");
        members.push_back(m.name + "Result");
      }
      if (m.async && !m.streaming()) {
        // FooService::<M>Result, the type its handle replies with.
        auto [it, inserted] =
            service.emplace(m.name + "Result", "method " + m.name);
        if (!inserted) {
          Error(m.loc, "method " + m.name + " needs a member '" + m.name +
                           "Result' in " + iface->name +
                           "Service, which is taken by " + it->second +
                           "; rename the method");
        }
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
        Error(m.loc, "method " + m.name + " needs a member '" + m.name +
                         "' in " + iface->name + "Service, which is taken by " +
                         it->second + "; rename the method");
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

std::string Emitter::HeaderGuard() {
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

std::string Emitter::NamespaceOpen() {
  if (file_.package.empty()) return "";
  std::string ns;
  for (const std::string& p : file_.package) ns += (ns.empty() ? "" : "::") + p;
  return "namespace " + ns + " {\n\n";
}

std::string Emitter::NamespaceClose() {
  if (file_.package.empty()) return "";
  std::string ns;
  for (const std::string& p : file_.package) ns += (ns.empty() ? "" : "::") + p;
  return "}  // namespace " + ns + "\n";
}

void Emitter::ForEachStruct(const idl::StructDecl& s,
                            const std::function<void(const idl::StructDecl&)>& fn) {
  fn(s);
  for (const auto& n : s.nested_structs) ForEachStruct(*n, fn);
}

std::string Emitter::SyncReturn(const MethodDecl& m, bool handler) {
  if (m.return_type.kind == Kind::kVoid) return "::absl::Status";
  if (handler && m.return_type.kind == Kind::kBuffer) {
    return "::absl::StatusOr<::lpc::Buffer>";
  }
  return "::absl::StatusOr<" + CppType(m.return_type) + ">";
}

std::string Emitter::ParamList(const MethodDecl& m,
                               const std::function<std::string(size_t)>& names,
                               bool client) {
  std::string out;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (!out.empty()) out += ", ";
    if (client && p.type.kind == Kind::kBuffer) {
      out += "::lpc::Buffer " + names(i);
    } else if (p.direction == ParamDirection::kIn) {
      out += InType(p.type) + " " + names(i);
    } else {
      out += CppType(p.type) + "* " + names(i);
    }
  }
  return out;
}

std::string Emitter::InputParamList(const MethodDecl& m,
                                    const std::function<std::string(size_t)>& names) {
  std::string out;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    if (p.direction == ParamDirection::kOut) continue;
    if (!out.empty()) out += ", ";
    out += (p.type.kind == Kind::kBuffer ? "::lpc::Buffer" : InType(p.type)) + " " +
           names(i);
  }
  return out;
}

std::string Emitter::Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + ", " + b;
}

std::string Emitter::MethodPath(const idl::InterfaceDecl& iface, const MethodDecl& m) {
  return InPackage(iface.name + "." + m.name);
}

std::string Emitter::P(size_t i) { return "lpc_p" + std::to_string(i); }

}  // namespace lpc::codegen::internal
