// The emitter of foo.lpc.h and foo.lpc.cc: typed client stubs, abstract
// service classes and C++ constants for one IDL file, on top of the protobuf
// classes that libprotoc generates for the lowered file (lower.h).
//
// The generated API is described in docs/codegen.md.
//
// Thread safety: EmitCpp is pure; call it from any thread.
#ifndef LPC_CODEGEN_CPP_EMITTER_H_
#define LPC_CODEGEN_CPP_EMITTER_H_

#include <string>
#include <vector>

#include "codegen/lower.h"
#include "google/protobuf/descriptor.h"
#include "idl/ast.h"

namespace lpc::codegen {

struct CppOutput {
  std::string header;  // foo.lpc.h
  std::string source;  // foo.lpc.cc
};

// Emits the C++ for `file`. `descriptor` is the lowered file built in a
// DescriptorPool that also holds every import. Returns false and appends
// errors when the IDL uses names the C++ mapping cannot express (e.g. two
// generated members with the same name).
bool EmitCpp(const idl::File& file,
             const google::protobuf::FileDescriptor* descriptor,
             CppOutput* out, std::vector<CodegenError>* errors);

}  // namespace lpc::codegen

#endif  // LPC_CODEGEN_CPP_EMITTER_H_
