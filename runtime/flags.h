// Command-line flags for lpc programs, through absl flags.
//
//   ABSL_FLAG(std::string, name, "kv", "the config's server entry to serve");
//
//   int main(int argc, char** argv) {
//     std::vector<std::string> args =
//         lpc::ParseFlags(argc, argv, "kv_client --lpc_config=<file> put K V");
//     ...
//   }
//
// ParseFlags is absl::ParseCommandLine with two additions: the program's
// usage line, and a --help that lists lpc's own flags (--lpc_config, defined
// in runtime/config.cc) beside the ones defined in the program's main file.
// As with absl::ParseCommandLine:
//   --help         prints the usage line and those flags to stdout, exits 0;
//   --helpfull     lists every flag linked into the binary;
//   an unknown flag prints "ERROR: Unknown command line flag 'x'" to stderr
//                  and exits 1;
//   "--"           ends the flags: everything after it is positional.
//
// Thread safety: call it once, from main, before any other thread starts.
#ifndef LPC_RUNTIME_FLAGS_H_
#define LPC_RUNTIME_FLAGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace lpc {

// Parses every flag in argv (exiting as above on --help or a bad flag) and
// returns the positional arguments, without the program name.
std::vector<std::string> ParseFlags(int argc, char** argv, std::string_view usage);

}  // namespace lpc

#endif  // LPC_RUNTIME_FLAGS_H_
