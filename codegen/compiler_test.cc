// The lpcc pipeline as a library: what Compile returns for good input, and
// that it never crashes on (deterministically) mutated input: every result
// is either a full set of outputs or at least one located error.
#include "codegen/compiler.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/lower.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idl/frontend.h"

namespace lpc::codegen {
namespace {

namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& contents) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << contents;
}

std::vector<std::string> Paths(const std::vector<GeneratedFile>& files) {
  std::vector<std::string> out;
  for (const GeneratedFile& f : files) out.push_back(f.path);
  return out;
}

class CompilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    root_ = fs::path(tmp) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    // The seeds: the test service and its import, from the runfiles.
    for (const char* f : {"codegen/testdata/test_service.idl",
                          "codegen/testdata/test_types.idl"}) {
      seeds_.push_back({f, ReadFile(f)});
      ASSERT_FALSE(seeds_.back().second.empty()) << f;
      WriteFile(root_ / f, seeds_.back().second);
    }
  }

  bool Compile(const std::string& input, CompileResult* result) {
    CompileOptions options;
    options.include_dirs = {root_.string()};
    options.input = input;
    return lpc::codegen::Compile(options, result);
  }

  fs::path root_;
  std::vector<std::pair<std::string, std::string>> seeds_;
};

TEST_F(CompilerTest, GoodInputProducesEveryFile) {
  CompileResult result;
  ASSERT_TRUE(Compile("codegen/testdata/test_service.idl", &result))
      << result.diagnostics;
  EXPECT_EQ(result.diagnostics, "");
  EXPECT_THAT(Paths(result.cpp_files),
              UnorderedElementsAre("codegen/testdata/test_service.pb.h",
                                   "codegen/testdata/test_service.pb.cc",
                                   "codegen/testdata/test_service.lpc.h",
                                   "codegen/testdata/test_service.lpc.cc"));
  EXPECT_THAT(Paths(result.proto_files),
              UnorderedElementsAre("codegen/testdata/test_service.proto"));
  for (const GeneratedFile& f : result.cpp_files) EXPECT_FALSE(f.contents.empty());
}

TEST_F(CompilerTest, WriteFilesWritesAndReplaces) {
  std::string a = "first";
  std::string b = "second";
  fs::path out = root_ / "out";
  ASSERT_TRUE(WriteFiles({{(out / "x/a.txt").string(), &a},
                          {(out / "y/z/b.txt").string(), &b}})
                  .ok());
  EXPECT_EQ(ReadFile(out / "x/a.txt"), "first");
  EXPECT_EQ(ReadFile(out / "y/z/b.txt"), "second");
  ASSERT_TRUE(WriteFiles({{(out / "x/a.txt").string(), &b}}).ok());
  EXPECT_EQ(ReadFile(out / "x/a.txt"), "second");
  // A failure part-way leaves none of the new files.
  WriteFile(root_ / "file", "");
  absl::Status s = WriteFiles({{(out / "new.txt").string(), &a},
                               {(root_ / "file/under_a_file").string(), &a}});
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fs::exists(out / "new.txt"));
  for (const auto& e : fs::recursive_directory_iterator(root_)) {
    EXPECT_THAT(e.path().string(), ::testing::Not(HasSubstr("lpcc-tmp")));
  }
}

