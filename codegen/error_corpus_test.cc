// Runs lpcc's pipeline (Compile) over every file in
// tests/idl_errors/generated/: IDL the front end accepts but whose generated
// C++ would declare a name twice. Checks that the first diagnostic is the
// one the file's first line expects,
//   // EXPECT: line:col: message
// (the whole message) printed with its source line and a caret.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "codegen/compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::codegen {
namespace {

std::string CorpusDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string root = srcdir != nullptr ? srcdir : ".";
  return root + "/lpc/tests/idl_errors/generated";
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".idl") {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(GeneratedNamesCorpusTest, HasEveryFile) {
  EXPECT_GE(CorpusFiles().size(), 6u) << "in " << CorpusDir();
}

class GeneratedNamesCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(GeneratedNamesCorpus, ReportsTheExpectedError) {
  const std::string dir = CorpusDir();
  const std::string name = GetParam();
  std::ifstream in(dir + "/" + name);
  std::string first_line;
  ASSERT_TRUE(std::getline(in, first_line));
  const std::string kPrefix = "// EXPECT: ";
  ASSERT_EQ(first_line.rfind(kPrefix, 0), 0u) << first_line;
  const std::string expect = first_line.substr(kPrefix.size());
  const size_t msg = expect.find(": ");
  ASSERT_NE(msg, std::string::npos);
  const std::string wanted = "/" + name + ":" + expect.substr(0, msg) +
                             ": error: " + expect.substr(msg + 2) + "\n";

  CompileOptions options;
  options.include_dirs = {dir};
  options.input = dir + "/" + name;
  CompileResult result;
  EXPECT_FALSE(Compile(options, &result));
  // The first diagnostic: the message, the source line, a caret line.
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < result.diagnostics.size() && lines.size() < 3) {
    size_t nl = result.diagnostics.find('\n', start);
    if (nl == std::string::npos) nl = result.diagnostics.size();
    lines.push_back(result.diagnostics.substr(start, nl - start));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << result.diagnostics;
  EXPECT_THAT(lines[0] + "\n", ::testing::HasSubstr(wanted));
  EXPECT_FALSE(lines[1].empty()) << result.diagnostics;
  EXPECT_EQ(lines[2].back(), '^') << result.diagnostics;
  EXPECT_EQ(lines[2].find_first_not_of(" \t"), lines[2].size() - 1);
}

INSTANTIATE_TEST_SUITE_P(
    Files, GeneratedNamesCorpus, ::testing::ValuesIn(CorpusFiles()),
    [](const ::testing::TestParamInfo<std::string>& info) {
      std::string n = info.param.substr(0, info.param.size() - 4);
      for (char& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

}  // namespace
}  // namespace lpc::codegen
