// The conformance suite between two processes: the server runs in
// conformance_server, and this test process is the client. Instantiated for
// the local port, gRPC over a Unix socket, and gRPC over TCP on 127.0.0.1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/config.pb.h"
#include "tests/conformance/conformance_suite.h"
#include "transports/connect.h"

extern char** environ;

namespace lpc::conformance {
namespace {

enum class Kind { kLocal, kGrpcUnix, kGrpcTcp };

class ProcessConformance final : public ConformanceTransport {
 public:
  explicit ProcessConformance(Kind kind) : kind_(kind) {}
  ~ProcessConformance() override { StopServer(); }

  absl::Status StartServer(const ServerOptions& options) override {
    // Unix socket paths are limited to 108 bytes, so the directory is short.
    char dir_template[] = "/tmp/lpc-conf.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      return absl::InternalError("mkdtemp failed");
    }
    dir_ = dir_template;
    std::string server = absl::StrCat(std::getenv("TEST_SRCDIR"),
                                      "/lpc/tests/conformance/conformance_server");
    std::vector<std::string> args = {
        server, absl::StrCat("--max_message_size=", options.max_message_size)};
    switch (kind_) {
      case Kind::kLocal:
        args.push_back("--local_port=conformance");
        args.push_back(absl::StrCat("--runtime_dir=", dir_));
        break;
      case Kind::kGrpcUnix:
        args.push_back(absl::StrCat("--grpc=unix:", dir_, "/grpc.sock"));
        break;
      case Kind::kGrpcTcp:
        args.push_back("--grpc=127.0.0.1:0");
        break;
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      return absl::InternalError("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, server.c_str(), &actions, nullptr, argv.data(),
                         environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      close(out[0]);
      pid_ = -1;
      return absl::InternalError(absl::StrCat("posix_spawn: ", strerror(rc)));
    }
    // Wait, bounded, for the "ready" line.
    std::string line;
    absl::Time limit = absl::Now() + absl::Seconds(30);
    while (line.find('\n') == std::string::npos && absl::Now() < limit) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, n);
    }
    close(out[0]);
    if (line.rfind("ready ", 0) != 0) {
      return absl::UnavailableError(
          absl::StrCat("conformance_server did not start: '", line, "'"));
    }
    line = line.substr(6, line.find('\n') - 6);
    target_ = std::vector<std::string>(absl::StrSplit(line, ' '))[0];
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<Channel>> NewChannel(
      const ChannelOptions& options) override {
    config::Endpoint e;
    e.set_default_timeout_ms(
        static_cast<uint32_t>(absl::ToInt64Milliseconds(options.default_timeout)));
    e.set_max_message_size(options.max_message_size);
    e.mutable_local()->set_runtime_dir(dir_);
    return ConnectTarget(target_, &e);
  }

  void StopServer() override {
    if (stdin_ >= 0) {
      close(stdin_);
      stdin_ = -1;
    }
    if (pid_ > 0) {
      int status = 0;
      absl::Time limit = absl::Now() + absl::Seconds(10);
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (absl::Now() > limit) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
      (void)std::system(cmd.c_str());
      dir_.clear();
    }
  }

  bool HasKernelCredentials() const override { return kind_ == Kind::kLocal; }

 private:
  const Kind kind_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string dir_;
  std::string target_;
};

INSTANTIATE_TEST_SUITE_P(
    Processes, ConformanceTest,
    ::testing::Values(
        ConformanceParam{"local",
                         [] {
                           return std::make_unique<ProcessConformance>(
                               Kind::kLocal);
                         }},
        ConformanceParam{"grpc_unix",
                         [] {
                           return std::make_unique<ProcessConformance>(
                               Kind::kGrpcUnix);
                         }},
        ConformanceParam{"grpc_tcp",
                         [] {
                           return std::make_unique<ProcessConformance>(
                               Kind::kGrpcTcp);
                         }}),
    ConformanceParamName);

}  // namespace
}  // namespace lpc::conformance
