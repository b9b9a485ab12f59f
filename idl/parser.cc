// The lpc IDL parser: recursive descent with one token of lookahead.
#include "idl/parser.h"

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "idl/cpp_names.h"
#include "idl/frontend.h"
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

struct Attribute {
  std::string name;
  std::string arg;  // Raw argument text for uuid/version.
  SourceLocation loc;
  SourceLocation arg_loc;
};

using TypeKind = TypeRef::Kind;

bool ScalarKind(std::string_view word, TypeKind* kind) {
  static const std::pair<std::string_view, TypeKind> kScalars[] = {
      {"void", TypeKind::kVoid},     {"bool", TypeKind::kBool},
      {"int8", TypeKind::kInt8},     {"int16", TypeKind::kInt16},
      {"int32", TypeKind::kInt32},   {"int64", TypeKind::kInt64},
      {"uint8", TypeKind::kUint8},   {"uint16", TypeKind::kUint16},
      {"uint32", TypeKind::kUint32}, {"uint64", TypeKind::kUint64},
      {"float", TypeKind::kFloat},   {"double", TypeKind::kDouble},
      {"string", TypeKind::kString}, {"bytes", TypeKind::kBytes}};
  for (const auto& [name, k] : kScalars) {
    if (word == name) {
      *kind = k;
      return true;
    }
  }
  return false;
}

// Parses "8-4-4-4-12" hex into lower case; false when malformed.
bool NormalizeUuid(std::string_view text, std::string* out) {
  static constexpr int kGroups[] = {8, 4, 4, 4, 12};
  out->clear();
  size_t pos = 0;
  for (int g = 0; g < 5; ++g) {
    if (g > 0) {
      if (pos >= text.size() || text[pos] != '-') return false;
      *out += '-';
      ++pos;
    }
    for (int i = 0; i < kGroups[g]; ++i, ++pos) {
      if (pos >= text.size()) return false;
      char c = text[pos];
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
      *out += c;
    }
  }
  return pos == text.size();
}

// Parses "M.N" or "M" with each part in 0..65535.
bool ParseVersion(std::string_view text, uint32_t* major, uint32_t* minor) {
  uint32_t parts[2] = {0, 0};
  int count = 0;
  size_t pos = 0;
  while (count < 2) {
    size_t begin = pos;
    uint32_t v = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      v = v * 10 + static_cast<uint32_t>(text[pos] - '0');
      if (v > 65535) return false;
      ++pos;
    }
    if (pos == begin) return false;
    parts[count++] = v;
    if (pos == text.size()) break;
    if (text[pos] != '.' || count == 2) return false;
    ++pos;
  }
  if (pos != text.size()) return false;
  *major = parts[0];
  *minor = parts[1];
  return true;
}

class Parser {
 public:
  Parser(const std::string& path, std::string_view source,
         DiagnosticSink* sink, ParsedFile* out)
      : lexer_(path, source, sink), out_(out) {}