// Conflicts that protobuf would report with no line or in its own words
// are reported at the IDL declaration, in lpcc's words.
TEST_F(CompilerTest, ProtobufLevelConflictsAreLocated) {
  WriteFile(root_ / "b.idl", "package b;\nstruct a { int32 x; }\n");
  WriteFile(root_ / "a.idl", "package b.a;\nimport \"b.idl\";\nstruct S { int32 y; }\n");
  CompileResult result;
  EXPECT_FALSE(Compile("a.idl", &result));
  EXPECT_THAT(result.diagnostics,
              HasSubstr("a.idl:1:9: error: package 'b.a' needs the namespace "
                        "'b.a', which is the name of struct b.a in b.idl"));

  WriteFile(root_ / "d.idl", "package q.r;\nstruct Z { int32 x; }\n");
  WriteFile(root_ / "e.idl", "package q;\nimport \"d.idl\";\nstruct r { int32 y; }\n");
  EXPECT_FALSE(Compile("e.idl", &result));
  EXPECT_THAT(result.diagnostics,
              HasSubstr("e.idl:3:8: error: struct q.r has the full name 'q.r', "
                        "which is a package of the imported d.idl"));

  WriteFile(root_ / "j.idl", R"(package j;
[uuid(0b0b0b0b-1111-4222-8333-444444444444), version(1.0)]
interface I {
  void M([in] int32 foo_bar,
         [in] int32 fooBar);
}
)");
  EXPECT_FALSE(Compile("j.idl", &result));
  EXPECT_THAT(result.diagnostics,
              HasSubstr("j.idl:5:21: error: parameter 'fooBar' of I.M and "
                        "parameter 'foo_bar' of I.M both get the JSON name "
                        "'fooBar' in message MRequest"));
  EXPECT_THAT(result.diagnostics, Not(HasSubstr("protobuf rejects")));
}

// libprotoc's C++ generator recurses along a chain of structs that hold one
// another; lpcc bounds the chain before it gets there.
TEST_F(CompilerTest, LongStructChainIsRefused) {
  auto chain = [](int n) {
    std::string text = "package c;\n";
    for (int i = 0; i + 1 < n; ++i) {
      text += "struct A" + std::to_string(i) + " { A" + std::to_string(i + 1) +
              " next; }\n";
    }
    return text + "struct A" + std::to_string(n - 1) + " { int32 x; }\n";
  };
  WriteFile(root_ / "long.idl", chain(5000));
  CompileResult result;
  EXPECT_FALSE(Compile("long.idl", &result));
  EXPECT_THAT(result.diagnostics,
              HasSubstr("long.idl:2:8: error: struct A0 starts a chain of more "
                        "than 1000 structs"));
  WriteFile(root_ / "ok.idl", chain(1000));
  EXPECT_TRUE(Compile("ok.idl", &result)) << result.diagnostics;
}

// docs/idl.md's struct nesting limit is protobuf's: 31 levels build, 32 do
// not, and the refusal is the front end's.
TEST_F(CompilerTest, StructNestingLimitIsProtobufs) {
  auto nest = [](int n) {
    std::string text = "package n;\n";
    for (int i = 0; i < n; ++i) text += "struct S" + std::to_string(i) + " { ";
    text += "int32 x; ";
    for (int i = 0; i < n; ++i) text += "} ";
    return text + "\n";
  };
  WriteFile(root_ / "n31.idl", nest(31));
  CompileResult result;
  EXPECT_TRUE(Compile("n31.idl", &result)) << result.diagnostics;
  WriteFile(root_ / "n32.idl", nest(32));
  EXPECT_FALSE(Compile("n32.idl", &result));
  EXPECT_THAT(result.diagnostics,
              HasSubstr("error: structs are nested too deeply (limit 31)"));
  EXPECT_THAT(result.diagnostics, Not(HasSubstr("protobuf")));
}

