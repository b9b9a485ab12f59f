// Writes the corpus of the names property test (names_compile_test.sh):
// IDL files that put hazardous identifiers (C/C++ macros, standard type
// names, protobuf's generated members, lpc's generated names) at every
// position an IDL name can take, compiles each with the lpcc library, and
// writes what it accepted plus one translation unit, unity.cc, that includes
// every accepted .pb.cc and .lpc.cc after the whole C++ standard library.
// The test then compiles unity.cc once: every file lpcc accepts must give
// C++ that compiles.
//
//   name_corpus <out_dir>
//
// Writes <out_dir>/idl/*.idl, <out_dir>/gen/... and <out_dir>/unity.cc, and
// prints how many files were accepted and rejected. Exits 1 when lpcc
// accepted nothing or rejected something without a file:line:col error, or
// when a probe that must be accepted (a plain name) was rejected.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "codegen/compiler.h"

namespace {

namespace fs = std::filesystem;

// Hazardous identifiers. Each is tried at every position below.
const char* const kNames[] = {
    // Macros of the C and C++ standard libraries and of the headers that
    // generated code includes.
    "EINVAL", "ENOENT", "EAGAIN", "ERANGE", "LITTLE_ENDIAN", "BIG_ENDIAN",
    "BYTE_ORDER", "INT_MAX", "INT_MIN", "UINT32_MAX", "SIZE_MAX", "CHAR_BIT",
    "EXIT_FAILURE", "RAND_MAX", "BUFSIZ", "M_PI", "INFINITY", "NAN",
    "HUGE_VAL", "SIGINT", "PRId64", "errno", "assert", "offsetof", "alloca",
    "setjmp", "va_arg", "stdin", "si_pid", "sigmask", "htole32", "EOF",
    "NULL", "DOMAIN", "FP_NAN", "CLOCKS_PER_SEC", "GOOGLE_DCHECK",
    "GOOGLE_PROTOBUF_VERSION", "ABSL_MUST_USE_RESULT", "ABSL_GUARDED_BY",
    "PROTOBUF_EXPORT", "PROTOBUF_NAMESPACE_ID", "TRUE", "FALSE", "DEBUG",
    "Alloca", "Errno",
    // Standard and protobuf type names the generated code spells unqualified.
    "std", "size_t", "ssize_t", "int8_t", "int32_t", "int64_t", "uint8_t",
    "uint32_t", "uint64_t", "uintptr_t", "ptrdiff_t", "nullptr_t", "google",
    "protobuf", "absl", "lpc", "internal", "string_view", "vector", "pair",
    "function", "move", "swap", "memcpy", "abort", "size", "data",
    // protobuf's generated members and namespace-scope names.
    "Descriptor", "descriptor", "GetDescriptor", "GetReflection",
    "GetMetadata", "default_instance", "internal_default_instance", "Swap",
    "InternalSwap", "UnsafeArenaSwap", "New", "CopyFrom", "MergeFrom",
    "Clear", "IsInitialized", "ByteSizeLong", "GetCachedSize",
    "SetCachedSize", "MergeImpl", "SharedCtor", "SharedDtor", "ArenaDtor",
    "FullMessageName", "GetClassData", "GetArena", "GetOwningArena",
    "GetArenaForAllocation", "Impl_", "impl_", "kIndexInFileMessages",
    "InternalHelper", "Message", "Arena", "Reflection", "ClassData",
    "DestructorSkippable_", "InternalArenaConstructable_",
    "unknown_fields", "mutable_unknown_fields", "SerializeToString",
    "DebugString", "GetTypeName", "Metadata", "Base", "Entry", "value",
    "key", "kAFieldNumber", "E_IsValid", "E_MIN", "E_Name", "S_A",
    "S_T", "AEntry", "S_AEntry", "S_AEntry_DoNotUse", "AEntry_DoNotUse",
    "cached_size", "has_bits", "TableStruct", "descriptor_table", "name",
    "T", "enum_t_value", "Parse",
    // lpc's generated names.
    "lpc_internal", "lpc_I", "lpc_FieldSize", "lpc_AppendBytes",
    "CheckRanges", "kMethods", "kDescriptor", "Dispatch", "IClient",
    "IService", "MResult", "MAsync", "MFuture", "M_Encode", "M_Dispatch",
    "MRequest", "MResponse", "ctx", "done", "channel_", "request",
    "response", "method_id", "result", "lpc_p0", "lpc_ctx", "lpc_msg",
    "Channel", "CallContext", "Service", "InterfaceDescriptor", "Status",
    "StatusOr", "NewBuffer", "DispatchWith", "M_RequestWriter",
    "M_ReplyWriter", "M_ReadReply", "M_DispatchWith", "Buffer", "BufferView",
    "MessageWriter", "ReceivedMessage", "ReplySink",
    // Plain names: must be accepted everywhere.
    "plain", "Plain", "PLAIN",
};

const char* const kPlain[] = {"plain", "Plain", "PLAIN"};

// Method names cost two messages each; the method positions take the names
// that concern methods: the members of the generated client and service
// classes, and a few of each other kind.
const char* const kMethodNames[] = {
    "Descriptor", "descriptor", "Dispatch", "IClient", "IService", "MResult",
    "MAsync", "MFuture", "M_Encode", "M_Dispatch", "MRequest", "MResponse",
    "ctx", "done", "channel_", "request", "response", "method_id", "result",
    "value", "lpc_p0", "lpc_ctx", "lpc_msg", "Channel", "CallContext",
    "Service", "InterfaceDescriptor", "Status", "StatusOr", "StartCall",
    "Bind", "ClientStream", "ServerStream", "std", "size_t", "GetDescriptor",
    "Swap", "New", "EINVAL", "name", "NewBuffer", "DispatchWith",
    "M_RequestWriter", "M_ReplyWriter", "M_ReadReply", "M_DispatchWith",
    "Buffer", "BufferView", "plain", "Plain", "PLAIN",
};

// One position for names, as a file body (after the package line): `prefix`,
// then `each` once per name, then `suffix`. In `each`, $N is the name, $n
// the name in lower case, $i a number unique in the file and $U a uuid
// attribute list. A file holds many names at one position; when lpcc
// rejects it, it is split in halves until the names it accepts are found.
// Every position must accept the plain names.
struct Position {
  const char* group;
  const char* prefix;
  const char* each;
  const char* suffix;
};

const Position kPositions[] = {
    // Top-level declarations, used everywhere a type can be used.
    {"struct", "", "struct $N { int32 a; }\n",
     "struct Use {\n$USES}\n"},
    {"enum", "", "enum $N { E0_$i, E1_$i }\nconst $N kDefault$i = E1_$i;\n", "struct Use {\n$USES}\n"},
    {"enumerator", "enum E {\n  E0,\n", "  $N,\n", "}\nconst E kDefault = E0;\n"},
    {"const", "", "const int32 $N = 1;\nconst string $N_s = \"n\";\n", ""},
    {"interface", "", "$U interface $N {}\n", ""},
    {"method", "$U interface I {\n", "  int32 $N([in] int32 a, [out] int32 b);\n", "  [oneway] void Log([in] string s);\n}\n"},
    {"stream_method", "struct C { int32 a; }\n$U interface I {\n", "  stream<C> $N();\n", "}\n"},
    {"stream_param_method", "struct C { int32 a; }\n$U interface I {\n", "  C M$i([in] stream<C> $N);\n", "}\n"},
    {"buffer_method", "$U interface I {\n  uint64 Take([in] buffer f);\n", "  int32 $N([in] int32 a, [out] int32 b);\n", "  buffer Give([in] uint32 n);\n}\n"},
    {"async_method", "$U interface I {\n", "  [async] int32 $N([in] int32 a, [out] string b);\n", "}\n"},
    {"self", "", "struct $N { int32 $N; }\n", ""},
    // Members.
    {"field", "struct F {\n", "  int32 $N;\n", "}\n"},
    {"field_string", "struct F {\n", "  string $N;\n", "}\n"},
    {"field_sequence", "struct F {\n", "  sequence<int32> $N;\n", "}\n"},
    {"field_map", "struct F {\n", "  map<string, int32> $N;\n", "}\n"},
    {"field_optional", "struct F {\n", "  optional<int32> $N;\n", "}\n"},
    {"field_struct", "struct F {\n  struct T { int32 a; }\n", "  T $N;\n  sequence<T> $N_r;\n", "}\n"},
    {"nested_struct", "struct F {\n", "  struct $N { int32 a; }\n  $N x$i;\n", "}\n"},
    {"nested_enum", "struct F {\n", "  enum $N { K0_$i }\n  $N k$i;\n", "}\n"},
    {"nested_enumerator", "struct F {\n  enum E {\n    K0,\n", "    $N,\n", "  }\n  E k;\n}\n"},
    {"nested_const", "struct F {\n  int32 a;\n", "  const int32 $N = 1;\n", "}\n"},
    {"param_in", "struct T { int32 a; }\n$U interface I {\n  int32 M(\n", "      [in] int32 $N,\n      [in] T $N_t,\n", "      [in] string lpc_last);\n}\n"},
    {"param_buffer", "$U interface I {\n", "  uint64 M$i([in] int32 a, [in] buffer $N);\n", "}\n"},
    {"param_out", "$U interface I {\n  void M(\n", "      [out] int32 $N,\n", "      [out] string lpc_last);\n}\n"},
    {"param_inout", "$U interface I {\n  string M(\n", "      [in, out] string $N,\n", "      [in, out] int32 lpc_last);\n}\n"},
};

// Declarations whose generated C++ names collide: lpcc must reject each
// one at file:line:col.
const char* const kCollisions[] = {
    // A field named like its struct (the accessor is the constructor).
    "struct point { int32 point; }\n",
    // A nested type's flattened name against a top-level type.
    "struct S { struct T { int32 a; } }\nstruct S_T { int32 b; }\n",
    "struct S { enum E { A } }\nstruct S_E { int32 b; }\n",
    "struct S { const int32 K = 1; }\nconst int32 S_K = 2;\n",
    // The types protobuf generates for maps.
    "struct S { map<string, int32> foo; }\nstruct S_FooEntry_DoNotUse { int32 b; }\n",
    "struct S { map<string, int32> foo; struct FooEntry { int32 a; } }\n",
    // protobuf's enum helpers and member names.
    "enum Color { RED }\nconst int32 Color_MAX = 1;\n",
    "enum Color { RED }\nstruct Color_Name { int32 a; }\n",
    "struct S { enum Kind { K0 } struct Kind_Parse { int32 a; } }\n",
    "struct S { enum E { K0, New } }\n",
    "struct S { struct Swap { int32 a; } }\n",
    "struct S { int32 a; struct kAFieldNumber { int32 b; } }\n",
    "struct S { struct S { int32 a; } }\n",
    "struct S { enum E { K0, S } }\n",
    // A derived name that is a macro (INT8_C of <stdint.h>).
    "struct INT8 { const int32 C = 1; }\n",
    // Constants and types against lpc's and protobuf's generated names.
    "const int32 GetRequest = 1;\n$U interface I { void Get(); }\n",
    "const string GetResponse = \"x\";\n$U interface I { int32 Get(); }\n",
    "struct CalcClient { int32 a; }\n$U interface Calc { void Get(); }\n",
    "struct lpc_Calc { int32 a; }\n$U interface Calc { void Get(); }\n",
    // Parameters whose JSON names collide.
    "$U interface I { void M([in] int32 foo_bar, [in] int32 fooBar); }\n",
    "$U interface I { int32 M([out] int32 r_1, [in, out] string r1); }\n",
    // The client's NewBuffer and the service's DispatchWith.
    "$U interface I { uint64 Take([in] buffer f); buffer NewBuffer([in] uint64 size); }\n",
    "$U interface I { void NewBuffer(); }\n",
    "$U interface I { int32 DispatchWith([in] uint32 method_id); }\n",
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int g_uuid = 0;

std::string Uuid() {
  char buf[128];
  ++g_uuid;
  std::snprintf(buf, sizeof(buf),
                "[uuid(0b0b0b0b-1111-4222-8333-%012x), version(1.0)]", g_uuid);
  return buf;
}

std::string Expand(const std::string& text, const std::string& name, int index) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    char c = text[++i];
    if (c == 'N') {
      out += name;
    } else if (c == 'n') {
      out += Lower(name);
    } else if (c == 'i') {
      out += std::to_string(index);
    } else if (c == 'U' && text.compare(i, 4, "USES") == 0) {
      out += "$USES";
      i += 3;
    } else if (c == 'U') {
      out += Uuid();
    } else {
      out += '$';
      out += c;
    }
  }
  return out;
}

