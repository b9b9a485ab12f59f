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
// usage line, and a --help that lists, beside the flags of the program's
// main file (<program>.cc, abseil's default), those of the other files in
// that file's directory and lpc's own (--lpc_config, from runtime/config.cc).
// As with absl::ParseCommandLine:
//   --help         prints the usage line and those flags to stdout and exits
//                  1 (abseil's convention);
//   --helpfull     lists every flag linked into the binary;
//   an unknown flag, or a value that does not parse, prints
//                  "ERROR: Unknown command line flag 'x'" (or "Illegal
//                  value ...") to stderr and exits 1;
//   "--"           ends the flags: everything after it is positional.
// It can be called at most once per process (abseil exits on a second
// usage message).
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
