// The pieces of lpc_echo (bench/lpc_echo.cc) that its throughput modes
// (bench/lpc_echo_throughput.cc) share: the flags they read, the checked
// echo, and the two modes. Private to :lpc_echo.
#ifndef LPC_BENCH_INTERNAL_LPC_ECHO_H_
#define LPC_BENCH_INTERNAL_LPC_ECHO_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "bench/bench_util.h"
#include "bench/lpc_bench.lpc.h"
#include "bench/lpc_echo_server.h"

ABSL_DECLARE_FLAG(int64_t, payload);
ABSL_DECLARE_FLAG(lpc::bench::IntList, callers);

namespace lpc::bench {

inline constexpr int kCallTimeoutMs = kEchoCallTimeoutMs;

// One echo through the sync stub, with the payload stamped and checked.
bool EchoOnce(echo::EchoClient& client, std::string& buf, uint64_t seq,
              const std::string& contender);

// --mode=throughput: --callers callers, each calling in a loop over the
// same window with --payload; threads sharing one channel, or one process
// and one connection per caller.
int RunThroughputThreads(const Setup& setup, ServerProcess& server);
int RunThroughputProcesses(const Setup& setup, ServerProcess& server);

}  // namespace lpc::bench

#endif  // LPC_BENCH_INTERNAL_LPC_ECHO_H_
