// Values of testdata/wire_compat.idl's types for the wire compatibility
// tests: zeros (which proto3 leaves out), extremes of every integer width,
// float specials, non-ASCII text, binary and large bytes, unknown and
// negative enum values, present-but-zero optionals, empty elements and
// entries, deep nesting.
#ifndef LPC_CODEGEN_WIRE_COMPAT_VALUES_H_
#define LPC_CODEGEN_WIRE_COMPAT_VALUES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"

namespace lpc::wire_testing {

// A named value, for SCOPED_TRACE.
template <typename T>
struct Case {
  std::string name;
  T value;
};

codegen::wire::Leaf MakeLeaf(int32_t v, std::string tag);

// "" , non-ASCII UTF-8, and every byte value with zeros inside.
std::string Utf8Text();
std::string BinaryBytes();
// `n` bytes of a pattern with zeros in it.
std::string LargeBytes(size_t n);

std::vector<Case<codegen::wire::Scalars>> ScalarCases();
std::vector<Case<codegen::wire::Containers>> ContainerCases();
std::vector<Case<codegen::wire::Tree>> TreeCases();

// Colors the enum does not declare: a stock peer keeps them as numbers.
inline constexpr codegen::wire::Color kUnknownColor =
    static_cast<codegen::wire::Color>(12345);
inline constexpr codegen::wire::Color kUnknownNegativeColor =
    static_cast<codegen::wire::Color>(-77);

}  // namespace lpc::wire_testing

#endif  // LPC_CODEGEN_WIRE_COMPAT_VALUES_H_
