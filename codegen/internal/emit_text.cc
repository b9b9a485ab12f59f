// Text helpers of the emitter: literals, comments and line wrapping.
#include "codegen/internal/emitter.h"

#include <algorithm>
#include <cstdio>

#include "codegen/comments.h"

namespace lpc::codegen::internal {

std::string Pad(int indent) { return std::string(static_cast<size_t>(indent), ' '); }

std::string CppString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '?') {
      out += "\\?";  // Never forms a trigraph.
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\%03o", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string Comment(const std::string& doc, int indent) {
  std::string out;
  for (const std::string& line : SafeCommentLines(doc)) {
    out += Pad(indent) + (line.empty() ? "//" : "// " + line) + "\n";
  }
  return out;
}

std::string WrapLine(const std::string& line) {
  constexpr size_t kWidth = 80;
  if (line.size() <= kWidth) return line;
  size_t indent = line.find_first_not_of(' ');
  if (indent == std::string::npos) return line;
  std::string_view body(line);
  body.remove_prefix(indent);
  for (std::string_view skip : {"//", "if ", "for ", "return ", "switch ", "case "}) {
    if (body.substr(0, skip.size()) == skip) return line;
  }
  if (line.find('"') != std::string::npos || line.find("->") != std::string::npos) {
    return line;
  }
  size_t open = line.find('(');
  if (open == std::string::npos) return line;
  // Split the list at depth-1 commas; find its closing parenthesis.
  std::vector<std::string> items;
  size_t close = std::string::npos;
  int paren = 0;
  int angle = 0;
  size_t start = open + 1;
  for (size_t i = open; i < line.size(); ++i) {
    char c = line[i];
    if (c == '(') ++paren;
    if (c == ')' && --paren == 0) {
      close = i;
      break;
    }
    if (c == '<') ++angle;
    if (c == '>') --angle;
    if (c == ',' && paren == 1 && angle == 0) {
      items.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  if (close == std::string::npos) return line;
  items.push_back(line.substr(start, close - start));
  for (std::string& item : items) {
    size_t b = item.find_first_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b);
  }
  std::string head = line.substr(0, open + 1);
  std::string tail = line.substr(close);  // ")..." to the end.
  auto fill = [&](size_t column, std::string out) -> std::string {
    size_t width = column;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string piece = items[i] + (i + 1 < items.size() ? "," : tail);
      if (i > 0) {
        if (width + 1 + piece.size() > kWidth) {
          out += "\n" + std::string(column, ' ');
          width = column;
        } else {
          out += " ";
          width += 1;
        }
      }
      out += piece;
      width += piece.size();
    }
    return out;
  };
  size_t longest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    longest = std::max(longest, items[i].size() + (i + 1 < items.size() ? 1 : tail.size()));
  }
  if (open + 1 + longest <= kWidth) return fill(open + 1, head);
  return fill(indent + 4, head + "\n" + std::string(indent + 4, ' '));
}

std::string WrapLines(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out += WrapLine(text.substr(start, nl - start));
    out += '\n';
    start = nl + 1;
  }
  return out;
}

const char* NarrowType(Kind k) {
  switch (k) {
    case Kind::kInt8: return "int8_t";
    case Kind::kInt16: return "int16_t";
    case Kind::kUint8: return "uint8_t";
    case Kind::kUint16: return "uint16_t";
    default: return nullptr;
  }
}

const char* IdlKindName(Kind k) {
  switch (k) {
    case Kind::kInt8: return "int8";
    case Kind::kInt16: return "int16";
    case Kind::kUint8: return "uint8";
    case Kind::kUint16: return "uint16";
    default: return "";
  }
}

}  // namespace lpc::codegen::internal
