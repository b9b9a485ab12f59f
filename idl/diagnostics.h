// Diagnostics of the lpc IDL front end: one error with its location and the
// source line it points into, and the sink that collects them.
//
// Thread safety: none; a DiagnosticSink belongs to one Frontend.
#ifndef LPC_IDL_DIAGNOSTICS_H_
#define LPC_IDL_DIAGNOSTICS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "idl/ast.h"

namespace lpc::idl {

// One error. `source_line` is the text of line `loc.line` (without its line
// break; very long lines are shortened around the column), empty when the
// error has no line (e.g. the root file cannot be read).
struct Diagnostic {
  SourceLocation loc;
  std::string message;
  std::string source_line;
  // 1-based byte position of the caret within `source_line`; differs from
  // loc.column only when a long line was shortened.
  int caret_column = 0;

  // "file:line:col: error: <message>\n<source line>\n<spaces>^\n".
  // Without a line: "file: error: <message>\n".
  std::string Format() const;
};

// Collects diagnostics, up to a limit; further reports are dropped and the
// sink reports full(), so that callers may stop early.
class DiagnosticSink {
 public:
  // How many errors are kept before the sink stops accepting more.
  static constexpr size_t kMaxErrors = 10;

  // Records an error at `loc`. `source` is the whole text of `loc.file` (or
  // empty when unknown) and is used to copy out the offending line.
  void Report(const SourceLocation& loc, std::string message,
              std::string_view source);

  bool full() const { return full_; }
  size_t size() const { return diagnostics_.size(); }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
  bool full_ = false;
};

// Returns line `line` (1-based) of `source` without its line break, shortened
// to a window around `*column` when longer than a few hundred bytes; `*column`
// is adjusted to point at the same byte within the returned text.
std::string ExtractSourceLine(std::string_view source, int line, int* column);

}  // namespace lpc::idl

#endif  // LPC_IDL_DIAGNOSTICS_H_
