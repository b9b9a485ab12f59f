// Runs the front end over every malformed file in tests/idl_errors/ and
// checks that the first diagnostic is the one the file's first line expects:
//   // EXPECT: [file:]line:col: message
// and that it is printed with its source line and a caret.
#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idl/frontend.h"
#include "testing/idl_corpus.h"

namespace lpc::idl {
namespace {

using ::lpc::testing::IdlCorpusFiles;

std::string CorpusDir() {
  return ::lpc::testing::IdlCorpusDir("tests/idl_errors");
}

std::vector<std::string> CorpusFiles() { return IdlCorpusFiles(CorpusDir()); }

TEST(ErrorCorpusTest, HasEnoughFiles) {
  EXPECT_GE(CorpusFiles().size(), 35u) << "in " << CorpusDir();
}

class ErrorCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(ErrorCorpus, ReportsTheExpectedError) {
  const std::string dir = CorpusDir();
  const std::string name = GetParam();
  const std::string wanted = ::lpc::testing::WantedDiagnostic(dir, name);
  ASSERT_FALSE(wanted.empty());

  Frontend frontend({dir});
  EXPECT_EQ(frontend.Parse(dir + "/" + name), nullptr);
  ASSERT_FALSE(frontend.diagnostics().empty());
  const Diagnostic& d = frontend.diagnostics()[0];
  std::string formatted = d.Format();
  // Exactly three lines: the message, the source line, and a caret line.
  EXPECT_EQ(std::count(formatted.begin(), formatted.end(), '\n'), 3)
      << formatted;
  ::lpc::testing::ExpectDiagnosticWithCaret(formatted, wanted,
                                            /*whole_message=*/false);
}

INSTANTIATE_TEST_SUITE_P(Corpus, ErrorCorpus,
                         ::testing::ValuesIn(CorpusFiles()),
                         ::lpc::testing::IdlCorpusTestName);

}  // namespace
}  // namespace lpc::idl
