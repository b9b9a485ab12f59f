// The parser's const, enum and struct declarations (idl/internal/parser.h).
#include "idl/internal/parser.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lpc::idl::internal {
namespace {

// In a type, `handle` is always the descriptor type and `buffer` the
// zero-copy byte payload, so a struct, enum or context type of either name
// could never be used. Returns why `name` is refused, or nullptr.
const char* ReservedTypeName(const std::string& name) {
  if (name == "handle") {
    return "invalid name 'handle': it is the IDL's file descriptor type";
  }
  if (name == "buffer") {
    return "invalid name 'buffer': it is the IDL's zero-copy byte payload "
           "type";
  }
  return nullptr;
}

}  // namespace

bool Parser::ParseConst(std::string doc,
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

bool Parser::ParseEnum(std::string doc,
                       std::vector<std::unique_ptr<EnumDecl>>* out) {
  Next();  // enum
  auto decl = std::make_unique<EnumDecl>();
  decl->doc = std::move(doc);
  if (!ExpectName("an enum name", &decl->name, &decl->loc)) return false;
  if (const char* why = ReservedTypeName(decl->name)) {
    return ErrorAt(decl->loc, why);
  }
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

bool Parser::ParseStruct(std::string doc,
                         std::vector<std::unique_ptr<StructDecl>>* out,
                         int depth) {
  Token keyword = tok_;
  if (depth > kMaxStructNestingDepth) {
    return Error(keyword, "structs are nested too deeply (limit " +
                              std::to_string(kMaxStructNestingDepth) + ")");
  }
  Next();  // struct
  auto decl = std::make_unique<StructDecl>();
  decl->doc = std::move(doc);
  if (!ExpectName("a struct name", &decl->name, &decl->loc)) return false;
  if (const char* why = ReservedTypeName(decl->name)) {
    return ErrorAt(decl->loc, why);
  }
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

bool Parser::ParseContext(std::string doc,
                          std::vector<std::unique_ptr<ContextDecl>>* out) {
  Next();  // context
  auto decl = std::make_unique<ContextDecl>();
  decl->doc = std::move(doc);
  if (!ExpectName("a context type name", &decl->name, &decl->loc)) {
    return false;
  }
  if (const char* why = ReservedTypeName(decl->name)) {
    return ErrorAt(decl->loc, why);
  }
  if (!Expect(';')) return false;
  out->push_back(std::move(decl));
  return true;
}

bool Parser::ParseField(std::string doc, StructDecl* parent) {
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

}  // namespace lpc::idl::internal
