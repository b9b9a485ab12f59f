// The lpc IDL parser: names, the driver, and the file's package and imports.
// The grammar's other parts are in idl/internal/parse_*.cc.
#include "idl/parser.h"

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "idl/cpp_names.h"
#include "idl/frontend.h"
#include "idl/internal/parser.h"
#include "idl/lexer.h"

namespace lpc::idl {
namespace {

const std::unordered_set<std::string_view>& IdlKeywords() {
  static const auto* words = new std::unordered_set<std::string_view>{
      "package", "import",  "const",    "enum",   "struct",   "interface",
      "true",    "false",   "void",     "bool",   "int8",     "int16",
      "int32",   "int64",   "uint8",    "uint16", "uint32",   "uint64",
      "float",   "double",  "string",   "bytes",  "sequence", "map",
      "optional"};
  return *words;
}

const std::unordered_set<std::string_view>& CppKeywords() {
  static const auto* words = new std::unordered_set<std::string_view>{
      "alignas",      "alignof",     "and",          "and_eq",
      "asm",          "auto",        "bitand",       "bitor",
      "bool",         "break",       "case",         "catch",
      "char",         "char8_t",     "char16_t",     "char32_t",
      "class",        "compl",       "concept",      "const",
      "consteval",    "constexpr",   "constinit",    "const_cast",
      "continue",     "co_await",    "co_return",    "co_yield",
      "decltype",     "default",     "delete",       "do",
      "double",       "dynamic_cast", "else",        "enum",
      "explicit",     "export",      "extern",       "false",
      "float",        "for",         "friend",       "goto",
      "if",           "inline",      "int",          "long",
      "mutable",      "namespace",   "new",          "noexcept",
      "not",          "not_eq",      "nullptr",      "operator",
      "or",           "or_eq",       "private",      "protected",
      "public",       "register",    "reinterpret_cast", "requires",
      "return",       "short",       "signed",       "sizeof",
      "static",       "static_assert", "static_cast", "struct",
      "switch",       "template",    "this",         "thread_local",
      "throw",        "true",        "try",          "typedef",
      "typeid",       "typename",    "union",        "unsigned",
      "using",        "virtual",     "void",         "volatile",
      "wchar_t",      "while",       "xor",          "xor_eq"};
  return *words;
}

}  // namespace

namespace internal {

bool Parser::Run() {
  out_->file = std::make_unique<File>();
  File& file = *out_->file;
  file.path = lexer_.file();
  Next();
  if (!ParsePackage(&file)) return false;
  while (tok_.IsWord("import")) {
    if (!ParseImport(&file)) return false;
  }
  while (tok_.kind != Token::Kind::kEnd) {
    if (failed_) return false;
    if (tok_.IsWord("import")) {
      return Error(tok_, "imports must come before all declarations");
    }
    if (tok_.IsWord("package")) {
      return Error(tok_, "the package is already declared");
    }
    std::string doc = tok_.doc;
    if (tok_.IsWord("const")) {
      if (!ParseConst(std::move(doc), &file.consts)) return false;
    } else if (tok_.IsWord("enum")) {
      if (!ParseEnum(std::move(doc), &file.enums)) return false;
    } else if (tok_.IsWord("struct")) {
      if (!ParseStruct(std::move(doc), &file.structs, 1)) return false;
    } else if (tok_.IsWord("interface") || tok_.Is('[')) {
      if (!ParseInterface(std::move(doc), &file.interfaces)) return false;
    } else if (tok_.IsWord("context")) {
      if (!ParseContext(std::move(doc), &file.contexts)) return false;
    } else {
      return Error(tok_, "expected a declaration (const, enum, struct or "
                         "interface) but found " + DescribeToken(tok_));
    }
  }
  return !failed_;
}

// A declared name: an identifier that CheckName accepts.
bool Parser::ExpectName(const char* what, std::string* name,
                        SourceLocation* loc) {
  if (tok_.kind != Token::Kind::kIdentifier) {
    return Error(tok_, std::string("expected ") + what + " but found " +
                           DescribeToken(tok_));
  }
  std::optional<std::string> problem = CheckName(tok_.text);
  if (problem) return Error(tok_, *problem);
  *name = std::string(tok_.text);
  *loc = Loc(tok_);
  Next();
  return !failed_;
}

bool Parser::ParsePackage(File* file) {
  if (!tok_.IsWord("package")) {
    return Error(tok_, "expected 'package' but found " + DescribeToken(tok_));
  }
  file->doc = tok_.doc;
  Next();
  while (true) {
    std::string part;
    SourceLocation loc;
    if (!ExpectName("a package name", &part, &loc)) return false;
    if (file->package.empty()) file->package_loc = loc;
    file->package.push_back(std::move(part));
    if (!tok_.Is('.')) break;
    Next();
  }
  return Expect(';');
}

bool Parser::ParseImport(File* file) {
  Next();  // import
  if (tok_.kind != Token::Kind::kString) {
    return Error(tok_, "expected a file name string but found " +
                           DescribeToken(tok_));
  }
  ImportDecl import;
  import.path = tok_.string_value;
  import.loc = Loc(tok_);
  if (import.path.empty() || import.path.find('\0') != std::string::npos) {
    return Error(tok_, "invalid import path");
  }
  Next();
  if (!Expect(';')) return false;
  file->imports.push_back(std::move(import));
  return true;
}

}  // namespace internal

bool IsIdlKeyword(std::string_view word) {
  return IdlKeywords().count(word) > 0;
}

std::optional<std::string> CheckName(std::string_view name) {
  std::string quoted = "'" + std::string(name) + "'";
  if (IsIdlKeyword(name)) {
    return "invalid name " + quoted + ": it is a keyword of the IDL";
  }
  if (CppKeywords().count(name) > 0) {
    return "invalid name " + quoted + ": it is a C++ keyword";
  }
  if (std::optional<std::string> why = CppNameProblem(name)) {
    return "invalid name " + quoted + ": " + *why;
  }
  if (name.substr(0, 2) == "__" ||
      name.find("__") != std::string_view::npos) {
    return "invalid name " + quoted +
           ": names must not contain '__' (reserved in C++)";
  }
  if (name.size() >= 2 && name[0] == '_' && name[1] >= 'A' && name[1] <= 'Z') {
    return "invalid name " + quoted +
           ": names must not start with '_' and an upper-case letter "
           "(reserved in C++)";
  }
  return std::nullopt;
}

bool ParseFile(const std::string& path, std::string_view source,
               DiagnosticSink* sink, ParsedFile* out) {
  size_t errors_before = sink->size();
  internal::Parser parser(path, source, sink, out);
  bool ok = parser.Run();
  if (!ok && sink->size() == errors_before && !sink->full()) {
    sink->Report({path, 1, 1}, "syntax error", source);
  }
  return ok && sink->size() == errors_before;
}

}  // namespace lpc::idl
