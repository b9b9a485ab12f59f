// ParseFlags: absl::ParseCommandLine with lpc's flags shown by --help.
#include "runtime/flags.h"

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lpc {
namespace {

// The part of `path` after its last '/'.
absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::vector<std::string> ParseFlags(int argc, char** argv, std::string_view usage) {
  const std::string program(argc > 0 ? Basename(argv[0]) : "");
  absl::SetProgramUsageMessage(
      absl::StrCat("usage: ", absl::string_view(usage.data(), usage.size())));
  absl::FlagsUsageConfig config;
  // absl's default for --help: the flags of <program>.cc (or
  // <program>_main.cc). lpc adds runtime/config.cc, home of --lpc_config.
  config.contains_help_flags = [program](absl::string_view file) {
    if (absl::EndsWith(file, "runtime/config.cc")) return true;
    absl::string_view base = Basename(file);
    return absl::ConsumePrefix(&base, program) &&
           (absl::StartsWith(base, ".") || absl::StartsWith(base, "_main."));
  };
  absl::SetFlagsUsageConfig(config);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  // positional[0] is the program name.
  return std::vector<std::string>(positional.begin() + (positional.empty() ? 0 : 1),
                                  positional.end());
}

}  // namespace lpc
