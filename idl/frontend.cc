// The front end's driver: file lookup, import loading, and analysis order.
#include "idl/frontend.h"

namespace lpc::idl {

struct Frontend::Loaded {
  std::string key;
  std::string contents;
  std::unique_ptr<File> file;
};

Frontend::Frontend(std::vector<std::string> include_dirs)
    : include_dirs_(std::move(include_dirs)) {}
Frontend::~Frontend() = default;

void Frontend::AddVirtualFile(std::string path, std::string contents) {
  virtual_files_[NormalizePath(path)] = std::move(contents);
}

const File* Frontend::Parse(const std::string& path) {
  sink_.Report({path, 0, 0}, "the front end is not implemented yet", "");
  return nullptr;
}

const std::vector<Diagnostic>& Frontend::diagnostics() const {
  return sink_.diagnostics();
}

std::string Frontend::FormatDiagnostics() const {
  std::string out;
  for (const Diagnostic& d : sink_.diagnostics()) out += d.Format();
  return out;
}

std::vector<const File*> Frontend::files() const { return {}; }

std::string NormalizePath(const std::string& path) { return path; }
std::string TypeToString(const TypeRef& type) { return type.name; }

}  // namespace lpc::idl
