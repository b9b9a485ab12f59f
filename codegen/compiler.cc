// The lpcc pipeline: front end -> descriptor pool -> generators -> files.
#include "codegen/compiler.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "codegen/cpp_emitter.h"
#include "codegen/internal/name_check.h"
#include "codegen/lower.h"
#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/compiler/cpp/generator.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "idl/diagnostics.h"
#include "idl/frontend.h"

namespace lpc::codegen {
namespace {

namespace pb = google::protobuf;

// Formats errors the way the front end does, with the offending line.
class ErrorFormatter {
 public:
  void Add(const CodegenError& e) {
    idl::Diagnostic d;
    d.loc = e.loc;
    d.message = e.message;
    d.caret_column = e.loc.column;
    if (e.loc.line > 0) {
      d.source_line =
          idl::ExtractSourceLine(Source(e.loc.file), e.loc.line, &d.caret_column);
    }
    out_ += d.Format();
  }
  void AddAll(const std::vector<CodegenError>& errors) {
    for (const CodegenError& e : errors) Add(e);
  }
  const std::string& text() const { return out_; }

 private:
  const std::string& Source(const std::string& path) {
    auto it = sources_.find(path);
    if (it != sources_.end()) return it->second;
    std::string contents;
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      contents = ss.str();
    }
    return sources_.emplace(path, std::move(contents)).first->second;
  }

  std::map<std::string, std::string> sources_;
  std::string out_;
};

// Turns the DescriptorPool's complaints into IDL-located errors.
class PoolErrorCollector : public pb::DescriptorPool::ErrorCollector {
 public:
  PoolErrorCollector(const idl::File& file,
                     const std::map<std::string, idl::SourceLocation>& locations,
                     std::vector<CodegenError>* errors)
      : file_(file), locations_(locations), errors_(errors) {}

  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message* descriptor, ErrorLocation location,
                const std::string& message) override {
    auto it = locations_.find(element_name);
    idl::SourceLocation loc =
        it != locations_.end() ? it->second : idl::SourceLocation{file_.path, 0, 0};
    errors_->push_back(
        {loc, "protobuf rejects the generated definition of '" + element_name +
                  "': " + message});
  }

 private:
  const idl::File& file_;
  const std::map<std::string, idl::SourceLocation>& locations_;
  std::vector<CodegenError>* errors_;
};

// Collects libprotoc's output in memory.
class MemoryGeneratorContext : public pb::compiler::GeneratorContext {
 public:
  pb::io::ZeroCopyOutputStream* Open(const std::string& filename) override {
    std::string& s = files_[filename];
    s.clear();
    return new pb::io::StringOutputStream(&s);
  }
  const std::map<std::string, std::string>& files() const { return files_; }

 private:
  std::map<std::string, std::string> files_;
};

// Whether `path` is a safe relative output path (no escaping the output
// directory).
bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = slash + 1;
  }
  return true;
}

// Imports first, each file once.
void TopologicalOrder(const idl::File* f, std::set<const idl::File*>* seen,
                      std::vector<const idl::File*>* order) {
  if (f == nullptr || !seen->insert(f).second) return;
  for (const idl::ImportDecl& imp : f->imports) {
    TopologicalOrder(imp.file, seen, order);
  }
  order->push_back(f);
}

}  // namespace

