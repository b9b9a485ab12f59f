// The bound on chains of structs that hold one another (A has a field of
// type B, B of C, ...): libprotoc's C++ generator recurses along such a
// chain and overflows the stack on a long one, so lpcc refuses a chain
// longer than idl::kMaxStructChainLength before protobuf sees it.
//
// Thread safety: the function is pure; call it from any thread.
#ifndef LPC_CODEGEN_INTERNAL_STRUCT_CHAINS_H_
#define LPC_CODEGEN_INTERNAL_STRUCT_CHAINS_H_

#include <vector>

#include "codegen/lower.h"
#include "idl/ast.h"

namespace lpc::codegen::internal {

// Checks the chains that start at the structs of `file` (they may continue
// into imported files). Returns false and appends an error at the first
// struct whose chain is too long.
bool CheckStructChains(const idl::File& file, std::vector<CodegenError>* errors);

}  // namespace lpc::codegen::internal

#endif  // LPC_CODEGEN_INTERNAL_STRUCT_CHAINS_H_
