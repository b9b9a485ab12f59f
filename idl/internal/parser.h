// The recursive-descent parser of the lpc IDL (parser.h): the Parser class,
// whose members are defined by concern in idl/parser.cc (the file and its
// imports), idl/internal/parse_types.cc (types, ordinals, attributes),
// idl/internal/parse_decls.cc (const, enum, struct) and
// idl/internal/parse_interface.cc (interfaces and methods). Private to //idl.
//
// Thread safety: none; a Parser parses one file once.
#ifndef LPC_IDL_INTERNAL_PARSER_H_
#define LPC_IDL_INTERNAL_PARSER_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idl/ast.h"
#include "idl/diagnostics.h"
#include "idl/frontend.h"
#include "idl/lexer.h"
#include "idl/parser.h"

namespace lpc::idl::internal {

struct Attribute {
  std::string name;
  std::string arg;  // Raw argument text for uuid/version.
  SourceLocation loc;
  SourceLocation arg_loc;
};

// Recursive descent with one token of lookahead; stops at the first error.
class Parser {
 public:
  Parser(const std::string& path, std::string_view source,
         DiagnosticSink* sink, ParsedFile* out)
      : lexer_(path, source, sink), out_(out) {}

  bool Run();

 private:
  void Next() {
    tok_ = lexer_.Next();
    if (tok_.kind == Token::Kind::kError) failed_ = true;
  }

  SourceLocation Loc(const Token& t) const {
    return {lexer_.file(), t.line, t.column};
  }

  bool Error(const Token& at, std::string message) {
    // A lexical error was reported already; do not add a second one.
    if (at.kind != Token::Kind::kError) {
      lexer_.Error(at.line, at.column, std::move(message));
    }
    failed_ = true;
    return false;
  }
  bool ErrorAt(const SourceLocation& loc, std::string message) {
    lexer_.Error(loc.line, loc.column, std::move(message));
    failed_ = true;
    return false;
  }

  bool Expect(char punct) {
    if (tok_.Is(punct)) {
      Next();
      return !failed_;
    }
    return Error(tok_, std::string("expected '") + punct + "' but found " +
                           DescribeToken(tok_));
  }

  // A declared name: an identifier that CheckName accepts.
  bool ExpectName(const char* what, std::string* name, SourceLocation* loc);

  bool ParsePackage(File* file);

  bool ParseImport(File* file);

  bool ParseType(TypeRef* type, int depth);
  bool ParseHandle(TypeRef* type);

  // Parses "@N" if present into `*ordinal`.
  bool ParseOrdinal(const std::string& owner, uint32_t* ordinal,
                    bool* is_explicit);

  bool ParseConst(std::string doc,
                  std::vector<std::unique_ptr<ConstDecl>>* out);

  bool ParseEnum(std::string doc,
                 std::vector<std::unique_ptr<EnumDecl>>* out);

  bool ParseStruct(std::string doc,
                   std::vector<std::unique_ptr<StructDecl>>* out, int depth);

  bool ParseField(std::string doc, StructDecl* parent);

  // `context Name;` (a word, not a keyword: only at file scope).
  bool ParseContext(std::string doc,
                    std::vector<std::unique_ptr<ContextDecl>>* out);

  bool ParseAttributes(std::vector<Attribute>* attrs);

  // Rejects attributes outside `allowed` on a `what`.
  bool CheckAllowed(const std::vector<Attribute>& attrs,
                    std::initializer_list<std::string_view> allowed,
                    const char* what);

  bool ParseInterface(std::string doc,
                      std::vector<std::unique_ptr<InterfaceDecl>>* out);

  bool ParseMethod(InterfaceDecl* parent);

  Lexer lexer_;
  ParsedFile* out_;
  Token tok_;
  bool failed_ = false;
};

}  // namespace lpc::idl::internal

#endif  // LPC_IDL_INTERNAL_PARSER_H_
