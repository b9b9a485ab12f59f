// Fuzz target for the IDL front end (libFuzzer interface; also built as a
// test with //testing:fuzz_driver_main). Runs the whole front end over the
// input as one virtual file, then as a two-file import setup, and walks any
// resulting tree so that sanitizers see every pointer it holds.
//
//   clang++ -std=c++20 -fsanitize=fuzzer,address -I. -o idl_fuzzer
//       idl/parser_fuzzer.cc idl/{diagnostics,frontend,lexer,parser,sema}.cc
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "idl/frontend.h"

namespace {

size_t Walk(const lpc::idl::TypeRef& type) {
  size_t n = lpc::idl::TypeToString(type).size();
  if (type.resolved_struct != nullptr) n += type.resolved_struct->fields.size();
  if (type.resolved_enum != nullptr) n += type.resolved_enum->values.size();
  for (const auto& arg : type.args) n += Walk(arg);
  return n;
}

size_t Walk(const lpc::idl::StructDecl& s) {
  size_t n = s.full_name.size();
  for (const auto& f : s.fields) n += Walk(f.type) + f.ordinal;
  for (const auto& nested : s.nested_structs) n += Walk(*nested);
  for (const auto& e : s.nested_enums) n += e->values.size();
  for (const auto& c : s.nested_consts) n += Walk(c->type);
  return n;
}

size_t Walk(const lpc::idl::File& file) {
  size_t n = file.doc.size();
  for (const auto& imp : file.imports) n += imp.file->path.size();
  for (const auto& c : file.consts) n += Walk(c->type);
  for (const auto& e : file.enums) n += e->values.size();
  for (const auto& s : file.structs) n += Walk(*s);
  for (const auto& i : file.interfaces) {
    for (const auto& m : i->methods) {
      n += Walk(m.return_type) + m.ordinal;
      for (const auto& p : m.params) n += Walk(p.type);
    }
  }
  return n;
}

void Run(lpc::idl::Frontend& frontend, const std::string& path) {
  const lpc::idl::File* file = frontend.Parse(path);
  if (file != nullptr) {
    for (const lpc::idl::File* f : frontend.files()) Walk(*f);
  } else if (frontend.diagnostics().empty()) {
    __builtin_trap();  // Failure must come with a diagnostic.
  }
  frontend.FormatDiagnostics();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  {
    lpc::idl::Frontend frontend({"inc"});
    frontend.set_disk_access(false);
    frontend.AddVirtualFile("fuzz.idl", input);
    Run(frontend, "fuzz.idl");
  }
  {
    // Two files: the input up to its first NUL byte (or its first half) is
    // "dep.idl", available beside the importer and through an include dir;
    // the rest follows an import of it.
    size_t cut = input.find('\0');
    if (cut == std::string::npos) cut = input.size() / 2;
    std::string dep = input.substr(0, cut);
    std::string rest = input.substr(cut < input.size() ? cut + 1 : cut);
    lpc::idl::Frontend frontend({"inc"});
    frontend.set_disk_access(false);
    frontend.AddVirtualFile("dep.idl", dep);
    frontend.AddVirtualFile("inc/lib/dep.idl", dep);
    frontend.AddVirtualFile("main.idl",
                            "package fuzz.main;\nimport \"dep.idl\";\n" + rest);
    frontend.AddVirtualFile("raw.idl", rest);
    Run(frontend, "main.idl");
    Run(frontend, "raw.idl");
  }
  return 0;
}
