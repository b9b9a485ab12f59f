// IDL syntax tree -> FileDescriptorProto: each interface's request and
// response messages, its service, and the checks of the names they take.
// See internal/lowerer.h; the file, enums and structs are in lower.cc.
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codegen/internal/lowerer.h"
#include "codegen/lower.h"
#include "idl/frontend.h"

namespace lpc::codegen::internal {

namespace pb = google::protobuf;
using idl::TypeRef;
using Kind = idl::TypeRef::Kind;

void Lowerer::CollectPackageNames(const idl::File& f,
                                  std::set<const idl::File*>* seen,
                                  std::map<std::string, std::string>* names) {
  if (!seen->insert(&f).second) return;
  if (PackageName(f) == package_) {
    for (const auto& s : f.structs) (*names)[s->name] = "struct " + s->name;
    for (const auto& e : f.enums) (*names)[e->name] = "enum " + e->name;
    for (const auto& i : f.interfaces) {
      (*names)[i->name] = "interface " + i->name;
      if (&f == &file_) continue;
      for (const auto& m : i->methods) {
        std::string by = "the messages of method " + i->name + "." + m.name +
                         " in " + f.relative_path;
        for (const std::string& gen : GeneratedMessageNames(m)) {
          (*names)[gen] = by;
        }
      }
    }
  }
  for (const idl::ImportDecl& imp : f.imports) {
    if (imp.file != nullptr) CollectPackageNames(*imp.file, seen, names);
  }
}

void Lowerer::CheckGeneratedNames() {
  std::map<std::string, std::string> names;
  std::set<const idl::File*> seen;
  CollectPackageNames(file_, &seen, &names);
  for (const auto& iface : file_.interfaces) {
    for (const idl::MethodDecl& m : iface->methods) {
      for (const std::string& gen : GeneratedMessageNames(m)) {
        auto [it, inserted] = names.emplace(
            gen, "the messages of method " + iface->name + "." + m.name);
        if (!inserted) {
          Error(m.loc, "method " + iface->name + "." + m.name +
                           " needs a message named '" + gen +
                           "', which collides with " + it->second +
                           " in package '" + package_ +
                           "'; rename the method or that declaration");
        }
      }
      if (m.oneway) {
        if (m.return_type.kind != Kind::kVoid) {
          Error(m.loc, "oneway method " + m.name + " cannot return a value");
        }
        for (const idl::ParamDecl& p : m.params) {
          if (p.direction != idl::ParamDirection::kIn) {
            Error(p.loc, "oneway method " + m.name +
                             " cannot have [out] or [in,out] parameters");
          }
        }
      }
      if (m.return_type.kind != Kind::kVoid) {
        for (const idl::ParamDecl& p : m.params) {
          if (p.direction != idl::ParamDirection::kIn &&
              p.name == kResultFieldName) {
            Error(p.loc, "parameter '" + p.name + "' of " + m.name +
                             " collides with the response field that "
                             "carries the return value; rename it");
          }
        }
      }
    }
  }
}

void Lowerer::LowerMessages(const idl::InterfaceDecl& iface) {
  for (const idl::MethodDecl& m : iface.methods) {
    // A client stream's messages are its element type; the server
    // stream's likewise.
    if (!m.client_streaming()) LowerRequest(m);
    if (!m.server_streaming()) LowerResponse(m);
  }
}

void Lowerer::HandleFieldLocation(const pb::DescriptorProto& msg,
                                  const TypeRef& t,
                                  const idl::SourceLocation& loc) {
  const TypeRef* handle = DirectHandle(t);
  if (handle == nullptr) return;
  AddSourceLocation({kFileMessageType, out_->message_type_size() - 1,
                     kMessageField, msg.field_size()},
                    loc, HandleFieldDoc(*handle));
}

void Lowerer::LowerRequest(const idl::MethodDecl& m) {
  pb::DescriptorProto* req = out_->add_message_type();
  req->set_name(RequestMessageName(m));
  std::string req_full = Qualify(req->name());
  Remember(req_full, m.loc);
  uint32_t n = 0;
  std::vector<std::pair<std::string, idl::SourceLocation>> names;
  for (const idl::ParamDecl& p : m.params) {
    if (p.direction == idl::ParamDirection::kOut) continue;
    Remember(req_full + "." + p.name, p.loc);
    HandleFieldLocation(*req, p.type, p.loc);
    LowerField(p.name, ++n, p.type, req_full, req, p.loc);
    names.emplace_back(p.name, p.loc);
  }
  CheckAccessorNames("message " + req->name() + " (the parameters of " +
                         m.name + ")",
                     names);
}

void Lowerer::LowerResponse(const idl::MethodDecl& m) {
  std::vector<std::pair<std::string, idl::SourceLocation>> names;
  pb::DescriptorProto* resp = out_->add_message_type();
  resp->set_name(ResponseMessageName(m));
  std::string resp_full = Qualify(resp->name());
  Remember(resp_full, m.loc);
  uint32_t n = 0;
  if (m.return_type.kind != Kind::kVoid) {
    Remember(resp_full + "." + kResultFieldName, m.return_type.loc);
    HandleFieldLocation(*resp, m.return_type, m.return_type.loc);
    LowerField(kResultFieldName, ++n, m.return_type, resp_full, resp,
               m.return_type.loc);
    names.emplace_back(kResultFieldName, m.loc);
  }
  for (const idl::ParamDecl& p : m.params) {
    if (p.direction == idl::ParamDirection::kIn) continue;
    Remember(resp_full + "." + p.name, p.loc);
    HandleFieldLocation(*resp, p.type, p.loc);
    LowerField(p.name, ++n, p.type, resp_full, resp, p.loc);
    names.emplace_back(p.name, p.loc);
  }
  CheckAccessorNames("message " + resp->name() + " (the results of " +
                         m.name + ")",
                     names);
}

std::string Lowerer::StreamElement(const TypeRef& stream) {
  if (stream.args.size() != 1 || stream.args[0].resolved_struct == nullptr) {
    Error(stream.loc, "internal: unresolved stream element type");
    return "";
  }
  return stream.args[0].resolved_struct->full_name;
}

void Lowerer::LowerService(const idl::InterfaceDecl& iface,
                           const std::vector<int>& path) {
  pb::ServiceDescriptorProto* s = out_->add_service();
  s->set_name(iface.name);
  Remember(Qualify(iface.name), iface.loc);
  AddSourceLocation(path, iface.loc, iface.doc);
  for (size_t i = 0; i < iface.methods.size(); ++i) {
    const idl::MethodDecl& m = iface.methods[i];
    pb::MethodDescriptorProto* pm = s->add_method();
    pm->set_name(m.name);
    if (m.client_streaming()) {
      pm->set_input_type("." + StreamElement(m.params[0].type));
      pm->set_client_streaming(true);
    } else {
      pm->set_input_type("." + Qualify(RequestMessageName(m)));
    }
    if (m.server_streaming()) {
      pm->set_output_type("." + StreamElement(m.return_type));
      pm->set_server_streaming(true);
    } else {
      pm->set_output_type("." + Qualify(ResponseMessageName(m)));
    }
    Remember(Qualify(iface.name) + "." + m.name, m.loc);
    AddSourceLocation(
        Extend(path, kServiceMethod, static_cast<int>(i)), m.loc,
        m.carries_handles()
            ? JoinDoc(m.doc, "Carries handles (file descriptors): local "
                             "transport only; over gRPC it fails with "
                             "FAILED_PRECONDITION.")
            : m.doc);
  }
}

}  // namespace lpc::codegen::internal
