// The lpc IDL lexer.
#include "idl/lexer.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace lpc::idl {
namespace {

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }
bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Renders a byte for a message: printable ASCII as itself, else \xNN.
std::string ShowByte(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\x%02x", u);
  return buf;
}

std::string_view StripTrailingSpace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\r' || s.back() == '\f' ||
                        s.back() == '\v')) {
    s.remove_suffix(1);
  }
  return s;
}
std::string_view StripLeadingSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return s;
}

// The text of a "//" comment without its markers.
std::string LineCommentText(std::string_view body) {
  // `body` starts after "//".
  if (!body.empty() && body.front() == '/') body.remove_prefix(1);
  if (!body.empty() && body.front() == ' ') body.remove_prefix(1);
  return std::string(StripTrailingSpace(body));
}

// The text of a "/* */" comment without its markers and leading '*'s.
std::string BlockCommentText(std::string_view body) {
  // `body` is between "/*" and "*/".
  if (!body.empty() && body.front() == '*') body.remove_prefix(1);
  std::vector<std::string> lines;
  bool first = true;
  while (true) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    line = StripTrailingSpace(line);
    if (first) {
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    } else {
      line = StripLeadingSpace(line);
      if (!line.empty() && line.front() == '*') {
        line.remove_prefix(1);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      }
    }
    lines.emplace_back(line);
    first = false;
    if (nl == std::string_view::npos) break;
    body.remove_prefix(nl + 1);
  }
  size_t begin = 0, end = lines.size();
  while (begin < end && lines[begin].empty()) ++begin;
  while (end > begin && lines[end - 1].empty()) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) out += '\n';
    out += lines[i];
  }
  return out;
}

}  // namespace

std::string DescribeToken(const Token& token) {
  switch (token.kind) {
    case Token::Kind::kEnd:
      return "end of file";
    case Token::Kind::kError:
      return "an invalid token";
    default:
      break;
  }
  std::string_view text = token.text;
  std::string out = "'";
  constexpr size_t kMaxShown = 40;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    out += ShowByte(text[i]);
  }
  if (text.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

Lexer::Lexer(std::string file, std::string_view source, DiagnosticSink* sink)
    : file_(std::move(file)), source_(source), sink_(sink) {}

void Lexer::Error(int line, int column, std::string message) {
  sink_->Report({file_, line, column}, std::move(message), source_);
}

void Lexer::Advance() {
  if (AtEnd()) return;
  if (source_[pos_] == '\n') {
    ++line_;
    column_ = 1;
  } else {
    ++column_;
  }
  ++pos_;
}

Token Lexer::Fail() {
  failed_ = true;
  Token t;
  t.kind = Token::Kind::kError;
  t.line = line_;
  t.column = column_;
  return t;
}

bool Lexer::SkipTrivia() {
  while (!AtEnd()) {
    char c = Peek();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
        c == '\v') {
      Advance();
      continue;
    }
    if (c != '/' || (Peek(1) != '/' && Peek(1) != '*')) return true;
    int start_line = line_, start_column = column_;
    std::string text;
    if (Peek(1) == '/') {
      size_t begin = pos_ + 2;
      while (!AtEnd() && Peek() != '\n') Advance();
      text = LineCommentText(source_.substr(begin, pos_ - begin));
    } else {
      size_t begin = pos_ + 2;
      Advance();
      Advance();
      bool closed = false;
      while (!AtEnd()) {
        if (Peek() == '*' && Peek(1) == '/') {
          closed = true;
          break;
        }
        Advance();
      }
      if (!closed) {
        Error(start_line, start_column, "unterminated comment");
        return false;
      }
      text = BlockCommentText(source_.substr(begin, pos_ - begin));
      Advance();
      Advance();
    }
    if (start_line == last_token_line_) {
      // A trailing comment documents the token before it; it is not a doc.
    } else {
      if (!pending_doc_.empty() && start_line > last_item_end_line_ + 1) {
        pending_doc_.clear();  // Separated from the next one by a blank line.
      }
      if (!pending_doc_.empty()) pending_doc_ += '\n';
      pending_doc_ += text;
    }
    last_item_end_line_ = line_;
  }
  return true;
}

Token Lexer::Next() {
  Token t = Lex();
  if (t.kind != Token::Kind::kEnd && t.kind != Token::Kind::kError) {
    last_token_end_line_ = line_;
    last_token_end_column_ = column_;
  }
  return t;
}

Token Lexer::Lex() {
  if (failed_) return Fail();
  if (!SkipTrivia()) return Fail();
  Token t;
  t.line = line_;
  t.column = column_;
  if (!pending_doc_.empty() && line_ > last_item_end_line_ + 1) {
    pending_doc_.clear();
  }
  if (AtEnd()) {
    // "Expected X but found end of file" points just past the last token.
    t.kind = Token::Kind::kEnd;
    t.line = last_token_end_line_;
    t.column = last_token_end_column_;
    return t;
  }
  t.doc = std::move(pending_doc_);
  pending_doc_.clear();
  last_token_line_ = line_;
  last_item_end_line_ = line_;

  char c = Peek();
  size_t begin = pos_;
  if (IsIdentStart(c)) {
    while (!AtEnd() && IsIdentChar(Peek())) Advance();
    t.kind = Token::Kind::kIdentifier;
    t.text = source_.substr(begin, pos_ - begin);
    return t;
  }
  if (IsDigit(c)) {
    Token n = LexNumber();
    n.doc = std::move(t.doc);
    return n;
  }
  if (c == '"') {
    Token s = LexString();
    s.doc = std::move(t.doc);
    return s;
  }
  switch (c) {
    case ';': case '{': case '}': case '<': case '>': case ',': case '.':
    case '=': case '@': case '[': case ']': case '(': case ')': case '-':
    case '+':
      Advance();
      t.kind = Token::Kind::kPunct;
      t.text = source_.substr(begin, 1);
      return t;
    default:
      break;
  }
  Error(t.line, t.column, "invalid character '" + ShowByte(c) + "'");
  return Fail();
}

