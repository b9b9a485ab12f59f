// The front end's driver: file lookup, import loading, and analysis order.
#include "idl/frontend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "idl/parser.h"
#include "idl/sema.h"

namespace lpc::idl {
namespace {

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string JoinPath(const std::string& dir, const std::string& path) {
  if (dir.empty() || (!path.empty() && path[0] == '/')) return path;
  return dir + "/" + path;
}

}  // namespace

struct Frontend::Loaded {
  std::string key;
  std::string contents;
  ParsedFile parsed;
  bool failed = false;    // Could not be parsed or analysed.
  bool analysed = false;  // Accepted by the analyzer.
  // While its imports load: the import being followed (for cycle messages).
  const ImportDecl* current_import = nullptr;
};

std::string NormalizePath(const std::string& path) {
  bool absolute = !path.empty() && path[0] == '/';
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(part);
      }
      continue;
    }
    parts.push_back(std::move(part));
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  if (out.empty()) out = ".";
  return out;
}

std::string HandleTypeName(TypeRef::HandleKind kind) {
  using HK = TypeRef::HandleKind;
  switch (kind) {
    case HK::kAny: return "handle";
    case HK::kMemfd: return "handle<memfd>";
    case HK::kSealedMemfd: return "handle<memfd, sealed>";
    case HK::kPipe: return "handle<pipe>";
    case HK::kSocket: return "handle<socket>";
    case HK::kFile: return "handle<file>";
  }
  return "handle";
}

std::string TypeToString(const TypeRef& type) {
  using Kind = TypeRef::Kind;
  auto arg = [&type](size_t i) {
    return i < type.args.size() ? TypeToString(type.args[i]) : "?";
  };
  switch (type.kind) {
    case Kind::kVoid: return "void";
    case Kind::kBool: return "bool";
    case Kind::kInt8: return "int8";
    case Kind::kInt16: return "int16";
    case Kind::kInt32: return "int32";
    case Kind::kInt64: return "int64";
    case Kind::kUint8: return "uint8";
    case Kind::kUint16: return "uint16";
    case Kind::kUint32: return "uint32";
    case Kind::kUint64: return "uint64";
    case Kind::kFloat: return "float";
    case Kind::kDouble: return "double";
    case Kind::kString: return "string";
    case Kind::kBytes: return "bytes";
    case Kind::kSequence: return "sequence<" + arg(0) + ">";
    case Kind::kMap: return "map<" + arg(0) + ", " + arg(1) + ">";
    case Kind::kOptional: return "optional<" + arg(0) + ">";
    case Kind::kStream: return "stream<" + arg(0) + ">";
    case Kind::kHandle: return HandleTypeName(type.handle_kind);
    case Kind::kBuffer: return "buffer";
    case Kind::kContext:
      if (type.resolved_context != nullptr) {
        return type.resolved_context->full_name;
      }
      return type.name;
    case Kind::kNamed:
      if (type.resolved_struct != nullptr) return type.resolved_struct->full_name;
      if (type.resolved_enum != nullptr) return type.resolved_enum->full_name;
      return type.name;
  }
  return "?";
}

Frontend::Frontend(std::vector<std::string> include_dirs)
    : include_dirs_(std::move(include_dirs)),
      analyzer_(std::make_unique<Analyzer>(&sink_)) {
  for (std::string& dir : include_dirs_) dir = NormalizePath(dir);
}

Frontend::~Frontend() = default;

void Frontend::AddVirtualFile(std::string path, std::string contents) {
  virtual_files_[NormalizePath(path)] = std::move(contents);
}

