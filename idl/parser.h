// The parser of the lpc IDL: builds the syntax tree of one file from its
// tokens. Names are not resolved here (see sema.h); the parser checks only
// what the grammar and attributes alone decide, and stops at the first error.
//
// Thread safety: none; each call is independent.
#ifndef LPC_IDL_PARSER_H_
#define LPC_IDL_PARSER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "idl/ast.h"
#include "idl/diagnostics.h"

namespace lpc::idl {

// A constant's value as written, before it is converted to the constant's
// declared type by semantic analysis.
struct ConstLiteral {
  enum class Kind { kInteger, kFloat, kString, kBool, kName };
  Kind kind = Kind::kInteger;
  bool negative = false;       // A leading '-' (numbers only).
  uint64_t int_value = 0;      // Magnitude, for kInteger.
  double float_value = 0;      // For kFloat (sign not applied).
  bool bool_value = false;     // For kBool.
  std::string text;            // String bytes, or a dotted name for kName.
  SourceLocation loc;
};

struct ParsedFile {
  std::unique_ptr<File> file;
  // The literal of every ConstDecl in `file`, at any depth.
  std::map<const ConstDecl*, ConstLiteral> const_literals;
};

// Parses `source`, which is the text of `path`. Returns false after reporting
// at least one error to `sink`; `out` may then hold a partial tree.
bool ParseFile(const std::string& path, std::string_view source,
               DiagnosticSink* sink, ParsedFile* out);

// Returns why `name` cannot name a declaration (an IDL or C++ keyword, a
// reserved spelling), or nullopt when it can.
std::optional<std::string> CheckName(std::string_view name);

// Whether `word` is a keyword of the IDL.
bool IsIdlKeyword(std::string_view word);

}  // namespace lpc::idl

#endif  // LPC_IDL_PARSER_H_
