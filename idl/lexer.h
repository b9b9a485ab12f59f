// The lexer of the lpc IDL: turns a file's bytes into tokens, one at a time,
// and attaches leading comments to the token that follows them.
//
// Thread safety: none. The lexer refers to `source`, which must outlive it.
#ifndef LPC_IDL_LEXER_H_
#define LPC_IDL_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "idl/ast.h"
#include "idl/diagnostics.h"

namespace lpc::idl {

struct Token {
  enum class Kind {
    kEnd,         // End of input.
    kError,       // A lexical error, already reported.
    kIdentifier,  // Also keywords; the parser decides by context.
    kInteger,     // `int_value` holds the magnitude.
    kFloat,       // `float_value`.
    kString,      // `string_value` holds the decoded bytes.
    kPunct,       // One character of ;{}<>,.=@[]()-+
  };
  Kind kind = Kind::kEnd;
  std::string_view text;  // The token as written.
  int line = 0;
  int column = 0;
  uint64_t int_value = 0;
  double float_value = 0;
  std::string string_value;
  // The comment block directly before this token (no blank line between),
  // without comment markers; comments that trail another token on its line
  // are not included.
  std::string doc;

  bool Is(char punct) const {
    return kind == Kind::kPunct && text.size() == 1 && text[0] == punct;
  }
  bool IsWord(std::string_view word) const {
    return kind == Kind::kIdentifier && text == word;
  }
};

class Lexer {
 public:
  // `file` names the source in diagnostics; errors go to `sink`.
  Lexer(std::string file, std::string_view source, DiagnosticSink* sink);

  // Returns the next token. After an error or the end, keeps returning a
  // kError or kEnd token.
  Token Next();

  // Reads raw text up to (not including) the next ')' on the same line and
  // consumes the ')'. Used for attribute arguments such as uuids, whose
  // spelling is not made of tokens. Returns false (after reporting) when no
  // ')' follows on the line. `*line`/`*column` receive the text's position.
  bool ReadRawUntilCloseParen(std::string* text, int* line, int* column);

  const std::string& file() const { return file_; }
  std::string_view source() const { return source_; }

  // Reports an error at a position of this file.
  void Error(int line, int column, std::string message);

 private:
  // Skips whitespace and comments, collecting docs. Returns false after
  // reporting an unterminated comment.
  bool SkipTrivia();
  Token Lex();
  Token LexNumber();
  Token LexString();
  void Advance();  // Moves past one byte, tracking line and column.
  Token Fail();
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < source_.size() ? source_[pos_ + ahead] : '\0';
  }
  bool AtEnd() const { return pos_ >= source_.size(); }

  std::string file_;
  std::string_view source_;
  DiagnosticSink* sink_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
  bool failed_ = false;

  // Doc comment tracking.
  std::string pending_doc_;
  int last_token_line_ = 0;  // Line on which the previous token ended.
  int last_item_end_line_ = 0;  // Line where the last token/comment ended.
  // Just past the previous token; where the end of input is reported.
  int last_token_end_line_ = 1;
  int last_token_end_column_ = 1;
};

// Returns an English rendering of a token for "but found ..." messages.
std::string DescribeToken(const Token& token);

}  // namespace lpc::idl

#endif  // LPC_IDL_LEXER_H_
