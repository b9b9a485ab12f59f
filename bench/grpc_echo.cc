// Plain gRPC C++ echo between two processes: the peer a user would otherwise
// pick. The process forks before touching gRPC; the child serves, the parent
// measures and stops the child by pid.
//
//   --api=sync|callback     server and client API: the synchronous service
//                           and blocking stub, or the callback service and
//                           the stub's async() callback call.
//   --transport=unix|tcp    a Unix socket in a fresh temp dir, or TCP on
//                           127.0.0.1 with a port the kernel picks.
//   --mode=latency          one caller, each payload of --payloads.
//   --mode=throughput       --callers=1,4,16,64 threads sharing one channel,
//                           each calling in a loop for --seconds, payload
//                           --payload (default 64).
//
// Prints one JSON line per measurement (see bench_util.h).

#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <unistd.h>

#include <barrier>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/bench_util.h"
#include "bench/echo.grpc.pb.h"
#include "bench/echo.pb.h"

ABSL_FLAG(std::string, api, "sync", "gRPC's sync or callback API");
ABSL_FLAG(std::string, transport, "unix",
          "unix (a Unix socket) or tcp (TCP loopback)");
ABSL_FLAG(std::string, mode, "latency", "latency or throughput");
ABSL_FLAG(int64_t, payload, 64, "payload bytes in throughput mode");
ABSL_FLAG(lpc::bench::IntList, callers, (lpc::bench::IntList{{1, 4, 16, 64}}),
          "throughput mode: numbers of concurrent callers");

namespace lpc::bench {
namespace {

constexpr int kCallTimeoutMs = 10000;

class SyncEcho final : public EchoService::Service {
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest* request,
                    EchoReply* reply) override {
    reply->set_payload(request->payload());
    return grpc::Status::OK;
  }
};

class CallbackEcho final : public EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoRequest* request,
                                 EchoReply* reply) override {
    reply->set_payload(request->payload());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int RunServer(const std::string& api, const std::string& address, int cpu,
              int ready_fd) {
  PinToCpu(cpu);
  SyncEcho sync_service;
  CallbackEcho callback_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&sync_service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    fprintf(stderr, "grpc server: cannot listen on %s\n", address.c_str());
    return 1;
  }
  int32_t p = port;
  if (!WriteFull(ready_fd, &p, sizeof(p))) return 1;
  close(ready_fd);
  server->Wait();  // Until the parent stops this process.
  return 0;
}

// One caller: a stub plus reusable request and reply buffers.
class Caller {
 public:
  Caller(std::shared_ptr<grpc::Channel> channel, bool callback)
      : stub_(EchoService::NewStub(channel)), callback_(callback) {}

