// The zero-copy buffer row of bench/run: a frame (16 MiB by default) that
// the client fills in a buffer obtained from the channel
// (Channel::NewBuffer) and sends as the buffer field of a call
// (Channel::CallWith, docs/zero-copy.md), and that the handler reads in
// place (Service::DispatchWith: the attached buffer, or the field's bytes
// in the received message) and checksums. Two processes; the process
// forks before it creates any lpc object, the child serves, the parent
// measures and then stops the child (by closing a pipe, SIGKILL by pid as
// a last resort).
//
//   --transport=local|grpc-unix   contender lpc-local-zerocopy or
//                                 lpc-grpc-unix-zerocopy
//   --buffer_pool=true|false      local: both sides opt in to the same-uid
//                                 buffer pool (docs/zero-copy.md; chunks of
//                                 the largest frame), or every frame is a
//                                 sealed memfd (contender
//                                 lpc-local-zerocopy-sealed)
//   --payloads=16777216           frame sizes
//
// Each call: NewBuffer, fill (word i of frame n is n * K + i), CallWith;
// the reply is the wrapping sum of the frame's 64-bit words, which the
// client checks against the sum it expects for frame n. Per row: the
// round trip from NewBuffer to the decoded reply (p50_us and the rest),
// and, per call, medians of the client's fill (fill_us), the handler's
// checksum (checksum_us, measured in the server and passed back through
// shared memory), NewBuffer (new_buffer_us), and of round trip - fill -
// checksum (rest_p50_us). bench/bench_targets.py judges p50_us - fill_us -
// checksum_us against one memcpy of the frame. GB/s counts the frame one
// way. Prints one JSON line per frame size (see bench_util.h).

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "bench/lpc_zerocopy.lpc.h"
#include "runtime/buffer.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/message.h"
#include "runtime/server.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

ABSL_FLAG(std::string, transport, "local", "local or grpc-unix");
ABSL_FLAG(bool, buffer_pool, true,
          "local: the same-uid buffer pool (false: sealed memfds, contender "
          "lpc-local-zerocopy-sealed)");

namespace lpc::bench {
namespace {

using ::lpc::bench::zerocopy::FrameSinkClient;
using ::lpc::bench::zerocopy::FrameSinkService;

constexpr char kPortName[] = "frames";
constexpr uint32_t kSumMethod = 1;
constexpr uint32_t kFrameField = 1;
constexpr uint64_t kStep = 0x9E3779B97F4A7C15ull;

uint64_t WordSum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    sum += w;
  }
  if (i < n) {
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    sum += w;
  }
  return sum;
}

// Word i of frame `seq` is seq * kStep + i; a trailing partial word is 0.
void Fill(uint8_t* p, size_t n, uint64_t seq) {
  const uint64_t base = seq * kStep;
  const size_t words = n / 8;
  for (size_t i = 0; i < words; ++i) {
    const uint64_t w = base + i;
    memcpy(p + 8 * i, &w, 8);
  }
  memset(p + 8 * words, 0, n - 8 * words);
}

uint64_t ExpectedSum(size_t n, uint64_t seq) {
  const uint64_t words = n / 8;
  // words * (words - 1) / 2, halving the even factor first (mod 2^64).
  const uint64_t tri = words % 2 == 0 ? (words / 2) * (words - 1)
                                      : words * ((words - 1) / 2);
  return words * (seq * kStep) + tri;
}

