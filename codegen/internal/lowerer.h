// The pieces of lowering (lower.h): the Lowerer class, whose members are
// defined in codegen/lower.cc (the file, its enums, structs and fields) and
// codegen/lower_services.cc (each interface's request and response
// messages, its service, and the checks of the names they take), and the
// helpers both use. Private to //codegen.
#ifndef LPC_CODEGEN_INTERNAL_LOWERER_H_
#define LPC_CODEGEN_INTERNAL_LOWERER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codegen/lower.h"
#include "google/protobuf/descriptor.pb.h"
#include "idl/ast.h"

namespace lpc::codegen::internal {

// Field numbers of the descriptor.proto fields that source code info paths
// go through.
inline constexpr int kFileMessageType = 4;
inline constexpr int kFileEnumType = 5;
inline constexpr int kFileService = 6;
inline constexpr int kMessageField = 2;
inline constexpr int kMessageNestedType = 3;
inline constexpr int kMessageEnumType = 4;
inline constexpr int kEnumValue = 2;
inline constexpr int kServiceMethod = 2;

// What the emitted .proto says of a handle field.
std::string HandleFieldDoc(const idl::TypeRef& t);

// The handle kind a field type carries directly, or nullptr.
const idl::TypeRef* DirectHandle(const idl::TypeRef& t);

std::string JoinDoc(const std::string& a, const std::string& b);

class Lowerer {
 public:
  Lowerer(const idl::File& file, google::protobuf::FileDescriptorProto* out,
          std::vector<CodegenError>* errors,
          std::map<std::string, idl::SourceLocation>* locations)
      : file_(file), out_(out), errors_(errors), locations_(locations) {}

  bool Run();

 private:
  void Error(const idl::SourceLocation& loc, std::string message) {
    errors_->push_back({loc, std::move(message)});
    failed_ = true;
  }

  std::string Qualify(const std::string& name) const {
    return package_.empty() ? name : package_ + "." + name;
  }

  void Remember(const std::string& full_name, const idl::SourceLocation& loc) {
    if (locations_ != nullptr) locations_->emplace(full_name, loc);
  }

  static std::vector<int> Extend(std::vector<int> path, int a, int b) {
    path.push_back(a);
    path.push_back(b);
    return path;
  }

  void AddSourceLocation(const std::vector<int>& path,
                         const idl::SourceLocation& loc,
                         const std::string& doc);

  // The C++ accessors libprotoc generates for a field are its lower-cased
  // name plus prefixes and suffixes (has_x, set_x, x_size, ...); libprotoc
  // does not rename them on conflicts, so such fields would produce C++ that
  // does not compile. `fields` are the (name, location) pairs of one message.
  void CheckAccessorNames(
      const std::string& message,
      const std::vector<std::pair<std::string, idl::SourceLocation>>& fields);

  // lower.cc: enums, structs and their fields.
  void LowerEnum(const idl::EnumDecl& e,
                 google::protobuf::EnumDescriptorProto* out,
                 const std::vector<int>& path);
  void LowerStruct(const idl::StructDecl& s,
                   google::protobuf::DescriptorProto* out,
                   const std::vector<int>& path);
  // Sets the type of `f` for a non-container type.
  bool SetElementType(const idl::TypeRef& t,
                      google::protobuf::FieldDescriptorProto* f);
  bool CheckElement(const idl::TypeRef& t, const char* what);
  // Adds field `name` = `number` of IDL type `t` to message `parent` (whose
  // full name is `parent_full_name`).
  void LowerField(const std::string& name, uint32_t number,
                  const idl::TypeRef& t, const std::string& parent_full_name,
                  google::protobuf::DescriptorProto* parent,
                  const idl::SourceLocation& loc);

  // lower_services.cc: interfaces.
  // Top-level names of the package in this file and in the files it
  // imports (transitively) that share its package.
  void CollectPackageNames(const idl::File& f, std::set<const idl::File*>* seen,
                           std::map<std::string, std::string>* names);
  // The request and response messages share the package scope with user
  // types: a collision is an error that names both sides.
  void CheckGeneratedNames();
  void LowerMessages(const idl::InterfaceDecl& iface);
  // The .proto comment of a request or response field that is a handle
  // (`msg` is the last top-level message; the field is about to be added).
  void HandleFieldLocation(const google::protobuf::DescriptorProto& msg,
                           const idl::TypeRef& t,
                           const idl::SourceLocation& loc);
  void LowerRequest(const idl::MethodDecl& m);
  void LowerResponse(const idl::MethodDecl& m);
  // The full name of stream<T>'s struct T (analysis resolved it).
  std::string StreamElement(const idl::TypeRef& stream);
  void LowerService(const idl::InterfaceDecl& iface,
                    const std::vector<int>& path);

  const idl::File& file_;
  google::protobuf::FileDescriptorProto* out_;
  std::vector<CodegenError>* errors_;
  std::map<std::string, idl::SourceLocation>* locations_;
  std::string package_;
  bool failed_ = false;
};

}  // namespace lpc::codegen::internal

#endif  // LPC_CODEGEN_INTERNAL_LOWERER_H_