  bool Call(const std::string& payload, uint64_t seq) {
    buf_ = payload;
    Stamp(buf_.data(), buf_.size(), seq);
    request_.set_payload(buf_);
    reply_.Clear();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(kCallTimeoutMs));
    grpc::Status status;
    if (!callback_) {
      status = stub_->Echo(&context, request_, &reply_);
    } else {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      stub_->async()->Echo(&context, &request_, &reply_,
                           [&](grpc::Status s) {
                             std::lock_guard<std::mutex> lock(mu);
                             status = std::move(s);
                             done = true;
                             cv.notify_one();
                           });
      std::unique_lock<std::mutex> lock(mu);
      // The deadline above bounds the call; this bounds the wait for it.
      if (!cv.wait_for(lock, std::chrono::milliseconds(2 * kCallTimeoutMs),
                       [&] { return done; })) {
        fprintf(stderr, "grpc: callback never ran\n");
        abort();  // The call still references stack state.
      }
    }
    if (!status.ok()) {
      fprintf(stderr, "grpc: call failed: %s\n", status.error_message().c_str());
      return false;
    }
    const std::string& got = reply_.payload();
    if (got.size() != payload.size() ||
        !CheckStamp(got.data(), got.size(), seq)) {
      fprintf(stderr, "grpc: wrong reply\n");
      return false;
    }
    return true;
  }

 private:
  std::unique_ptr<EchoService::Stub> stub_;
  bool callback_;
  std::string buf_;
  EchoRequest request_;
  EchoReply reply_;
};

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "grpc_echo [--api=sync|callback] [--transport=unix|tcp] "
                  "[--mode=latency|throughput] ...");
  const std::string api = absl::GetFlag(FLAGS_api);
  const std::string transport = absl::GetFlag(FLAGS_transport);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if ((api != "sync" && api != "callback") ||
      (transport != "unix" && transport != "tcp")) {
    fprintf(stderr, "bad --api or --transport\n");
    return 2;
  }
  const Placement placement = PlacementFromFlags();
  const RunLimits limits = LimitsFromFlags();
  const std::string contender = "grpc-" + api + "-" + transport;

  std::string dir;
  std::string address;
  if (transport == "unix") {
    dir = MakeTempDir("lpc-bench-grpc-");
    address = "unix:" + dir + "/echo.sock";
  } else {
    address = "127.0.0.1:0";
  }
  int ready[2];
  if (pipe(ready) != 0) return 2;
  pid_t server = ForkChild([&] {
    close(ready[0]);
    return RunServer(api, address, placement.server_cpu, ready[1]);
  });
  close(ready[1]);
  if (server < 0) return 2;
  int32_t port = 0;
  if (!ReadFullTimeout(ready[0], &port, sizeof(port), 20000)) {
    fprintf(stderr, "grpc: server did not start\n");
    StopChild(server);
    if (!dir.empty()) RemoveTempDir(dir);
    return 1;
  }
  close(ready[0]);
  PinToCpu(placement.client_cpu);
  const std::string target =
      transport == "unix" ? address : "127.0.0.1:" + std::to_string(port);
  std::shared_ptr<grpc::Channel> channel = MakeChannel(target);
  const bool callback = api == "callback";

  int rc = 0;
  if (mode == "latency") {
    Caller caller(channel, callback);
    uint64_t seq = 0;
    for (int64_t payload : PayloadsOr(DefaultPayloads())) {
      if (payload < 0) continue;
      std::string data(static_cast<size_t>(payload), 'g');
      Samples samples;
      if (!Measure(limits, [&] { return caller.Call(data, ++seq); },
                   &samples)) {
        rc = 1;
        break;
      }
      PrintResult(MakeEchoResult(contender, placement.name, payload, samples));
    }
  } else if (mode == "throughput") {
    const int64_t payload = absl::GetFlag(FLAGS_payload);
    const std::string data(static_cast<size_t>(payload), 't');
    for (int64_t n : absl::GetFlag(FLAGS_callers).values) {
      if (n <= 0 || n > 1024) continue;
      std::vector<std::unique_ptr<Caller>> callers;
      for (int64_t i = 0; i < n; ++i) {
        callers.push_back(std::make_unique<Caller>(channel, callback));
      }
      std::vector<std::vector<uint64_t>> lat(n);
      std::vector<int> failed(n, 0);
      std::vector<std::thread> threads;
      // Every thread makes one call first (so the channel is connected, which
      // on a loaded machine can take longer than a window), then all warm
      // up and measure the same window, which starts when the last caller is
      // ready.
      uint64_t start = 0;
      uint64_t end = 0;
      std::barrier ready(static_cast<std::ptrdiff_t>(n), [&]() noexcept {
        start = NowNs() + static_cast<uint64_t>(limits.seconds * 0.2 * 1e9);
        end = start + static_cast<uint64_t>(limits.seconds * 1e9);
      });
      for (int64_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          uint64_t seq = static_cast<uint64_t>(i) << 40;
          if (!callers[i]->Call(data, ++seq)) {
            failed[i] = 1;
            ready.arrive_and_drop();
            return;
          }
          ready.arrive_and_wait();
          while (true) {
            uint64_t t0 = NowNs();
            if (t0 >= end) break;
            if (!callers[i]->Call(data, ++seq)) {
              failed[i] = 1;
              break;
            }
            uint64_t t1 = NowNs();
            if (t0 >= start && t1 <= end) lat[i].push_back(t1 - t0);
          }
        });
      }
      for (auto& t : threads) t.join();
      Samples samples;
      for (int64_t i = 0; i < n; ++i) {
        if (failed[i]) rc = 1;
        samples.ns.insert(samples.ns.end(), lat[i].begin(), lat[i].end());
      }
      samples.elapsed_s = (end - start) / 1e9;
      Result r = MakeEchoResult(contender, placement.name, payload, samples);
      r.callers = static_cast<int>(n);
      r.note = "throughput: callers share one channel";
      r.kind = "throughput-threads";
      PrintResult(r);
      if (rc != 0) break;
    }
  } else {
    fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
    rc = 2;
  }
  channel.reset();
  StopChild(server);
  if (!dir.empty()) RemoveTempDir(dir);
  return rc;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
