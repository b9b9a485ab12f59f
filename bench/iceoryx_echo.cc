// iceoryx 2.0 request/response echo between two processes, with the untyped
// client and server (zero-copy: the payload is written into, and read from,
// loaned shared-memory chunks).
//
//   --wait=poll     client and server busy-poll take().
//   --wait=waitset  client and server block in a WaitSet until a response
//                   or request arrives.
//
// iceoryx needs its daemon. This program is a coordinator that never joins
// iceoryx itself: it starts `iox-roudi` with a config of its own (written to
// a fresh temp dir, with mempools big enough for 16 MiB payloads), waits for
// it to say it is ready, forks the server and the measuring client, and
// stops them all by pid: client, then server, then RouDi. Only one RouDi can
// run on a machine; if another is running this program reports it and fails.
//
// Prints one JSON line per payload size (see bench_util.h).

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/bench_util.h"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/rpc_header.hpp"
#include "iceoryx_posh/popo/untyped_client.hpp"
#include "iceoryx_posh/popo/untyped_server.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

ABSL_FLAG(std::string, wait, "poll", "poll, or waitset (blocking)");
ABSL_FLAG(std::string, roudi, "iox-roudi", "the RouDi daemon to start");

namespace lpc::bench {
namespace {

constexpr int64_t kStopSequence = -1;
constexpr size_t kMaxPayload = 16 << 20;
constexpr uint64_t kCallTimeoutNs = 5'000'000'000ull;
constexpr uint64_t kIdleTimeoutNs = 60'000'000'000ull;

const iox::capro::ServiceDescription kService{"LpcBench", "Echo", "Untyped"};

// Chunk sizes cover the payload plus iceoryx's chunk and RPC headers.
constexpr char kRoudiConfig[] = R"(# Written by lpc's bench/iceoryx_echo.
[general]
version = 1

[[segment]]

[[segment.mempool]]
size = 256
count = 64

[[segment.mempool]]
size = 2048
count = 64

[[segment.mempool]]
size = 69632
count = 16

[[segment.mempool]]
size = 1052672
count = 8

[[segment.mempool]]
size = 16781312
count = 6
)";

inline void CpuRelax() { __builtin_ia32_pause(); }

int RunServer(bool waitset, int cpu) {
  PinToCpu(cpu);
  iox::runtime::PoshRuntime::initRuntime("lpc-bench-iox-server");
  iox::popo::UntypedServer server(kService);
  iox::popo::WaitSet<> ws;
  if (waitset) {
    if (ws.attachState(server, iox::popo::ServerState::HAS_REQUEST)
            .has_error()) {
      fprintf(stderr, "iceoryx server: cannot attach waitset\n");
      return 1;
    }
  }
  uint64_t idle_since = NowNs();
  for (;;) {
    auto taken = server.take();
    if (taken.has_error()) {
      if (NowNs() - idle_since > kIdleTimeoutNs) return 1;
      if (waitset) {
        ws.timedWait(iox::units::Duration::fromMilliseconds(100));
      } else {
        CpuRelax();
      }
      continue;
    }
    idle_since = NowNs();
    const void* request = taken.value();
    const auto* header = iox::popo::RequestHeader::fromPayload(request);
    if (header->getSequenceId() == kStopSequence) {
      server.releaseRequest(request);
      return 0;
    }
    const uint32_t n =
        iox::mepoo::ChunkHeader::fromUserPayload(request)->userPayloadSize();
    auto loaned = server.loan(header, n, 8);
    if (loaned.has_error()) {
      fprintf(stderr, "iceoryx server: cannot loan %u bytes\n", n);
      server.releaseRequest(request);
      return 1;
    }
    void* response = loaned.value();
    memcpy(response, request, n);
    server.releaseRequest(request);
    if (server.send(response).has_error()) {
      fprintf(stderr, "iceoryx server: send failed\n");
      return 1;
    }
  }
}

int RunClient(bool waitset, const Placement& placement) {
  PinToCpu(placement.client_cpu);
  const RunLimits limits = LimitsFromFlags();
  const std::string contender =
      std::string("iceoryx-") + (waitset ? "waitset" : "poll");
  iox::runtime::PoshRuntime::initRuntime("lpc-bench-iox-client");
  iox::popo::UntypedClient client(kService);
  iox::popo::WaitSet<> ws;
  if (waitset &&
      ws.attachState(client, iox::popo::ClientState::HAS_RESPONSE)
          .has_error()) {
    fprintf(stderr, "iceoryx client: cannot attach waitset\n");
    return 1;
  }
  // Wait (bounded) until RouDi has matched the client with the server.
  const uint64_t connect_deadline = NowNs() + 10'000'000'000ull;
  while (client.getConnectionState() != iox::ConnectionState::CONNECTED) {
    if (NowNs() > connect_deadline) {
      fprintf(stderr, "iceoryx client: server never connected\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::vector<char> src(kMaxPayload, 'i'), dst(kMaxPayload, 0);
  int64_t seq = 0;
  int rc = 0;
  for (int64_t payload : PayloadsOr(DefaultPayloads())) {
    if (payload < 0 || static_cast<size_t>(payload) > kMaxPayload) continue;
    const uint32_t n = static_cast<uint32_t>(payload);
    auto call = [&]() -> bool {
      ++seq;
      auto loaned = client.loan(n, 8);
      if (loaned.has_error()) {
        fprintf(stderr, "iceoryx client: cannot loan %u bytes\n", n);
        return false;
      }
      void* request = loaned.value();
      iox::popo::RequestHeader::fromPayload(request)->setSequenceId(seq);
      Stamp(src.data(), n, static_cast<uint64_t>(seq));
      memcpy(request, src.data(), n);
      if (client.send(request).has_error()) {
        fprintf(stderr, "iceoryx client: send failed\n");
        return false;
      }
      const uint64_t deadline = NowNs() + kCallTimeoutNs;
      for (uint64_t i = 0;; ++i) {
        auto taken = client.take();
        if (!taken.has_error()) {
          const void* response = taken.value();
          const int64_t got_seq =
              iox::popo::ResponseHeader::fromPayload(response)->getSequenceId();
          const uint32_t got_n = iox::mepoo::ChunkHeader::fromUserPayload(
                                     response)->userPayloadSize();
          bool ok = got_seq == seq && got_n == n;
          if (ok) memcpy(dst.data(), response, n);
          client.releaseResponse(response);
          if (got_seq != seq) continue;  // A stale response; keep waiting.
          return ok && CheckStamp(dst.data(), n, static_cast<uint64_t>(seq));
        }
        if ((i & 255) == 255 && NowNs() > deadline) {
          fprintf(stderr, "iceoryx client: no response to call %ld\n",
                  static_cast<long>(seq));
          return false;
        }
        if (waitset) {
          ws.timedWait(iox::units::Duration::fromMilliseconds(100));
        } else {
          CpuRelax();
        }
      }
    };
    Samples samples;
    if (!Measure(limits, call, &samples)) {
      rc = 1;
      break;
    }
    Result r = MakeEchoResult(contender, placement.name, payload, samples);
    r.note = "zero-copy loaned chunks; payload copied in and out";
    PrintResult(r);
  }
  // Tell the server to stop.
  auto loaned = client.loan(8, 8);
  if (!loaned.has_error()) {
    iox::popo::RequestHeader::fromPayload(loaned.value())
        ->setSequenceId(kStopSequence);
    if (client.send(loaned.value()).has_error()) {
      fprintf(stderr, "iceoryx client: cannot stop the server\n");
    }
  }
  return rc;
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find(needle) != std::string::npos;
}

// Runs `body` in a child and leaves through exit() rather than _exit(), so
// that the iceoryx runtime deregisters from RouDi.
pid_t ForkIceoryxChild(const std::function<int()>& body) {
  return ForkChild([body] {
    // Only warnings and errors: the library's debug lines would otherwise
    // mix with the JSON lines on stdout.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
        iox::log::LogLevel::kWarn, iox::log::LogLevelOutput::kHideLogLevel);
    int rc = body();
    fflush(stdout);
    exit(rc);
    return rc;
  });
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "iceoryx_echo [--wait=poll|waitset] [--placement=...] "
                  "[--payloads=...] ...");
  const std::string wait = absl::GetFlag(FLAGS_wait);
  if (wait != "poll" && wait != "waitset") {
    fprintf(stderr, "bad --wait=%s\n", wait.c_str());
    return 2;
  }
  const bool waitset = wait == "waitset";
  const Placement placement = PlacementFromFlags();
  const std::string roudi_bin = absl::GetFlag(FLAGS_roudi);

  const std::string dir = MakeTempDir("lpc-bench-iox-");
  const std::string config = dir + "/roudi.toml";
  const std::string log = dir + "/roudi.log";
  {
    std::ofstream out(config);
    out << kRoudiConfig;
  }
  pid_t roudi = ForkChild([&] {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execlp(roudi_bin.c_str(), roudi_bin.c_str(), "-c", config.c_str(), "-l",
           "info", static_cast<char*>(nullptr));
    fprintf(stderr, "exec %s: %s\n", roudi_bin.c_str(), strerror(errno));
    return 127;
  });
  if (roudi < 0) return 2;
  // Bounded wait for RouDi's "ready" line; an early exit means it could not
  // start (most likely another RouDi owns the shared memory).
  const uint64_t ready_deadline = NowNs() + 10'000'000'000ull;
  bool ready = false;
  while (NowNs() < ready_deadline) {
    if (FileContains(log, "RouDi is ready")) {
      ready = true;
      break;
    }
    int status = 0;
    if (waitpid(roudi, &status, WNOHANG) == roudi) {
      roudi = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!ready) {
    fprintf(stderr,
            "iceoryx: iox-roudi did not become ready (is another RouDi "
            "running?). Its log:\n");
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    fprintf(stderr, "%s\n", ss.str().c_str());
    if (roudi > 0) StopChild(roudi);
    RemoveTempDir(dir);
    return 1;
  }

  pid_t server = ForkIceoryxChild(
      [&] { return RunServer(waitset, placement.server_cpu); });
  pid_t client = ForkIceoryxChild(
      [&] { return RunClient(waitset, placement); });
  int rc = 1;
  int status = 0;
  if (client > 0 && WaitChild(client, 1000 * absl::GetFlag(FLAGS_timeout),
                              &status)) {
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  } else if (client > 0) {
    StopChild(client);
  }
  if (server > 0 && !WaitChild(server, 2000, &status)) StopChild(server);
  StopChild(roudi, 5000);
  RemoveTempDir(dir);
  return rc;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