// Reads a varint at [*p, end); false when it runs past `end` or is longer
// than 10 bytes.
bool ReadVarint(const uint8_t** p, const uint8_t* end, uint64_t* out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    const uint8_t b = *(*p)++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

// Field `field` of a message: the last varint (wire type 0) or
// length-delimited (wire type 2) occurrence; other fields are skipped.
// Peer bytes: every length is checked against the end.
struct Field {
  bool found = false;
  uint64_t varint = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

absl::Status FindField(std::string_view bytes, uint32_t field, Field* out) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* end = p + bytes.size();
  while (p < end) {
    uint64_t tag = 0, v = 0;
    if (!ReadVarint(&p, end, &tag)) return absl::InvalidArgumentError("bad tag");
    const uint32_t wire = tag & 7;
    if (wire == 0) {
      if (!ReadVarint(&p, end, &v)) {
        return absl::InvalidArgumentError("bad varint");
      }
      if ((tag >> 3) == field) *out = Field{true, v, nullptr, 0};
    } else if (wire == 2) {
      if (!ReadVarint(&p, end, &v) || v > static_cast<uint64_t>(end - p)) {
        return absl::InvalidArgumentError("bad length");
      }
      if ((tag >> 3) == field) *out = Field{true, 0, p, v};
      p += v;
    } else if (wire == 1 || wire == 5) {
      const size_t n = wire == 1 ? 8 : 4;
      if (static_cast<size_t>(end - p) < n) {
        return absl::InvalidArgumentError("truncated field");
      }
      p += n;
    } else {
      return absl::InvalidArgumentError("bad wire type");
    }
  }
  return absl::OkStatus();
}

// A reply or request with one varint field, as protobuf writes it.
class VarintWriter final : public MessageWriter {
 public:
  VarintWriter(uint32_t field, uint64_t value) {
    bytes_[0] = static_cast<uint8_t>(field << 3);
    size_ = 1;
    do {
      bytes_[size_++] = static_cast<uint8_t>((value & 0x7f) |
                                             (value >= 0x80 ? 0x80 : 0));
      value >>= 7;
    } while (value != 0);
  }
  size_t size() const override { return size_; }
  void WriteTo(uint8_t* dst) const override { memcpy(dst, bytes_, size_); }

 private:
  uint8_t bytes_[11];
  size_t size_ = 0;
};

// A request whose only field is the frame, as the call's buffer field.
class FrameWriter final : public MessageWriter {
 public:
  explicit FrameWriter(Buffer* frame) : field_{kFrameField, frame} {}
  size_t size() const override { return 0; }
  void WriteTo(uint8_t*) const override {}
  const BufferField* buffer() const override {
    return field_.buffer->empty() ? nullptr : &field_;
  }

 private:
  BufferField field_;
};

// Shared with the server child (MAP_SHARED, made before the fork): the
// last handler's checksum time.
struct SharedStats {
  std::atomic<uint64_t> checksum_ns{0};
};

class SinkImpl final : public FrameSinkService {
 public:
  explicit SinkImpl(SharedStats* stats) : stats_(stats) {}

  // The string path (a server with interceptors, or a transport that
  // knows only strings).
  absl::StatusOr<uint64_t> Sum(CallContext&, const std::string& frame) override {
    return TimedSum(reinterpret_cast<const uint8_t*>(frame.data()),
                    frame.size());
  }

  // The zero-copy path: the frame in place, as the attached buffer (a
  // sealed memfd, or the sender's memory in process) or as the field's
  // bytes in the received message.
  absl::Status DispatchWith(uint32_t method_id, CallContext& ctx,
                            ReceivedMessage& request,
                            ReplySink& reply) override {
    if (method_id != kSumMethod) {
      return FrameSinkService::DispatchWith(method_id, ctx, request, reply);
    }
    Field frame;
    if (request.attached() && request.attached()->field_number == kFrameField) {
      const BufferView& v = request.attached()->view;
      frame = Field{true, 0, v.data(), v.size()};
    } else {
      absl::Status s = FindField(request.bytes(), kFrameField, &frame);
      if (!s.ok()) return s;
    }
    return reply.Write(
        VarintWriter(1, TimedSum(frame.data, frame.found ? frame.size : 0)));
  }

 private:
  uint64_t TimedSum(const uint8_t* p, size_t n) {
    const uint64_t t0 = NowNs();
    const uint64_t sum = WordSum(p, n);
    stats_->checksum_ns.store(NowNs() - t0, std::memory_order_release);
    return sum;
  }

  SharedStats* stats_;
};

// The child: serves until the parent closes `stop_fd` (or the timeout),
// after writing one byte to `ready_fd` once it accepts calls.
int RunServer(const std::string& transport, const std::string& dir, int cpu,
              SharedStats* stats, int ready_fd, int stop_fd, int timeout_s) {
  PinToCpu(cpu);
  ServerOptions options;
  options.shutdown_grace = absl::Seconds(1);
  Server server(options);
  SinkImpl impl(stats);
  absl::Status s = server.RegisterService(&impl);
  if (s.ok() && transport == "local") {
    local::LocalPortOptions port;
    port.runtime_dir = dir;
    port.same_uid_buffer_pool = absl::GetFlag(FLAGS_buffer_pool);
    auto t = local::MakeLocalServerTransport(kPortName, port);
    s = t.ok() ? server.AddTransport(std::move(*t)) : t.status();
  } else if (s.ok()) {
    GrpcServerOptions grpc;
    grpc.listen_addresses = {"unix:" + dir + "/frames.sock"};
    s = server.AddTransport(MakeGrpcServerTransport(grpc));
  }
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "lpc_zerocopy server: %s\n", s.ToString().c_str());
    return 1;
  }
  const char ready = 'r';
  if (!WriteFull(ready_fd, &ready, 1)) return 1;
  close(ready_fd);
  char byte;
  ReadFullTimeout(stop_fd, &byte, 1, timeout_s * 1000);
  server.Shutdown();
  return 0;
}

