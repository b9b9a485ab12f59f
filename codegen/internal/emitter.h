// The pieces of the C++ emitter (cpp_emitter.h): the Emitter class, whose
// members are defined in codegen/internal/emit_*.cc by concern, and the
// text helpers they share. Private to //codegen.
//
// Naming in generated definitions: parameters and locals are spelled
// lpc_p<N>, lpc_ctx, lpc_msg, ... so that no IDL name can clash with them;
// only declarations in the header use the IDL's parameter names. Every
// reference to a library or generated type is fully qualified ("::lpc::",
// "::std::", "::a::b::"), so that a package component called "std" or "lpc"
// cannot change what a name means.
#ifndef LPC_CODEGEN_INTERNAL_EMITTER_H_
#define LPC_CODEGEN_INTERNAL_EMITTER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/cpp_emitter.h"
#include "codegen/lower.h"
#include "google/protobuf/compiler/cpp/names.h"
#include "google/protobuf/descriptor.h"
#include "idl/ast.h"

namespace lpc::codegen::internal {

namespace pb = google::protobuf;
namespace cpp = google::protobuf::compiler::cpp;
using idl::MethodDecl;
using idl::ParamDecl;
using idl::ParamDirection;
using idl::TypeRef;
using Kind = idl::TypeRef::Kind;

// Builds a statement that fails the current check with the C++ string
// expression `what`.
using FailFn = std::function<std::string(const std::string& what)>;

std::string Pad(int indent);

// A C++ string literal with the bytes of `s`.
std::string CppString(std::string_view s);

// `doc` as // comment lines at `indent`. Lines are made safe for C++: no
// control bytes, and no trailing backslash (which would continue the comment
// onto the next line of code).
std::string Comment(const std::string& doc, int indent);

// Wraps a declaration or call that is longer than 80 columns at the commas
// of its (first) parenthesised list, Google style: continuation lines align
// after the '(' when they fit there, else indent by 4. Lines that hold
// string literals, comments or statements are left alone.
std::string WrapLine(const std::string& line);

// Applies WrapLine to every line of `text`.
std::string WrapLines(const std::string& text);

const char* NarrowType(Kind k);

const char* IdlKindName(Kind k);

class Emitter {
 public:
  Emitter(const idl::File& file, const pb::FileDescriptor* fd,
          std::vector<CodegenError>* errors)
      : file_(file), fd_(fd), pool_(fd->pool()), errors_(errors) {
    package_ = PackageName(file);
    ns_ = "::";
    for (const std::string& p : file.package) ns_ += p + "::";
  }

  bool Run(CppOutput* out);

 private:
  void Error(const idl::SourceLocation& loc, std::string message);

  // ---- Descriptors and types (emit_types.cc) ----

  const pb::Descriptor* Message(const std::string& full_name);

  // `name` qualified with this file's package.
  std::string InPackage(const std::string& name) const;

  // The method's response message, looked up quietly (the scans that
  // decide which helpers to emit; the emitters report a missing one).
  const pb::Descriptor* ResponseOf(const MethodDecl& m) const;

  const pb::FieldDescriptor* Field(const pb::Descriptor* d,
                                   const std::string& name);

  std::string StructClass(const idl::StructDecl* s);

  std::string EnumClass(const idl::EnumDecl* e);

  // The lpc_internal namespace that holds CheckRanges for struct `s`: the one
  // of the package `s` is declared in.
  std::string CheckRangesFn(const idl::StructDecl* s);

  std::string CppType(const TypeRef& t);
  // The generated alias of a context type: "::pkg::Session".
  std::string ContextAlias(const TypeRef& t);

  static bool ByValue(const TypeRef& t);

  std::string InType(const TypeRef& t);

  // ---- Conversions between C++ values and protobuf fields ----

  static bool NeedsCheck(const TypeRef& t);

  // Statements that check the protobuf element value `v` of element type
  // `t` (narrow integers in range, structs' nested ranges); `what` names it.
  std::string ElemCheck(const TypeRef& t, const std::string& v,
                        const std::string& what, const FailFn& fail,
                        int indent);

  // The C++ value of protobuf element value `v` (already checked).
  std::string ElemValue(const TypeRef& t, const std::string& v);

  // The protobuf value of C++ element value `v`.
  std::string ProtoElem(const TypeRef& t, const std::string& v);

  // Whether a value of IDL type `t` owns heap memory that a move hands over
  // instead of copying (strings, bytes and structs).
  static bool Movable(const TypeRef& t);

