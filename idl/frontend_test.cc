// Tests of the IDL front end on valid input: the AST it builds, name
// resolution, ordinals, docs, imports, and the shape of its diagnostics.
#include "idl/frontend.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::idl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Kind = TypeRef::Kind;

constexpr char kCommon[] = R"(// Shared types.
package common;

// Extra data.
struct Extra {
  string note;
}
)";

constexpr char kCalc[] = R"(// Copyright header, detached by the blank line below.

// Leading comment becomes File::doc.
package example.calc;             // trailing: not a doc
import "common/types.idl";        // path relative to importer dir
const int32 kMaxItems = 100;      // trailing
const string kGreeting = "hi\n";
const Color kDefault = Color.BLUE;
const Color kFirst = RED;
const double kPi = 3.25;
const float kNegative = -2;
const bool kOn = true;
const int64 kMin = -9223372036854775808;
const uint64 kMax = 0xFFFFFFFFFFFFFFFF;
const int8 kSmall = -128;
/* The colours.
 * Three of them. */
enum Color {
  RED,
  // Green is five.
  GREEN = 5,
  BLUE,
}
struct Point { int32 x; int32 y @3; optional<string> label; }
struct Shape {
  enum Kind { CIRCLE, POLYGON }
  struct Vertex { double x; double y; }
  const uint16 kMaxVertices = 65535;
  Kind kind @1;
  sequence<Vertex> vertices @2;
  map<string, int64> tags @3;
  common.Extra extra @4;
  // Unqualified name from an imported package.
  Extra extra2;
  Shape.Kind kind2;
  optional<Shape> parent;
  sequence<Shape> children;
  map<int32, Shape> by_id;
  map<bool, bytes> flags @10;
  sequence<uint8> small;
}
// The calculator.
[uuid(6F1C2A34-9b7e-4d2a-8c11-0a1b2c3d4e5f), version(1.2)]
interface Calculator {
  double Add([in] double a, [in] double b);
  // Divides.
  void Divide([in] int64 num, [in] int64 den, [out] int64 quotient, [out] int64 remainder) @2;
  int32 Accumulate([in, out] int64 total, [in] sequence<int64> values);
  [oneway] void Log([in] string line);
  Shape.Vertex Corner([in] Shape s) @10;
  optional<Point> Find([in] string name);
}
)";

class FrontendTest : public ::testing::Test {
 protected:
  const File* ParseCalc() {
    frontend_.AddVirtualFile("root/common/types.idl", kCommon);
    frontend_.AddVirtualFile("root/calc.idl", kCalc);
    const File* file = frontend_.Parse("root/calc.idl");
    EXPECT_NE(file, nullptr) << frontend_.FormatDiagnostics();
    return file;
  }

  Frontend frontend_{{}};
};

template <typename T>
const T* Find(const std::vector<std::unique_ptr<T>>& decls,
              const std::string& name) {
  for (const auto& d : decls) {
    if (d->name == name) return d.get();
  }
  return nullptr;
}

TEST_F(FrontendTest, PackageImportsAndFileDoc) {
  const File* file = ParseCalc();
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->package, ElementsAre("example", "calc"));
  EXPECT_EQ(file->doc, "Leading comment becomes File::doc.");
  EXPECT_EQ(file->path, "root/calc.idl");
  ASSERT_THAT(file->imports, SizeIs(1));
  EXPECT_EQ(file->imports[0].path, "common/types.idl");
  ASSERT_NE(file->imports[0].file, nullptr);
  EXPECT_THAT(file->imports[0].file->package, ElementsAre("common"));
  EXPECT_EQ(file->imports[0].file->doc, "Shared types.");
  EXPECT_EQ(file->imports[0].file->relative_path, "root/common/types.idl");
  // Imports come before importers.
  std::vector<const File*> files = frontend_.files();
  ASSERT_THAT(files, SizeIs(2));
  EXPECT_EQ(files[0], file->imports[0].file);
  EXPECT_EQ(files[1], file);
  EXPECT_TRUE(frontend_.diagnostics().empty());
}

