// Runs the lpcc binary as a user would: flags, exit status, diagnostics
// format, and that no output file is left behind after any error.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace lpc::codegen {
namespace {

namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& contents) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << contents;
}

// Every regular file under `dir`, relative to it.
std::vector<std::string> ListFiles(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  }
  return out;
}

class LpccTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(srcdir, nullptr);
    ASSERT_NE(tmp, nullptr);
    lpcc_ = fs::path(srcdir) / "lpc" / "codegen" / "lpcc";
    ASSERT_TRUE(fs::exists(lpcc_)) << lpcc_;
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(tmp) / info->name();
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    cpp_out_ = root_ / "cpp";
    proto_out_ = root_ / "proto";
  }

  // Runs lpcc in root_/src with `args`; waits at most 60 s.
  RunResult Run(const std::vector<std::string>& args) {
    RunResult r;
    std::string out_path = (root_ / "stdout").string();
    std::string err_path = (root_ / "stderr").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_storage = {lpcc_.string()};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    // lpcc resolves paths against its working directory.
    std::string cwd = fs::current_path().string();
    fs::current_path(root_ / "src");
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    fs::current_path(cwd);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn failed: " << rc;
      return r;
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      pid_t done = waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << "lpcc did not finish in time";
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(status)) {
      r.exit_code = WEXITSTATUS(status);
    } else {
      ADD_FAILURE() << "lpcc died with status " << status;
    }
    r.out = ReadFile(out_path);
    r.err = ReadFile(err_path);
    return r;
  }

  RunResult Compile(const std::string& file) {
    return Run({"-I", ".", "--cpp_out=" + cpp_out_.string(),
                "--proto_out=" + proto_out_.string(), file});
  }

  void ExpectNoOutputs() {
    EXPECT_THAT(ListFiles(cpp_out_), IsEmpty());
    EXPECT_THAT(ListFiles(proto_out_), IsEmpty());
    // No temporary file beside the inputs either.
    for (const std::string& f : ListFiles(root_ / "src")) {
      EXPECT_THAT(f, ::testing::Not(HasSubstr("lpcc-tmp"))) << f;
    }
  }

  fs::path lpcc_;
  fs::path root_;
  fs::path cpp_out_;
  fs::path proto_out_;
};

constexpr char kGood[] = R"(// A good file.
package a.b;
import "a/b/dep.idl";
struct Pair { int32 x; a.b.dep.Thing t; }
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface Svc {
  Pair Get([in] int32 id);
}
)";
constexpr char kDep[] = "package a.b.dep;\nstruct Thing { string s; }\n";

TEST_F(LpccTest, HelpPrintsUsage) {
  RunResult r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Usage: lpcc"));
  EXPECT_THAT(r.out, HasSubstr("--cpp_out=<dir>"));
  EXPECT_THAT(r.out, HasSubstr("--proto_out=<dir>"));
  EXPECT_THAT(r.out, HasSubstr("-I <dir>"));
  EXPECT_EQ(Run({"-h"}).exit_code, 0);
}

TEST_F(LpccTest, GoodFileWritesEveryOutput) {
  WriteFile(root_ / "src/a/b/foo.idl", kGood);
  WriteFile(root_ / "src/a/b/dep.idl", kDep);
  RunResult r = Compile("a/b/foo.idl");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(ListFiles(cpp_out_),
              UnorderedElementsAre("a/b/foo.pb.h", "a/b/foo.pb.cc",
                                   "a/b/foo.lpc.h", "a/b/foo.lpc.cc"));
  EXPECT_THAT(ListFiles(proto_out_), UnorderedElementsAre("a/b/foo.proto"));
  std::string proto = ReadFile(proto_out_ / "a/b/foo.proto");
  EXPECT_THAT(proto, HasSubstr("package a.b;"));
  EXPECT_THAT(proto, HasSubstr("import \"a/b/dep.proto\";"));
  EXPECT_THAT(proto, HasSubstr("rpc Get(.a.b.GetRequest) returns (.a.b.GetResponse);"));
  std::string header = ReadFile(cpp_out_ / "a/b/foo.lpc.h");
  EXPECT_THAT(header, HasSubstr("namespace a::b {"));
  EXPECT_THAT(header, HasSubstr("#include \"a/b/foo.pb.h\""));
  EXPECT_THAT(header, HasSubstr("#include \"a/b/dep.lpc.h\""));
  EXPECT_THAT(header, HasSubstr("// A good file."));
}

