// lpc::ParseFlags: flags are set, positional arguments come back in order,
// and an unknown flag ends the process with abseil's message.
#include "runtime/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/config.h"

ABSL_FLAG(int, flags_test_count, 1, "a flag of this test");

namespace lpc {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data(), "flags_test ...");
}

TEST(ParseFlagsTest, SetsFlagsAndReturnsPositionalArguments) {
  std::vector<std::string> positional =
      Parse({"flags_test", "put", "--lpc_config=/tmp/x.textproto", "key",
             "--flags_test_count=3", "--", "--not-a-flag"});
  EXPECT_THAT(positional, ElementsAre("put", "key", "--not-a-flag"));
  EXPECT_EQ(absl::GetFlag(FLAGS_lpc_config), "/tmp/x.textproto");
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_count), 3);
  EXPECT_EQ(ConfigPathFromArgsOrEnv(), "/tmp/x.textproto");
}

TEST(ParseFlagsDeathTest, UnknownFlagExitsWithItsName) {
  EXPECT_EXIT(Parse({"flags_test", "--lpc_confg=x"}),
              ::testing::ExitedWithCode(1),
              "Unknown command line flag 'lpc_confg'");
}

TEST(ParseFlagsDeathTest, BadValueExitsWithTheFlagsName) {
  EXPECT_EXIT(Parse({"flags_test", "--flags_test_count=many"}),
              ::testing::ExitedWithCode(1),
              "Illegal value 'many' specified for flag 'flags_test_count'");
}

}  // namespace
}  // namespace lpc