  // Statements that store C++ value `src` of IDL type `t` into field `f` of
  // protobuf message `msg`. With `move`, `src` is owned by the caller and is
  // moved from (strings, bytes and structs, also as elements).
  std::string ToProto(const TypeRef& t, const pb::FieldDescriptor* f,
                      const std::string& msg, const std::string& src,
                      int indent, bool move = false);

  // Statements that read field `f` of protobuf message `msg` into the C++
  // lvalue `dst` (value-initialised) of IDL type `t`, failing through `fail`
  // when a value is out of range. `what` names the value in errors. With
  // `move`, `msg` is owned by the caller and its strings, bytes and structs
  // are moved out (after their checks) instead of copied.
  std::string FromProto(const TypeRef& t, const pb::FieldDescriptor* f,
                        const std::string& msg, const std::string& dst,
                        const std::string& what, const FailFn& fail,
                        int indent, bool move = false);

  // Statements that only check field `f` of `msg` (for CheckRanges).
  std::string CheckField(const TypeRef& t, const pb::FieldDescriptor* f,
                         const std::string& msg, const std::string& what,
                         const FailFn& fail, int indent);

  // ---- File descriptor handles (emit_handles.cc) ----

  // "::lpc::HandleKind::kPipe" and so on, for a kHandle type.
  static std::string HandleKindEnum(const TypeRef& t);

  // The protobuf class of a struct that carries a handle ("::a::FooWire"),
  // its plain C++ struct ("::a::Foo"), and the lpc_internal namespace of
  // its package ("::a::lpc_internal::"), which holds ToWire and FromWire.
  std::string WireClass(const idl::StructDecl* s);
  std::string PlainStructClass(const idl::StructDecl* s);
  std::string LpcInternalNs(const idl::StructDecl* s);

  // Whether a parameter may be written straight into the request buffer
  // (see EmitEncode): a string, bytes or struct that carries no handle.
  static bool DirectWritable(const TypeRef& t) {
    return Movable(t) && !idl::CarriesHandle(t);
  }

  // Like ToProto and FromProto, for a type that carries a handle: the
  // descriptors go into, or come out of, the table named handles_var_.
  // `what_expr` is a C++ string expression naming the value in errors.
  std::string HandleToProto(const TypeRef& t, const pb::FieldDescriptor* f,
                            const std::string& msg, const std::string& src,
                            int indent);
  std::string HandleFromProto(const TypeRef& t, const pb::FieldDescriptor* f,
                              const std::string& msg, const std::string& dst,
                              const std::string& what_expr, int indent);

  // Header: the plain structs of this file's structs that carry a handle,
  // and the declarations of their ToWire and FromWire.
  void EmitPlainStructs();

  // Whether this file has a handle method or a struct that carries one.
  bool AnyHandles() const;

  // Source: ToWire and FromWire of struct `s`, if it carries a handle.
  void EmitWireConversions(const idl::StructDecl& s);

  // ---- Names (emit_names.cc) ----

  // A name not used by any parameter of `m`: `base`, else base + "_"...
  static std::string FreeName(const MethodDecl& m, std::string base);

  void CollectTopLevelNames(const idl::File& f, std::set<const idl::File*>* seen,
                            std::map<std::string, std::string>* names);

  void CheckNames();

  // ---- Header (emit_header.cc; the naming helpers among these are in
  // emit_names.cc) ----

  std::string HeaderGuard();

  std::string NamespaceOpen();

  std::string NamespaceClose();

  std::string ConstValueLiteral(const idl::ConstDecl& c);

  void EmitConst(const idl::ConstDecl& c, const std::string& name);

  void EmitNestedConsts(const idl::StructDecl& s);

  void ForEachStruct(const idl::StructDecl& s,
                     const std::function<void(const idl::StructDecl&)>& fn);

  // The sync stub's return type, or with `handler` the handler's (they
  // differ for a `buffer` result: lpc::BufferView / lpc::Buffer).
  std::string SyncReturn(const MethodDecl& m, bool handler = false);

  // The IDL parameters as C++ parameters. `names` gives each one's name by
  // index. Sync and handler form: [out]/[in,out] as T*.
  // With `client`, a `buffer` parameter is the sender's lpc::Buffer (by
  // value, moved in) instead of the handler's const lpc::BufferView&.
  std::string ParamList(const MethodDecl& m,
                        const std::function<std::string(size_t)>& names,
                        bool client = false);

