// Tests of the IDL lexer: token kinds, literals, comments and docs, errors.
#include "idl/lexer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::idl {
namespace {

using ::testing::HasSubstr;

std::vector<Token> LexAll(std::string_view text, DiagnosticSink* sink) {
  Lexer lexer("t.idl", text, sink);
  std::vector<Token> out;
  for (int i = 0; i < 1000; ++i) {
    Token t = lexer.Next();
    out.push_back(t);
    if (t.kind == Token::Kind::kEnd || t.kind == Token::Kind::kError) break;
  }
  return out;
}

TEST(LexerTest, TokensAndPositions) {
  DiagnosticSink sink;
  std::vector<Token> t = LexAll("struct P {\n  int32 x @3;\n}", &sink);
  ASSERT_EQ(t.size(), 10u);
  EXPECT_TRUE(t[0].IsWord("struct"));
  EXPECT_TRUE(t[1].IsWord("P"));
  EXPECT_TRUE(t[2].Is('{'));
  EXPECT_TRUE(t[3].IsWord("int32"));
  EXPECT_EQ(t[3].line, 2);
  EXPECT_EQ(t[3].column, 3);
  EXPECT_TRUE(t[5].Is('@'));
  EXPECT_EQ(t[6].kind, Token::Kind::kInteger);
  EXPECT_EQ(t[6].int_value, 3u);
  EXPECT_TRUE(t[8].Is('}'));
  EXPECT_EQ(t[9].kind, Token::Kind::kEnd);
  EXPECT_EQ(sink.size(), 0u);
}

TEST(LexerTest, NumbersAndStrings) {
  DiagnosticSink sink;
  std::vector<Token> t = LexAll(
      R"(0 0x1F 18446744073709551615 1.5 2e3 7.25e-2 "a\tb\\c\"d\x41\n")",
      &sink);
  ASSERT_EQ(t.size(), 8u);
  EXPECT_EQ(t[0].int_value, 0u);
  EXPECT_EQ(t[1].int_value, 31u);
  EXPECT_EQ(t[2].int_value, UINT64_MAX);
  EXPECT_EQ(t[3].kind, Token::Kind::kFloat);
  EXPECT_EQ(t[3].float_value, 1.5);
  EXPECT_EQ(t[4].float_value, 2000.0);
  EXPECT_DOUBLE_EQ(t[5].float_value, 0.0725);
  EXPECT_EQ(t[6].kind, Token::Kind::kString);
  EXPECT_EQ(t[6].string_value, "a\tb\\c\"dA\n");
}

TEST(LexerTest, DocsAttachToTheNextToken) {
  DiagnosticSink sink;
  std::vector<Token> t = LexAll(R"(// detached

// first
/// second
a b  // trailing, ignored
/**
 * Block doc.
 *   indented
 */
c
/* one */ d)",
                                &sink);
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0].doc, "first\nsecond");
  EXPECT_EQ(t[1].doc, "");
  EXPECT_EQ(t[2].doc, "Block doc.\n  indented");
  EXPECT_EQ(t[3].doc, "one");
}

TEST(LexerTest, RawTextForAttributes) {
  DiagnosticSink sink;
  Lexer lexer("t.idl", "uuid( 6f1c-AB )x", &sink);
  EXPECT_TRUE(lexer.Next().IsWord("uuid"));
  EXPECT_TRUE(lexer.Next().Is('('));
  std::string text;
  int line = 0, column = 0;
  ASSERT_TRUE(lexer.ReadRawUntilCloseParen(&text, &line, &column));
  EXPECT_EQ(text, "6f1c-AB");
  EXPECT_EQ(column, 7);
  EXPECT_TRUE(lexer.Next().IsWord("x"));
}

struct ErrorCase {
  const char* text;
  const char* message;
  int column;
};

TEST(LexerTest, Errors) {
  const ErrorCase cases[] = {
      {"a /* open", "unterminated comment", 3},
      {"\"abc", "unterminated string literal", 1},
      {"\"a\nb\"", "unterminated string literal", 1},
      {"\"\\q\"", "invalid escape sequence '\\q' in string", 2},
      {"\"\\x4\"", "\\x needs two hex digits", 2},
      {"x # y", "invalid character '#'", 3},
      {"\x01", "invalid character '\\x01'", 1},
      {"\xff", "invalid character '\\xff'", 1},
      {"12ab", "invalid number '12ab'", 1},
      {"1.2.3", "invalid number '1.2.3'", 1},
      {"0x", "invalid number '0x'", 1},
      {"007", "leading zeros are not allowed", 1},
      {"18446744073709551616", "is too large", 1},
      {"1e999", "out of range", 1},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.text);
    DiagnosticSink sink;
    std::vector<Token> t = LexAll(c.text, &sink);
    EXPECT_EQ(t.back().kind, Token::Kind::kError);
    ASSERT_EQ(sink.size(), 1u);
    EXPECT_THAT(sink.diagnostics()[0].message, HasSubstr(c.message));
    EXPECT_EQ(sink.diagnostics()[0].loc.column, c.column);
  }
}

}  // namespace
}  // namespace lpc::idl
