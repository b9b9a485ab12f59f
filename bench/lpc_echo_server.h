// lpc_echo's server side: the child process that serves bench/lpc_bench.idl's
// Echo over the local or the gRPC transport, and the channels that reach it.
#ifndef LPC_BENCH_LPC_ECHO_SERVER_H_
#define LPC_BENCH_LPC_ECHO_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"

namespace lpc::bench {

// Every call's timeout.
inline constexpr int kEchoCallTimeoutMs = 10000;

// What the child serves and how the parent reaches it.
struct Setup {
  std::string transport;  // local, grpc-unix, grpc-tcp
  std::string wait;       // spin-block, block, spin (local only)
  std::string dir;        // temp dir: the local port or the Unix socket
  std::string contender;
};

// The local port's spin for --wait (spin-block, block, spin).
absl::Duration SpinFor(const std::string& wait);

// The server child and the pipes to it. The child serves until Stop closes
// the pipe (or `timeout_s` passes), then shuts down.
struct ServerProcess {
  pid_t pid = -1;
  int stop_fd = -1;
  std::string target;  // "local:echo", "grpc:unix:/..", "grpc:127.0.0.1:N"

  // Forks the child pinned to `cpu` (-1: unpinned) and waits for its target.
  bool Start(const Setup& setup, int cpu, int timeout_s);
  // Closes the pipe and reaps the child (SIGKILL by pid as a last resort).
  void Stop();
};

// A new channel to the server. `separate_connection` keeps gRPC from
// sharing one connection between channels to the same target.
absl::StatusOr<std::shared_ptr<Channel>> Connect(const Setup& setup,
                                                 const std::string& target,
                                                 bool separate_connection);

}  // namespace lpc::bench

#endif  // LPC_BENCH_LPC_ECHO_SERVER_H_
