// The syntax tree of an lpc .idl file, after parsing and semantic analysis.
//
// The front end (parser.h) produces one File per .idl file, owned by a
// Frontend. After a successful Frontend::Parse, every TypeRef of kind kNamed
// has `resolved_enum` or `resolved_struct` set, every ordinal is assigned, and
// every name is unique in its scope, so code generators never re-check.
//
// Thread safety: immutable once Frontend::Parse returns; not before.
#ifndef LPC_IDL_AST_H_
#define LPC_IDL_AST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace lpc::idl {

struct SourceLocation {
  std::string file;  // The path as given to the front end or found via -I.
  int line = 0;      // 1-based.
  int column = 0;    // 1-based, in bytes.
};

struct ContextDecl;
struct EnumDecl;
struct StructDecl;

// A use of a type. Containers carry their element types in `args`:
// sequence<T> -> {T}, map<K, V> -> {K, V}, optional<T> -> {T}, and so does
// stream<T> -> {T}.
struct TypeRef {
  enum class Kind {
    kVoid,  // Only as a method's return type.
    kBool,
    kInt8,
    kInt16,
    kInt32,
    kInt64,
    kUint8,
    kUint16,
    kUint32,
    kUint64,
    kFloat,
    kDouble,
    kString,
    kBytes,
    kSequence,
    kMap,
    kOptional,
    kNamed,  // An enum or struct, possibly qualified ("a.b.Point").
    // stream<T>, T a struct: only a method's return type (the server
    // streams) or its only parameter, [in] (the client streams).
    kStream,
    // handle, handle<memfd>, ...: a file descriptor (docs/handles.md);
    // `handle_kind` says which.
    kHandle,
    // A context handle type (`context Session;`): written as a name, set by
    // semantic analysis, with `resolved_context`.
    kContext,
    // buffer: a byte payload the local transport passes without a copy
    // (docs/zero-copy.md); `bytes` in the emitted .proto.
    kBuffer,
  };
  // What a kHandle requires of its descriptor.
  enum class HandleKind { kAny, kMemfd, kSealedMemfd, kPipe, kSocket, kFile };
  Kind kind = Kind::kVoid;
  std::vector<TypeRef> args;
  std::string name;  // As written, for kNamed.
  HandleKind handle_kind = HandleKind::kAny;  // For kHandle.
  // Set by semantic analysis for kNamed; exactly one is non-null.
  const EnumDecl* resolved_enum = nullptr;
  const StructDecl* resolved_struct = nullptr;
  // Set by semantic analysis for kContext.
  const ContextDecl* resolved_context = nullptr;
  SourceLocation loc;
};

// A constant's value. Integers keep their sign through int64/uint64.
using ConstValue = std::variant<bool, int64_t, uint64_t, double, std::string>;

struct ConstDecl {
  std::string name;
  std::string full_name;  // package + enclosing scopes + name, dot-separated.
  TypeRef type;           // A scalar, string, or enum type.
  ConstValue value;       // For enum-typed constants: the enumerator's int64.
  std::string doc;        // Leading comment text, without comment markers.
  SourceLocation loc;
};

// `context Name;` at file scope: a context handle type (docs/handles.md).
struct ContextDecl {
  std::string name;
  std::string full_name;
  std::string doc;
  SourceLocation loc;
};

struct EnumValue {
  std::string name;
  int64_t value = 0;  // Explicit (`= N`) or previous + 1, starting at 0.
  std::string doc;
  SourceLocation loc;
};

struct EnumDecl {
  std::string name;
  std::string full_name;
  std::vector<EnumValue> values;  // Non-empty; the first value must be 0.
  std::string doc;
  SourceLocation loc;
};

struct FieldDecl {
  std::string name;
  TypeRef type;
  uint32_t ordinal = 0;           // Always assigned after analysis.
  bool explicit_ordinal = false;  // Written as `@N`.
  std::string doc;
  SourceLocation loc;
};

struct StructDecl {
  std::string name;
  std::string full_name;
  std::vector<FieldDecl> fields;
  std::vector<std::unique_ptr<StructDecl>> nested_structs;
  std::vector<std::unique_ptr<EnumDecl>> nested_enums;
  std::vector<std::unique_ptr<ConstDecl>> nested_consts;
  std::string doc;
  SourceLocation loc;
  // Set by semantic analysis: a field is a handle, or contains one through
  // a struct, sequence or optional (docs/handles.md).
  bool carries_handle = false;
  // Set by semantic analysis: the struct this one is nested in, or null.
  const StructDecl* parent = nullptr;
};