  // Async form: [in] and [in,out] as inputs; [out] omitted; a `buffer` as
  // lpc::Buffer (the client's).
  std::string InputParamList(const MethodDecl& m,
                             const std::function<std::string(size_t)>& names);

  static std::string Join(const std::string& a, const std::string& b);

  void EmitClientClass(const idl::InterfaceDecl& iface);
  // Whether a method of `iface` takes a `buffer` (the client gets NewBuffer).
  static bool HasBufferArg(const idl::InterfaceDecl& iface);
  // `<Method>Future(...)`, which waits on `<Method>Async` through a promise.
  void EmitClientFuture(const MethodDecl& m, const std::string& cls,
                        const std::string& result);

  void EmitServiceClass(const idl::InterfaceDecl& iface);

  void EmitHeader();

  // ---- Source (emit_messages.cc, emit_client.cc, emit_service.cc; EmitSource
  // in cpp_emitter.cc) ----

  void EmitCheckRanges(const idl::StructDecl& s);

  std::string MethodPath(const idl::InterfaceDecl& iface, const MethodDecl& m);

  static std::string P(size_t i);

  // Whether the request encoder of `m` writes a parameter straight into
  // the request buffer (see EmitEncode).
  bool HasDirectFields(const MethodDecl& m);

  // <Method>_Encode: the request message. Scalars, sequences, maps and
  // optionals go through the protobuf message; a top-level string, bytes or
  // struct argument is written straight from the caller's object after the
  // rest, as one length-delimited field (a parser accepts fields in any
  // order), so that it is copied once, into a request buffer sized once.
  void EmitEncode(const idl::InterfaceDecl& iface, const MethodDecl& m);

  // A top-level string or bytes field of a reply, and the member of the
  // method's Result struct that receives it.
  struct SoleField {
    const pb::FieldDescriptor* field;
    std::string member;
    bool is_utf8;  // A proto3 string: protobuf's parser insists on UTF-8.
  };

  std::vector<SoleField> SoleFields(const MethodDecl& m,
                                    const pb::Descriptor* resp);

  bool AnySoleFields();

  void EmitDecode(const idl::InterfaceDecl& iface, const MethodDecl& m);

  // Arguments for <Method>_Encode from the stub's parameters. `sync` passes
  // [in,out] pointers as they are; async passes their address.
  static std::string EncodeArgs(const MethodDecl& m, bool sync);

  void EmitClientMethods(const idl::InterfaceDecl& iface, size_t index);

  void EmitServiceMethods(const idl::InterfaceDecl& iface);

  void EmitInterfaceImpl(const idl::InterfaceDecl& iface);

  // Whether some (server-streaming) request encoder writes a direct field:
  // of a string or bytes type (`strings`), of a struct type (`structs`).
  bool AnyDirectFields(bool strings = true, bool structs = true);

  // The helpers of the request encoders that write a field straight into
  // the request buffer (see EmitEncode).
  void EmitFieldWriters();

  // The helper of the reply decoders that take a reply of one string or
  // bytes field in place (see EmitDecode).
  void EmitSoleFieldReader();

  void EmitSource();

  // ---- Streaming methods and [async] handlers (emit_streams.cc) ----

  // Whether `m` runs through Service::StartCall: streaming or [async].
  static bool UsesStartCall(const MethodDecl& m) {
    return m.streaming() || m.async;
  }
  static bool AnyStartCall(const idl::InterfaceDecl& iface);
  bool AnyStartCall() const;

  // "::lpc::MethodKind::kServerStreaming" and so on.
  static std::string MethodKindEnumerator(const MethodDecl& m);

  // The protobuf class of stream<T>'s struct T.
  std::string StreamElement(const TypeRef& stream);

  // The one reply of a client-streaming call as the client's Finish and a
  // handler see it: the return type, or for void the empty <M>Result of
  // the client class (`qualified`: spelled from outside the class).
  std::string StreamReply(const idl::InterfaceDecl& iface, const MethodDecl& m,
                          bool qualified);

  // The client stub's return type: ClientReader<T>, ClientWriter<T, R> or
  // ClientReaderWriter<Out, In>.
  std::string ClientStreamType(const idl::InterfaceDecl& iface,
                               const MethodDecl& m, bool qualified);

  // Header: the client stub of a streaming method (and the <M>Result of a
  // client-streaming one).
  void EmitStreamingClientDecl(const idl::InterfaceDecl& iface,
                               const MethodDecl& m);

  // Header: the handler of a streaming or [async] method.
  void EmitStartCallHandlerDecl(const idl::InterfaceDecl& iface,
                                const MethodDecl& m);