TEST_F(FrontendTest, Constants) {
  const File* file = ParseCalc();
  ASSERT_NE(file, nullptr);
  const ConstDecl* max_items = Find(file->consts, "kMaxItems");
  ASSERT_NE(max_items, nullptr);
  EXPECT_EQ(max_items->type.kind, Kind::kInt32);
  EXPECT_EQ(std::get<int64_t>(max_items->value), 100);
  EXPECT_EQ(max_items->full_name, "example.calc.kMaxItems");
  EXPECT_EQ(max_items->doc, "");  // Its comment trails the previous line.
  EXPECT_EQ(std::get<std::string>(Find(file->consts, "kGreeting")->value),
            "hi\n");
  const ConstDecl* def = Find(file->consts, "kDefault");
  ASSERT_NE(def->type.resolved_enum, nullptr);
  EXPECT_EQ(def->type.resolved_enum->name, "Color");
  EXPECT_EQ(std::get<int64_t>(def->value), 6);
  EXPECT_EQ(std::get<int64_t>(Find(file->consts, "kFirst")->value), 0);
  EXPECT_EQ(std::get<double>(Find(file->consts, "kPi")->value), 3.25);
  EXPECT_EQ(std::get<double>(Find(file->consts, "kNegative")->value), -2.0);
  EXPECT_EQ(std::get<bool>(Find(file->consts, "kOn")->value), true);
  EXPECT_EQ(std::get<int64_t>(Find(file->consts, "kMin")->value), INT64_MIN);
  EXPECT_EQ(std::get<uint64_t>(Find(file->consts, "kMax")->value), UINT64_MAX);
  EXPECT_EQ(std::get<int64_t>(Find(file->consts, "kSmall")->value), -128);
  const StructDecl* shape = Find(file->structs, "Shape");
  const ConstDecl* nested = Find(shape->nested_consts, "kMaxVertices");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(std::get<uint64_t>(nested->value), 65535u);
  EXPECT_EQ(nested->full_name, "example.calc.Shape.kMaxVertices");
}

TEST_F(FrontendTest, EnumsAndDocs) {
  const File* file = ParseCalc();
  ASSERT_NE(file, nullptr);
  const EnumDecl* color = Find(file->enums, "Color");
  ASSERT_NE(color, nullptr);
  EXPECT_EQ(color->full_name, "example.calc.Color");
  EXPECT_EQ(color->doc, "The colours.\nThree of them.");
  ASSERT_THAT(color->values, SizeIs(3));
  EXPECT_EQ(color->values[0].name, "RED");
  EXPECT_EQ(color->values[0].value, 0);
  EXPECT_EQ(color->values[1].value, 5);
  EXPECT_EQ(color->values[1].doc, "Green is five.");
  EXPECT_EQ(color->values[2].value, 6);
  EXPECT_EQ(color->loc.line, 18);
  EXPECT_EQ(color->loc.column, 6);
}