// Deterministic mutations of the seeds; bounded in count.
TEST_F(CompilerTest, MutatedInputNeverCrashes) {
  const std::vector<std::string> kTokens = {
      "int8",  "sequence<int8>", "map<int16, Record>", "optional<Record>",
      "[oneway]", "@7", "result", "value", "ctx", "done", "AddRequest",
      "Descriptor", "Dispatch", "TesterClient", "lpc_internal", "{", "}",
      ";", "(", ")", "<", ">", ",", "\"", "/*", "//", "\\", "\n", "struct X {}",
      "has_s", "descriptor", "Record.Inner", "import \"x.idl\";", "0x7fffffff"};
  std::mt19937 rng(20240607);
  int compiled = 0;
  int rejected = 0;
  constexpr int kIterations = 120;
  for (int i = 0; i < kIterations; ++i) {
    const auto& [path, text] = seeds_[rng() % seeds_.size()];
    std::string t = text;
    switch (rng() % 4) {
      case 0: {  // Delete a span.
        size_t p = rng() % t.size();
        t.erase(p, 1 + rng() % 20);
        break;
      }
      case 1: {  // Insert a token.
        size_t p = rng() % (t.size() + 1);
        t.insert(p, " " + kTokens[rng() % kTokens.size()] + " ");
        break;
      }
      case 2: {  // Duplicate a line elsewhere.
        size_t a = rng() % t.size();
        size_t line_start = t.rfind('\n', a);
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        size_t line_end = t.find('\n', a);
        if (line_end == std::string::npos) line_end = t.size();
        std::string line = t.substr(line_start, line_end - line_start) + "\n";
        t.insert(rng() % (t.size() + 1), line);
        break;
      }
      default: {  // Flip a byte.
        size_t p = rng() % t.size();
        t[p] = static_cast<char>(rng() % 256);
        break;
      }
    }
    WriteFile(root_ / path, t);
    CompileResult result;
    bool ok = Compile("codegen/testdata/test_service.idl", &result);
    if (ok) {
      ++compiled;
      EXPECT_EQ(result.cpp_files.size(), 4u);
      EXPECT_EQ(result.proto_files.size(), 1u);
    } else {
      ++rejected;
      EXPECT_THAT(result.diagnostics, HasSubstr("error: ")) << t;
      EXPECT_THAT(result.diagnostics, ContainsRegex("^[^ ]+\\.idl(:[0-9]+:[0-9]+)?: error: "))
          << result.diagnostics;
    }
    WriteFile(root_ / path, text);
  }
  // Both outcomes must have happened, or the mutations test nothing.
  EXPECT_GT(compiled, 0);
  EXPECT_GT(rejected, 0);
}

constexpr char kBufferIdl[] = R"(package buf;
[uuid(0b0b0b0b-1111-4222-8333-555555555555), version(1.0)]
interface Frames {
  buffer Invert([in] int32 w, [in] buffer frame);
  [oneway] void Show([in] buffer frame);
}
)";

// A buffer (docs/zero-copy.md) is an ordinary bytes field in the .proto,
// numbered in place like any other parameter or the result.
TEST(LowerTest, BufferIsBytes) {
  idl::Frontend frontend({});
  frontend.AddVirtualFile("buf.idl", kBufferIdl);
  const idl::File* file = frontend.Parse("buf.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  google::protobuf::FileDescriptorProto proto;
  std::vector<CodegenError> errors;
  ASSERT_TRUE(LowerFile(*file, &proto, &errors, nullptr));
  using FT = google::protobuf::FieldDescriptorProto;
  std::map<std::string, const google::protobuf::DescriptorProto*> messages;
  for (const auto& m : proto.message_type()) messages[m.name()] = &m;
  ASSERT_EQ(messages.count("InvertRequest"), 1u);
  const auto& req = *messages["InvertRequest"];
  ASSERT_EQ(req.field_size(), 2);
  EXPECT_EQ(req.field(0).type(), FT::TYPE_INT32);
  EXPECT_EQ(req.field(1).name(), "frame");
  EXPECT_EQ(req.field(1).number(), 2);
  EXPECT_EQ(req.field(1).type(), FT::TYPE_BYTES);
  EXPECT_EQ(req.field(1).label(), FT::LABEL_OPTIONAL);
  EXPECT_FALSE(req.field(1).proto3_optional());
  const auto& resp = *messages["InvertResponse"];
  ASSERT_EQ(resp.field_size(), 1);
  EXPECT_EQ(resp.field(0).number(), 1);
  EXPECT_EQ(resp.field(0).type(), FT::TYPE_BYTES);
  EXPECT_EQ(messages["ShowRequest"]->field(0).type(), FT::TYPE_BYTES);
}

// The C++ stubs of buffer methods are emitted.
TEST_F(CompilerTest, BufferMethodsCompile) {
  WriteFile(root_ / "buf.idl", kBufferIdl);
  CompileResult result;
  EXPECT_TRUE(Compile("buf.idl", &result)) << result.diagnostics;
}

}  // namespace
}  // namespace lpc::codegen
