// The echo server child of lpc_echo; see lpc_echo_server.h.
#include "bench/lpc_echo_server.h"

#include <stdio.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "bench/lpc_bench.lpc.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/server.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

namespace lpc::bench {
namespace {

using ::lpc::bench::echo::EchoService;
using ::lpc::bench::echo::Record;

constexpr char kPortName[] = "echo";

class EchoImpl final : public EchoService {
 public:
  absl::StatusOr<std::string> Ping(CallContext&,
                                   const std::string& payload) override {
    return payload;
  }
  absl::StatusOr<Record> Mirror(CallContext&, const Record& record) override {
    return record;
  }
};

// The child: serves until the parent closes `stop_fd` (or the watchdog
// fires), then shuts down. Writes the server's target ("local:echo",
// "grpc:unix:...", "grpc:127.0.0.1:<port>") to `ready_fd`, length first,
// once it accepts calls.
int RunServer(const Setup& setup, int cpu, int ready_fd, int stop_fd,
               int timeout_s) {
  PinToCpu(cpu);
  ServerOptions options;
  options.shutdown_grace = absl::Seconds(1);
  Server server(options);
  EchoImpl impl;
  absl::Status s = server.RegisterService(&impl);
  std::string target;
  if (s.ok() && setup.transport == "local") {
    local::LocalPortOptions port;
    port.runtime_dir = setup.dir;
    port.spin = SpinFor(setup.wait);
    auto transport = local::MakeLocalServerTransport(kPortName, port);
    s = transport.ok() ? server.AddTransport(std::move(*transport))
                       : transport.status();
  } else if (s.ok()) {
    GrpcServerOptions grpc;
    grpc.listen_addresses = {setup.transport == "grpc-unix"
                                 ? "unix:" + setup.dir + "/echo.sock"
                                 : std::string("127.0.0.1:0")};
    s = server.AddTransport(MakeGrpcServerTransport(grpc));
  }
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "%s server: %s\n", setup.contender.c_str(),
            s.ToString().c_str());
    return 1;
  }
  target = server.targets().at(0);
  const uint32_t len = static_cast<uint32_t>(target.size());
  if (!WriteFull(ready_fd, &len, sizeof(len)) ||
      !WriteFull(ready_fd, target.data(), len)) {
    return 1;
  }
  close(ready_fd);
  char byte;
  // EOF (the parent closed the pipe) or the timeout: either way, stop.
  ReadFullTimeout(stop_fd, &byte, 1, timeout_s * 1000);
  server.Shutdown();
  return 0;
}

}  // namespace

absl::Duration SpinFor(const std::string& wait) {
  if (wait == "block") return absl::ZeroDuration();
  if (wait == "spin") return absl::InfiniteDuration();
  return absl::Microseconds(20);
}

bool ServerProcess::Start(const Setup& setup, int cpu, int timeout_s) {
  int ready[2], stop[2];
  if (pipe(ready) != 0) return false;
  if (pipe(stop) != 0) return false;
  pid = ForkChild([&] {
    close(ready[0]);
    close(stop[1]);
    return RunServer(setup, cpu, ready[1], stop[0], timeout_s);
  });
  close(ready[1]);
  close(stop[0]);
  stop_fd = stop[1];
  if (pid < 0) return false;
  uint32_t len = 0;
  bool ok = ReadFullTimeout(ready[0], &len, sizeof(len), 20000) &&
            len < 4096;
  if (ok) {
    target.resize(len);
    ok = ReadFullTimeout(ready[0], target.data(), len, 5000);
  }
  close(ready[0]);
  if (!ok) fprintf(stderr, "%s: server did not start\n",
                   setup.contender.c_str());
  return ok;
}

void ServerProcess::Stop() {
  if (stop_fd >= 0) close(stop_fd);
  stop_fd = -1;
  int status = 0;
  if (pid > 0 && !WaitChild(pid, 5000, &status)) StopChild(pid);
  pid = -1;
}

absl::StatusOr<std::shared_ptr<Channel>> Connect(const Setup& setup,
                                                 const std::string& target,
                                                 bool separate_connection) {
  ChannelOptions options;
  options.default_timeout = absl::Milliseconds(kEchoCallTimeoutMs);
  if (setup.transport == "local") {
    local::LocalChannelOptions local_options;
    local_options.runtime_dir = setup.dir;
    local_options.spin = SpinFor(setup.wait);
    return local::CreateLocalChannel(kPortName, options, local_options);
  }
  GrpcChannelOptions grpc_options;
  if (separate_connection) {
    grpc_options.channel_args["grpc.use_local_subchannel_pool"] = 1;
  }
  // "grpc:<gRPC target>"
  auto channel = GrpcChannel::Create(target.substr(5), options, grpc_options);
  if (!channel.ok()) return channel.status();
  return std::shared_ptr<Channel>(*std::move(channel));
}

}  // namespace lpc::bench
