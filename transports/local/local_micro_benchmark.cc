// Single-process micro-benchmarks of the local transport's layers: the SPSC
// record ring, the frame codec, and a pair of endpoints on one section
// (every payload mode). No second process, no wake-ups: these are the CPU
// costs that sit on the round trip's critical path.
//
// BM_LocalCall_* go through everything but the process boundary: a
// LocalChannel and a LocalServer (serving the raw test service) in this
// process, on a real port, with the default spin-then-sleep waits. With two
// free CPUs they measure the client's and the server's per-call path plus
// two cross-core hand-offs; with one, they measure wake-ups.
//
//   bazel build -c opt //transports/local:local_micro_benchmark
//   bazel-out/k8-opt/bin/transports/local/local_micro_benchmark
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "transports/local/control_socket.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/local_transport.h"
#include "transports/local/memfd.h"
#include "transports/local/ring.h"
#include "transports/local/section.h"

namespace lpc::local {
namespace {

absl::Span<const std::byte> Bytes(const void* p, size_t n) {
  return absl::Span<const std::byte>(static_cast<const std::byte*>(p), n);
}

// One record of state.range(0) bytes written, published, polled, copied out
// and released per iteration.
void BM_RingPushPop(benchmark::State& state) {
  constexpr uint32_t kSlots = 256;
  RingControl control;
  std::memset(&control, 0, sizeof(control));
  std::vector<std::byte> slots(size_t{kSlots} * kSlotSize);
  RingProducer producer(&control, slots.data(), kSlots, 64);
  RingConsumer consumer(&control, slots.data(), kSlots, 64);
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  std::vector<std::byte> record(size);
  std::memcpy(record.data(), &size, sizeof(size));
  for (auto _ : state) {
    absl::StatusOr<bool> ok = producer.TryWrite(Bytes(record.data(), 4),
                                                Bytes(record.data() + 4, size - 4));
    if (!ok.ok() || !*ok) {
      state.SkipWithError("ring refused");
      break;
    }
    producer.Publish();
    absl::StatusOr<uint64_t> avail = consumer.Poll();
    absl::StatusOr<absl::Span<const std::byte>> got = consumer.Next(4);
    if (!avail.ok() || !got.ok() || got->size() != size) {
      state.SkipWithError("ring lost the record");
      break;
    }
    benchmark::DoNotOptimize(got->data());
    consumer.Release();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * size);
}
BENCHMARK(BM_RingPushPop)->Arg(64)->Arg(112)->Arg(1024);

FrameHeader RequestHeader(uint32_t payload) {
  FrameHeader h;
  std::memset(&h, 0, sizeof(h));
  h.record_size = kFrameHeaderSize + payload;
  h.type = static_cast<uint8_t>(MessageType::kRequest);
  h.payload_mode = static_cast<uint8_t>(PayloadMode::kInline);
  h.message_id = 42;
  h.deadline_ns = 1;
  h.interface_slot = 1;
  h.method_id = 1;
  h.payload_length = payload;
  return h;
}

// Builds an inline record (header + payload) the way Endpoint::TrySend does.
void BM_FrameEncode(benchmark::State& state) {
  const uint32_t payload_size = static_cast<uint32_t>(state.range(0));
  const std::string payload(payload_size, 'p');
  std::vector<std::byte> record(kFrameHeaderSize + payload_size);
  uint64_t id = 0;
  for (auto _ : state) {
    FrameHeader h = RequestHeader(payload_size);
    h.message_id = ++id;
    std::memcpy(record.data(), &h, sizeof(h));
    std::memcpy(record.data() + kFrameHeaderSize, payload.data(), payload_size);
    benchmark::DoNotOptimize(record.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * record.size());
}
BENCHMARK(BM_FrameEncode)->Arg(16)->Arg(64)->Arg(976);

// Validates a record (DecodeFrame) and copies its inline payload out.
void BM_FrameDecode(benchmark::State& state) {
  const uint32_t payload_size = static_cast<uint32_t>(state.range(0));
  std::vector<std::byte> record(kFrameHeaderSize + payload_size, std::byte{7});
  const FrameHeader h = RequestHeader(payload_size);
  std::memcpy(record.data(), &h, sizeof(h));
  FrameLimits limits;
  std::string out;
  for (auto _ : state) {
    absl::StatusOr<FrameHeader> got =
        DecodeFrame(Bytes(record.data(), record.size()), limits);
    if (!got.ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    out.assign(reinterpret_cast<const char*>(record.data()) + kFrameHeaderSize,
               got->payload_length);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * record.size());
}
BENCHMARK(BM_FrameDecode)->Arg(16)->Arg(64)->Arg(976);

// A client and a server endpoint on one real sealed memfd section: the
// client sends a request of state.range(0) bytes (inline up to 976 B, the
// data area up to the 1 MiB half, a memfd beyond), the server receives and
// validates it and releases it.
void BM_EndpointSendReceive(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  SectionGeometry g;
  g.c2s_data_bytes = uint64_t{2} << 20;
  absl::StatusOr<SectionLayout> layout = ComputeLayout(g);
  absl::StatusOr<UniqueFd> fd =
      layout.ok() ? CreateSealedMemfd("lpc-section", layout->total_size)
                  : absl::StatusOr<UniqueFd>(layout.status());
  if (!fd.ok()) {
    state.SkipWithError("section");
    return;
  }
  absl::StatusOr<Mapping> map = Mapping::Map(fd->get(), layout->total_size, true);
  UniqueFd client_sock, server_sock;
  if (!map.ok() || !MakeSocketPair(&client_sock, &server_sock).ok()) {
    state.SkipWithError("map or socketpair");
    return;
  }
  InitializeSection(map->data(), *layout);
  SocketMemfdPort client_port(client_sock.get()), server_port(server_sock.get());
  // keep = 1: as the transport runs it, the sender keeps its memfds and the
  // receiver's buffers come from (and go back to) a BufferCache; keep = 0:
  // a new memfd and a new buffer per message.
  const bool keep = state.range(1) != 0;
  PayloadMemfdPool pool(keep ? uint64_t{64} << 20 : 0);
  BufferCache buffers(keep ? size_t{8} << 20 : 0, keep ? size_t{64} << 20 : 0);
  EndpointOptions eo;
  eo.max_payload = uint64_t{64} << 20;
  eo.memfd_pool = &pool;
  eo.buffers = &buffers;
  Endpoint client(Side::kClient, map->data(), *layout, &client_port, eo);
  Endpoint server(Side::kServer, map->data(), *layout, &server_port, eo);
  const std::string payload(size, 'e');
  OutgoingMessage m;
  m.type = MessageType::kRequest;
  m.interface_slot = 1;
  m.method_id = 1;
  m.payload = payload;
  for (auto _ : state) {
    ++m.message_id;
    absl::StatusOr<bool> sent = client.TrySend(m);
    if (!sent.ok() || !*sent) {
      state.SkipWithError("send refused");
      break;
    }
    client.Flush();
    absl::StatusOr<std::optional<IncomingMessage>> got = server.Receive();
    if (!got.ok() || !got->has_value() || (*got)->payload.size() != size) {
      state.SkipWithError("receive failed");
      break;
    }
    benchmark::DoNotOptimize((*got)->payload.data());
    server.ReleaseReceived();
    buffers.Give(std::move((*got)->payload));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * size);
}
BENCHMARK(BM_EndpointSendReceive)
    ->ArgNames({"bytes", "keep"})
    ->Args({64, 1})
    ->Args({900, 1})
    ->Args({64 << 10, 1})
    ->Args({1 << 20, 1})
    ->Args({4 << 20, 0})
    ->Args({4 << 20, 1})
    ->Args({16 << 20, 0})
    ->Args({16 << 20, 1});

// Pins the calling thread (and the threads it creates later) to `cpu`, if
// the process may run there. Returns whether it did.
bool PinTo(int cpu) {
  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0 ||
      !CPU_ISSET(cpu, &allowed)) {
    return false;
  }
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return ::sched_setaffinity(0, sizeof(one), &one) == 0;
}

// A RawService server on a local port in a fresh directory under /tmp, and
// a channel to it. ok() is false if anything failed. With two CPUs, the
// server's threads run on CPU 1 and the calling thread on CPU 0 (cross-core,
// as bench/lpc_echo --placement=cross-core); the affinity is restored on
// destruction.
class LocalPair {
 public:
  explicit LocalPair(absl::Duration spin = absl::Microseconds(20)) {
    ::sched_getaffinity(0, sizeof(saved_), &saved_);
    const bool pinned = PinTo(1);  // Server threads inherit CPU 1.
    char tmpl[] = "/tmp/lpc-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    LocalPortOptions po;
    po.runtime_dir = dir_;
    po.spin = spin;
    if (!server_.RegisterService(&service_).ok()) return;
    absl::StatusOr<std::unique_ptr<LocalServerTransport>> t =
        MakeLocalServerTransport("bench", po);
    if (!t.ok() || !server_.AddTransport(std::move(*t)).ok() ||
        !server_.Start().ok()) {
      return;
    }
    LocalChannelOptions lo;
    lo.runtime_dir = dir_;
    lo.spin = spin;
    absl::StatusOr<std::shared_ptr<Channel>> ch =
        CreateLocalChannel("bench", ChannelOptions(), lo);
    if (!ch.ok()) return;
    channel_ = *ch;
    if (pinned) PinTo(0);  // The caller (and the channel's pump) on CPU 0.
    ok_ = true;
  }
  ~LocalPair() {
    channel_.reset();
    server_.Shutdown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    ::sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  bool ok() const { return ok_; }
  Channel& channel() { return *channel_; }

 private:
  cpu_set_t saved_;
  std::string dir_;
  lpc::testing::RawService service_;
  Server server_;
  std::shared_ptr<Channel> channel_;
  bool ok_ = false;
};

const MethodDescriptor& RawEcho() {
  return lpc::testing::RawDescriptor().methods[0];
}

// One synchronous echo of 64 bytes at a time; both sides spin without
// limit (state.range(0) == 1, as lpc-local-spin) or for the default 20 us.
void BM_LocalCall_Echo(benchmark::State& state) {
  LocalPair pair(state.range(0) == 1 ? absl::InfiniteDuration()
                                     : absl::Microseconds(20));
  if (!pair.ok()) {
    state.SkipWithError("server or channel did not start");
    return;
  }
  const std::string payload(64, 'p');
  for (auto _ : state) {
    CallContext ctx;
    absl::StatusOr<std::string> r = pair.channel().Call(
        lpc::testing::RawDescriptor(), RawEcho(), &ctx, payload);
    if (!r.ok() || r->size() != payload.size()) {
      state.SkipWithError("call failed");
      break;
    }
  }
}
BENCHMARK(BM_LocalCall_Echo)->ArgName("spin_forever")->Arg(0)->Arg(1)->UseRealTime();

// Async echoes of 64 bytes with up to state.range(0) in flight.
void BM_LocalCall_EchoPipelined(benchmark::State& state) {
  LocalPair pair;
  if (!pair.ok()) {
    state.SkipWithError("server or channel did not start");
    return;
  }
  const int window = static_cast<int>(state.range(0));
  const std::string payload(64, 'p');
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;        // mu
  bool failed = false;      // mu
  for (auto _ : state) {
    std::unique_lock<std::mutex> lock(mu);
    // Bounded: every call ends by its 30 s default deadline.
    cv.wait(lock, [&] { return in_flight < window || failed; });
    if (failed) break;
    ++in_flight;
    lock.unlock();
    auto ctx = std::make_shared<CallContext>();
    pair.channel().StartCall(
        lpc::testing::RawDescriptor(), RawEcho(), ctx.get(), payload,
        [&, ctx](absl::StatusOr<std::string> r) {
          std::lock_guard<std::mutex> l(mu);
          if (!r.ok()) failed = true;
          --in_flight;
          cv.notify_all();
        });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (failed) state.SkipWithError("a call failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalCall_EchoPipelined)->Arg(256)->UseRealTime();

}  // namespace
}  // namespace lpc::local

BENCHMARK_MAIN();