absl::StatusOr<std::shared_ptr<Channel>> Connect(const std::string& transport,
                                                 const std::string& dir) {
  ChannelOptions options;
  options.default_timeout = absl::Seconds(20);
  if (transport == "local") {
    local::LocalChannelOptions local_options;
    local_options.runtime_dir = dir;
    // Chunks of the largest frame, two a side.
    local_options.same_uid_buffer_pool = absl::GetFlag(FLAGS_buffer_pool);
    int64_t largest = 4096;
    for (int64_t n : PayloadsOr({int64_t{16} << 20})) {
      largest = std::max(largest, n);
    }
    local_options.buffer_pool_chunk_bytes =
        static_cast<uint64_t>((largest + 4095) / 4096 * 4096);
    local_options.buffer_pool_chunks = 4;
    return local::CreateLocalChannel(kPortName, options, local_options);
  }
  auto channel = GrpcChannel::Create("unix:" + dir + "/frames.sock", options,
                                     GrpcChannelOptions());
  if (!channel.ok()) return channel.status();
  return std::shared_ptr<Channel>(*std::move(channel));
}

double MedianUs(std::vector<uint64_t> ns) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  return ns[(ns.size() - 1) / 2] / 1e3;
}

int RunClient(const std::string& contender, Channel& channel,
              const Placement& placement, SharedStats* stats) {
  PinToCpu(placement.client_cpu);
  const RunLimits limits = LimitsFromFlags();
  const InterfaceDescriptor& iface = FrameSinkClient::Descriptor();
  const MethodDescriptor* method = iface.FindMethod(kSumMethod);
  if (method == nullptr) return 1;
  uint64_t seq = 0;
  for (int64_t payload : PayloadsOr({int64_t{16} << 20})) {
    if (payload < 8 || payload > (int64_t{64} << 20)) continue;
    const size_t n = static_cast<size_t>(payload);
    std::vector<uint64_t> rt, fill, sum, fresh, rest;
    // One call; its figures are kept when `keep`.
    auto call = [&](bool keep) {
      ++seq;
      const uint64_t t0 = NowNs();
      absl::StatusOr<Buffer> frame = channel.NewBuffer(n);
      if (!frame.ok() || frame->size() != n) {
        fprintf(stderr, "%s: NewBuffer: %s\n", contender.c_str(),
                frame.status().ToString().c_str());
        return false;
      }
      const uint64_t t1 = NowNs();
      Fill(frame->data(), n, seq);
      const uint64_t t2 = NowNs();
      Field got;
      CallContext ctx;
      absl::Status s = channel.CallWith(
          iface, *method, &ctx, FrameWriter(&*frame),
          [&](ReceivedMessage& m) { return FindField(m.bytes(), 1, &got); });
      const uint64_t t3 = NowNs();
      if (!s.ok() || got.varint != ExpectedSum(n, seq)) {
        fprintf(stderr, "%s: call %llu: %s\n", contender.c_str(),
                static_cast<unsigned long long>(seq),
                s.ok() ? "wrong sum" : s.ToString().c_str());
        return false;
      }
      if (keep) {
        const uint64_t sum_ns =
            stats->checksum_ns.load(std::memory_order_acquire);
        rt.push_back(t3 - t0);
        fresh.push_back(t1 - t0);
        fill.push_back(t2 - t1);
        sum.push_back(sum_ns);
        const uint64_t spent = (t2 - t1) + sum_ns;
        rest.push_back(t3 - t0 > spent ? t3 - t0 - spent : 0);
      }
      return true;
    };
    const uint64_t warm_end =
        NowNs() + static_cast<uint64_t>(limits.seconds * limits.warmup_share * 1e9);
    for (int64_t i = 0; i < limits.warmup_iters && NowNs() < warm_end; ++i) {
      if (!call(false)) return 1;
    }
    const uint64_t start = NowNs();
    const uint64_t end = start + static_cast<uint64_t>(limits.seconds * 1e9);
    for (int64_t i = 0; i < limits.max_iters && (i == 0 || NowNs() < end);
         ++i) {
      if (!call(true)) return 1;
    }
    const double elapsed = (NowNs() - start) / 1e9;
    Result r;
    r.contender = contender;
    r.placement = placement.name;
    r.payload = payload;
    r.stats = ComputeStats(rt);
    r.calls_per_s = elapsed > 0 ? r.stats.samples / elapsed : 0;
    r.gbps = static_cast<double>(n) * r.calls_per_s / 1e9;
    r.note = "frame one way in a buffer from NewBuffer; round trip from "
             "NewBuffer to the decoded sum";
    r.extra.emplace_back("fill_us", MedianUs(fill));
    r.extra.emplace_back("checksum_us", MedianUs(sum));
    r.extra.emplace_back("new_buffer_us", MedianUs(fresh));
    r.extra.emplace_back("rest_p50_us", MedianUs(rest));
    PrintResult(r);
  }
  return 0;
}

