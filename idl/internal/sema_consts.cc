// Constants and enums (idl/internal/file_analysis.h).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "idl/frontend.h"
#include "idl/internal/file_analysis.h"

namespace lpc::idl::internal {
namespace {

bool IsSigned(Kind k) {
  return k == Kind::kInt8 || k == Kind::kInt16 || k == Kind::kInt32 ||
         k == Kind::kInt64;
}

// Inclusive range of an integer kind, as (min, max) with min as int64 and
// max as uint64.
void IntRange(Kind k, int64_t* min, uint64_t* max) {
  switch (k) {
    case Kind::kInt8: *min = INT8_MIN; *max = INT8_MAX; return;
    case Kind::kInt16: *min = INT16_MIN; *max = INT16_MAX; return;
    case Kind::kInt32: *min = INT32_MIN; *max = INT32_MAX; return;
    case Kind::kInt64: *min = INT64_MIN; *max = INT64_MAX; return;
    case Kind::kUint8: *min = 0; *max = UINT8_MAX; return;
    case Kind::kUint16: *min = 0; *max = UINT16_MAX; return;
    case Kind::kUint32: *min = 0; *max = UINT32_MAX; return;
    default: *min = 0; *max = UINT64_MAX; return;
  }
}

}  // namespace

void FileAnalysis::CheckConstType(ConstDecl* c,
                                  const std::vector<const void*>& chain) {
  CheckType(&c->type, chain, false, 1);
}

void FileAnalysis::ConvertConst(ConstDecl* c,
                                const std::vector<const void*>& chain) {
  auto lit_it = literals_.find(c);
  if (lit_it == literals_.end()) return;
  const ConstLiteral& lit = lit_it->second;
  const TypeRef& type = c->type;
  std::string name = "'" + c->name + "'";
  using LK = ConstLiteral::Kind;
  Kind k = type.kind;
  if (k == Kind::kContext) {
    Error(type.loc, "constant " + name + " cannot have the context type '" +
                        type.name + "'; use a scalar, string or enum");
    return;
  }
  if (k == Kind::kNamed) {
    if (type.resolved_enum == nullptr) {
      if (type.resolved_struct != nullptr) {
        Error(type.loc, "constant " + name + " cannot have struct type '" +
                            type.name + "'; use a scalar, string or enum");
      }
      return;  // Unknown types were reported already.
    }
    if (lit.kind != LK::kName) {
      Error(lit.loc, "constant " + name + " of enum type '" + type.name +
                         "' needs an enumerator such as '" + type.name +
                         "." + type.resolved_enum->values[0].name + "'");
      return;
    }
    std::vector<std::string> parts = Split(lit.text);
    std::string value_name = parts.back();
    if (parts.size() > 1) {
      parts.pop_back();
      std::string ambiguous;
      const Symbol* s = Lookup(Join(parts, "."), chain, &ambiguous);
      if (s == nullptr || s->decl != type.resolved_enum) {
        Error(lit.loc, "'" + lit.text + "' is not a value of enum '" +
                           type.name + "'");
        return;
      }
    }
    for (const EnumValue& v : type.resolved_enum->values) {
      if (v.name == value_name) {
        c->value = v.value;
        return;
      }
    }
    Error(lit.loc, "'" + lit.text + "' is not a value of enum '" +
                       type.name + "'");
    return;
  }
  if (k == Kind::kBool) {
    if (lit.kind != LK::kBool) {
      Error(lit.loc, "constant " + name + " of type bool needs true or "
                                          "false");
      return;
    }
    c->value = lit.bool_value;
    return;
  }
  if (k == Kind::kString) {
    if (lit.kind != LK::kString) {
      Error(lit.loc, "constant " + name + " of type string needs a string "
                                          "literal");
      return;
    }
    c->value = lit.text;
    return;
  }
  if (IsInteger(k)) {
    if (lit.kind != LK::kInteger) {
      Error(lit.loc, "constant " + name + " of type " + TypeToString(type) +
                         " needs an integer value");
      return;
    }
    int64_t min;
    uint64_t max;
    IntRange(k, &min, &max);
    std::string shown =
        (lit.negative && lit.int_value != 0 ? "-" : "") +
        std::to_string(lit.int_value);
    bool in_range =
        lit.negative
            ? lit.int_value <= static_cast<uint64_t>(-(min + 1)) + 1
            : lit.int_value <= max;
    if (!in_range) {
      Error(lit.loc, "value " + shown + " is out of range for constant " +
                         name + " of type " + TypeToString(type));
      return;
    }
    if (IsSigned(k)) {
      c->value = lit.negative
                     ? static_cast<int64_t>(0 - lit.int_value)
                     : static_cast<int64_t>(lit.int_value);
    } else {
      c->value = lit.int_value;
    }
    return;
  }
  if (k == Kind::kFloat || k == Kind::kDouble) {
    double v;
    if (lit.kind == LK::kInteger) {
      v = static_cast<double>(lit.int_value);
    } else if (lit.kind == LK::kFloat) {
      v = lit.float_value;
    } else {
      Error(lit.loc, "constant " + name + " of type " + TypeToString(type) +
                         " needs a number");
      return;
    }
    if (lit.negative) v = -v;
    if (k == Kind::kFloat && std::fabs(v) > FLT_MAX) {
      Error(lit.loc, "value is out of range for constant " + name +
                         " of type float");
      return;
    }
    c->value = v;
    return;
  }
  if (k == Kind::kVoid) return;  // Reported by CheckType.
  Error(type.loc, "constant " + name + " cannot have type '" +
                      TypeToString(type) +
                      "'; use bool, an integer, float, double, string or "
                      "an enum");
}

void FileAnalysis::AnalyzeEnum(const EnumDecl& e) {
  std::unordered_map<int64_t, const EnumValue*> seen;
  for (const EnumValue& v : e.values) {
    auto [it, inserted] = seen.emplace(v.value, &v);
    if (!inserted) {
      Error(v.loc, "value " + std::to_string(v.value) + " of '" + v.name +
                       "' is already used by '" + it->second->name + "'");
    }
  }
}

}  // namespace lpc::idl::internal
