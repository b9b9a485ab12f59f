// Formatting and collection of front-end diagnostics.
#include "idl/diagnostics.h"

#include <utility>

namespace lpc::idl {
namespace {

// Lines longer than this are shown as a window around the column.
constexpr size_t kMaxShownLine = 200;
constexpr size_t kWindowBefore = 80;

// `text` with control bytes other than tab shown as '?', one for one, so
// that a NUL or an escape sequence in the input neither cuts nor garbles
// the excerpt and the caret still lines up.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

std::string Diagnostic::Format() const {
  std::string out = loc.file;
  if (loc.line <= 0) {
    out += ": error: " + message + "\n";
    return out;
  }
  out += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) +
         ": error: " + message + "\n";
  out += source_line + "\n";
  // The caret line reproduces tabs so that the caret lines up in a terminal.
  int column = caret_column > 0 ? caret_column : loc.column;
  size_t caret = column > 0 ? static_cast<size_t>(column - 1) : 0;
  if (caret > source_line.size()) caret = source_line.size();
  std::string pad;
  for (size_t i = 0; i < caret; ++i) pad += source_line[i] == '\t' ? '\t' : ' ';
  out += pad + "^\n";
  return out;
}

std::string ExtractSourceLine(std::string_view source, int line, int* column) {
  if (line <= 0) return "";
  size_t pos = 0;
  for (int l = 1; l < line; ++l) {
    size_t nl = source.find('\n', pos);
    if (nl == std::string_view::npos) return "";
    pos = nl + 1;
  }
  size_t end = source.find('\n', pos);
  if (end == std::string_view::npos) end = source.size();
  std::string_view text = source.substr(pos, end - pos);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.size() <= kMaxShownLine) return Printable(text);
  // Show a window of the line around the column.
  size_t col = *column > 0 ? static_cast<size_t>(*column - 1) : 0;
  if (col > text.size()) col = text.size();
  size_t start = col > kWindowBefore ? col - kWindowBefore : 0;
  std::string out;
  if (start > 0) out = "...";
  std::string_view window = text.substr(start, kMaxShownLine);
  out += Printable(window);
  if (start + window.size() < text.size()) out += "...";
  *column = static_cast<int>(col - start + (start > 0 ? 3 : 0) + 1);
  return out;
}

void DiagnosticSink::Report(const SourceLocation& loc, std::string message,
                            std::string_view source) {
  if (full_) return;
  Diagnostic d;
  d.loc = loc;
  d.message = std::move(message);
  d.caret_column = loc.column;
  d.source_line = ExtractSourceLine(source, loc.line, &d.caret_column);
  diagnostics_.push_back(std::move(d));
  if (diagnostics_.size() >= kMaxErrors) full_ = true;
}

}  // namespace lpc::idl