Token Lexer::LexNumber() {
  Token t;
  t.line = line_;
  t.column = column_;
  size_t begin = pos_;
  bool is_float = false;
  bool bad = false;
  if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
    Advance();
    Advance();
    if (!IsHexDigit(Peek())) bad = true;
    while (IsHexDigit(Peek())) Advance();
  } else {
    while (IsDigit(Peek())) Advance();
    if (Peek() == '.' && IsDigit(Peek(1))) {
      is_float = true;
      Advance();
      while (IsDigit(Peek())) Advance();
    }
    if (Peek() == 'e' || Peek() == 'E') {
      size_t ahead = 1;
      if (Peek(1) == '+' || Peek(1) == '-') ahead = 2;
      if (IsDigit(Peek(ahead))) {
        is_float = true;
        for (size_t i = 0; i < ahead; ++i) Advance();
        while (IsDigit(Peek())) Advance();
      }
    }
  }
  if (IsIdentChar(Peek()) || Peek() == '.') {
    // "12abc", "1.2.3": one malformed number.
    bad = true;
    while (IsIdentChar(Peek()) || Peek() == '.') Advance();
  }
  t.text = source_.substr(begin, pos_ - begin);
  constexpr size_t kMaxShown = 40;
  std::string shown(t.text.substr(0, kMaxShown));
  if (t.text.size() > kMaxShown) shown += "...";
  if (bad) {
    Error(t.line, t.column, "invalid number '" + shown + "'");
    return Fail();
  }
  if (is_float) {
    std::string copy(t.text);
    errno = 0;
    double v = std::strtod(copy.c_str(), nullptr);
    if (!std::isfinite(v) || errno == ERANGE) {
      if (!std::isfinite(v) || std::fabs(v) > 1.0) {
        Error(t.line, t.column, "floating-point literal '" + shown +
                                    "' is out of range");
        return Fail();
      }
      // Underflow to a tiny or zero value is accepted.
    }
    t.kind = Token::Kind::kFloat;
    t.float_value = v;
    return t;
  }
  bool hex = t.text.size() > 1 && (t.text[1] == 'x' || t.text[1] == 'X');
  if (!hex && t.text.size() > 1 && t.text[0] == '0') {
    Error(t.line, t.column, "invalid integer '" + shown +
                                "': leading zeros are not allowed");
    return Fail();
  }
  uint64_t value = 0;
  uint64_t base = hex ? 16 : 10;
  for (size_t i = hex ? 2 : 0; i < t.text.size(); ++i) {
    uint64_t digit = HexValue(t.text[i]);
    if (value > (UINT64_MAX - digit) / base) {
      Error(t.line, t.column, "integer literal '" + shown + "' is too large");
      return Fail();
    }
    value = value * base + digit;
  }
  t.kind = Token::Kind::kInteger;
  t.int_value = value;
  return t;
}

Token Lexer::LexString() {
  Token t;
  t.line = line_;
  t.column = column_;
  size_t begin = pos_;
  Advance();  // Opening quote.
  std::string value;
  while (true) {
    if (AtEnd() || Peek() == '\n') {
      Error(t.line, t.column, "unterminated string literal");
      return Fail();
    }
    char c = Peek();
    if (c == '"') {
      Advance();
      break;
    }
    if (c != '\\') {
      value += c;
      Advance();
      continue;
    }
    int esc_line = line_, esc_column = column_;
    Advance();
    char e = Peek();
    switch (e) {
      case 'n': value += '\n'; Advance(); break;
      case 't': value += '\t'; Advance(); break;
      case 'r': value += '\r'; Advance(); break;
      case '0': value += '\0'; Advance(); break;
      case '\\': value += '\\'; Advance(); break;
      case '"': value += '"'; Advance(); break;
      case '\'': value += '\''; Advance(); break;
      case 'x': {
        Advance();
        if (!IsHexDigit(Peek()) || !IsHexDigit(Peek(1))) {
          Error(esc_line, esc_column,
                "invalid escape sequence in string: \\x needs two hex digits");
          return Fail();
        }
        value += static_cast<char>(HexValue(Peek()) * 16 + HexValue(Peek(1)));
        Advance();
        Advance();
        break;
      }
      default:
        if (AtEnd() || e == '\n') {
          Error(t.line, t.column, "unterminated string literal");
        } else {
          Error(esc_line, esc_column,
                "invalid escape sequence '\\" + ShowByte(e) + "' in string");
        }
        return Fail();
    }
  }
  t.kind = Token::Kind::kString;
  t.text = source_.substr(begin, pos_ - begin);
  t.string_value = std::move(value);
  return t;
}

bool Lexer::ReadRawUntilCloseParen(std::string* text, int* line,
                                   int* column) {
  if (failed_) return false;
  while (Peek() == ' ' || Peek() == '\t') Advance();
  *line = line_;
  *column = column_;
  size_t begin = pos_;
  while (!AtEnd() && Peek() != ')' && Peek() != '\n') Advance();
  if (AtEnd() || Peek() != ')') {
    Error(*line, *column, "expected ')' on the same line");
    failed_ = true;
    return false;
  }
  *text = std::string(StripTrailingSpace(source_.substr(begin, pos_ - begin)));
  Advance();  // ')'
  last_token_end_line_ = line_;
  last_token_end_column_ = column_;
  last_token_line_ = line_;
  last_item_end_line_ = line_;
  return true;
}

}  // namespace lpc::idl