// The body of a file with `names` at position `p`.
std::string Body(const Position& p, const std::vector<std::string>& names) {
  std::string body = Expand(p.prefix, "", 0);
  std::string uses;
  for (size_t i = 0; i < names.size(); ++i) {
    body += Expand(p.each, names[i], static_cast<int>(i));
    uses += "  " + names[i] + " u" + std::to_string(i) + ";\n";
  }
  std::string suffix = Expand(p.suffix, "", 0);
  size_t at = suffix.find("$USES");
  if (at != std::string::npos) suffix.replace(at, 5, uses);
  return body + suffix;
}

struct Corpus {
  fs::path out;
  int accepted = 0;
  int rejected = 0;
  int bad = 0;
  std::string unity = "// Generated by name_corpus.\n#include <bits/stdc++.h>\n";
  std::ofstream rejected_log;

  std::string NextStem() const {
    return "h" + std::to_string(accepted + rejected);
  }

  // Compiles one file; on success keeps its C++ for unity.cc.
  bool Compile(const std::string& stem, const std::string& text,
               const std::string& what) {
    std::ofstream(out / "idl" / (stem + ".idl"), std::ios::binary) << text;
    lpc::codegen::CompileOptions options;
    options.include_dirs = {(out / "idl").string()};
    options.input = (out / "idl" / (stem + ".idl")).string();
    lpc::codegen::CompileResult result;
    if (!lpc::codegen::Compile(options, &result)) {
      ++rejected;
      std::string first = result.diagnostics.substr(0, result.diagnostics.find('\n'));
      rejected_log << stem << " " << what << ": " << first << "\n";
      static const std::regex located("^[^ :]+\\.idl:[0-9]+:[0-9]+: error: ");
      if (!std::regex_search(result.diagnostics, located)) {
        std::cerr << "FAIL: " << stem << ".idl (" << what
                  << ") was rejected without a file:line:col error:\n"
                  << result.diagnostics;
        ++bad;
      }
      return false;
    }
    ++accepted;
    for (const auto& f : result.cpp_files) {
      std::ofstream(out / "gen" / f.path, std::ios::binary) << f.contents;
      if (!f.path.ends_with(".cc")) continue;
      // Two file-level statics of every .pb.cc have the same names.
      bool pb = f.path.ends_with(".pb.cc");
      if (pb) {
        unity += "#define schemas " + stem + "_schemas\n#define file_default_instances " +
                 stem + "_file_default_instances\n";
      }
      unity += "#include \"" + f.path + "\"\n";
      if (pb) unity += "#undef schemas\n#undef file_default_instances\n";
    }
    return true;
  }

