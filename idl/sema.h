// Semantic analysis of the lpc IDL: resolves type names across scopes and
// imports, assigns ordinals and full names, converts constants, and enforces
// the language rules of docs/idl.md.
//
// Thread safety: none; an Analyzer belongs to one Frontend.
#ifndef LPC_IDL_SEMA_H_
#define LPC_IDL_SEMA_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idl/ast.h"
#include "idl/diagnostics.h"
#include "idl/parser.h"

namespace lpc::idl {

namespace internal {
class FileAnalysis;  // idl/internal/file_analysis.h
}  // namespace internal

// Analyses files one at a time, imports first; keeps the symbol tables of
// every file it has accepted so that later files can refer to them.
class Analyzer {
 public:
  explicit Analyzer(DiagnosticSink* sink);
  ~Analyzer();

  // Analyses `parsed` (the text of which is `source`). Every file in
  // `parsed.file->imports` must already have been analysed successfully.
  // Returns false after reporting at least one error; the file's symbols are
  // then not remembered.
  bool Analyze(ParsedFile& parsed, std::string_view source);

  // One declared name in a scope.
  struct Symbol {
    enum class Kind {
      kStruct, kEnum, kInterface, kConst, kEnumerator, kContext
    };
    Kind kind = Kind::kStruct;
    const void* decl = nullptr;
    SourceLocation loc;
  };
  // Names of one scope (a File or a StructDecl).
  using SymbolTable = std::unordered_map<std::string, Symbol>;

 private:
  friend class internal::FileAnalysis;

  DiagnosticSink* sink_;
  // Members of every analysed file and struct, keyed by File*/StructDecl*.
  std::unordered_map<const void*, SymbolTable> scopes_;
  // Top-level names per package (dotted), for duplicates across files.
  std::map<std::string, SymbolTable> packages_;
  // Interface uuids seen so far and the interface that owns each.
  std::map<std::string, const InterfaceDecl*> uuids_;
};

}  // namespace lpc::idl

#endif  // LPC_IDL_SEMA_H_
