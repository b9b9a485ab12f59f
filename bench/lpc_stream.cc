// Benchmark contender: messages per second through one lpc stream.
//
//   --transport=grpc-unix|grpc-tcp|local|inprocess (a transport that
//                         cannot carry streams prints no row and exits 0)
//   --direction=down|up   down: the server writes, the client reads (a
//                         server stream); up: the client writes, the server
//                         reads (a client stream, answered with the count)
//
// The service is a byte-level lpc::Service whose two methods run through
// the call model (Service::StartCall) with asynchronous handlers, so the
// figure is the transport's: no handler thread wakes per message. Every
// message carries its sequence number (Stamp); the reader checks it.
//
// gRPC and local: the process forks before creating any lpc object; the
// child runs the server pinned to --server_cpu, the parent reads or writes
// pinned to --client_cpu. inprocess: one process, unpinned.
//
// Prints one JSON line per payload (bench_util.h schema): kind
// "stream-down" or "stream-up", calls_per_s = messages per second, gbps =
// payload bytes per second one way.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/internal/stream_bench_service.h"
#include "runtime/channel.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"

ABSL_FLAG(std::string, transport, "grpc-unix",
          "grpc-unix, grpc-tcp, local or inprocess");
ABSL_FLAG(std::string, direction, "down",
          "down (server to client) or up (client to server)");

namespace lpc::bench {
namespace {

using stream_bench::Direction;

// Reads (down) or writes (up) messages for `seconds` through one stream on
// this thread's callbacks; returns messages per second, or nullopt.
std::optional<double> RunOne(Channel& channel, Direction direction,
                             size_t payload, double seconds,
                             const std::string& contender,
                             bool* unsupported) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(seconds + 30));
  std::shared_ptr<ClientStream> stream = stream_bench::Open(channel, direction, &ctx);
  absl::StatusOr<stream_bench::Counted> counted =
      direction == Direction::kDown
          ? stream_bench::ReadFor(*stream, payload, seconds)
          : stream_bench::WriteFor(*stream, payload, seconds);
  if (!counted.ok()) {
    fprintf(stderr, "%s: stream failed: %s\n", contender.c_str(),
            counted.status().ToString().c_str());
    if (absl::IsUnimplemented(counted.status())) *unsupported = true;
    return std::nullopt;
  }
  return counted->messages / counted->elapsed_s;
}

int Run(const std::string& transport, Direction direction, int timeout_s) {
  const std::string contender = "lpc-" + transport;
  const Placement placement = transport == "inprocess"
                                  ? Placement{"in-process", -1, -1}
                                  : PlacementFromFlags();
  stream_bench::ServerProcess server;
  if (!server.Start(transport, placement.server_cpu, timeout_s)) return 1;
  PinToCpu(placement.client_cpu);
  absl::StatusOr<std::shared_ptr<Channel>> channel = server.Connect();
  if (!channel.ok()) {
    fprintf(stderr, "%s: %s\n", contender.c_str(),
            channel.status().ToString().c_str());
    server.Stop();
    return 1;
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  int rc = 0;
  bool unsupported = false;
  for (int64_t payload : PayloadsOr({64, 1 << 20})) {
    if (payload < 16) payload = 16;  // Room for the stamp.
    // Warm-up: a tenth of the time, at least one message.
    if (!RunOne(**channel, direction, payload, seconds / 10, contender,
                &unsupported)) {
      // A transport without streams: no rows, and not a failure.
      if (unsupported) fprintf(stderr, "%s: skipped\n", contender.c_str());
      rc = unsupported ? 0 : 1;
      break;
    }
    std::optional<double> per_s = RunOne(**channel, direction, payload,
                                         seconds, contender, &unsupported);
    if (!per_s) {
      rc = 1;
      break;
    }
    Result r;
    r.contender = contender;
    r.placement = placement.name;
    r.payload = payload;
    r.kind = direction == Direction::kDown ? "stream-down" : "stream-up";
    r.calls_per_s = *per_s;
    r.gbps = *per_s * static_cast<double>(payload) / 1e9;
    r.note = direction == Direction::kDown
                 ? "messages/s, one server stream, async handler"
                 : "messages/s, one client stream, async handler";
    PrintResult(r);
  }
  channel->reset();
  server.Stop();
  return rc;
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "lpc_stream [--transport=grpc-unix|grpc-tcp|local|"
                  "inprocess] [--direction=down|up] ...");
  const std::string transport = absl::GetFlag(FLAGS_transport);
  const std::string direction = absl::GetFlag(FLAGS_direction);
  if (transport != "grpc-unix" && transport != "grpc-tcp" &&
      transport != "local" && transport != "inprocess") {
    fprintf(stderr, "unknown --transport=%s\n", transport.c_str());
    return 2;
  }
  if (direction != "down" && direction != "up") {
    fprintf(stderr, "unknown --direction=%s\n", direction.c_str());
    return 2;
  }
  return Run(transport, direction == "down" ? Direction::kDown : Direction::kUp,
             absl::GetFlag(FLAGS_timeout));
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