  // Names at position `p`: each alone first (its result is not kept), then
  // all the accepted ones in one file, halved if that is rejected.
  void TryEach(const Position& p, const std::vector<std::string>& names) {
    std::vector<std::string> ok;
    for (const std::string& name : names) {
      std::string text = "package single;\n\n" + Body(p, {name});
      std::ofstream(out / "single.idl", std::ios::binary) << text;
      lpc::codegen::CompileOptions options;
      options.include_dirs = {out.string()};
      options.input = (out / "single.idl").string();
      lpc::codegen::CompileResult result;
      if (lpc::codegen::Compile(options, &result)) {
        ok.push_back(name);
      } else {
        Try(p, {name});  // Logs it, and checks the error.
      }
    }
    // Names that protobuf would fold together (case, underscores) go to
    // different files.
    std::vector<std::vector<std::string>> buckets;
    std::vector<std::set<std::string>> keys;
    for (const std::string& name : ok) {
      std::string key;
      for (char c : Lower(name)) {
        if (c != '_') key += c;
      }
      size_t b = 0;
      while (b < buckets.size() && keys[b].count(key) > 0) ++b;
      if (b == buckets.size()) {
        buckets.emplace_back();
        keys.emplace_back();
      }
      buckets[b].push_back(name);
      keys[b].insert(key);
    }
    for (const auto& bucket : buckets) Try(p, bucket);
  }

