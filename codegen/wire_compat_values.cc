#include "codegen/wire_compat_values.h"

#include <cmath>
#include <limits>

namespace lpc::wire_testing {

using codegen::wire::Color;
using codegen::wire::Containers;
using codegen::wire::Leaf;
using codegen::wire::Scalars;
using codegen::wire::Tree;
using codegen::wire::Tree_Node;

Leaf MakeLeaf(int32_t v, std::string tag) {
  Leaf leaf;
  leaf.set_v(v);
  leaf.set_tag(std::move(tag));
  return leaf;
}

std::string Utf8Text() { return "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x99\x82 \xe4\xb8\xad"; }

std::string BinaryBytes() {
  std::string out;
  for (int i = 0; i < 256; ++i) out.push_back(static_cast<char>(i));
  out += std::string(3, '\0');
  return out;
}

std::string LargeBytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((i * 131) % 251);  // zero every 251 bytes
  }
  return out;
}

std::vector<Case<Scalars>> ScalarCases() {
  using L8 = std::numeric_limits<int8_t>;
  using L16 = std::numeric_limits<int16_t>;
  using L32 = std::numeric_limits<int32_t>;
  using L64 = std::numeric_limits<int64_t>;
  std::vector<Case<Scalars>> cases;
  cases.push_back({"zero", Scalars()});

  Scalars max;
  max.set_b(true);
  max.set_i8(L8::max());
  max.set_i16(L16::max());
  max.set_i32(L32::max());
  max.set_i64(L64::max());
  max.set_u8(255);
  max.set_u16(65535);
  max.set_u32(std::numeric_limits<uint32_t>::max());
  max.set_u64(std::numeric_limits<uint64_t>::max());
  max.set_f(std::numeric_limits<float>::max());
  max.set_d(std::numeric_limits<double>::max());
  max.set_s(Utf8Text());
  max.set_by(BinaryBytes());
  max.set_color(codegen::wire::FAR);
  cases.push_back({"max", max});

  Scalars min;
  min.set_i8(L8::min());
  min.set_i16(L16::min());
  min.set_i32(L32::min());
  min.set_i64(L64::min());
  min.set_u8(1);
  min.set_u16(1);
  min.set_u32(1);
  min.set_u64(1);
  min.set_f(std::numeric_limits<float>::lowest());
  min.set_d(std::numeric_limits<double>::lowest());
  min.set_s("a");
  min.set_by(std::string(1, '\0'));
  min.set_color(codegen::wire::DEEP);
  cases.push_back({"min", min});

  Scalars minus_one;  // 10-byte varints for the signed ones
  minus_one.set_i8(-1);
  minus_one.set_i16(-1);
  minus_one.set_i32(-1);
  minus_one.set_i64(-1);
  minus_one.set_u8(128);      // a two-byte varint
  minus_one.set_u16(16384);   // a three-byte varint
  minus_one.set_u32(1u << 28);
  minus_one.set_u64(uint64_t{1} << 63);
  minus_one.set_color(kUnknownNegativeColor);
  cases.push_back({"minus_one", minus_one});

  Scalars negative_zero;  // -0.0 is not 0 to proto3: its bits are written
  negative_zero.set_f(-0.0f);
  negative_zero.set_d(-0.0);
  negative_zero.set_color(kUnknownColor);
  cases.push_back({"negative_zero", negative_zero});

  Scalars nan;
  nan.set_f(std::numeric_limits<float>::quiet_NaN());
  nan.set_d(std::numeric_limits<double>::quiet_NaN());
  cases.push_back({"nan", nan});

  Scalars inf;
  inf.set_f(-std::numeric_limits<float>::infinity());
  inf.set_d(std::numeric_limits<double>::infinity());
  cases.push_back({"inf", inf});

  Scalars tiny;
  tiny.set_f(std::numeric_limits<float>::denorm_min());
  tiny.set_d(std::numeric_limits<double>::denorm_min());
  tiny.set_color(codegen::wire::RED);
  cases.push_back({"tiny", tiny});

  Scalars large;
  large.set_s(std::string(70000, 'x'));  // a three-byte length
  large.set_by(LargeBytes(1 << 20));
  cases.push_back({"large", large});
  return cases;
}

