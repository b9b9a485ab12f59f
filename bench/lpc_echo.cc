// lpc's own benchmark contender: an echo through the generated stubs of
// bench/lpc_bench.idl between two processes, over lpc's local shared-memory
// transport or over lpc's gRPC transport. The process forks before it
// creates any lpc object or thread; the child serves, the parent measures
// and then stops the child (by closing a pipe, SIGKILL by pid as a last
// resort).
//
//   --transport=local|grpc-unix|grpc-tcp
//   --wait=spin-block|block|spin   local only: how both sides wait for the
//                                  peer (LocalChannelOptions::spin and
//                                  LocalPortOptions::spin = 20 us, zero, or
//                                  infinite).
//   --mode=latency      one caller, one call in flight, each payload of
//                       --payloads; also the server's and the client's CPU
//                       time per call.
//   --mode=throughput   --callers=1,4,16,64 callers, each calling in a loop
//                       over the same window, with --payload (default 64);
//                       --callers_as=threads (one channel shared by the
//                       threads, as grpc_echo does) or processes (one
//                       process and one connection per caller).
//   --mode=pipelined    one thread keeps --window calls in flight through
//                       the async stub.
//   --mode=connect      time from a new channel to its first completed call,
//                       and the server's resident memory per extra open
//                       connection (--connections of them).
//
// Contender names: lpc-local (spin then block), lpc-local-block,
// lpc-local-spin, lpc-grpc-unix, lpc-grpc-tcp. Prints one JSON line per
// measurement (see bench_util.h).

#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "bench/internal/lpc_echo.h"
#include "bench/lpc_bench.lpc.h"
#include "bench/lpc_echo_server.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "transports/local/local_transport.h"
#include "transports/local/section.h"

ABSL_FLAG(std::string, transport, "local", "local, grpc-unix or grpc-tcp");
ABSL_FLAG(std::string, wait, "spin-block",
          "the local port's wait: spin-block, spin or block");
ABSL_FLAG(std::string, mode, "latency",
          "latency, throughput, pipelined or connect");
ABSL_FLAG(std::string, callers_as, "threads",
          "throughput mode's callers: threads or processes");
ABSL_FLAG(int64_t, payload, 64,
          "payload bytes in throughput and pipelined modes");
ABSL_FLAG(lpc::bench::IntList, callers, (lpc::bench::IntList{{1, 4, 16, 64}}),
          "throughput mode: numbers of concurrent callers");
ABSL_FLAG(lpc::bench::IntList, window, (lpc::bench::IntList{{128}}),
          "pipelined mode: calls in flight");
ABSL_FLAG(int64_t, connections, 32, "connect mode: connections to open");

