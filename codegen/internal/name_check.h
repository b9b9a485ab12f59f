// The checks that the C++ generated for an IDL file (libprotoc's message
// classes and lpc's stubs and constants) declares no name twice in one scope
// and no name that a macro rewrites, and the limits of libprotoc's C++
// generator; run after lowering (lower.h) and before protobuf builds the
// descriptors, so that each conflict is reported at the IDL declaration
// that causes it, in lpcc's words. docs/idl.md ("Names in generated C++")
// lists the rules.
//
// Thread safety: the function is pure; call it from any thread.
#ifndef LPC_CODEGEN_INTERNAL_NAME_CHECK_H_
#define LPC_CODEGEN_INTERNAL_NAME_CHECK_H_

#include <vector>

#include "codegen/lower.h"
#include "idl/ast.h"

namespace lpc::codegen::internal {

// Checks `file` (its imports are checked by their own call). Returns false
// and appends errors on any conflict.
bool CheckGeneratedNames(const idl::File& file, std::vector<CodegenError>* errors);

}  // namespace lpc::codegen::internal

#endif  // LPC_CODEGEN_INTERNAL_NAME_CHECK_H_