// True when a value of `type` can carry a file descriptor: it is a handle,
// or a container or struct that holds one. Valid after analysis.
inline bool CarriesHandle(const TypeRef& type) {
  if (type.kind == TypeRef::Kind::kHandle) return true;
  if (type.resolved_struct != nullptr) return type.resolved_struct->carries_handle;
  for (const TypeRef& arg : type.args) {
    if (CarriesHandle(arg)) return true;
  }
  return false;
}

enum class ParamDirection { kIn, kOut, kInOut };

struct ParamDecl {
  std::string name;
  TypeRef type;
  ParamDirection direction = ParamDirection::kIn;
  SourceLocation loc;
};

struct MethodDecl {
  std::string name;
  uint32_t ordinal = 0;  // Always assigned after analysis; never 0 then.
  bool explicit_ordinal = false;
  bool oneway = false;
  bool async = false;   // [async]: the handler finishes the call later.
  TypeRef return_type;  // kVoid when the method returns nothing.
  std::vector<ParamDecl> params;
  std::string doc;
  SourceLocation loc;

  // The server sends a stream: the method returns stream<T>.
  bool server_streaming() const {
    return return_type.kind == TypeRef::Kind::kStream;
  }
  // The client sends a stream: the only parameter is [in] stream<T>.
  bool client_streaming() const {
    return params.size() == 1 &&
           params[0].type.kind == TypeRef::Kind::kStream;
  }
  bool streaming() const { return server_streaming() || client_streaming(); }
  // A handle method: its request or reply can carry a file descriptor.
  bool carries_handles() const {
    if (CarriesHandle(return_type)) return true;
    for (const ParamDecl& p : params) {
      if (CarriesHandle(p.type)) return true;
    }
    return false;
  }
  // Its request can carry one ([in] and [in, out] parameters).
  bool request_carries_handles() const {
    for (const ParamDecl& p : params) {
      if (p.direction != ParamDirection::kOut && CarriesHandle(p.type)) return true;
    }
    return false;
  }
  // The zero-copy byte payloads (docs/zero-copy.md); after analysis a
  // method has at most one [in] buffer parameter and no other.
  bool returns_buffer() const {
    return return_type.kind == TypeRef::Kind::kBuffer;
  }
  const ParamDecl* buffer_param() const {
    for (const ParamDecl& p : params) {
      if (p.type.kind == TypeRef::Kind::kBuffer) return &p;
    }
    return nullptr;
  }
  bool carries_buffer() const {
    return returns_buffer() || buffer_param() != nullptr;
  }
  // Its reply can carry one (the result, [out] and [in, out] parameters).
  bool reply_carries_handles() const {
    if (CarriesHandle(return_type)) return true;
    for (const ParamDecl& p : params) {
      if (p.direction != ParamDirection::kIn && CarriesHandle(p.type)) return true;
    }
    return false;
  }
};

struct InterfaceDecl {
  std::string name;
  std::string full_name;
  std::string uuid;  // Lower-case canonical 8-4-4-4-12 form.
  uint32_t version_major = 0;
  uint32_t version_minor = 0;
  std::vector<MethodDecl> methods;
  std::string doc;
  SourceLocation loc;
};

struct File;

struct ImportDecl {
  std::string path;             // As written in the import statement.
  const File* file = nullptr;   // Resolved by the front end.
  SourceLocation loc;
};

struct File {
  std::string path;                  // As the front end found it.
  std::string relative_path;         // Relative to the -I dir it was found in.
  std::vector<std::string> package;  // {"a", "b"} for `package a.b;`.
  SourceLocation package_loc;        // Of the package's first part.
  std::vector<ImportDecl> imports;
  std::vector<std::unique_ptr<ConstDecl>> consts;
  std::vector<std::unique_ptr<EnumDecl>> enums;
  std::vector<std::unique_ptr<StructDecl>> structs;
  std::vector<std::unique_ptr<InterfaceDecl>> interfaces;
  std::vector<std::unique_ptr<ContextDecl>> contexts;
  std::string doc;  // The comment block before `package`, if any.
};

}  // namespace lpc::idl

#endif  // LPC_IDL_AST_H_
