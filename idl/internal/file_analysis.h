// Semantic analysis of one file (sema.h): the FileAnalysis class, whose
// members are defined by concern in idl/sema.cc (scopes and name lookup),
// idl/internal/sema_types.cc (type resolution and recursion),
// idl/internal/sema_consts.cc (constants and enums) and
// idl/internal/sema_members.cc (fields, methods and the stream rules),
// idl/internal/sema_handles.cc (file descriptors) and
// idl/internal/sema_buffers.cc (the zero-copy `buffer`), and the helpers
// they share. Private to //idl.
//
// Thread safety: none; a FileAnalysis lives for one Analyzer::Analyze call.
#ifndef LPC_IDL_INTERNAL_FILE_ANALYSIS_H_
#define LPC_IDL_INTERNAL_FILE_ANALYSIS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idl/ast.h"
#include "idl/diagnostics.h"
#include "idl/parser.h"
#include "idl/sema.h"

namespace lpc::idl::internal {

using Kind = TypeRef::Kind;
using Symbol = Analyzer::Symbol;
using SymbolTable = Analyzer::SymbolTable;

std::string Join(const std::vector<std::string>& parts, const char* sep);
std::vector<std::string> Split(const std::string& dotted);
bool IsInteger(Kind k);
bool Before(const SourceLocation& a, const SourceLocation& b);

// Where a `buffer` may appear (docs/idl.md); the end of its messages.
inline constexpr char kBufferPlaces[] =
    "a buffer can only be an [in] parameter or the result of a unary method";

// The analysis of one file; lives for one Analyzer::Analyze call.
class FileAnalysis {
 public:
  FileAnalysis(Analyzer* analyzer, ParsedFile& parsed, std::string_view source)
      : a_(analyzer), file_(*parsed.file), literals_(parsed.const_literals),
        source_(source) {}

  bool Run();

 private:
  void Error(const SourceLocation& loc, std::string message) {
    failed_ = true;
    a_->sink_->Report(loc, std::move(message), source_);
  }

  std::string Where(const SourceLocation& loc) const {
    if (loc.file == file_.path) return "line " + std::to_string(loc.line);
    return loc.file + ":" + std::to_string(loc.line);
  }

  void DuplicateError(const std::string& name, const SourceLocation& loc,
                      const SourceLocation& previous) {
    Error(loc, "duplicate name '" + name + "': previously declared at " +
                   Where(previous));
  }

  // Adds the declarations of a scope to `table`, reporting duplicates in
  // source order. `package_table` (file scope only) also receives them and
  // catches duplicates across files of the same package.
  struct Pending {
    std::string name;
    Symbol symbol;
  };
  void AddAll(std::vector<Pending> pending, SymbolTable* table,
              SymbolTable* package_table);

  static void AddEnum(const EnumDecl* e, std::vector<Pending>* pending);

  SymbolTable* NewScope(const void* key);

  void BuildFileScope();

  void BuildStructScope(StructDecl* s, const std::string& outer, int depth);

  const SymbolTable* ScopeOf(const void* key) const;

  const Symbol* Find(const void* scope, const std::string& name) const;

  // Follows parts[1..] from `first` through nested declarations.
  const Symbol* Descend(const Symbol* first,
                        const std::vector<std::string>& parts,
                        size_t from) const;

  // Resolves a dotted name from a scope chain (outermost first; the first
  // entry is the File). Sets `*ambiguous` to a message when several imported
  // packages match. Returns the symbol or nullptr.
  const Symbol* Lookup(const std::string& dotted,
                       const std::vector<const void*>& chain,
                       std::string* ambiguous) const;

  // Resolves named types and enforces the container rules, recursively.
  // `allow_stream`: the type is a method's return type or parameter, where
  // stream<T> may appear (AnalyzeMethod checks the rest of its rules).
  void CheckType(TypeRef* type, const std::vector<const void*>& chain,
                 bool allow_void, int depth, bool allow_stream = false);

  // A stream's element type may not hold a context handle, at any depth.
  void CheckNoContextInStream(const StructDecl* element,
                              const SourceLocation& loc);

  void CheckConstType(ConstDecl* c, const std::vector<const void*>& chain);

  void ConvertConst(ConstDecl* c, const std::vector<const void*>& chain);

  void AnalyzeEnum(const EnumDecl& e);

  void AnalyzeStruct(StructDecl* s, std::vector<const void*>* chain);

  void AnalyzeFields(StructDecl* s, const std::vector<const void*>& chain);

  // Assigns the implicit ordinal (largest so far + 1) and checks uniqueness.
  template <typename Decl, typename NameOf>
  void AssignOrdinal(const std::string& name, const SourceLocation& loc,
                     uint32_t* ordinal, bool is_explicit, uint32_t* largest,
                     std::unordered_map<uint32_t, const Decl*>* used,
                     NameOf name_of, const Decl* decl);

  void AnalyzeInterface(InterfaceDecl* iface,
                        const std::vector<const void*>& chain);

  static std::string DirectionName(ParamDirection d);

  static bool TwoStreams(const MethodDecl& m);

  // Types, [oneway] and the stream<T> rules of one method (docs/idl.md).
  void AnalyzeMethod(MethodDecl* m, const std::vector<const void*>& chain);

  // Rejects structs that contain themselves by value (through fields that
  // are not sequence, map or optional). Iterative, so deep chains cannot
  // exhaust the stack.
  void CheckRecursion();

  // File descriptor handles (idl/internal/sema_handles.cc): sets
  // StructDecl::carries_handle for this file's structs, and refuses a
  // handle in a map or in a streaming method.
  void CheckHandles();
  void MarkHandleStructs();
  void CheckHandleMaps(const TypeRef& type);

  // The zero-copy byte payload (idl/internal/sema_buffers.cc): a method's
  // [in] buffer parameters and buffer result; at most one [in] buffer, none
  // [out], and not in a streaming or [async] method. (Containers, streams,
  // fields and constants refuse a buffer where they are checked.)
  void CheckMethodBuffers(const MethodDecl& m);

  void Rollback();

  Analyzer* a_;
  File& file_;
  const std::map<const ConstDecl*, ConstLiteral>& literals_;
  std::string_view source_;
  std::string package_;
  bool failed_ = false;
  std::vector<const void*> added_scopes_;
  std::vector<std::string> added_package_names_;
  std::vector<std::string> added_uuids_;
};

}  // namespace lpc::idl::internal

#endif  // LPC_IDL_INTERNAL_FILE_ANALYSIS_H_