int Main(int argc, char** argv) {
  ParseBenchFlags(argc, argv,
                  "lpc_zerocopy [--transport=local|grpc-unix] "
                  "[--payloads=16777216] ...");
  const int timeout_s = absl::GetFlag(FLAGS_timeout);
  const std::string transport = absl::GetFlag(FLAGS_transport);
  if (transport != "local" && transport != "grpc-unix") {
    fprintf(stderr, "unknown --transport=%s\n", transport.c_str());
    return 2;
  }
  const std::string contender =
      "lpc-" + transport + "-zerocopy" +
      (transport == "local" && !absl::GetFlag(FLAGS_buffer_pool) ? "-sealed"
                                                                 : "");
  const Placement placement = PlacementFromFlags();
  void* mem = mmap(nullptr, sizeof(SharedStats), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  SharedStats* stats = new (mem) SharedStats();
  const std::string dir = MakeTempDir("lpc-bench-zerocopy-");
  int ready[2], stop[2];
  if (pipe(ready) != 0 || pipe(stop) != 0) return 1;
  const pid_t pid = ForkChild([&] {
    close(ready[0]);
    close(stop[1]);
    return RunServer(transport, dir, placement.server_cpu, stats, ready[1],
                     stop[0], timeout_s);
  });
  close(ready[1]);
  close(stop[0]);
  char byte = 0;
  int rc = 1;
  if (pid > 0 && ReadFullTimeout(ready[0], &byte, 1, 20000)) {
    auto channel = Connect(transport, dir);
    if (channel.ok()) {
      rc = RunClient(contender, **channel, placement, stats);
    } else {
      fprintf(stderr, "%s: %s\n", contender.c_str(),
              channel.status().ToString().c_str());
    }
  } else {
    fprintf(stderr, "%s: server did not start\n", contender.c_str());
  }
  close(ready[0]);
  close(stop[1]);
  int status = 0;
  if (pid > 0 && !WaitChild(pid, 5000, &status)) StopChild(pid);
  RemoveTempDir(dir);
  return rc;
}

}  // namespace
}  // namespace lpc::bench

int main(int argc, char** argv) { return lpc::bench::Main(argc, argv); }
