// Lowering of an analysed IDL file to a protobuf FileDescriptorProto: the
// message, enum and service definitions that the emitted .proto text, the
// protobuf C++ classes and the gRPC interop all share.
//
// The mapping (docs/codegen.md has the full table):
//   struct -> message (nested structs and enums stay nested), ordinal ->
//   field number; int8/16/32 -> int32, int64 -> int64, uint8/16/32 ->
//   uint32, uint64 -> uint64; sequence<T> -> repeated T; map<K, V> ->
//   map<K, V>; optional<T> -> proto3 `optional` (a plain message field for
//   structs); enum -> enum; interface -> service. Every method M gets a
//   top-level `MRequest` ([in] and [in,out] params, numbered 1..n) and
//   `MResponse` (`result` for a non-void return, then [out] and [in,out]
//   params). Constants are not lowered (they become C++ constants).
//   A streaming method's stream<T> side is T itself, as a gRPC streaming
//   RPC: `rpc Watch(WatchRequest) returns (stream Change)`; no MRequest for
//   a client stream, no MResponse for a server stream.
//
// What protobuf cannot express (a container inside a container, map keys
// other than bool/integers/string, generated names that collide) is reported
// as an error at the IDL location that causes it.
//
// Thread safety: the functions are pure; call them from any thread.
#ifndef LPC_CODEGEN_LOWER_H_
#define LPC_CODEGEN_LOWER_H_

#include <map>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "idl/ast.h"

namespace lpc::codegen {

// A code generation error at an IDL location.
struct CodegenError {
  idl::SourceLocation loc;
  std::string message;
};

// "a/b/foo.proto" for a file whose relative path is "a/b/foo.idl" (a path
// without the .idl suffix just gets ".proto" appended).
std::string ProtoFileName(const idl::File& file);

// The relative path without its ".idl" suffix: "a/b/foo".
std::string OutputStem(const idl::File& file);

// The dot-joined package, "a.b", or "" when the file has none.
std::string PackageName(const idl::File& file);

// Names of the messages generated for method `m`.
std::string RequestMessageName(const idl::MethodDecl& m);
// The full name of the protobuf message of struct `s`: its own, or for a
// struct that carries a handle (generated as a plain C++ struct of that
// name, docs/handles.md) the name with kWireSuffix.
std::string WireMessageName(const idl::StructDecl& s);
inline constexpr char kWireSuffix[] = "Wire";
std::string ResponseMessageName(const idl::MethodDecl& m);
// The messages lowering generates for `m`: the request unless the client
// streams, the response unless the server streams (a stream's messages are
// its element struct).
std::vector<std::string> GeneratedMessageNames(const idl::MethodDecl& m);

// The name of the response field that carries the return value.
inline constexpr char kResultFieldName[] = "result";

// Lowers `file` to `*out`. On failure returns false and appends at least
// one error to `*errors`; `*out` is then unspecified. `locations`, when not
// null, receives the IDL location of every element by protobuf full name
// ("a.b.Point", "a.b.Point.x", "a.b.Calculator.Add"), so that errors the
// DescriptorPool reports can point into the IDL.
bool LowerFile(const idl::File& file, google::protobuf::FileDescriptorProto* out,
               std::vector<CodegenError>* errors,
               std::map<std::string, idl::SourceLocation>* locations);

}  // namespace lpc::codegen

#endif  // LPC_CODEGEN_LOWER_H_
