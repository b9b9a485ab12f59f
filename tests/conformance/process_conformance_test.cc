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
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/config.pb.h"
#include "testing/server_process.h"
#include "tests/conformance/conformance_suite.h"
#include "transports/connect.h"

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
    std::vector<std::string> args = {
        Binary(), absl::StrCat("--max_message_size=", options.max_message_size)};
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
    absl::Status started = server_.Start(std::move(args));
    if (!started.ok()) return started;
    std::string line = server_.ready_line();
    line = line.substr(6);
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
    client_.Kill();
    server_.Stop();
    if (!dir_.empty()) {
      std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
      (void)std::system(cmd.c_str());
      dir_.clear();
    }
  }

  bool HasKernelCredentials() const override { return kind_ == Kind::kLocal; }

  int ServerPid() const override { return server_.pid(); }

  absl::Status StartClientProcess(const std::string& mode) override {
    return client_.Start({Binary(), absl::StrCat("--client_of=", target_),
                          absl::StrCat("--client_mode=", mode),
                          absl::StrCat("--runtime_dir=", dir_)});
  }

  void KillClientProcess() override { client_.Kill(); }

 private:
  static std::string Binary() {
    return absl::StrCat(std::getenv("TEST_SRCDIR"),
                        "/lpc/tests/conformance/conformance_server");
  }


  const Kind kind_;
  ::lpc::testing::ServerProcess server_;
  ::lpc::testing::ServerProcess client_;
  std::string dir_;
  std::string target_;
};

// The server in another process, over each transport that crosses one.
std::vector<ConformanceParam> Processes() {
  std::vector<ConformanceParam> params;
  for (auto [name, kind] : {std::pair{"local", Kind::kLocal},
                            std::pair{"grpc_unix", Kind::kGrpcUnix},
                            std::pair{"grpc_tcp", Kind::kGrpcTcp}}) {
    params.push_back(ConformanceParam{name, [kind = kind] {
      return std::make_unique<ProcessConformance>(kind);
    }});
  }
  return params;
}

INSTANTIATE_TEST_SUITE_P(Processes, ConformanceTest,
                         ::testing::ValuesIn(Processes()),
                         ConformanceParamName);

// The streaming cases.
INSTANTIATE_TEST_SUITE_P(Processes, StreamConformanceTest,
                         ::testing::ValuesIn(Processes()),
                         ConformanceParamName);

}  // namespace
}  // namespace lpc::conformance
