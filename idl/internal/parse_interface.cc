// The parser's interfaces and methods (idl/internal/parser.h).
#include "idl/internal/parser.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lpc::idl::internal {
namespace {

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

}  // namespace

bool Parser::ParseInterface(std::string doc,
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

bool Parser::ParseMethod(InterfaceDecl* parent) {
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

}  // namespace lpc::idl::internal
