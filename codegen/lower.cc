// IDL syntax tree -> FileDescriptorProto: the file, its enums, structs and
// fields. Interfaces (request and response messages, services) are lowered
// in lower_services.cc; internal/lowerer.h declares the Lowerer both define.
#include "codegen/lower.h"

#include "codegen/comments.h"
#include "codegen/internal/lowerer.h"
#include "idl/frontend.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lpc::codegen {
namespace internal {
namespace {

namespace pb = google::protobuf;
using idl::TypeRef;
using Kind = idl::TypeRef::Kind;

bool IsContainer(const TypeRef& t) {
  return t.kind == Kind::kSequence || t.kind == Kind::kMap ||
         t.kind == Kind::kOptional;
}

// protobuf's rule for the name of a map field's entry message.
std::string MapEntryName(std::string_view field_name) {
  std::string result;
  bool cap_next = true;
  for (char c : field_name) {
    if (c == '_') {
      cap_next = true;
    } else if (cap_next) {
      result.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A')
                                            : c);
      cap_next = false;
    } else {
      result.push_back(c);
    }
  }
  return result + "Entry";
}

// Turns a doc comment into a leading comment for libprotoc's .proto text:
// each line ending in '\n', with no space of ours in front (the text form
// writes "// " before every line, so a space of ours would double it on
// all lines but the first).
std::string ProtoComment(const std::string& doc) {
  std::string out;
  for (const std::string& line : SafeCommentLines(doc)) out += line + "\n";
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

std::string HandleFieldDoc(const TypeRef& t) {
  return "lpc " + idl::HandleTypeName(t.handle_kind) +
         " (a file descriptor): 0 for none, else 1 + its index in the "
         "message's handle table. Needs the local transport.";
}

const TypeRef* DirectHandle(const TypeRef& t) {
  if (t.kind == Kind::kHandle) return &t;
  if ((t.kind == Kind::kSequence || t.kind == Kind::kOptional) &&
      t.args.size() == 1 && t.args[0].kind == Kind::kHandle) {
    return &t.args[0];
  }
  return nullptr;
}

std::string JoinDoc(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "\n" + b;
}

bool Lowerer::Run() {
  out_->Clear();
  out_->set_name(ProtoFileName(file_));
  out_->set_syntax("proto3");
  package_ = PackageName(file_);
  if (!package_.empty()) out_->set_package(package_);
  for (const idl::ImportDecl& imp : file_.imports) {
    if (imp.file == nullptr) {
      Error(imp.loc, "import '" + imp.path + "' was not resolved");
      continue;
    }
    out_->add_dependency(ProtoFileName(*imp.file));
  }
  for (size_t i = 0; i < file_.enums.size(); ++i) {
    LowerEnum(*file_.enums[i], out_->add_enum_type(),
              {kFileEnumType, static_cast<int>(i)});
  }
  for (size_t i = 0; i < file_.structs.size(); ++i) {
    LowerStruct(*file_.structs[i], out_->add_message_type(),
                {kFileMessageType, static_cast<int>(i)});
  }
  CheckGeneratedNames();
  for (const auto& iface : file_.interfaces) LowerMessages(*iface);
  for (size_t i = 0; i < file_.interfaces.size(); ++i) {
    LowerService(*file_.interfaces[i], {kFileService, static_cast<int>(i)});
  }
  return !failed_;
}

void Lowerer::AddSourceLocation(const std::vector<int>& path,
                                const idl::SourceLocation& loc,
                                const std::string& doc) {
  pb::SourceCodeInfo::Location* l =
      out_->mutable_source_code_info()->add_location();
  for (int p : path) l->add_path(p);
  int line = loc.line > 0 ? loc.line - 1 : 0;
  int col = loc.column > 0 ? loc.column - 1 : 0;
  l->add_span(line);
  l->add_span(col);
  l->add_span(col);
  std::string comment = ProtoComment(doc);
  if (!comment.empty()) l->set_leading_comments(comment);
}

void Lowerer::CheckAccessorNames(
    const std::string& message,
    const std::vector<std::pair<std::string, idl::SourceLocation>>& fields) {
  static const char* const kReserved[] = {
      "descriptor", "default_instance", "internal_default_instance",
      "getdescriptor", "getreflection", "swap"};
  static const char* const kPrefixes[] = {"has_", "clear_", "set_", "mutable_",
                                          "add_", "release_", "set_allocated_",
                                          "unsafe_arena_set_allocated_",
                                          "unsafe_arena_release_", "_internal_"};
  std::map<std::string, std::string> accessors;  // accessor -> field
  for (const auto& [name, loc] : fields) {
    std::string lower = Lower(name);
    for (const char* r : kReserved) {
      if (lower == r) {
        Error(loc, "field '" + name + "' of " + message +
                       " would generate the C++ accessor " + lower +
                       "(), which protobuf messages already have; rename it");
      }
    }
  }
  for (const auto& [name, loc] : fields) {
    std::string lower = Lower(name);
    std::vector<std::string> generated = {lower, lower + "_size"};
    for (const char* prefix : kPrefixes) generated.push_back(prefix + lower);
    for (const std::string& g : generated) accessors.emplace(g, name);
  }
  for (const auto& [name, loc] : fields) {
    std::string lower = Lower(name);
    auto it = accessors.find(lower);
    if (it != accessors.end() && it->second != name) {
      Error(loc, "field '" + name + "' of " + message +
                     " collides with a C++ accessor of field '" + it->second +
                     "' (" + lower + "()); rename one of them");
    }
  }
}

void Lowerer::LowerEnum(const idl::EnumDecl& e, pb::EnumDescriptorProto* out,
                        const std::vector<int>& path) {
  out->set_name(e.name);
  Remember(e.full_name, e.loc);
  AddSourceLocation(path, e.loc, e.doc);
  // Enum values are siblings of their enum in protobuf (C++ scoping).
  std::string scope = e.full_name.substr(
      0, e.full_name.size() > e.name.size()
             ? e.full_name.size() - e.name.size()
             : 0);
  for (size_t i = 0; i < e.values.size(); ++i) {
    const idl::EnumValue& v = e.values[i];
    if (v.value < INT32_MIN || v.value > INT32_MAX) {
      Error(v.loc, "enum value " + v.name +
                       " does not fit in 32 bits, which protobuf requires");
      continue;
    }
    pb::EnumValueDescriptorProto* ov = out->add_value();
    ov->set_name(v.name);
    ov->set_number(static_cast<int32_t>(v.value));
    Remember(e.full_name + "." + v.name, v.loc);
    Remember(scope + v.name, v.loc);
    AddSourceLocation(Extend(path, kEnumValue, static_cast<int>(i)), v.loc,
                      v.doc);
  }
}

void Lowerer::LowerStruct(const idl::StructDecl& s, pb::DescriptorProto* out,
                          const std::vector<int>& path) {
  out->set_name(s.carries_handle ? s.name + kWireSuffix : s.name);
  Remember(s.full_name, s.loc);
  AddSourceLocation(
      path, s.loc,
      s.carries_handle
          ? JoinDoc(s.doc, "The wire form of struct " + s.name +
                               ", which carries handles (file descriptors): "
                               "local transport only.")
          : s.doc);
  for (size_t i = 0; i < s.nested_enums.size(); ++i) {
    LowerEnum(*s.nested_enums[i], out->add_enum_type(),
              Extend(path, kMessageEnumType, static_cast<int>(i)));
  }
  for (size_t i = 0; i < s.nested_structs.size(); ++i) {
    LowerStruct(*s.nested_structs[i], out->add_nested_type(),
                Extend(path, kMessageNestedType, static_cast<int>(i)));
  }
  std::vector<std::pair<std::string, idl::SourceLocation>> names;
  for (size_t i = 0; i < s.fields.size(); ++i) {
    const idl::FieldDecl& f = s.fields[i];
    Remember(s.full_name + "." + f.name, f.loc);
    const TypeRef* handle = DirectHandle(f.type);
    AddSourceLocation(Extend(path, kMessageField, out->field_size()), f.loc,
                      handle == nullptr ? f.doc
                                        : JoinDoc(f.doc, HandleFieldDoc(*handle)));
    LowerField(f.name, f.ordinal, f.type, s.full_name, out, f.loc);
    names.emplace_back(f.name, f.loc);
  }
  CheckAccessorNames("struct " + s.full_name, names);
}

bool Lowerer::SetElementType(const TypeRef& t, pb::FieldDescriptorProto* f) {
  using FT = pb::FieldDescriptorProto;
  switch (t.kind) {
    case Kind::kBool: f->set_type(FT::TYPE_BOOL); return true;
    case Kind::kInt8:
    case Kind::kInt16:
    case Kind::kInt32: f->set_type(FT::TYPE_INT32); return true;
    case Kind::kInt64: f->set_type(FT::TYPE_INT64); return true;
    case Kind::kUint8:
    case Kind::kUint16:
    case Kind::kUint32: f->set_type(FT::TYPE_UINT32); return true;
    case Kind::kUint64: f->set_type(FT::TYPE_UINT64); return true;
    case Kind::kFloat: f->set_type(FT::TYPE_FLOAT); return true;
    case Kind::kDouble: f->set_type(FT::TYPE_DOUBLE); return true;
    case Kind::kString: f->set_type(FT::TYPE_STRING); return true;
    case Kind::kBytes: f->set_type(FT::TYPE_BYTES); return true;
    // A buffer (docs/zero-copy.md) is bytes on the wire.
    case Kind::kBuffer: f->set_type(FT::TYPE_BYTES); return true;
    // A context handle: the server's random 64-bit id.
    case Kind::kContext: f->set_type(FT::TYPE_FIXED64); return true;
    case Kind::kNamed:
      if (t.resolved_enum != nullptr) {
        f->set_type(FT::TYPE_ENUM);
        f->set_type_name("." + t.resolved_enum->full_name);
        return true;
      }
      if (t.resolved_struct != nullptr) {
        f->set_type(FT::TYPE_MESSAGE);
        f->set_type_name("." + WireMessageName(*t.resolved_struct));
        return true;
      }
      Error(t.loc, "type '" + t.name + "' was not resolved");
      return false;
    case Kind::kHandle:
      // The descriptor's 1-based index in the handle table (0: none).
      f->set_type(FT::TYPE_UINT32);
      return true;
    case Kind::kVoid:
      Error(t.loc, "void is not a value type");
      return false;
    case Kind::kSequence:
    case Kind::kMap:
    case Kind::kOptional:
    case Kind::kStream:
      break;
  }
  Error(t.loc, "internal: container where an element type was expected");
  return false;
}

bool Lowerer::CheckElement(const TypeRef& t, const char* what) {
  if (IsContainer(t)) {
    Error(t.loc, std::string(what) +
                     " cannot hold a sequence, map or optional: protobuf "
                     "has no such field; wrap the inner one in a struct");
    return false;
  }
  return true;
}

void Lowerer::LowerField(const std::string& name, uint32_t number,
                         const TypeRef& t, const std::string& parent_full_name,
                         pb::DescriptorProto* parent,
                         const idl::SourceLocation& loc) {
  using FT = pb::FieldDescriptorProto;
  if (number < 1 || number > 536870911) {
    Error(loc, "field number " + std::to_string(number) + " is out of range");
    return;
  }
  pb::FieldDescriptorProto* f = parent->add_field();
  f->set_name(name);
  f->set_number(static_cast<int>(number));
  f->set_label(FT::LABEL_OPTIONAL);
  switch (t.kind) {
    case Kind::kSequence:
      if (t.args.size() != 1 || !CheckElement(t.args[0], "a sequence")) {
        return;
      }
      f->set_label(FT::LABEL_REPEATED);
      SetElementType(t.args[0], f);
      return;
    case Kind::kOptional:
      if (t.args.size() != 1 || !CheckElement(t.args[0], "an optional")) {
        return;
      }
      SetElementType(t.args[0], f);
      if (f->type() != FT::TYPE_MESSAGE) {
        // proto3 `optional`: a synthetic oneof carries presence.
        f->set_proto3_optional(true);
        f->set_oneof_index(parent->oneof_decl_size());
        parent->add_oneof_decl()->set_name("_" + name);
      }
      return;
    case Kind::kMap: {
      if (t.args.size() != 2 || !CheckElement(t.args[1], "a map value")) {
        return;
      }
      const TypeRef& key = t.args[0];
      switch (key.kind) {
        case Kind::kBool:
        case Kind::kInt8:
        case Kind::kInt16:
        case Kind::kInt32:
        case Kind::kInt64:
        case Kind::kUint8:
        case Kind::kUint16:
        case Kind::kUint32:
        case Kind::kUint64:
        case Kind::kString:
          break;
        default:
          Error(key.loc,
                "map keys must be bool, an integer type or string "
                "(protobuf's rule); got " +
                    std::string(key.kind == Kind::kNamed ? key.name
                                                        : "this type"));
          return;
      }
      pb::DescriptorProto* entry = parent->add_nested_type();
      entry->set_name(MapEntryName(name));
      entry->mutable_options()->set_map_entry(true);
      pb::FieldDescriptorProto* k = entry->add_field();
      k->set_name("key");
      k->set_number(1);
      k->set_label(FT::LABEL_OPTIONAL);
      SetElementType(key, k);
      pb::FieldDescriptorProto* v = entry->add_field();
      v->set_name("value");
      v->set_number(2);
      v->set_label(FT::LABEL_OPTIONAL);
      SetElementType(t.args[1], v);
      f->set_label(FT::LABEL_REPEATED);
      f->set_type(FT::TYPE_MESSAGE);
      f->set_type_name("." + parent_full_name + "." + entry->name());
      return;
    }
    default:
      SetElementType(t, f);
      return;
  }
}

}  // namespace internal

std::string OutputStem(const idl::File& file) {
  std::string path = file.relative_path.empty() ? file.path : file.relative_path;
  constexpr std::string_view kSuffix = ".idl";
  if (path.size() > kSuffix.size() &&
      path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
    path.resize(path.size() - kSuffix.size());
  }
  return path;
}

std::string ProtoFileName(const idl::File& file) {
  return OutputStem(file) + ".proto";
}

std::string PackageName(const idl::File& file) {
  std::string out;
  for (const std::string& p : file.package) {
    if (!out.empty()) out += ".";
    out += p;
  }
  return out;
}

std::string RequestMessageName(const idl::MethodDecl& m) {
  return m.name + "Request";
}

std::string WireMessageName(const idl::StructDecl& s) {
  const std::string own = s.carries_handle ? s.name + kWireSuffix : s.name;
  if (s.parent != nullptr) return WireMessageName(*s.parent) + "." + own;
  return s.full_name.substr(0, s.full_name.size() - s.name.size()) + own;
}

std::string ResponseMessageName(const idl::MethodDecl& m) {
  return m.name + "Response";
}

std::vector<std::string> GeneratedMessageNames(const idl::MethodDecl& m) {
  std::vector<std::string> names;
  if (!m.client_streaming()) names.push_back(RequestMessageName(m));
  if (!m.server_streaming()) names.push_back(ResponseMessageName(m));
  return names;
}

bool LowerFile(const idl::File& file, google::protobuf::FileDescriptorProto* out,
               std::vector<CodegenError>* errors,
               std::map<std::string, idl::SourceLocation>* locations) {
  return internal::Lowerer(file, out, errors, locations).Run();
}

}  // namespace lpc::codegen
