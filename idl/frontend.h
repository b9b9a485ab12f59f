// The lpc IDL front end: reads .idl files and their imports, parses them and
// runs semantic analysis, producing the syntax tree of ast.h.
//
// Usage:
//   lpc::idl::Frontend frontend({"include/dir"});
//   const lpc::idl::File* file = frontend.Parse("calc/calc.idl");
//   if (file == nullptr) {
//     for (const auto& d : frontend.diagnostics()) fputs(d.Format().c_str(), stderr);
//   }
//
// The language is described in docs/idl.md. The front end never crashes or
// hangs on any input; malformed input yields diagnostics. Inputs are bounded
// by the limits below.
//
// Thread safety: a Frontend is not thread-safe. The Files it returns are
// owned by it, immutable, and live as long as it does.
#ifndef LPC_IDL_FRONTEND_H_
#define LPC_IDL_FRONTEND_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idl/ast.h"
#include "idl/diagnostics.h"

namespace lpc::idl {

class Analyzer;  // sema.h

// Safety limits, part of the language definition (docs/idl.md).
inline constexpr size_t kMaxFileSize = 8 << 20;  // Bytes per .idl file.
inline constexpr int kMaxNestingDepth = 64;      // Type arguments (a<b<c>>).
// Structs in structs, counting the outermost: protobuf refuses 32 levels of
// nested messages.
inline constexpr int kMaxStructNestingDepth = 31;
// Structs that hold each other in a chain (A holds B, B holds C, ...),
// through fields of any type; libprotoc's C++ generator recurses along it.
// Checked by lpcc (codegen/), not by the front end.
inline constexpr int kMaxStructChainLength = 1000;
inline constexpr int kMaxImportDepth = 64;       // Length of an import chain.
inline constexpr size_t kMaxFiles = 1024;        // Files per Frontend.

// Ordinal bounds (fields and methods), as in protobuf field numbers.
inline constexpr uint32_t kMinOrdinal = 1;
inline constexpr uint32_t kMaxOrdinal = 536870911;
inline constexpr uint32_t kReservedOrdinalFirst = 19000;
inline constexpr uint32_t kReservedOrdinalLast = 19999;

class Frontend {
 public:
  // `include_dirs` are searched, in order, for imports that are not found
  // relative to the importing file's directory.
  explicit Frontend(std::vector<std::string> include_dirs);
  ~Frontend();

  Frontend(const Frontend&) = delete;
  Frontend& operator=(const Frontend&) = delete;

  // Makes `contents` visible as file `path` (used by tests and the fuzzer
  // instead of the disk; looked up before the disk). Paths are compared after
  // lexical normalisation ("a/./b/../c" is "a/c").
  void AddVirtualFile(std::string path, std::string contents);

  // When false, only virtual files are visible (the fuzzer uses this).
  // Default: true.
  void set_disk_access(bool enabled) { disk_access_ = enabled; }

  // Parses `path` and, transitively, its imports (searched relative to the
  // importing file's dir, then each include dir), then runs semantic analysis
  // over all of them. Returns nullptr on any error; diagnostics() then holds
  // at least one. Never crashes or hangs on any input. A file already parsed
  // by an earlier call is returned again without being re-read.
  // `path` is looked up as given, then (if relative) in each include dir.
  // The root's File::relative_path is its path with the first include dir
  // that contains it removed, else the normalised path; an import's is the
  // import path (found via an include dir) or joined to the importer's
  // relative directory (found beside the importer).
  const File* Parse(const std::string& path);

  // Every error reported so far, in order; at most
  // DiagnosticSink::kMaxErrors over the Frontend's life.
  const std::vector<Diagnostic>& diagnostics() const;

  // All diagnostics formatted and concatenated (for tools and tests).
  std::string FormatDiagnostics() const;

  // All files parsed (and analysed) successfully so far, imports before
  // importers.
  std::vector<const File*> files() const;

 private:
  struct Loaded;

  // Reads and parses the file at `key` and, recursively, its imports.
  // `import_loc`/`import_source` locate the import statement (or are empty
  // for the root). Returns nullptr after reporting an error.
  Loaded* Load(const std::string& key, const std::string& relative_path,
               int depth, const SourceLocation& import_loc,
               std::string_view import_source);
  // Finds an import's file; returns false when it does not exist.
  bool ResolveImport(const Loaded& importer, const std::string& import_path,
                     std::string* key, std::string* relative_path) const;
  // Whether a file exists (virtual, or a regular file on disk if allowed).
  bool Exists(const std::string& key) const;
  // Reads a file into `*contents`; on failure returns the reason.
  bool Read(const std::string& key, std::string* contents,
            std::string* error) const;

  std::vector<std::string> include_dirs_;
  std::map<std::string, std::string> virtual_files_;
  bool disk_access_ = true;
  DiagnosticSink sink_;
  std::unique_ptr<Analyzer> analyzer_;
  // Every file loaded, by normalised path; `order_` lists them imports first.
  std::map<std::string, std::unique_ptr<Loaded>> loaded_;
  std::vector<Loaded*> order_;
  // The chain of files being loaded right now, for import cycle detection.
  std::vector<Loaded*> loading_;
};

// Returns `path` with "." and "x/.." components removed and repeated slashes
// collapsed. Leading ".." components of relative paths are kept.
std::string NormalizePath(const std::string& path);

// Spells a type as it would be written in IDL, e.g. "map<string, a.b.Point>".
// Named types are written with their resolved full name when resolved.
std::string TypeToString(const TypeRef& type);

// "handle", "handle<memfd>", "handle<memfd, sealed>", ...
std::string HandleTypeName(TypeRef::HandleKind kind);

}  // namespace lpc::idl

#endif  // LPC_IDL_FRONTEND_H_