std::vector<Case<Containers>> ContainerCases() {
  std::vector<Case<Containers>> cases;
  cases.push_back({"empty", Containers()});

  Containers full;
  for (int32_t v : {0, 1, -1, 300, std::numeric_limits<int32_t>::min()}) {
    full.add_i32s(v);
  }
  for (int32_t v : {0, -128, 127, -1}) full.add_i8s(v);
  for (uint32_t v : {0u, 65535u, 128u}) full.add_u16s(v);
  for (int64_t v : {int64_t{0}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    full.add_i64s(v);
  }
  for (uint64_t v : {uint64_t{0}, std::numeric_limits<uint64_t>::max()}) {
    full.add_u64s(v);
  }
  for (bool v : {false, true, false}) full.add_bools(v);
  for (float v : {0.0f, -0.0f, 1.5f, std::numeric_limits<float>::infinity()}) {
    full.add_floats(v);
  }
  for (double v : {0.0, -2.25, std::numeric_limits<double>::quiet_NaN()}) {
    full.add_doubles(v);
  }
  for (Color v : {codegen::wire::BLACK, codegen::wire::DEEP, kUnknownColor,
                  codegen::wire::FAR}) {
    full.add_colors(v);
  }
  for (const std::string& v : {std::string(), Utf8Text(), std::string("b")}) {
    full.add_strings(v);
  }
  for (const std::string& v : {std::string(), BinaryBytes()}) {
    full.add_blobs(v);
  }
  *full.add_leaves() = Leaf();
  *full.add_leaves() = MakeLeaf(-5, "five");
  (*full.mutable_by_name())[""] = 0;
  (*full.mutable_by_name())[Utf8Text()] = -1;
  (*full.mutable_by_name())["b"] = 2;
  (*full.mutable_by_i32())[0] = "";
  (*full.mutable_by_i32())[-7] = "minus seven";
  (*full.mutable_by_i32())[std::numeric_limits<int32_t>::max()] = "max";
  (*full.mutable_by_i64())[0] = Leaf();
  (*full.mutable_by_i64())[std::numeric_limits<int64_t>::min()] = MakeLeaf(1, "");
  (*full.mutable_by_u32())[0] = BinaryBytes();
  (*full.mutable_by_u32())[std::numeric_limits<uint32_t>::max()] = "";
  (*full.mutable_by_u64())[std::numeric_limits<uint64_t>::max()] = -0.0;
  (*full.mutable_by_u64())[1] = 0.0;
  (*full.mutable_by_bool())[false] = codegen::wire::BLACK;
  (*full.mutable_by_bool())[true] = kUnknownNegativeColor;
  (*full.mutable_narrow_map())[-128] = 255;
  (*full.mutable_narrow_map())[0] = 0;
  (*full.mutable_narrow_map())[127] = 1;
  (*full.mutable_wide_map())[65535] = -32768;
  (*full.mutable_wide_map())[0] = 32767;
  full.set_opt_i32(-3);
  full.set_opt_s(Utf8Text());
  full.set_opt_by(BinaryBytes());
  *full.mutable_opt_leaf() = MakeLeaf(9, "opt");
  full.set_opt_color(kUnknownColor);
  full.set_opt_b(true);
  full.set_opt_d(-1e300);
  full.set_opt_i8(-128);
  full.set_opt_u16(65535);
  *full.mutable_leaf() = MakeLeaf(std::numeric_limits<int32_t>::min(), "leaf");
  *full.mutable_scalars() = ScalarCases()[1].value;
  full.set_last(-1);
  cases.push_back({"full", full});

  Containers zeros;  // Every optional present but zero, and empty structs.
  zeros.set_opt_i32(0);
  zeros.set_opt_s("");
  zeros.set_opt_by("");
  zeros.mutable_opt_leaf();
  zeros.set_opt_color(codegen::wire::BLACK);
  zeros.set_opt_b(false);
  zeros.set_opt_d(0.0);
  zeros.set_opt_i8(0);
  zeros.set_opt_u16(0);
  zeros.mutable_leaf();
  zeros.mutable_scalars();
  zeros.add_i32s(0);
  zeros.add_bools(false);
  zeros.add_strings("");
  zeros.add_leaves();
  (*zeros.mutable_by_name())[""] = 0;
  zeros.set_last(1);
  cases.push_back({"present_zeros", zeros});
  return cases;
}

std::vector<Case<Tree>> TreeCases() {
  std::vector<Case<Tree>> cases;
  cases.push_back({"empty", Tree()});

  Tree small;
  small.mutable_root()->set_label("root");
  small.mutable_root()->set_side(Tree_Node::RIGHT);
  small.mutable_root()->set_weight(-32768);
  Tree_Node* kid = small.mutable_root()->add_kids();
  kid->set_weight(32767);
  small.mutable_root()->add_kids();  // an empty element
  small.add_sides(Tree_Node::LEFT);
  small.add_sides(Tree_Node::RIGHT);
  small.add_sides(static_cast<Tree_Node::Side>(99));
  (*small.mutable_forest())[""] = Tree();
  (*small.mutable_forest())["a"].mutable_root()->set_label("a's root");
  small.mutable_next()->mutable_root()->set_label("next");
  cases.push_back({"small", small});

  Tree deep;  // 40 levels each way
  Tree_Node* node = deep.mutable_root();
  Tree* next = &deep;
  for (int i = 0; i < 40; ++i) {
    node = node->add_kids();
    node->set_label("level " + std::to_string(i));
    node->set_weight(static_cast<int32_t>(i - 20));
    next = next->mutable_next();
    next->add_sides(Tree_Node::RIGHT);
  }
  cases.push_back({"deep", deep});
  return cases;
}

}  // namespace lpc::wire_testing