  bool Run() {
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
      } else {
        return Error(tok_, "expected a declaration (const, enum, struct or "
                           "interface) but found " + DescribeToken(tok_));
      }
    }
    return !failed_;
  }

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
  bool ExpectName(const char* what, std::string* name, SourceLocation* loc) {
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

  bool ParsePackage(File* file) {
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

  bool ParseImport(File* file) {
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

  bool ParseType(TypeRef* type, int depth) {
    if (depth > kMaxNestingDepth) {
      return Error(tok_, "type is nested too deeply (limit " +
                             std::to_string(kMaxNestingDepth) + ")");
    }
    if (tok_.kind != Token::Kind::kIdentifier) {
      return Error(tok_, "expected a type but found " + DescribeToken(tok_));
    }
    type->loc = Loc(tok_);
    std::string_view word = tok_.text;
    if (ScalarKind(word, &type->kind)) {
      Next();
      return !failed_;
    }
    if (word == "sequence" || word == "optional" || word == "map") {
      type->kind = word == "sequence"   ? TypeKind::kSequence
                   : word == "optional" ? TypeKind::kOptional
                                        : TypeKind::kMap;
      Next();
      if (!Expect('<')) return false;
      type->args.emplace_back();
      if (!ParseType(&type->args.back(), depth + 1)) return false;
      if (type->kind == TypeKind::kMap) {
        if (!Expect(',')) return false;
        type->args.emplace_back();
        if (!ParseType(&type->args.back(), depth + 1)) return false;
      }
      return Expect('>');
    }
    if (IsIdlKeyword(word)) {
      return Error(tok_, "expected a type but found " + DescribeToken(tok_));
    }
    type->kind = TypeKind::kNamed;
    type->name = std::string(word);
    Next();
    // `stream` is a keyword only before '<'; elsewhere it is a name.
    if (type->name == "stream" && tok_.Is('<') && !failed_) {
      type->kind = TypeKind::kStream;
      type->name.clear();
      Next();
      type->args.emplace_back();
      if (!ParseType(&type->args.back(), depth + 1)) return false;
      return Expect('>');
    }
    while (tok_.Is('.')) {
      Next();
      if (tok_.kind != Token::Kind::kIdentifier) {
        return Error(tok_, "expected a name after '.' but found " +
                               DescribeToken(tok_));
      }
      type->name += '.';
      type->name += tok_.text;
      Next();
    }
    return !failed_;
  }

  // Parses "@N" if present into `*ordinal`.
  bool ParseOrdinal(const std::string& owner, uint32_t* ordinal,
                    bool* is_explicit) {
    if (!tok_.Is('@')) return true;
    Next();
    if (tok_.kind != Token::Kind::kInteger) {
      return Error(tok_, "expected an ordinal number after '@' but found " +
                             DescribeToken(tok_));
    }
    uint64_t v = tok_.int_value;
    if (v < kMinOrdinal || v > kMaxOrdinal) {
      return Error(tok_, "ordinal @" + std::to_string(v) + " of '" + owner +
                             "' is out of range (1.." +
                             std::to_string(kMaxOrdinal) + ")");
    }
    if (v >= kReservedOrdinalFirst && v <= kReservedOrdinalLast) {
      return Error(tok_, "ordinal @" + std::to_string(v) + " of '" + owner +
                             "' is in the range 19000..19999 reserved by "
                             "protobuf");
    }
    *ordinal = static_cast<uint32_t>(v);
    *is_explicit = true;
    Next();
    return !failed_;
  }

  bool ParseConst(std::string doc,
                  std::vector<std::unique_ptr<ConstDecl>>* out) {
    Next();  // const
    auto decl = std::make_unique<ConstDecl>();
    decl->doc = std::move(doc);
    if (!ParseType(&decl->type, 1)) return false;
    if (!ExpectName("a constant name", &decl->name, &decl->loc)) return false;
    if (!Expect('=')) return false;
    ConstLiteral lit;
    lit.loc = Loc(tok_);
    if (tok_.Is('-') || tok_.Is('+')) {
      lit.negative = tok_.Is('-');
      Next();
      if (tok_.kind != Token::Kind::kInteger &&
          tok_.kind != Token::Kind::kFloat) {
        return Error(tok_, "expected a number after the sign but found " +
                               DescribeToken(tok_));
      }
    }
    switch (tok_.kind) {
      case Token::Kind::kInteger:
        lit.kind = ConstLiteral::Kind::kInteger;
        lit.int_value = tok_.int_value;
        Next();
        break;
      case Token::Kind::kFloat:
        lit.kind = ConstLiteral::Kind::kFloat;
        lit.float_value = tok_.float_value;
        Next();
        break;
      case Token::Kind::kString:
        lit.kind = ConstLiteral::Kind::kString;
        lit.text = tok_.string_value;
        Next();
        break;
      case Token::Kind::kIdentifier:
        if (tok_.IsWord("true") || tok_.IsWord("false")) {
          lit.kind = ConstLiteral::Kind::kBool;
          lit.bool_value = tok_.IsWord("true");
          Next();
          break;
        }
        lit.kind = ConstLiteral::Kind::kName;
        lit.text = std::string(tok_.text);
        Next();
        while (tok_.Is('.')) {
          Next();
          if (tok_.kind != Token::Kind::kIdentifier) {
            return Error(tok_, "expected a name after '.' but found " +
                                   DescribeToken(tok_));
          }
          lit.text += '.';
          lit.text += tok_.text;
          Next();
        }
        break;
      default:
        return Error(tok_, "expected a constant value but found " +
                               DescribeToken(tok_));
    }
    if (failed_ || !Expect(';')) return false;
    out_->const_literals[decl.get()] = std::move(lit);
    out->push_back(std::move(decl));
    return true;
  }

  bool ParseEnum(std::string doc,
                 std::vector<std::unique_ptr<EnumDecl>>* out) {
    Next();  // enum
    auto decl = std::make_unique<EnumDecl>();
    decl->doc = std::move(doc);
    if (!ExpectName("an enum name", &decl->name, &decl->loc)) return false;
    if (!Expect('{')) return false;
    int64_t next = 0;
    while (!tok_.Is('}')) {
      EnumValue value;
      value.doc = tok_.doc;
      if (!ExpectName("an enumerator name", &value.name, &value.loc)) {
        return false;
      }
      value.value = next;
      if (tok_.Is('=')) {
        Next();
        bool negative = false;
        if (tok_.Is('-')) {
          negative = true;
          Next();
        }
        if (tok_.kind != Token::Kind::kInteger) {
          return Error(tok_, "expected an integer value for '" + value.name +
                                 "' but found " + DescribeToken(tok_));
        }
        uint64_t magnitude = tok_.int_value;
        if (magnitude > (negative ? 2147483648ull : 2147483647ull)) {
          return Error(tok_, "value of enumerator '" + value.name +
                                 "' is out of the int32 range");
        }
        value.value = negative ? -static_cast<int64_t>(magnitude)
                               : static_cast<int64_t>(magnitude);
        Next();
      } else if (next > 2147483647) {
        return ErrorAt(value.loc, "value of enumerator '" + value.name +
                                      "' is out of the int32 range");
      }
      if (decl->values.empty() && value.value != 0) {
        return ErrorAt(value.loc, "the first enumerator of enum '" +
                                      decl->name + "' must have the value 0 "
                                      "(it is the default)");
      }
      next = value.value + 1;
      decl->values.push_back(std::move(value));
      if (tok_.Is(',')) {
        Next();
      } else if (!tok_.Is('}')) {
        return Error(tok_, "expected ',' or '}' but found " +
                               DescribeToken(tok_));
      }
      if (failed_) return false;
    }
    if (decl->values.empty()) {
      return ErrorAt(decl->loc, "enum '" + decl->name + "' has no values");
    }
    Next();  // }
    if (tok_.Is(';')) Next();
    out->push_back(std::move(decl));
    return !failed_;
  }

  bool ParseStruct(std::string doc,
                   std::vector<std::unique_ptr<StructDecl>>* out, int depth) {
    Token keyword = tok_;
    if (depth > kMaxStructNestingDepth) {
      return Error(keyword, "structs are nested too deeply (limit " +
                                std::to_string(kMaxStructNestingDepth) + ")");
    }
    Next();  // struct
    auto decl = std::make_unique<StructDecl>();
    decl->doc = std::move(doc);
    if (!ExpectName("a struct name", &decl->name, &decl->loc)) return false;
    if (!Expect('{')) return false;
    while (!tok_.Is('}')) {
      if (failed_) return false;
      std::string member_doc = tok_.doc;
      if (tok_.IsWord("const")) {
        if (!ParseConst(std::move(member_doc), &decl->nested_consts)) {
          return false;
        }
      } else if (tok_.IsWord("enum")) {
        if (!ParseEnum(std::move(member_doc), &decl->nested_enums)) {
          return false;
        }
      } else if (tok_.IsWord("struct")) {
        if (!ParseStruct(std::move(member_doc), &decl->nested_structs,
                         depth + 1)) {
          return false;
        }
      } else if (tok_.IsWord("interface")) {
        return Error(tok_, "an interface cannot be declared inside a struct");
      } else if (tok_.Is('[')) {
        return Error(tok_, "attributes are not allowed on fields");
      } else if (tok_.kind == Token::Kind::kEnd) {
        return Error(tok_, "expected '}' but found end of file");
      } else {
        if (!ParseField(std::move(member_doc), decl.get())) return false;
      }
    }
    Next();  // }
    if (tok_.Is(';')) Next();
    out->push_back(std::move(decl));
    return !failed_;
  }

  bool ParseField(std::string doc, StructDecl* parent) {
    FieldDecl field;
    field.doc = std::move(doc);
    if (!ParseType(&field.type, 1)) return false;
    if (!ExpectName("a field name", &field.name, &field.loc)) return false;
    if (!ParseOrdinal(field.name, &field.ordinal, &field.explicit_ordinal)) {
      return false;
    }
    if (!Expect(';')) return false;
    parent->fields.push_back(std::move(field));
    return true;
  }

  bool ParseAttributes(std::vector<Attribute>* attrs) {
    while (tok_.Is('[')) {
      Next();
      while (true) {
        if (tok_.kind != Token::Kind::kIdentifier) {
          return Error(tok_, "expected an attribute but found " +
                                 DescribeToken(tok_));
        }
        Attribute attr;
        attr.name = std::string(tok_.text);
        attr.loc = Loc(tok_);
        static const std::string_view kKnown[] = {"uuid", "version", "in",
                                                  "out", "oneway", "async"};
        bool known = false;
        for (std::string_view k : kKnown) known = known || attr.name == k;
        if (!known) {
          return Error(tok_, "unknown attribute " + DescribeToken(tok_));
        }
        for (const Attribute& other : *attrs) {
          if (other.name == attr.name) {
            return Error(tok_, "duplicate attribute '" + attr.name + "'");
          }
        }
        if (attr.name == "uuid" || attr.name == "version") {
          // The lexer has not looked past '(' yet, so the raw text after it
          // can be read directly.
          Next();
          if (!tok_.Is('(')) {
            return Error(tok_, "expected '(' after '" + attr.name +
                                   "' but found " + DescribeToken(tok_));
          }
          int line = 0, column = 0;
          if (!lexer_.ReadRawUntilCloseParen(&attr.arg, &line, &column)) {
            failed_ = true;
            return false;
          }
          attr.arg_loc = {lexer_.file(), line, column};
        }
        Next();
        attrs->push_back(std::move(attr));
        if (failed_) return false;
        if (tok_.Is(',')) {
          Next();
          continue;
        }
        if (!Expect(']')) return false;
        break;
      }
    }
    return !failed_;
  }

  // Rejects attributes outside `allowed` on a `what`.
  bool CheckAllowed(const std::vector<Attribute>& attrs,
                    std::initializer_list<std::string_view> allowed,
                    const char* what) {
    for (const Attribute& attr : attrs) {
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || attr.name == a;
      if (!ok) {
        return ErrorAt(attr.loc, "attribute '" + attr.name +
                                     "' is not allowed on " + what);
      }
    }
    return true;
  }

  bool ParseInterface(std::string doc,
                      std::vector<std::unique_ptr<InterfaceDecl>>* out) {
    std::vector<Attribute> attrs;
    if (!ParseAttributes(&attrs)) return false;
    if (!tok_.IsWord("interface")) {
      return Error(tok_, "expected 'interface' after attributes but found " +
                             DescribeToken(tok_));
    }
    if (doc.empty()) doc = tok_.doc;
    if (!CheckAllowed(attrs, {"uuid", "version"}, "an interface")) {
      return false;
    }
    Next();  // interface
    auto decl = std::make_unique<InterfaceDecl>();
    decl->doc = std::move(doc);
    if (!ExpectName("an interface name", &decl->name, &decl->loc)) {
      return false;
    }
    bool has_uuid = false, has_version = false;
    for (const Attribute& attr : attrs) {
      if (attr.name == "uuid") {
        has_uuid = true;
        if (!NormalizeUuid(attr.arg, &decl->uuid)) {
          return ErrorAt(attr.arg_loc,
                         "invalid uuid '" + attr.arg.substr(0, 60) +
                             "': expected 8-4-4-4-12 hexadecimal digits");
        }
        if (decl->uuid == "00000000-0000-0000-0000-000000000000") {
          return ErrorAt(attr.arg_loc, "the nil uuid cannot name an interface");
        }
      } else if (attr.name == "version") {
        has_version = true;
        if (!ParseVersion(attr.arg, &decl->version_major,
                          &decl->version_minor)) {
          return ErrorAt(attr.arg_loc,
                         "invalid version '" + attr.arg.substr(0, 60) +
                             "': expected <major>.<minor>, each 0..65535");
        }
      }
    }
    if (!has_uuid) {
      return ErrorAt(decl->loc, "interface '" + decl->name +
                                    "' needs a [uuid(...)] attribute");
    }
    if (!has_version) {
      return ErrorAt(decl->loc, "interface '" + decl->name +
                                    "' needs a [version(major.minor)] "
                                    "attribute");
    }
    if (!Expect('{')) return false;
    while (!tok_.Is('}')) {
      if (failed_) return false;
      if (tok_.kind == Token::Kind::kEnd) {
        return Error(tok_, "expected '}' but found end of file");
      }
      if (!ParseMethod(decl.get())) return false;
    }
    Next();  // }
    if (tok_.Is(';')) Next();
    out->push_back(std::move(decl));
    return !failed_;
  }

  bool ParseMethod(InterfaceDecl* parent) {
    MethodDecl method;
    method.doc = tok_.doc;
    std::vector<Attribute> attrs;
    if (!ParseAttributes(&attrs)) return false;
    if (method.doc.empty()) method.doc = tok_.doc;
    if (!CheckAllowed(attrs, {"oneway", "async"}, "a method")) return false;
    for (const Attribute& a : attrs) {
      if ((a.name == "oneway" && method.async) ||
          (a.name == "async" && method.oneway)) {
        return ErrorAt(a.loc, "[oneway] cannot be combined with [async]: a "
                              "oneway call has no reply to finish later");
      }
      method.oneway = method.oneway || a.name == "oneway";
      method.async = method.async || a.name == "async";
    }
    if (!ParseType(&method.return_type, 1)) return false;
    if (!ExpectName("a method name", &method.name, &method.loc)) return false;
    if (!Expect('(')) return false;
    while (!tok_.Is(')')) {
      ParamDecl param;
      std::vector<Attribute> param_attrs;
      if (!ParseAttributes(&param_attrs)) return false;
      if (!CheckAllowed(param_attrs, {"in", "out"}, "a parameter")) {
        return false;
      }
      if (!ParseType(&param.type, 1)) return false;
      if (!ExpectName("a parameter name", &param.name, &param.loc)) {
        return false;
      }
      bool in = false, out = false;
      for (const Attribute& a : param_attrs) {
        in = in || a.name == "in";
        out = out || a.name == "out";
      }
      if (!in && !out) {
        return ErrorAt(param.loc, "parameter '" + param.name + "' of '" +
                                      method.name + "' needs a direction: "
                                      "[in], [out] or [in, out]");
      }
      param.direction = in && out ? ParamDirection::kInOut
                        : in      ? ParamDirection::kIn
                                  : ParamDirection::kOut;
      method.params.push_back(std::move(param));
      if (tok_.Is(',')) {
        Next();
        if (tok_.Is(')')) {
          return Error(tok_, "expected a parameter but found ')'");
        }
      } else if (!tok_.Is(')')) {
        return Error(tok_, "expected ',' or ')' but found " +
                               DescribeToken(tok_));
      }
      if (failed_) return false;
    }
    Next();  // )
    if (!ParseOrdinal(method.name, &method.ordinal, &method.explicit_ordinal)) {
      return false;
    }
    if (!Expect(';')) return false;
    parent->methods.push_back(std::move(method));
    return true;
  }

  Lexer lexer_;
  ParsedFile* out_;
  Token tok_;
  bool failed_ = false;
};

}  // namespace

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
  Parser parser(path, source, sink, out);
  bool ok = parser.Run();
  if (!ok && sink->size() == errors_before && !sink->full()) {
    sink->Report({path, 1, 1}, "syntax error", source);
  }
  return ok && sink->size() == errors_before;
}

}  // namespace lpc::idl
