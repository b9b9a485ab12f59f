// Runs the front end over every malformed file in tests/idl_errors/ and
// checks that the first diagnostic is the one the file's first line expects:
//   // EXPECT: [file:]line:col: message
// and that it is printed with its source line and a caret.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idl/frontend.h"

namespace lpc::idl {
namespace {

std::string CorpusDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string root = srcdir != nullptr ? srcdir : ".";
  return root + "/lpc/tests/idl_errors";
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(CorpusDir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".idl") {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(ErrorCorpusTest, HasEnoughFiles) {
  EXPECT_GE(CorpusFiles().size(), 35u) << "in " << CorpusDir();
}

class ErrorCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(ErrorCorpus, ReportsTheExpectedError) {
  const std::string dir = CorpusDir();
  const std::string name = GetParam();
  std::ifstream in(dir + "/" + name);
  std::string first_line;
  ASSERT_TRUE(std::getline(in, first_line));
  const std::string kPrefix = "// EXPECT: ";
  ASSERT_EQ(first_line.rfind(kPrefix, 0), 0u) << first_line;
  std::string expect = first_line.substr(kPrefix.size());
  // "[file:]line:col: message" -> "file:line:col: error: message".
  size_t msg = expect.find(": ");
  ASSERT_NE(msg, std::string::npos);
  std::string where = expect.substr(0, msg);
  if (where.find(".idl:") == std::string::npos) where = name + ":" + where;
  std::string wanted = "/" + where + ": error: " + expect.substr(msg + 2);

  Frontend frontend({dir});
  EXPECT_EQ(frontend.Parse(dir + "/" + name), nullptr);
  ASSERT_FALSE(frontend.diagnostics().empty());
  const Diagnostic& d = frontend.diagnostics()[0];
  std::string formatted = d.Format();
  EXPECT_THAT(formatted, ::testing::HasSubstr(wanted));
  // Three lines: the message, the source line, and a caret line.
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < formatted.size()) {
    size_t nl = formatted.find('\n', start);
    lines.push_back(formatted.substr(start, nl - start));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << formatted;
  EXPECT_FALSE(lines[1].empty()) << formatted;
  EXPECT_EQ(lines[2].back(), '^') << formatted;
  EXPECT_EQ(lines[2].find_first_not_of(" \t"), lines[2].size() - 1);
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string out;
  for (char c : info.param) {
    out += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Corpus, ErrorCorpus,
                         ::testing::ValuesIn(CorpusFiles()), TestName);

}  // namespace
}  // namespace lpc::idl
