// Cap'n Proto RPC echo between two processes over a Unix socket in a fresh
// temp dir, using the library's EzRpc client and server. The process forks
// first; the child serves, the parent measures and stops the child by pid.
//
// Prints one JSON line per payload size (see bench_util.h).

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/exception.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/echo.capnp.h"

namespace lpc::bench {
namespace {

using capnp_echo::Echo;

class EchoImpl final : public Echo::Server {
 protected:
  kj::Promise<void> echo(EchoContext context) override {
    context.getResults().setPayload(context.getParams().getPayload());
    return kj::READY_NOW;
  }
};

int RunServer(const std::string& address, int cpu, int ready_fd) {
  PinToCpu(cpu);
  try {
    capnp::EzRpcServer server(kj::heap<EchoImpl>(), address.c_str());
    kj::WaitScope& ws = server.getWaitScope();
    server.getPort().wait(ws);
    char c = 'r';
    if (!WriteFull(ready_fd, &c, 1)) return 1;
    close(ready_fd);
    kj::NEVER_DONE.wait(ws);  // Until the parent stops this process.
  } catch (const kj::Exception& e) {
    fprintf(stderr, "capnp server: %s\n", e.getDescription().cStr());
    return 1;
  }
  return 0;
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "capnp_echo [--placement=...] [--payloads=0,64,...] [--seconds=S]");
  const Placement placement = PlacementFromFlags();
  const RunLimits limits = LimitsFromFlags();
  const std::string dir = MakeTempDir("lpc-bench-capnp-");
  const std::string address = "unix:" + dir + "/echo.sock";
  int ready[2];
  if (pipe(ready) != 0) return 2;
  pid_t server = ForkChild([&] {
    close(ready[0]);
    return RunServer(address, placement.server_cpu, ready[1]);
  });
  close(ready[1]);
  if (server < 0) return 2;
  char c = 0;
  if (!ReadFullTimeout(ready[0], &c, 1, 20000)) {
    fprintf(stderr, "capnp: server did not start\n");
    StopChild(server);
    RemoveTempDir(dir);
    return 1;
  }
  close(ready[0]);
  PinToCpu(placement.client_cpu);

  int rc = 0;
  try {
    capnp::EzRpcClient client(address.c_str());
    kj::WaitScope& ws = client.getWaitScope();
    Echo::Client echo = client.getMain<Echo>();
    std::vector<char> src(16 << 20, 'c'), dst(16 << 20, 0);
    uint64_t seq = 0;
    for (int64_t payload : PayloadsOr(DefaultPayloads())) {
      if (payload < 0 || static_cast<size_t>(payload) > src.size()) continue;
      const size_t n = static_cast<size_t>(payload);
      auto call = [&]() -> bool {
        ++seq;
        Stamp(src.data(), n, seq);
        auto request = echo.echoRequest();
        auto data = request.initPayload(static_cast<unsigned>(n));
        memcpy(data.begin(), src.data(), n);
        auto response = request.send().wait(ws);
        auto got = response.getPayload();
        if (got.size() != n) return false;
        memcpy(dst.data(), got.begin(), n);
        return CheckStamp(dst.data(), n, seq);
      };
      Samples samples;
      if (!Measure(limits, call, &samples)) {
        fprintf(stderr, "capnp: wrong reply\n");
        rc = 1;
        break;
      }
      PrintResult(MakeEchoResult("capnp-rpc-unix", placement.name, payload,
                                 samples));
    }
  } catch (const kj::Exception& e) {
    fprintf(stderr, "capnp client: %s\n", e.getDescription().cStr());
    rc = 1;
  }
  StopChild(server);
  RemoveTempDir(dir);
  return rc;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
