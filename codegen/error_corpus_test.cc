// Runs lpcc's pipeline (Compile) over every file in
// tests/idl_errors/generated/: IDL the front end accepts but whose generated
// C++ would declare a name twice. Checks that the first diagnostic is the
// one the file's first line expects,
//   // EXPECT: line:col: message
// (the whole message) printed with its source line and a caret.
#include <string>
#include <vector>

#include "codegen/compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/idl_corpus.h"

namespace lpc::codegen {
namespace {

std::string CorpusDir() {
  return ::lpc::testing::IdlCorpusDir("tests/idl_errors/generated");
}

std::vector<std::string> CorpusFiles() {
  return ::lpc::testing::IdlCorpusFiles(CorpusDir());
}

TEST(GeneratedNamesCorpusTest, HasEveryFile) {
  EXPECT_GE(CorpusFiles().size(), 6u) << "in " << CorpusDir();
}

class GeneratedNamesCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(GeneratedNamesCorpus, ReportsTheExpectedError) {
  const std::string dir = CorpusDir();
  const std::string name = GetParam();
  const std::string wanted = ::lpc::testing::WantedDiagnostic(dir, name);
  ASSERT_FALSE(wanted.empty());

  CompileOptions options;
  options.include_dirs = {dir};
  options.input = dir + "/" + name;
  CompileResult result;
  EXPECT_FALSE(Compile(options, &result));
  // The first diagnostic: the whole message, the source line, a caret line.
  ::lpc::testing::ExpectDiagnosticWithCaret(result.diagnostics, wanted,
                                            /*whole_message=*/true);
}

INSTANTIATE_TEST_SUITE_P(Files, GeneratedNamesCorpus,
                         ::testing::ValuesIn(CorpusFiles()),
                         ::lpc::testing::IdlCorpusTestName);

}  // namespace
}  // namespace lpc::codegen
