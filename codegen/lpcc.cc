// lpcc: the lpc IDL compiler. Reads one .idl file (and its imports) and
// writes protobuf message classes, lpc client/service stubs and a .proto for
// gRPC interop. See `lpcc --help` and docs/codegen.md.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/compiler.h"

namespace {

constexpr char kUsage[] =
    "Usage: lpcc [-I <dir>]... [--cpp_out=<dir>] [--proto_out=<dir>] "
    "<file.idl>\n"
    "\n"
    "Compiles one lpc IDL file. For a file whose path relative to the -I\n"
    "directory it is found in is a/b/foo.idl, writes:\n"
    "  <cpp_out>/a/b/foo.pb.h, foo.pb.cc    protobuf message classes\n"
    "  <cpp_out>/a/b/foo.lpc.h, foo.lpc.cc  lpc client stubs and services\n"
    "  <proto_out>/a/b/foo.proto            the equivalent .proto (gRPC)\n"
    "\n"
    "Options:\n"
    "  -I <dir>, -I<dir>, --include=<dir>\n"
    "                     Search <dir> for the input and its imports (in\n"
    "                     order). Without -I, the current directory.\n"
    "  --cpp_out=<dir>    Write the C++ files under <dir>.\n"
    "  --proto_out=<dir>  Write the .proto file under <dir>.\n"
    "  -h, --help         Print this help and exit.\n"
    "\n"
    "At least one of --cpp_out and --proto_out is required. On any error\n"
    "lpcc prints file:line:col: error: ... diagnostics, writes no file, and\n"
    "exits with status 1.\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "lpcc: error: %s\nRun 'lpcc --help' for usage.\n",
               message.c_str());
  return 1;
}

bool TakeValue(std::string_view arg, std::string_view flag, std::string* out) {
  if (arg.size() <= flag.size() || arg.substr(0, flag.size()) != flag) {
    return false;
  }
  *out = std::string(arg.substr(flag.size()));
  return true;
}

std::string JoinPath(const std::string& dir, const std::string& rel) {
  if (dir.empty()) return rel;
  if (dir.back() == '/') return dir + rel;
  return dir + "/" + rel;
}

}  // namespace

int main(int argc, char** argv) {
  lpc::codegen::CompileOptions options;
  std::string cpp_out;
  std::string proto_out;
  bool have_cpp = false;
  bool have_proto = false;
  std::vector<std::string> inputs;

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string value;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-I") {
      if (i + 1 >= argc) return UsageError("-I needs a directory");
      options.include_dirs.push_back(argv[++i]);
    } else if (TakeValue(arg, "--include=", &value) ||
               TakeValue(arg, "-I", &value)) {
      options.include_dirs.push_back(value);
    } else if (TakeValue(arg, "--cpp_out=", &value)) {
      cpp_out = value;
      have_cpp = true;
    } else if (TakeValue(arg, "--proto_out=", &value)) {
      proto_out = value;
      have_proto = true;
    } else if (arg == "--cpp_out=" || arg == "--proto_out=" ||
               arg == "--include=") {
      return UsageError(std::string(arg) + " needs a directory");
    } else if (arg == "--") {
      for (++i; i < argc; ++i) inputs.push_back(argv[i]);
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError("unknown flag '" + std::string(arg) + "'");
    } else {
      inputs.push_back(std::string(arg));
    }
  }
  if (inputs.empty()) return UsageError("no input file");
  if (inputs.size() > 1) {
    return UsageError("exactly one input file is expected, got " +
                      std::to_string(inputs.size()));
  }
  if (!have_cpp && !have_proto) {
    return UsageError("nothing to do: give --cpp_out and/or --proto_out");
  }
  if (options.include_dirs.empty()) options.include_dirs.push_back(".");
  options.input = inputs[0];

  lpc::codegen::CompileResult result;
  if (!lpc::codegen::Compile(options, &result)) {
    // fwrite, not fputs: a source line may hold a NUL byte.
    std::fwrite(result.diagnostics.data(), 1, result.diagnostics.size(), stderr);
    return 1;
  }
  std::vector<lpc::codegen::OutputFile> files;
  if (have_cpp) {
    for (const auto& f : result.cpp_files) {
      files.push_back({JoinPath(cpp_out, f.path), &f.contents});
    }
  }
  if (have_proto) {
    for (const auto& f : result.proto_files) {
      files.push_back({JoinPath(proto_out, f.path), &f.contents});
    }
  }
  absl::Status written = lpc::codegen::WriteFiles(files);
  if (!written.ok()) {
    std::fprintf(stderr, "lpcc: error: %s\n",
                 std::string(written.message()).c_str());
    return 1;
  }
  return 0;
}