TEST_F(LpccTest, FoundThroughAnIncludeDir) {
  WriteFile(root_ / "src/inc/a/b/foo.idl", kGood);
  WriteFile(root_ / "src/inc/a/b/dep.idl", kDep);
  RunResult r = Run({"-Iinc", "--proto_out=" + proto_out_.string(), "a/b/foo.idl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ListFiles(proto_out_), UnorderedElementsAre("a/b/foo.proto"));
  EXPECT_THAT(ListFiles(cpp_out_), IsEmpty());
}

TEST_F(LpccTest, BadFlags) {
  WriteFile(root_ / "src/a/b/foo.idl", kGood);
  RunResult r = Run({"--bogus", "--cpp_out=x", "a/b/foo.idl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("lpcc: error: unknown flag '--bogus'"));
  EXPECT_THAT(r.err, HasSubstr("lpcc --help"));

  r = Run({"--cpp_out=x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no input file"));

  r = Run({"a/b/foo.idl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--cpp_out"));

  r = Run({"--cpp_out=x", "a/b/foo.idl", "a/b/foo.idl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("exactly one input file"));

  r = Run({"--cpp_out=x", "-I"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("-I needs a directory"));

  r = Run({"--cpp_out=", "a/b/foo.idl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("needs a directory"));
  EXPECT_THAT(ListFiles(root_ / "src"), UnorderedElementsAre("a/b/foo.idl"));
}

TEST_F(LpccTest, MissingFile) {
  RunResult r = Compile("nope/missing.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.idl"));
  EXPECT_THAT(r.err, HasSubstr("error: "));
  ExpectNoOutputs();
}

TEST_F(LpccTest, MalformedFileReportsLocation) {
  WriteFile(root_ / "src/bad.idl", "package p;\nstruct S { int32 x }\n");
  RunResult r = Compile("bad.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("^bad\\.idl:2:[0-9]+: error: "));
  EXPECT_THAT(r.err, HasSubstr("struct S { int32 x }\n"));  // The source line.
  ExpectNoOutputs();
}

TEST_F(LpccTest, NulByteDoesNotCutTheDiagnostic) {
  const char kText[] = "package p;\nstruct T { int32 \0y; }\n";
  WriteFile(root_ / "src/nul.idl", std::string(kText, sizeof(kText) - 1));
  RunResult r = Compile("nul.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("nul.idl:2:18: error: invalid character '\\x00'\n"
                               "struct T { int32 ?y; }\n"
                               "                 ^\n"));
  EXPECT_EQ(r.err.find('\0'), std::string::npos);
  ExpectNoOutputs();
}

TEST_F(LpccTest, MalformedImportReportsItsLocation) {
  WriteFile(root_ / "src/a/b/foo.idl", kGood);
  WriteFile(root_ / "src/a/b/dep.idl", "package a.b.dep;\nstruct Thing {\n");
  RunResult r = Compile("a/b/foo.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("a/b/dep\\.idl:[0-9]+:[0-9]+: error: "));
  ExpectNoOutputs();
}

TEST_F(LpccTest, CodegenErrorsAreLocated) {
  // Valid IDL that the protobuf mapping cannot express: the method's request
  // message would collide with a struct.
  WriteFile(root_ / "src/coll.idl", R"(package p;
struct AddRequest { int32 x; }
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  int32 Add([in] int32 x);
}
)");
  RunResult r = Compile("coll.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("coll.idl:5:9: error: method I.Add needs a "
                               "message named 'AddRequest', which collides "
                               "with struct AddRequest"));
  ExpectNoOutputs();

  // A generated C++ member that two methods would both need.
  WriteFile(root_ / "src/member.idl", R"(package p;
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  void Get();
  void GetAsync();
}
)");
  r = Compile("member.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("member\\.idl:5:[0-9]+: error: .*GetAsync"));
  ExpectNoOutputs();

  // A [out] parameter named like the response's return-value field.
  WriteFile(root_ / "src/result.idl", R"(package p;
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  int32 Get([out] int32 result);
}
)");
  r = Compile("result.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("result\\.idl:4:[0-9]+: error: .*'result'"));
  ExpectNoOutputs();
}

TEST_F(LpccTest, StreamingAndAsyncGeneratedNames) {
  // StartCall is a member of a service with a streaming method.
  WriteFile(root_ / "src/start.idl", R"(package p;
struct C { int32 x; }
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  stream<C> Watch();
  void StartCall();
}
)");
  RunResult r = Compile("start.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("start\\.idl:6:[0-9]+: error: method "
                                   "StartCall needs a member 'StartCall' in "
                                   "IService, which is taken by StartCall\\(\\)"));
  ExpectNoOutputs();

  // The service names an [async] method's reply type <M>Result.
  WriteFile(root_ / "src/async.idl", R"(package p;
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  [async] int32 Add();
  void AddResult();
}
)");
  r = Compile("async.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ContainsRegex("async\\.idl:5:[0-9]+: error: .*AddResult"));
  ExpectNoOutputs();

  // A stream's side has no generated message, so these names are free.
  WriteFile(root_ / "src/free.idl", R"(package p;
struct C { int32 x; }
struct UploadRequest { int32 y; }
struct WatchResponse { int32 z; }
[uuid(11111111-2222-4333-8444-555555555555), version(1.0)]
interface I {
  stream<C> Watch();
  C Upload([in] stream<C> cs);
}
)");
  r = Compile("free.idl");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(LpccTest, FieldsWhoseProtobufAccessorsWouldClash) {
  WriteFile(root_ / "src/acc.idl", R"(package p;
struct S {
  int32 descriptor;
}
struct T {
  string name;
  bool has_name;
}
)");
  RunResult r = Compile("acc.idl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("acc.idl:3:9: error: field 'descriptor' of "
                               "struct p.S would generate the C++ accessor "
                               "descriptor()"));
  EXPECT_THAT(r.err, ContainsRegex("acc\\.idl:7:[0-9]+: error: field "
                                   "'has_name' of struct p.T collides with a "
                                   "C\\+\\+ accessor of field 'name'"));
  ExpectNoOutputs();
}

TEST_F(LpccTest, WriteFailureLeavesNothingBehind) {
  WriteFile(root_ / "src/a/b/foo.idl", kGood);
  WriteFile(root_ / "src/a/b/dep.idl", kDep);
  // The .proto output "directory" is a regular file. The C++ files come
  // first and are written to temporary files before that fails; they must
  // all be removed.
  WriteFile(root_ / "blocker", "not a directory");
  RunResult r = Run({"--cpp_out=" + cpp_out_.string(),
                     "--proto_out=" + (root_ / "blocker").string(),
                     "a/b/foo.idl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("lpcc: error: cannot"));
  EXPECT_THAT(ListFiles(cpp_out_), IsEmpty());
  EXPECT_EQ(ReadFile(root_ / "blocker"), "not a directory");
}

TEST_F(LpccTest, RecompilingOverwrites) {
  WriteFile(root_ / "src/a/b/foo.idl", kGood);
  WriteFile(root_ / "src/a/b/dep.idl", kDep);
  ASSERT_EQ(Compile("a/b/foo.idl").exit_code, 0);
  std::string first = ReadFile(cpp_out_ / "a/b/foo.lpc.h");
  ASSERT_EQ(Compile("a/b/foo.idl").exit_code, 0);
  EXPECT_EQ(ReadFile(cpp_out_ / "a/b/foo.lpc.h"), first) << "deterministic";
  EXPECT_THAT(ListFiles(cpp_out_),
              UnorderedElementsAre("a/b/foo.pb.h", "a/b/foo.pb.cc",
                                   "a/b/foo.lpc.h", "a/b/foo.lpc.cc"));
}

}  // namespace
}  // namespace lpc::codegen
