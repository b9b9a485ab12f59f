// The identifiers generated C++ cannot declare (cpp_names.h).
#include "idl/cpp_names.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace lpc::idl {
namespace {

struct Macro {
  std::string_view name;
  std::string_view header;
};

// Sorted by name (byte order).
constexpr Macro kMacros[] = {
#include "idl/cpp_macros.inc"
};
static_assert(std::is_sorted(std::begin(kMacros), std::end(kMacros),
                             [](const Macro& a, const Macro& b) {
                               return a.name < b.name;
                             }),
              "idl/cpp_macros.inc must be sorted by name");

// Names the generated code (libprotoc's and lpc's) uses unqualified inside
// the package namespace or a message class: declaring one there changes
// what the generated code means.
constexpr std::string_view kUnqualified[] = {
    "std",       "size_t",   "ssize_t",  "ptrdiff_t", "nullptr_t",
    "int8_t",    "int16_t",  "int32_t",  "int64_t",   "uint8_t",
    "uint16_t",  "uint32_t", "uint64_t", "intptr_t",  "uintptr_t",
    "max_align_t",
};

// Prefixes of the include guards of generated files.
constexpr std::string_view kGuardPrefixes[] = {"GOOGLE_PROTOBUF_INCLUDED_",
                                               "LPC_GENERATED_"};

}  // namespace

std::optional<std::string_view> CppMacroHeader(std::string_view name) {
  auto it = std::lower_bound(
      std::begin(kMacros), std::end(kMacros), name,
      [](const Macro& m, std::string_view n) { return m.name < n; });
  if (it == std::end(kMacros) || it->name != name) return std::nullopt;
  return it->header;
}

std::optional<std::string> CppNameProblem(std::string_view name) {
  if (std::optional<std::string_view> header = CppMacroHeader(name)) {
    return "it is a macro of <" + std::string(*header) +
           ">, which generated C++ includes";
  }
  for (std::string_view u : kUnqualified) {
    if (name == u) {
      return "generated C++ uses it unqualified, for the standard " +
             std::string(name == "std" ? "namespace" : "type");
    }
  }
  for (std::string_view prefix : kGuardPrefixes) {
    if (name.substr(0, prefix.size()) == prefix) {
      return "names starting with " + std::string(prefix) +
             " are the include guards of generated files";
    }
  }
  return std::nullopt;
}

}  // namespace lpc::idl
