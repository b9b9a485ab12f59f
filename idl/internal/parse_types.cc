// The parser's types, ordinals and attributes (idl/internal/parser.h).
#include "idl/internal/parser.h"

#include <string>
#include <utility>
#include <vector>

namespace lpc::idl::internal {
namespace {

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

}  // namespace

bool Parser::ParseType(TypeRef* type, int depth) {
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
  if (word == "handle") return ParseHandle(type);
  // Like `handle`, `buffer` is always the type where a type is expected and
  // an ordinary name elsewhere.
  if (word == "buffer") {
    type->kind = TypeKind::kBuffer;
    Next();
    return !failed_;
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

// `handle`, or `handle<kind>` with kind memfd, pipe, socket or file, or
// `handle<memfd, sealed>` (docs/handles.md). In a type, `handle` is always
// the descriptor type.
bool Parser::ParseHandle(TypeRef* type) {
  using HK = TypeRef::HandleKind;
  type->kind = TypeKind::kHandle;
  type->handle_kind = HK::kAny;
  Next();  // handle
  if (failed_ || !tok_.Is('<')) return !failed_;
  Next();
  if (tok_.kind != Token::Kind::kIdentifier) {
    return Error(tok_, "expected a handle kind (memfd, pipe, socket or file) "
                       "but found " + DescribeToken(tok_));
  }
  const std::string kind(tok_.text);
  if (kind == "memfd") {
    type->handle_kind = HK::kMemfd;
  } else if (kind == "pipe") {
    type->handle_kind = HK::kPipe;
  } else if (kind == "socket") {
    type->handle_kind = HK::kSocket;
  } else if (kind == "file") {
    type->handle_kind = HK::kFile;
  } else {
    return Error(tok_, "unknown handle kind '" + kind +
                           "' (expected memfd, pipe, socket or file)");
  }
  Next();
  if (tok_.Is(',') && !failed_) {
    Next();
    if (!tok_.IsWord("sealed")) {
      return Error(tok_, "expected 'sealed' but found " + DescribeToken(tok_));
    }
    if (type->handle_kind != HK::kMemfd) {
      return Error(tok_, "only a memfd can be required sealed "
                         "(handle<memfd, sealed>), not a " + kind);
    }
    type->handle_kind = HK::kSealedMemfd;
    Next();
  }
  return Expect('>');
}

// Parses "@N" if present into `*ordinal`.
bool Parser::ParseOrdinal(const std::string& owner, uint32_t* ordinal,
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

bool Parser::ParseAttributes(std::vector<Attribute>* attrs) {
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
bool Parser::CheckAllowed(const std::vector<Attribute>& attrs,
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

}  // namespace lpc::idl::internal