  // Names at position `p`: all in one file, halved on rejection.
  void Try(const Position& p, const std::vector<std::string>& names) {
    std::string stem = NextStem();
    std::string text = "// position " + std::string(p.group) + "\npackage " + stem +
                       ";\n\n" + Body(p, names);
    std::string what = std::string(p.group) + " " +
                       (names.size() == 1 ? "'" + names[0] + "'"
                                          : std::to_string(names.size()) + " names");
    if (Compile(stem, text, what)) return;
    if (names.size() > 1) {
      size_t half = names.size() / 2;
      Try(p, {names.begin(), names.begin() + half});
      Try(p, {names.begin() + half, names.end()});
      return;
    }
    for (const char* plain : kPlain) {
      // A struct named in lower case cannot have a field of its name.
      if (names[0] == plain && !(p.group == std::string("self") && plain[0] == 'p')) {
        std::cerr << "FAIL: the plain name '" << plain << "' was rejected at "
                  << p.group << " (" << stem << ".idl)\n";
        ++bad;
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: name_corpus <out_dir>\n";
    return 2;
  }
  Corpus c;
  c.out = argv[1];
  fs::create_directories(c.out / "idl");
  fs::create_directories(c.out / "gen");
  c.rejected_log.open(c.out / "rejected.txt");
  std::vector<std::string> names(std::begin(kNames), std::end(kNames));
  std::vector<std::string> method_names(std::begin(kMethodNames),
                                        std::end(kMethodNames));
  for (const Position& p : kPositions) {
    bool method = std::string(p.group).find("method") != std::string::npos;
    c.TryEach(p, method ? method_names : names);
  }
  // The package: one file per name, as its last component.
  for (const std::string& name : names) {
    std::string stem = c.NextStem();
    c.Compile(stem, "package pk." + name + ";\nstruct S { int32 a; }\n",
              "package 'pk." + name + "'");
  }
  // The collisions: each must be rejected.
  for (const char* body : kCollisions) {
    std::string stem = c.NextStem();
    std::string text = "package " + stem + ";\n\n" + Expand(body, "", 0);
    if (c.Compile(stem, text, "collision")) {
      std::cerr << "FAIL: lpcc accepted a collision (" << stem << ".idl):\n"
                << text;
      ++c.bad;
    }
  }
  std::ofstream(c.out / "unity.cc", std::ios::binary) << c.unity;
  std::cout << "name_corpus: " << c.accepted << " files accepted, " << c.rejected
            << " rejected (see rejected.txt)\n";
  if (c.accepted == 0) {
    std::cerr << "FAIL: nothing was accepted\n";
    return 1;
  }
  return c.bad == 0 ? 0 : 1;
}
