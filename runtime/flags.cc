// ParseFlags: absl::ParseCommandLine with lpc's flags shown by --help.
#include "runtime/flags.h"

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lpc {
namespace {

// The part of `path` after its last '/', and the part up to and with it.
absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}
absl::string_view Dirname(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? "" : path.substr(0, slash + 1);
}

// absl's own test for the program's main file: <program>.cc or
// <program>_main.cc (with any extension).
bool IsMainFile(absl::string_view file, absl::string_view program) {
  absl::string_view base = Basename(file);
  return absl::ConsumePrefix(&base, program) &&
         (absl::StartsWith(base, ".") || absl::StartsWith(base, "_main."));
}

}  // namespace

std::vector<std::string> ParseFlags(int argc, char** argv, std::string_view usage) {
  const std::string program(argc > 0 ? Basename(argv[0]) : "");
  absl::SetProgramUsageMessage(
      absl::StrCat("usage: ", absl::string_view(usage.data(), usage.size())));
  // absl's default --help lists the flags of the main file only. lpc's also
  // lists those of the main file's directory (a binary's helper files, such
  // as bench/bench_util.cc) and of runtime/config.cc, home of --lpc_config.
  std::string main_dir;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string file = flag->Filename();
    if (IsMainFile(file, program)) {
      main_dir = std::string(Dirname(file));
      break;
    }
  }
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [program, main_dir](absl::string_view file) {
    if (absl::EndsWith(file, "runtime/config.cc") || IsMainFile(file, program)) {
      return true;
    }
    return !main_dir.empty() && Dirname(file) == main_dir;
  };
  absl::SetFlagsUsageConfig(config);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  // positional[0] is the program name.
  return std::vector<std::string>(positional.begin() + (positional.empty() ? 0 : 1),
                                  positional.end());
}

}  // namespace lpc
