// The lpcc driver as a library: runs the IDL front end on one file, lowers
// it and its imports to protobuf descriptors, and produces every output
// file's contents in memory (the .proto text, libprotoc's .pb.h/.pb.cc and
// lpc's .lpc.h/.lpc.cc). Writing them to disk is separate, so that nothing
// is written unless everything succeeded.
//
// Thread safety: Compile and WriteFiles may run concurrently on different
// arguments.
#ifndef LPC_CODEGEN_COMPILER_H_
#define LPC_CODEGEN_COMPILER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace lpc::codegen {

struct CompileOptions {
  // Directories searched for the input's imports, in order. The input's
  // output path is its path relative to the directory it is found in.
  // Default: none.
  std::vector<std::string> include_dirs;
  // The .idl file to compile.
  // Default: none; required.
  std::string input;
};

struct GeneratedFile {
  std::string path;  // Relative to the output directory: "a/b/foo.lpc.h".
  std::string contents;
};

struct CompileResult {
  std::vector<GeneratedFile> cpp_files;    // .pb.h, .pb.cc, .lpc.h, .lpc.cc
  std::vector<GeneratedFile> proto_files;  // .proto
  // On failure: "file:line:col: error: ..." lines (with source excerpts),
  // as the front end formats them.
  std::string diagnostics;
};

// Compiles `options.input`. Returns false (with diagnostics) on any error in
// the input or its imports; never crashes on any input.
bool Compile(const CompileOptions& options, CompileResult* result);

// One file to write: its final path and contents.
struct OutputFile {
  std::string path;
  const std::string* contents;
};

// Writes every file, creating parent directories: first to temporary files
// beside the targets, then renames them all. On any failure removes what it
// wrote and returns the error, so no output file is left behind.
absl::Status WriteFiles(const std::vector<OutputFile>& files);

}  // namespace lpc::codegen

#endif  // LPC_CODEGEN_COMPILER_H_