bool Compile(const CompileOptions& options, CompileResult* result) {
  result->cpp_files.clear();
  result->proto_files.clear();
  result->diagnostics.clear();

  idl::Frontend frontend(options.include_dirs);
  const idl::File* root = frontend.Parse(options.input);
  if (root == nullptr) {
    result->diagnostics = frontend.FormatDiagnostics();
    if (result->diagnostics.empty()) {
      result->diagnostics = options.input + ": error: cannot compile\n";
    }
    return false;
  }

  ErrorFormatter formatter;
  std::string stem = OutputStem(*root);
  if (!IsSafeRelativePath(stem + ".idl")) {
    formatter.Add({{root->path, 0, 0},
                   "the output path '" + stem +
                       "' is not a clean relative path; pass the file's "
                       "root directory with -I"});
    result->diagnostics = formatter.text();
    return false;
  }

  std::vector<const idl::File*> order;
  std::set<const idl::File*> seen;
  TopologicalOrder(root, &seen, &order);

  pb::DescriptorPool pool;
  const pb::FileDescriptor* root_descriptor = nullptr;
  for (const idl::File* f : order) {
    pb::FileDescriptorProto proto;
    std::vector<CodegenError> errors;
    std::map<std::string, idl::SourceLocation> locations;
    if (!LowerFile(*f, &proto, &errors, &locations) ||
        !internal::CheckGeneratedNames(*f, &errors)) {
      formatter.AddAll(errors);
      result->diagnostics = formatter.text();
      return false;
    }
    PoolErrorCollector collector(*f, locations, &errors);
    const pb::FileDescriptor* fd = pool.BuildFileCollectingErrors(proto, &collector);
    if (fd == nullptr) {
      if (errors.empty()) errors.push_back({{f->path, 0, 0}, "protobuf rejects the file"});
      formatter.AddAll(errors);
      result->diagnostics = formatter.text();
      return false;
    }
    if (f == root) root_descriptor = fd;
  }
  if (root_descriptor == nullptr) {
    result->diagnostics = root->path + ": error: internal: file not lowered\n";
    return false;
  }

  // The .proto text, with the IDL's comments.
  pb::DebugStringOptions debug_options;
  debug_options.include_comments = true;
  result->proto_files.push_back(
      {stem + ".proto", root_descriptor->DebugStringWithOptions(debug_options)});

  // libprotoc's message classes.
  pb::compiler::cpp::CppGenerator generator;
  MemoryGeneratorContext context;
  std::string error;
  if (!generator.Generate(root_descriptor, "", &context, &error)) {
    result->diagnostics =
        root->path + ": error: the protobuf C++ generator failed: " + error + "\n";
    return false;
  }
  for (const auto& [name, contents] : context.files()) {
    result->cpp_files.push_back({name, contents});
  }

  // lpc's stubs.
  CppOutput cpp;
  std::vector<CodegenError> errors;
  if (!EmitCpp(*root, root_descriptor, &cpp, &errors)) {
    formatter.AddAll(errors);
    result->diagnostics = formatter.text();
    return false;
  }
  result->cpp_files.push_back({stem + ".lpc.h", std::move(cpp.header)});
  result->cpp_files.push_back({stem + ".lpc.cc", std::move(cpp.source)});
  return true;
}

namespace {

absl::Status MakeParentDirs(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos;
       pos = path.find('/', pos + 1)) {
    std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
      return absl::UnavailableError("cannot create directory " + dir + ": " +
                                    std::strerror(errno));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteWhole(const std::string& path, const std::string& contents) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    return absl::UnavailableError("cannot create " + path + ": " +
                                  std::strerror(errno));
  }
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = std::strerror(errno);
      close(fd);
      return absl::UnavailableError("cannot write " + path + ": " + why);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    return absl::UnavailableError("cannot write " + path + ": " +
                                  std::strerror(errno));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFiles(const std::vector<OutputFile>& files) {
  std::vector<std::string> temps;
  auto remove_all = [](const std::vector<std::string>& paths) {
    for (const std::string& p : paths) unlink(p.c_str());
  };
  std::string suffix = ".lpcc-tmp-" + std::to_string(getpid());
  for (const OutputFile& f : files) {
    absl::Status s = MakeParentDirs(f.path);
    std::string temp = f.path + suffix;
    if (s.ok()) {
      temps.push_back(temp);
      s = WriteWhole(temp, *f.contents);
    }
    if (!s.ok()) {
      remove_all(temps);
      return s;
    }
  }
  std::vector<std::string> renamed;
  for (size_t i = 0; i < files.size(); ++i) {
    if (rename(temps[i].c_str(), files[i].path.c_str()) != 0) {
      absl::Status s = absl::UnavailableError(
          "cannot rename " + temps[i] + " to " + files[i].path + ": " +
          std::strerror(errno));
      remove_all(renamed);
      remove_all(std::vector<std::string>(temps.begin() + i, temps.end()));
      return s;
    }
    renamed.push_back(files[i].path);
  }
  return absl::OkStatus();
}

}  // namespace lpc::codegen