TEST_F(FrontendTest, StructOrdinalsAndTypes) {
  const File* file = ParseCalc();
  ASSERT_NE(file, nullptr);
  const StructDecl* point = Find(file->structs, "Point");
  ASSERT_NE(point, nullptr);
  EXPECT_EQ(point->full_name, "example.calc.Point");
  ASSERT_THAT(point->fields, SizeIs(3));
  EXPECT_EQ(point->fields[0].ordinal, 1u);
  EXPECT_FALSE(point->fields[0].explicit_ordinal);
  EXPECT_EQ(point->fields[1].ordinal, 3u);
  EXPECT_TRUE(point->fields[1].explicit_ordinal);
  EXPECT_EQ(point->fields[2].ordinal, 4u);
  EXPECT_EQ(point->fields[2].type.kind, Kind::kOptional);
  EXPECT_EQ(point->fields[2].type.args[0].kind, Kind::kString);

  const StructDecl* shape = Find(file->structs, "Shape");
  ASSERT_NE(shape, nullptr);
  const EnumDecl* kind = Find(shape->nested_enums, "Kind");
  const StructDecl* vertex = Find(shape->nested_structs, "Vertex");
  ASSERT_NE(kind, nullptr);
  ASSERT_NE(vertex, nullptr);
  EXPECT_EQ(kind->full_name, "example.calc.Shape.Kind");
  EXPECT_EQ(vertex->full_name, "example.calc.Shape.Vertex");
  const auto& f = shape->fields;
  ASSERT_EQ(f.size(), 11u);
  EXPECT_EQ(f[0].type.resolved_enum, kind);
  EXPECT_EQ(f[1].type.kind, Kind::kSequence);
  EXPECT_EQ(f[1].type.args[0].resolved_struct, vertex);
  EXPECT_EQ(f[2].type.kind, Kind::kMap);
  EXPECT_EQ(f[2].type.args[0].kind, Kind::kString);
  EXPECT_EQ(f[2].type.args[1].kind, Kind::kInt64);
  const File* common = file->imports[0].file;
  const StructDecl* extra = common->structs[0].get();
  EXPECT_EQ(extra->full_name, "common.Extra");
  EXPECT_EQ(extra->doc, "Extra data.");
  EXPECT_EQ(f[3].type.resolved_struct, extra);
  EXPECT_EQ(f[3].type.name, "common.Extra");
  EXPECT_EQ(f[4].type.resolved_struct, extra);
  EXPECT_EQ(f[4].ordinal, 5u);
  EXPECT_EQ(f[4].doc, "Unqualified name from an imported package.");
  EXPECT_EQ(f[5].type.resolved_enum, kind);
  EXPECT_EQ(f[6].type.args[0].resolved_struct, shape);  // Self, optional.
  EXPECT_EQ(f[7].type.args[0].resolved_struct, shape);
  EXPECT_EQ(f[8].type.args[1].resolved_struct, shape);
  EXPECT_EQ(f[9].ordinal, 10u);
  EXPECT_EQ(f[10].ordinal, 11u);
  EXPECT_EQ(TypeToString(f[1].type), "sequence<example.calc.Shape.Vertex>");
  EXPECT_EQ(TypeToString(f[9].type), "map<bool, bytes>");
  EXPECT_EQ(f[1].type.loc.line, 30);
  EXPECT_EQ(f[1].type.loc.column, 3);
}

TEST_F(FrontendTest, Interface) {
  const File* file = ParseCalc();
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->interfaces, SizeIs(1));
  const InterfaceDecl& calc = *file->interfaces[0];
  EXPECT_EQ(calc.name, "Calculator");
  EXPECT_EQ(calc.full_name, "example.calc.Calculator");
  EXPECT_EQ(calc.uuid, "6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e5f");
  EXPECT_EQ(calc.version_major, 1u);
  EXPECT_EQ(calc.version_minor, 2u);
  EXPECT_EQ(calc.doc, "The calculator.");
  ASSERT_THAT(calc.methods, SizeIs(6));
  const MethodDecl& add = calc.methods[0];
  EXPECT_EQ(add.ordinal, 1u);
  EXPECT_EQ(add.return_type.kind, Kind::kDouble);
  ASSERT_THAT(add.params, SizeIs(2));
  EXPECT_EQ(add.params[0].name, "a");
  EXPECT_EQ(add.params[0].direction, ParamDirection::kIn);
  const MethodDecl& divide = calc.methods[1];
  EXPECT_EQ(divide.ordinal, 2u);
  EXPECT_TRUE(divide.explicit_ordinal);
  EXPECT_EQ(divide.doc, "Divides.");
  EXPECT_EQ(divide.return_type.kind, Kind::kVoid);
  EXPECT_EQ(divide.params[2].direction, ParamDirection::kOut);
  const MethodDecl& acc = calc.methods[2];
  EXPECT_EQ(acc.ordinal, 3u);
  EXPECT_EQ(acc.params[0].direction, ParamDirection::kInOut);
  EXPECT_EQ(acc.params[1].type.kind, Kind::kSequence);
  const MethodDecl& log = calc.methods[3];
  EXPECT_TRUE(log.oneway);
  EXPECT_FALSE(acc.oneway);
  EXPECT_EQ(log.ordinal, 4u);
  EXPECT_EQ(calc.methods[4].ordinal, 10u);
  EXPECT_EQ(calc.methods[4].return_type.resolved_struct->name, "Vertex");
  EXPECT_EQ(calc.methods[4].params[0].type.resolved_struct->name, "Shape");
  EXPECT_EQ(calc.methods[5].ordinal, 11u);
}