namespace lpc::bench {

using ::lpc::bench::echo::EchoClient;

bool EchoOnce(EchoClient& client, std::string& buf, uint64_t seq,
              const std::string& contender) {
  Stamp(buf.data(), buf.size(), seq);
  absl::StatusOr<std::string> reply = client.Ping(buf);
  if (!reply.ok()) {
    fprintf(stderr, "%s: call failed: %s\n", contender.c_str(),
            reply.status().ToString().c_str());
    return false;
  }
  if (reply->size() != buf.size() ||
      !CheckStamp(reply->data(), reply->size(), seq)) {
    fprintf(stderr, "%s: wrong reply\n", contender.c_str());
    return false;
  }
  return true;
}

namespace {

int RunLatency(const Setup& setup,
               const Placement& placement, ServerProcess& server) {
  const RunLimits limits = LimitsFromFlags();
  PinToCpu(placement.client_cpu);
  auto channel = Connect(setup, server.target, false);
  if (!channel.ok()) {
    fprintf(stderr, "%s: %s\n", setup.contender.c_str(),
            channel.status().ToString().c_str());
    return 1;
  }
  EchoClient client(*channel);
  uint64_t seq = 0;
  int rc = 0;
  for (int64_t payload : PayloadsOr(DefaultPayloads())) {
    if (payload < 0 || payload > (int64_t{32} << 20)) continue;
    std::string buf(static_cast<size_t>(payload), 'l');
    uint64_t calls = 0;
    const double server_cpu0 = ProcessCpuSeconds(server.pid);
    const double client_cpu0 = ProcessCpuSeconds(0);
    Samples samples;
    const bool ok = Measure(
        limits,
        [&] {
          ++calls;
          return EchoOnce(client, buf, ++seq, setup.contender);
        },
        &samples);
    const double server_cpu = ProcessCpuSeconds(server.pid) - server_cpu0;
    const double client_cpu = ProcessCpuSeconds(0) - client_cpu0;
    if (!ok) {
      rc = 1;
      break;
    }
    Result r =
        MakeEchoResult(setup.contender, placement.name, payload, samples);
    // Warm-up calls included: CPU time is read around all of them.
    r.extra.emplace_back("server_cpu_us_per_call", server_cpu / calls * 1e6);
    r.extra.emplace_back("client_cpu_us_per_call", client_cpu / calls * 1e6);
    PrintResult(r);
  }
  channel->reset();
  return rc;
}

// Keeps `window` calls in flight from one thread through the async stub.
int RunPipelined(const Setup& setup,
                 const Placement& placement, ServerProcess& server) {
  const RunLimits limits = LimitsFromFlags();
  const int64_t payload = absl::GetFlag(FLAGS_payload);
  PinToCpu(placement.client_cpu);
  auto channel = Connect(setup, server.target, false);
  if (!channel.ok()) return 1;
  EchoClient client(*channel);
  {
    // Connect before the clock starts.
    std::string warm(static_cast<size_t>(payload), 'w');
    if (!EchoOnce(client, warm, 1, setup.contender)) return 1;
  }
  int rc = 0;
  for (int64_t window : absl::GetFlag(FLAGS_window).values) {
    if (window <= 0 || window > 1024) continue;
    std::mutex mu;
    std::condition_variable cv;
    int64_t in_flight = 0;
    bool waiting = false;
    std::atomic<uint64_t> failed{0};
    std::atomic<uint64_t> done_in_window{0};
    constexpr size_t kMaxSamples = 1 << 21;
    std::vector<uint64_t> lat(kMaxSamples);
    std::atomic<size_t> n_lat{0};
    const uint64_t start =
        NowNs() + static_cast<uint64_t>(limits.seconds * 0.2 * 1e9);
    const uint64_t end = start + static_cast<uint64_t>(limits.seconds * 1e9);
    std::string buf(static_cast<size_t>(payload), 'p');
    uint64_t seq = static_cast<uint64_t>(window) << 40;
    uint64_t issued = 0;
    const double server_cpu0 = ProcessCpuSeconds(server.pid);
    const double client_cpu0 = ProcessCpuSeconds(0);
    // Each call has a context of this thread's making. A finished call's
    // context is deleted here, on the issuing thread, once its callback has
    // run and PingAsync has returned: neither the transport nor the stub
    // touches it after that, and the channel, still held here, outlives it.
    std::vector<CallContext*> finished;
    std::vector<CallContext*> to_delete;
    for (int64_t k = 0; k < limits.max_iters * 100; ++k) {
      const uint64_t t0 = NowNs();
      if (t0 >= end || failed.load(std::memory_order_relaxed) != 0) break;
      for (CallContext* c : to_delete) delete c;
      to_delete.clear();
      {
        std::unique_lock<std::mutex> lock(mu);
        to_delete.swap(finished);
        while (in_flight >= window) {
          waiting = true;
          if (!cv.wait_for(lock, std::chrono::milliseconds(kCallTimeoutMs),
                           [&] { return in_flight < window; })) {
            fprintf(stderr, "%s: pipelined calls stopped completing\n",
                    setup.contender.c_str());
            abort();  // Callbacks still reference this frame.
          }
        }
        ++in_flight;
      }
      const uint64_t my_seq = ++seq;
      Stamp(buf.data(), buf.size(), my_seq);
      ++issued;
      auto* ctx = new CallContext();
      ctx->set_timeout(absl::Milliseconds(kCallTimeoutMs));
      client.PingAsync(
          buf,
          [&, my_seq, t0, ctx](absl::StatusOr<EchoClient::PingResult> r) {
            const uint64_t t1 = NowNs();
            if (!r.ok() || r->value.size() != buf.size() ||
                !CheckStamp(r->value.data(), r->value.size(), my_seq)) {
              failed.fetch_add(1);
            } else if (t0 >= start && t1 <= end) {
              done_in_window.fetch_add(1, std::memory_order_relaxed);
              const size_t i = n_lat.fetch_add(1, std::memory_order_relaxed);
              if (i < kMaxSamples) lat[i] = t1 - t0;
            }
            // Deleted by the issuing thread; see `finished`.
            std::lock_guard<std::mutex> lock(mu);
            finished.push_back(ctx);
            --in_flight;
            if (waiting && in_flight <= window * 3 / 4) {
              waiting = false;
              cv.notify_one();
            }
          },
          ctx);
    }
    {
      // Drain: every callback must have run before this frame goes.
      std::unique_lock<std::mutex> lock(mu);
      waiting = true;
      while (in_flight > 0) {
        waiting = true;
        if (!cv.wait_for(lock, std::chrono::milliseconds(2 * kCallTimeoutMs),
                         [&] { return in_flight == 0 || !waiting; })) {
          fprintf(stderr, "%s: pipelined calls never completed\n",
                  setup.contender.c_str());
          abort();
        }
      }
      to_delete.insert(to_delete.end(), finished.begin(), finished.end());
      finished.clear();
    }
    for (CallContext* c : to_delete) delete c;
    to_delete.clear();
    const double server_cpu = ProcessCpuSeconds(server.pid) - server_cpu0;
    const double client_cpu = ProcessCpuSeconds(0) - client_cpu0;
    if (failed.load() != 0) {
      fprintf(stderr, "%s: %llu pipelined calls failed\n",
              setup.contender.c_str(),
              static_cast<unsigned long long>(failed.load()));
      rc = 1;
      break;
    }
    Samples samples;
    samples.ns.assign(lat.begin(),
                      lat.begin() + std::min(n_lat.load(), kMaxSamples));
    samples.elapsed_s = (end - start) / 1e9;
    Result r =
        MakeEchoResult(setup.contender, placement.name, payload, samples);
    r.calls_per_s = done_in_window.load() / samples.elapsed_s;
    r.gbps = 2.0 * payload * r.calls_per_s / 1e9;
    r.kind = "pipelined";
    r.note = "pipelined: one thread, async stub, calls in flight = window";
    r.extra.emplace_back("window", static_cast<double>(window));
    r.extra.emplace_back("server_cpu_us_per_call",
                         issued > 0 ? server_cpu / issued * 1e6 : 0);
    r.extra.emplace_back("client_cpu_us_per_call",
                         issued > 0 ? client_cpu / issued * 1e6 : 0);
    PrintResult(r);
  }
  channel->reset();
  return rc;
}

// New channel to first completed call, and resident memory per connection.
int RunConnect(const Setup& setup,
               const Placement& placement, ServerProcess& server) {
  const RunLimits limits = LimitsFromFlags();
  const int64_t connections = absl::GetFlag(FLAGS_connections);
  const int64_t payload = 64;
  PinToCpu(placement.client_cpu);
  uint64_t seq = 0;
  std::string buf(payload, 'c');
  auto open_one = [&](std::shared_ptr<Channel>* out,
                      std::vector<uint64_t>* ns) {
    const uint64_t t0 = NowNs();
    auto channel = Connect(setup, server.target, true);
    if (!channel.ok()) return false;
    EchoClient client(*channel);
    if (!EchoOnce(client, buf, ++seq, setup.contender)) return false;
    ns->push_back(NowNs() - t0);
    *out = *std::move(channel);
    return true;
  };
  std::vector<uint64_t> ns;
  // One connection first, so that code paths and pools are warm.
  std::shared_ptr<Channel> first;
  if (!open_one(&first, &ns)) return 1;
  ns.clear();
  const int64_t server_rss0 = ProcessRssBytes(server.pid);
  const int64_t client_rss0 = ProcessRssBytes(0);
  std::vector<std::shared_ptr<Channel>> open(connections);
  for (int64_t i = 0; i < connections; ++i) {
    if (!open_one(&open[i], &ns)) return 1;
  }
  // Let the server finish setting the connections up (it answered each
  // already; this only covers lazily touched pages).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t server_rss1 = ProcessRssBytes(server.pid);
  const int64_t client_rss1 = ProcessRssBytes(0);
  open.clear();
  // More samples of the connect time: open and close one at a time.
  const uint64_t deadline = NowNs() + static_cast<uint64_t>(limits.seconds * 1e9);
  for (int64_t i = 0; i < limits.max_iters && NowNs() < deadline; ++i) {
    std::shared_ptr<Channel> c;
    if (!open_one(&c, &ns)) return 1;
  }
  first.reset();
  Samples samples;
  samples.ns = ns;
  uint64_t total = 0;
  for (uint64_t v : ns) total += v;
  samples.elapsed_s = total / 1e9;
  Result r = MakeEchoResult(setup.contender, placement.name, payload, samples);
  r.gbps = 0;
  r.kind = "connect";
  r.note = "connect: new channel to its first completed 64 B call";
  r.extra.emplace_back(
      "server_rss_kib_per_connection",
      (server_rss1 - server_rss0) / 1024.0 / static_cast<double>(connections));
  r.extra.emplace_back(
      "client_rss_kib_per_connection",
      (client_rss1 - client_rss0) / 1024.0 / static_cast<double>(connections));
  double section_kib = 0;
  if (setup.transport == "local") {
    auto layout = local::ComputeLayout(local::LocalPortOptions().geometry);
    if (layout.ok()) section_kib = layout->total_size / 1024.0;
  }
  r.extra.emplace_back("section_kib", section_kib);
  r.extra.emplace_back("connections", static_cast<double>(connections));
  PrintResult(r);
  return 0;
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "lpc_echo [--transport=local|grpc-unix|grpc-tcp] "
                  "[--mode=latency|throughput|pipelined|connect] ...");
  const int timeout_s = absl::GetFlag(FLAGS_timeout);
  Setup setup;
  setup.transport = absl::GetFlag(FLAGS_transport);
  setup.wait = absl::GetFlag(FLAGS_wait);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::string callers_as = absl::GetFlag(FLAGS_callers_as);
  if (setup.transport == "local") {
    if (setup.wait == "spin-block") {
      setup.contender = "lpc-local";
    } else if (setup.wait == "block" || setup.wait == "spin") {
      setup.contender = "lpc-local-" + setup.wait;
    } else {
      fprintf(stderr, "unknown --wait=%s\n", setup.wait.c_str());
      return 2;
    }
  } else if (setup.transport == "grpc-unix" || setup.transport == "grpc-tcp") {
    setup.contender = "lpc-" + setup.transport;
  } else {
    fprintf(stderr, "unknown --transport=%s\n", setup.transport.c_str());
    return 2;
  }
  if (mode != "latency" && mode != "throughput" && mode != "pipelined" &&
      mode != "connect") {
    fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
    return 2;
  }
  if (callers_as != "threads" && callers_as != "processes") {
    fprintf(stderr, "unknown --callers_as=%s\n", callers_as.c_str());
    return 2;
  }
  Placement placement = PlacementFromFlags();
  if (mode == "throughput") placement = Placement{"unpinned", -1, -1};
  setup.dir = MakeTempDir("lpc-bench-lpc-");

  ServerProcess server;
  int rc = 1;
  if (server.Start(setup, placement.server_cpu, timeout_s)) {
    if (mode == "latency") {
      rc = RunLatency(setup, placement, server);
    } else if (mode == "throughput" && callers_as == "threads") {
      rc = RunThroughputThreads(setup, server);
    } else if (mode == "throughput") {
      rc = RunThroughputProcesses(setup, server);
    } else if (mode == "pipelined") {
      rc = RunPipelined(setup, placement, server);
    } else {
      rc = RunConnect(setup, placement, server);
    }
  }
  server.Stop();
  RemoveTempDir(setup.dir);
  return rc;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
