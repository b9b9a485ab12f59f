// Round-trip latency and throughput of the local transport: an Echo call
// through a real port and section. The server runs in a child process
// (local_test_peer), so the figures are cross-process; pin with taskset to
// compare same-core and cross-core placement.
//
//   bazel run -c opt //transports/local:local_benchmark
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "runtime/testing_service.h"
#include "transports/local/local_transport.h"

namespace {

std::string g_dir;

void BM_EchoRoundTrip(benchmark::State& state) {
  lpc::local::LocalChannelOptions lo;
  lo.runtime_dir = g_dir;
  auto ch = lpc::local::CreateLocalChannel("bench", {}, lo);
  const std::string payload(state.range(0), 'x');
  const auto& d = lpc::testing::RawDescriptor();
  for (auto _ : state) {
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Seconds(5));
    auto r = (*ch)->Call(d, d.methods[0], &ctx, payload);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      break;
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0) * 2);
}
BENCHMARK(BM_EchoRoundTrip)->Arg(16)->Arg(1000)->Arg(64 << 10)->Arg(4 << 20)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  char tmpl[] = "/tmp/lpc-bench-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  std::string bin = std::string(argv[0]);
  bin = bin.substr(0, bin.rfind('/')) + "/local_test_peer";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(bin.c_str(), bin.c_str(), "server", g_dir.c_str(), "bench",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the port (bounded).
  for (int i = 0; i < 500 && ::access((g_dir + "/bench").c_str(), F_OK) != 0; ++i) {
    ::usleep(10000);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  ::rmdir(g_dir.c_str());
  return 0;
}
