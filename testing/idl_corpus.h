// Helpers for the tests that run a compiler stage over a corpus of
// malformed .idl files (idl/error_corpus_test, codegen/error_corpus_test).
// Each file's first line names the first diagnostic it must produce:
//   // EXPECT: [file:]line:col: message
#ifndef LPC_TESTING_IDL_CORPUS_H_
#define LPC_TESTING_IDL_CORPUS_H_

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::testing {

// `path` (e.g. "tests/idl_errors") in the test's runfiles.
inline std::string IdlCorpusDir(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string root = srcdir != nullptr ? srcdir : ".";
  return root + "/lpc/" + path;
}

// The .idl files directly in `dir`, sorted.
inline std::vector<std::string> IdlCorpusFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".idl") {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// What the diagnostic's first line must contain, from the file's EXPECT
// line: "/file:line:col: error: message" (the file is `name` unless the
// line names one). Empty, with a test failure, if the line is malformed.
inline std::string WantedDiagnostic(const std::string& dir,
                                    const std::string& name) {
  std::ifstream in(dir + "/" + name);
  std::string first_line;
  const std::string kPrefix = "// EXPECT: ";
  if (!std::getline(in, first_line) || first_line.rfind(kPrefix, 0) != 0) {
    ADD_FAILURE() << name << ": no '" << kPrefix << "' first line";
    return "";
  }
  const std::string expect = first_line.substr(kPrefix.size());
  const size_t msg = expect.find(": ");
  if (msg == std::string::npos) {
    ADD_FAILURE() << name << ": malformed " << first_line;
    return "";
  }
  std::string where = expect.substr(0, msg);
  if (where.find(".idl:") == std::string::npos) where = name + ":" + where;
  return "/" + where + ": error: " + expect.substr(msg + 2);
}

// Checks that `diagnostics` starts with three lines: the message, the
// source line, and a caret under the column. The message holds `wanted`;
// with `whole_message`, `wanted` ends the line (the message in full).
inline void ExpectDiagnosticWithCaret(const std::string& diagnostics,
                                      const std::string& wanted,
                                      bool whole_message) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < diagnostics.size() && lines.size() < 3) {
    size_t nl = diagnostics.find('\n', start);
    if (nl == std::string::npos) nl = diagnostics.size();
    lines.push_back(diagnostics.substr(start, nl - start));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << diagnostics;
  if (whole_message) {
    EXPECT_THAT(lines[0] + "\n", ::testing::HasSubstr(wanted + "\n"));
  } else {
    EXPECT_THAT(lines[0], ::testing::HasSubstr(wanted));
  }
  EXPECT_FALSE(lines[1].empty()) << diagnostics;
  ASSERT_FALSE(lines[2].empty()) << diagnostics;
  EXPECT_EQ(lines[2].back(), '^') << diagnostics;
  EXPECT_EQ(lines[2].find_first_not_of(" \t"), lines[2].size() - 1)
      << diagnostics;
}

// A test name from a file name: every character but letters and digits
// becomes '_'.
inline std::string IdlCorpusTestName(
    const ::testing::TestParamInfo<std::string>& info) {
  std::string out;
  for (char c : info.param) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return out;
}

}  // namespace lpc::testing

#endif  // LPC_TESTING_IDL_CORPUS_H_