bool Frontend::Exists(const std::string& key) const {
  if (virtual_files_.count(key) > 0) return true;
  if (!disk_access_) return false;
  struct stat st;
  return ::stat(key.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool Frontend::Read(const std::string& key, std::string* contents,
                    std::string* error) const {
  auto it = virtual_files_.find(key);
  if (it != virtual_files_.end()) {
    if (it->second.size() > kMaxFileSize) {
      *error = "is too large (" + std::to_string(it->second.size()) +
               " bytes; the limit is " + std::to_string(kMaxFileSize) + ")";
      return false;
    }
    *contents = it->second;
    return true;
  }
  if (!disk_access_) {
    *error = "does not exist";
    return false;
  }
  int fd = ::open(key.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *error = std::string("cannot be opened: ") + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    *error = "is not a regular file";
    return false;
  }
  // Read at most one byte past the limit, whatever the size claims.
  contents->clear();
  char buffer[1 << 16];
  while (contents->size() <= kMaxFileSize) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("cannot be read: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    contents->append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (contents->size() > kMaxFileSize) {
    *error = "is too large (the limit is " + std::to_string(kMaxFileSize) +
             " bytes)";
    contents->clear();
    return false;
  }
  return true;
}

bool Frontend::ResolveImport(const Loaded& importer,
                             const std::string& import_path, std::string* key,
                             std::string* relative_path) const {
  if (!import_path.empty() && import_path[0] == '/') {
    *key = NormalizePath(import_path);
    *relative_path = *key;
    return Exists(*key);
  }
  std::string beside = NormalizePath(JoinPath(DirName(importer.key), import_path));
  if (Exists(beside)) {
    *key = beside;
    *relative_path = NormalizePath(
        JoinPath(DirName(importer.parsed.file->relative_path), import_path));
    return true;
  }
  for (const std::string& dir : include_dirs_) {
    std::string candidate = NormalizePath(JoinPath(dir, import_path));
    if (Exists(candidate)) {
      *key = candidate;
      *relative_path = NormalizePath(import_path);
      return true;
    }
  }
  return false;
}

Frontend::Loaded* Frontend::Load(const std::string& key,
                                 const std::string& relative_path, int depth,
                                 const SourceLocation& import_loc,
                                 std::string_view import_source) {
  auto found = loaded_.find(key);
  if (found != loaded_.end()) {
    if (found->second->failed) {
      sink_.Report(import_loc, "imported file \"" + relative_path +
                                   "\" has errors", import_source);
      return nullptr;
    }
    return found->second.get();
  }
  if (loaded_.size() >= kMaxFiles) {
    sink_.Report(import_loc, "too many files (the limit is " +
                                 std::to_string(kMaxFiles) + ")",
                 import_source);
    return nullptr;
  }
  auto owned = std::make_unique<Loaded>();
  Loaded* l = owned.get();
  l->key = key;
  loaded_.emplace(key, std::move(owned));
  std::string error;
  if (!Read(key, &l->contents, &error)) {
    l->failed = true;
    sink_.Report(import_loc, "file \"" + key + "\" " + error, import_source);
    return nullptr;
  }
  if (!ParseFile(key, l->contents, &sink_, &l->parsed)) {
    l->failed = true;
    return nullptr;
  }
  File& file = *l->parsed.file;
  file.path = key;
  file.relative_path = relative_path;

  loading_.push_back(l);
  bool ok = true;
  std::map<std::string, const ImportDecl*> seen;
  for (ImportDecl& imp : file.imports) {
    std::string child_key, child_relative;
    if (!ResolveImport(*l, imp.path, &child_key, &child_relative)) {
      sink_.Report(imp.loc, "cannot find import \"" + imp.path + "\"",
                   l->contents);
      ok = false;
      break;
    }
    auto [seen_it, fresh] = seen.emplace(child_key, &imp);
    if (!fresh) {
      sink_.Report(imp.loc, "duplicate import of \"" + imp.path + "\"",
                   l->contents);
      ok = false;
      break;
    }
    l->current_import = &imp;
    // An import of a file that is still loading closes a cycle; report it
    // at the import in the first file of the cycle.
    size_t on_stack = loading_.size();
    for (size_t i = 0; i < loading_.size(); ++i) {
      if (loading_[i]->key == child_key) on_stack = i;
    }
    if (on_stack < loading_.size()) {
      std::string cycle;
      for (size_t i = on_stack; i < loading_.size(); ++i) {
        cycle += loading_[i]->parsed.file->relative_path + " -> ";
      }
      cycle += loading_[on_stack]->parsed.file->relative_path;
      Loaded* first = loading_[on_stack];
      sink_.Report(first->current_import->loc, "import cycle: " + cycle,
                   first->contents);
      ok = false;
      break;
    }
    if (depth + 1 > kMaxImportDepth) {
      sink_.Report(imp.loc, "imports are nested too deeply (the limit is " +
                                std::to_string(kMaxImportDepth) + ")",
                   l->contents);
      ok = false;
      break;
    }
    Loaded* child = Load(child_key, child_relative, depth + 1, imp.loc,
                         l->contents);
    if (child == nullptr) {
      ok = false;
      break;
    }
    imp.file = child->parsed.file.get();
  }
  l->current_import = nullptr;
  loading_.pop_back();
  if (!ok) {
    l->failed = true;
    return nullptr;
  }
  order_.push_back(l);
  return l;
}

const File* Frontend::Parse(const std::string& path) {
  size_t errors_before = sink_.size();
  if (sink_.full()) return nullptr;
  std::string key = NormalizePath(path);
  std::string relative = key;
  if (!Exists(key) && !key.empty() && key[0] != '/') {
    for (const std::string& dir : include_dirs_) {
      std::string candidate = NormalizePath(JoinPath(dir, key));
      if (Exists(candidate)) {
        key = candidate;
        break;
      }
    }
  }
  for (const std::string& dir : include_dirs_) {
    if (dir != "." && key.size() > dir.size() + 1 &&
        key.compare(0, dir.size(), dir) == 0 && key[dir.size()] == '/') {
      relative = key.substr(dir.size() + 1);
      break;
    }
  }
  if (!Exists(key)) {
    sink_.Report({path, 0, 0}, "cannot find file \"" + path + "\"", "");
    return nullptr;
  }
  auto previous = loaded_.find(key);
  if (previous != loaded_.end() && previous->second->failed) {
    sink_.Report({path, 0, 0}, "file \"" + path + "\" has errors (reported "
                               "by an earlier Parse)", "");
    return nullptr;
  }
  Loaded* root = Load(key, relative, 0, {path, 0, 0}, "");
  if (root == nullptr || sink_.size() != errors_before) return nullptr;
  // Analyse every file not analysed yet, imports first.
  for (Loaded* l : order_) {
    if (l->analysed || l->failed) continue;
    bool imports_ok = true;
    for (const ImportDecl& imp : l->parsed.file->imports) {
      auto it = loaded_.find(NormalizePath(imp.file != nullptr ? imp.file->path
                                                              : ""));
      imports_ok = imports_ok && it != loaded_.end() && it->second->analysed;
    }
    if (!imports_ok || !analyzer_->Analyze(l->parsed, l->contents)) {
      l->failed = true;
      break;
    }
    l->analysed = true;
  }
  if (!root->analysed || sink_.size() != errors_before) return nullptr;
  return root->parsed.file.get();
}

const std::vector<Diagnostic>& Frontend::diagnostics() const {
  return sink_.diagnostics();
}

std::string Frontend::FormatDiagnostics() const {
  std::string out;
  for (const Diagnostic& d : sink_.diagnostics()) out += d.Format();
  return out;
}

std::vector<const File*> Frontend::files() const {
  std::vector<const File*> out;
  for (const Loaded* l : order_) {
    if (l->analysed) out.push_back(l->parsed.file.get());
  }
  return out;
}

}  // namespace lpc::idl