TEST_F(FrontendTest, ParsingAgainReturnsTheSameFile) {
  const File* first = ParseCalc();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(frontend_.Parse("root/./calc.idl"), first);
  EXPECT_THAT(frontend_.files(), SizeIs(2));
}

TEST(FrontendScopes, InnerScopesShadowOuterOnes) {
  Frontend frontend({});
  frontend.AddVirtualFile("s.idl", R"(package s;
struct Item { int32 outer; }
struct Box {
  struct Item { string inner; }
  Item item;      // Box.Item
  s.Item global;  // package-qualified
  Box.Item again;
}
struct Other { Box.Item x; Item y; }
)");
  const File* file = frontend.Parse("s.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  const StructDecl* outer = file->structs[0].get();
  const StructDecl* box = file->structs[1].get();
  const StructDecl* inner = box->nested_structs[0].get();
  EXPECT_EQ(box->fields[0].type.resolved_struct, inner);
  EXPECT_EQ(box->fields[1].type.resolved_struct, outer);
  EXPECT_EQ(box->fields[2].type.resolved_struct, inner);
  EXPECT_EQ(file->structs[2]->fields[0].type.resolved_struct, inner);
  EXPECT_EQ(file->structs[2]->fields[1].type.resolved_struct, outer);
}

TEST(FrontendImports, SamePackageAcrossFilesAndIncludeDirs) {
  Frontend frontend({"inc", "other"});
  frontend.AddVirtualFile("other/lib/base.idl",
                          "package app;\nstruct Base { int32 id; }\n");
  frontend.AddVirtualFile("src/app.idl", R"(package app;
import "lib/base.idl";
struct Derived { Base base; app.Base again; }
)");
  const File* file = frontend.Parse("src/app.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  const File* base = file->imports[0].file;
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(base->path, "other/lib/base.idl");
  EXPECT_EQ(base->relative_path, "lib/base.idl");
  EXPECT_EQ(file->structs[0]->fields[0].type.resolved_struct,
            base->structs[0].get());
  EXPECT_EQ(file->structs[0]->fields[1].type.resolved_struct,
            base->structs[0].get());
}

TEST(FrontendImports, RootFoundThroughIncludeDirGetsRelativePath) {
  Frontend frontend({"inc"});
  frontend.AddVirtualFile("inc/a/b.idl", "package a;\nstruct B { }\n");
  const File* file = frontend.Parse("a/b.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  EXPECT_EQ(file->path, "inc/a/b.idl");
  EXPECT_EQ(file->relative_path, "a/b.idl");
}

TEST(FrontendImports, DuplicateNameAcrossFilesOfOnePackage) {
  Frontend frontend({});
  frontend.AddVirtualFile("a.idl", "package p;\nstruct S { }\n");
  frontend.AddVirtualFile("b.idl", "package p;\nimport \"a.idl\";\nstruct S { }\n");
  EXPECT_EQ(frontend.Parse("b.idl"), nullptr);
  EXPECT_THAT(frontend.FormatDiagnostics(),
              HasSubstr("b.idl:3:8: error: duplicate name 'S': previously "
                        "declared at a.idl:2"));
}

TEST(FrontendImports, ReadsFromDisk) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ASSERT_NE(tmp, nullptr);
  std::string dir = std::string(tmp) + "/disk";
  ASSERT_EQ(std::system(("mkdir -p " + dir + "/sub").c_str()), 0);
  std::ofstream(dir + "/sub/dep.idl") << "package dep;\nenum E { A }\n";
  std::ofstream(dir + "/main.idl")
      << "package m;\nimport \"sub/dep.idl\";\nstruct S { dep.E e; }\n";
  Frontend frontend({});
  const File* file = frontend.Parse(dir + "/main.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  EXPECT_EQ(file->structs[0]->fields[0].type.resolved_enum->full_name, "dep.E");

  // Devices and directories are not files.
  Frontend devices({});
  devices.AddVirtualFile("d.idl", "package d;\nimport \"/dev/zero\";\n");
  EXPECT_EQ(devices.Parse("d.idl"), nullptr);
  EXPECT_THAT(devices.FormatDiagnostics(),
              HasSubstr("cannot find import \"/dev/zero\""));

  Frontend no_disk({});
  no_disk.set_disk_access(false);
  EXPECT_EQ(no_disk.Parse(dir + "/main.idl"), nullptr);
  EXPECT_THAT(no_disk.FormatDiagnostics(), HasSubstr("cannot find file"));
}

TEST(FrontendStreams, StreamingMethodsAndAsync) {
  Frontend frontend({});
  frontend.AddVirtualFile("s.idl", R"(package s;
struct Change { string key; }
struct stream { int32 x; }   // 'stream' is a keyword only before '<'
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e5f), version(1.0)]
interface Feed {
  stream<Change> Watch([in] string prefix);
  Change Upload([in] stream<s.Change> samples);
  stream<Change> Process([in] stream<Change> frames);
  [async] int64 Add([in] int64 a, [in] int64 b);
  [async] stream<Change> Tail();
  stream Plain([in] stream stream);
}
)");
  const File* file = frontend.Parse("s.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  const StructDecl* change = file->structs[0].get();
  const auto& m = file->interfaces[0]->methods;
  ASSERT_THAT(m, SizeIs(6));
  EXPECT_EQ(m[0].return_type.kind, Kind::kStream);
  ASSERT_THAT(m[0].return_type.args, SizeIs(1));
  EXPECT_EQ(m[0].return_type.args[0].resolved_struct, change);
  EXPECT_TRUE(m[0].server_streaming());
  EXPECT_FALSE(m[0].client_streaming());
  EXPECT_FALSE(m[1].server_streaming());
  EXPECT_TRUE(m[1].client_streaming());
  EXPECT_EQ(m[1].params[0].type.args[0].resolved_struct, change);
  EXPECT_EQ(TypeToString(m[1].params[0].type), "stream<s.Change>");
  EXPECT_TRUE(m[2].server_streaming() && m[2].client_streaming());
  EXPECT_FALSE(m[2].async);
  EXPECT_TRUE(m[3].async);
  EXPECT_FALSE(m[3].streaming());
  EXPECT_TRUE(m[4].async && m[4].server_streaming());
  // A struct called `stream`, used as a plain type.
  EXPECT_FALSE(m[5].streaming());
  EXPECT_EQ(m[5].return_type.resolved_struct, file->structs[1].get());
  EXPECT_EQ(m[5].params[0].name, "stream");
}

TEST(FrontendErrors, FormatHasLocationLineAndCaret) {
  Frontend frontend({});
  frontend.AddVirtualFile("e.idl", "package e;\nstruct P {\n\tFoo x;\n}\n");
  EXPECT_EQ(frontend.Parse("e.idl"), nullptr);
  ASSERT_THAT(frontend.diagnostics(), SizeIs(1));
  EXPECT_EQ(frontend.diagnostics()[0].Format(),
            "e.idl:3:2: error: unknown type 'Foo'\n\tFoo x;\n\t^\n");
  EXPECT_EQ(frontend.files().size(), 0u);
}

TEST(FrontendErrors, MissingRootFile) {
  Frontend frontend({});
  frontend.set_disk_access(false);
  EXPECT_EQ(frontend.Parse("nope.idl"), nullptr);
  ASSERT_THAT(frontend.diagnostics(), SizeIs(1));
  EXPECT_EQ(frontend.diagnostics()[0].Format(),
            "nope.idl: error: cannot find file \"nope.idl\"\n");
}

TEST(FrontendErrors, StopsAfterAFewErrors) {
  std::string text = "package many;\nstruct S {\n";
  for (int i = 0; i < 200; ++i) {
    text += "  Unknown" + std::to_string(i) + " f" + std::to_string(i) + ";\n";
  }
  text += "}\n";
  Frontend frontend({});
  frontend.AddVirtualFile("m.idl", text);
  EXPECT_EQ(frontend.Parse("m.idl"), nullptr);
  EXPECT_EQ(frontend.diagnostics().size(), DiagnosticSink::kMaxErrors);
  EXPECT_THAT(frontend.diagnostics()[0].message,
              HasSubstr("unknown type 'Unknown0'"));
}

TEST(FrontendErrors, LongLinesAreShownAroundTheColumn) {
  std::string text = "package p; struct S {" + std::string(5000, ' ') +
                     "Bad x; }\n";
  Frontend frontend({});
  frontend.AddVirtualFile("l.idl", text);
  EXPECT_EQ(frontend.Parse("l.idl"), nullptr);
  ASSERT_FALSE(frontend.diagnostics().empty());
  const Diagnostic& d = frontend.diagnostics()[0];
  EXPECT_EQ(d.loc.column, 5022);
  EXPECT_LT(d.source_line.size(), 300u);
  std::string formatted = d.Format();
  size_t caret_line = formatted.rfind('\n', formatted.size() - 2) + 1;
  size_t caret = formatted.find('^', caret_line) - caret_line;
  EXPECT_EQ(d.source_line.substr(caret, 3), "Bad");
}

TEST(FrontendLimits, HugeAndDeepInputsFailCleanly) {
  Frontend frontend({});
  frontend.AddVirtualFile("big.idl", std::string(kMaxFileSize + 1, ' '));
  EXPECT_EQ(frontend.Parse("big.idl"), nullptr);
  EXPECT_THAT(frontend.FormatDiagnostics(), HasSubstr("is too large"));

  std::string deep = "package d; struct S { ";
  for (int i = 0; i < 100000; ++i) deep += "optional<";
  Frontend deep_frontend({});
  deep_frontend.AddVirtualFile("deep.idl", deep);
  EXPECT_EQ(deep_frontend.Parse("deep.idl"), nullptr);
  EXPECT_THAT(deep_frontend.FormatDiagnostics(),
              HasSubstr("type is nested too deeply (limit 64)"));

  std::string chain;
  for (int i = 0; i < 100; ++i) {
    chain = "f" + std::to_string(i) + ".idl";
    std::string next = "f" + std::to_string(i + 1) + ".idl";
    deep_frontend.AddVirtualFile(
        chain, "package p" + std::to_string(i) + ";\nimport \"" + next + "\";\n");
  }
  deep_frontend.AddVirtualFile("f100.idl", "package end;\n");
  EXPECT_EQ(deep_frontend.Parse("f0.idl"), nullptr);
  EXPECT_THAT(deep_frontend.FormatDiagnostics(),
              HasSubstr("imports are nested too deeply"));
}

TEST(FrontendLimits, ManyDeclarationsAndLongValueChains) {
  // A chain of structs each holding the next by value: deep for a recursive
  // walk, so the recursion check must be iterative.
  std::string text = "package chain;\n";
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    text += "struct S" + std::to_string(i) + " { S" + std::to_string(i + 1) +
            " next; }\n";
  }
  text += "struct S" + std::to_string(kCount) + " { S0 loop; }\n";
  Frontend frontend({});
  frontend.AddVirtualFile("c.idl", text);
  EXPECT_EQ(frontend.Parse("c.idl"), nullptr);
  EXPECT_THAT(frontend.FormatDiagnostics(),
              HasSubstr("recursive struct 'S0' contains itself by value"));
}

TEST(NormalizePathTest, Cases) {
  EXPECT_EQ(NormalizePath("a/./b/../c"), "a/c");
  EXPECT_EQ(NormalizePath("/x//y/"), "/x/y");
  EXPECT_EQ(NormalizePath("../a"), "../a");
  EXPECT_EQ(NormalizePath("/../a"), "/a");
  EXPECT_EQ(NormalizePath("a/.."), ".");
}

}  // namespace
}  // namespace lpc::idl