  // Source: the client stub of a streaming method.
  void EmitStreamingClientMethod(const idl::InterfaceDecl& iface,
                                 const MethodDecl& m, size_t index);

  // Source: the encoders and decoders of the messages of a streaming or
  // [async] method that the typed streams of runtime/stream.h take, and
  // <M>_Start, which runs the handler on a ServerStream.
  void EmitStartFn(const idl::InterfaceDecl& iface, const MethodDecl& m);

  // Source: the statements that turn the parsed request `lpc_msg` of `m`
  // into the handler's arguments, appended to `*args` (", a, b"): [out]
  // and [in,out] as pointers, or with `inputs_only` (an [async] handler)
  // [in,out] by value and [out] left out.
  void EmitUnpackRequest(const MethodDecl& m, const pb::Descriptor* req,
                         const FailFn& fail, int indent, std::string* args,
                         bool inputs_only = false);

  // Source: FooService::UsesStartCall and FooService::StartCall.
  void EmitStartCall(const idl::InterfaceDecl& iface);

  // ---- The zero-copy wire code of unary methods (emit_wire.cc,
  // emit_unary.cc) ----

  // A field of a request or reply as the writer and reader see it.
  struct WireField {
    uint32_t number = 0;
    const TypeRef* type = nullptr;
    // The reader's destination lvalue (unused by the writer).
    std::string value;
    // The value's name in errors.
    std::string what;
    // The writer takes it as a pointer that may be null (a sync stub's
    // [in,out] argument): then the field is left out.
    bool pointer = false;
  };

  // "::lpc::wire::Int32" and so on (runtime/wire.h): the codec of `t`, or
  // of its element for a sequence or optional.
  std::string WireCodec(const TypeRef& t);
  // The wire form of a type that carries a handle: descriptor indexes and
  // <Name>Wire messages in place of lpc::Fd and plain structs.
  std::string StagedType(const TypeRef& t);
  // Statements that convert between a value that carries handles and its
  // wire form, through the table lpc_handles (StageOut: in a writer's
  // constructor, failing through lpc_status_; StageIn: in a reader).
  std::string StageOut(const TypeRef& t, const std::string& src,
                       const std::string& dst, int indent);
  std::string StageIn(const TypeRef& t, const std::string& src,
                      const std::string& dst, const std::string& what,
                      int indent);
  // Statements that check the structs a decoded value holds (CheckRanges;
  // narrow integers are checked as they are read).
  std::string PostCheck(const TypeRef& t, const std::string& dst,
                        const std::string& what, const FailFn& fail, int indent);
  // A MessageWriter class `cls` of `fields`; with `handles`, its
  // constructor also takes the message's HandleTable and has a status().
  void EmitWriterClass(const std::string& cls,
                       const std::vector<WireField>& fields, bool handles);
  // Statements that decode the lpc::ReceivedMessage `msg` into the fields'
  // destinations (any field order, unknown fields skipped), then check
  // them; failing through `fail`. A `buffer` field becomes a view of the
  // message's bytes, or the buffer the transport attached.
  void EmitReadFields(const std::vector<WireField>& fields,
                      const std::string& msg, const FailFn& fail, int indent);

  // The request's fields (`server`: decoded into lpc_p<N>) and the reply's
  // (decoded into `prefix` + "value" / the parameter's name).
  std::vector<WireField> RequestFields(const MethodDecl& m, bool server);
  std::vector<WireField> ReplyFields(const MethodDecl& m, const std::string& prefix);
  // Source: <M>_RequestWriter, <M>_ReadReply, and unless the method runs
  // through StartCall, <M>_ReplyWriter and <M>_DispatchWith.
  void EmitUnaryWire(const idl::InterfaceDecl& iface, const MethodDecl& m);
  // Source: the client stubs of a unary method (sync, async, future).
  void EmitUnaryClientMethods(const idl::InterfaceDecl& iface,
                              const MethodDecl& m, size_t index);

  const idl::File& file_;
  const pb::FileDescriptor* fd_;
  const pb::DescriptorPool* pool_;
  std::vector<CodegenError>* errors_;
  std::string package_;
  std::string ns_;  // "::a::b::"
  std::string h_;
  std::string cc_;
  // The HandleTable that HandleToProto and HandleFromProto use.
  std::string handles_var_ = "lpc_handles";
  bool failed_ = false;
};

}  // namespace lpc::codegen::internal

#endif  // LPC_CODEGEN_INTERNAL_EMITTER_H_
