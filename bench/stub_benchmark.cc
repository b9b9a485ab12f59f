// Micro-benchmarks of the hot pieces of a call outside the transports: the
// generated stubs' marshalling (bench/lpc_bench.idl) and the runtime's
// dispatch. One process, no I/O.
//
//   BM_ClientStub        EchoClient::Ping / Mirror through a channel that
//                        answers at once with a reply serialized up front:
//                        the client's encode, the Channel::Call hand-off and
//                        the reply's decode.
//   BM_ServiceDispatch   EchoService::Dispatch on a serialized request: the
//                        generated server side (parse, handler, serialize).
//   BM_ServerDispatch    lpc::Server::Dispatch: the runtime's lookup of the
//                        interface and method and its size checks, around
//                        the same generated Dispatch.
//   BM_StubLoopback      client stub -> Server::DispatchBoundWith -> client
//                        stub on one thread, through Channel::CallWith (each
//                        message written once into a string): every
//                        marshalling cost of a call without a transport.
//   BM_InProcessCall     the same through lpc's in-process transport (its
//                        CallWith: the handler runs on the calling thread,
//                        small messages are written on its stack).
//
// Payload sweeps: Ping with 0 B .. 64 KiB; Mirror with a Record of N values,
// N points and N/4 labels.
//
//   bazel run -c opt //bench:stub_benchmark
//   bench/run --micro

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/lpc_bench.lpc.h"
#include "benchmark/benchmark.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/inprocess.h"
#include "runtime/message.h"
#include "runtime/server.h"

namespace lpc::bench {
namespace {

using ::lpc::bench::echo::EchoClient;
using ::lpc::bench::echo::EchoService;
using ::lpc::bench::echo::MirrorRequest;
using ::lpc::bench::echo::MirrorResponse;
using ::lpc::bench::echo::PingRequest;
using ::lpc::bench::echo::PingResponse;
using ::lpc::bench::echo::Record;

class EchoImpl final : public EchoService {
 public:
  absl::StatusOr<std::string> Ping(CallContext&,
                                   const std::string& payload) override {
    return payload;
  }
  absl::StatusOr<Record> Mirror(CallContext&, const Record& record) override {
    return record;
  }
};

Record MakeRecord(int n) {
  Record r;
  r.set_id(12345678901ull);
  r.set_name("benchmark record");
  r.set_flags(7);
  r.set_score(0.5);
  for (int i = 0; i < n; ++i) {
    r.add_values(i * 1000003LL);
    auto* p = r.add_points();
    p->set_x(i);
    p->set_y(-i);
  }
  for (int i = 0; i < n / 4; ++i) {
    (*r.mutable_labels())[absl::StrCat("key", i)] = absl::StrCat("value", i);
  }
  return r;
}

// A channel that answers every call at once with a fixed reply, on the
// calling thread. Thread-compatible only (benchmarks run single-threaded).
class CannedChannel final : public Channel {
 public:
  explicit CannedChannel(std::string reply)
      : Channel(ChannelOptions()), reply_(std::move(reply)) {}

  void StartCall(const InterfaceDescriptor&, const MethodDescriptor&,
                 CallContext*, std::string request,
                 ResponseCallback done) override {
    benchmark::DoNotOptimize(request.data());
    done(reply_);
  }
  absl::Status SendOneway(const InterfaceDescriptor&, const MethodDescriptor&,
                          CallContext*, std::string) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Call(const InterfaceDescriptor&,
                                   const MethodDescriptor&, CallContext*,
                                   std::string request) override {
    benchmark::DoNotOptimize(request.data());
    return reply_;
  }
  std::string_view transport_name() const override { return "canned"; }

 private:
  const std::string reply_;
};

// A channel that runs the call through a Server's Dispatch on the calling
// thread, with a fresh server-side context as a transport would make.
class LoopbackChannel final : public Channel {
 public:
  explicit LoopbackChannel(Dispatcher* dispatcher)
      : Channel(ChannelOptions()), dispatcher_(dispatcher) {}

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    done(Call(iface, method, ctx, std::move(request)));
  }
  absl::Status SendOneway(const InterfaceDescriptor&, const MethodDescriptor&,
                          CallContext*, std::string) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override {
    absl::Status s = PrepareCall(ctx, request.size());
    if (!s.ok()) return s;
    CallContext server_ctx;
    server_ctx.set_deadline(ctx->deadline());
    std::string response;
    s = dispatcher_->Dispatch(iface.full_name, method.id, server_ctx, request,
                              &response);
    if (!s.ok()) return s;
    return response;
  }
  // The zero-copy path the generated stubs take (docs/zero-copy.md): the
  // request written once into one string, decoded in place by the
  // generated DispatchWith, the reply written once into another.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override {
    absl::Status s = PrepareCall(ctx, SerializedSize(request));
    if (!s.ok()) return s;
    const BoundInterface* bound = dispatcher_->Bind(iface.full_name);
    const BoundInterface::Method* m =
        bound == nullptr ? nullptr : bound->FindMethod(method.id);
    if (m == nullptr) return absl::UnimplementedError("unknown method");
    CallContext server_ctx;
    server_ctx.set_deadline(ctx->deadline());
    ReceivedMessage received(SerializeToString(request));
    std::string response;
    StringReplySink sink(&response);
    s = dispatcher_->DispatchBoundWith(*bound, *m, server_ctx, received, sink);
    if (!s.ok()) return s;
    ReceivedMessage reply(std::move(response));
    return decode(reply);
  }
  std::string_view transport_name() const override { return "loopback"; }

 private:
  Dispatcher* const dispatcher_;
};

std::string SerializedPingReply(size_t n) {
  PingResponse reply;
  reply.set_result(std::string(n, 'r'));
  return reply.SerializeAsString();
}

void BM_ClientStub_Ping(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoClient client(std::make_shared<CannedChannel>(SerializedPingReply(n)));
  const std::string payload(n, 'p');
  for (auto _ : state) {
    CallContext ctx;
    absl::StatusOr<std::string> r = client.Ping(payload, &ctx);
    if (!r.ok() || r->size() != n) {
      state.SkipWithError("Ping failed");
      break;
    }
    benchmark::DoNotOptimize(r->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * 2);
}
BENCHMARK(BM_ClientStub_Ping)->Arg(0)->Arg(64)->Arg(1024)->Arg(64 << 10);

void BM_ClientStub_PingAsync(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoClient client(std::make_shared<CannedChannel>(SerializedPingReply(n)));
  const std::string payload(n, 'p');
  size_t got = 0;
  for (auto _ : state) {
    client.PingAsync(payload,
                     [&](absl::StatusOr<EchoClient::PingResult> r) {
                       got = r.ok() ? r->value.size() : ~size_t{0};
                     });
    if (got != n) {
      state.SkipWithError("PingAsync failed");
      break;
    }
  }
}
BENCHMARK(BM_ClientStub_PingAsync)->Arg(64);

void BM_ClientStub_Mirror(benchmark::State& state) {
  const Record record = MakeRecord(static_cast<int>(state.range(0)));
  MirrorResponse reply;
  *reply.mutable_result() = record;
  EchoClient client(std::make_shared<CannedChannel>(reply.SerializeAsString()));
  for (auto _ : state) {
    CallContext ctx;
    absl::StatusOr<Record> r = client.Mirror(record, &ctx);
    if (!r.ok() || r->values_size() != record.values_size()) {
      state.SkipWithError("Mirror failed");
      break;
    }
    benchmark::DoNotOptimize(r->id());
  }
}
BENCHMARK(BM_ClientStub_Mirror)->Arg(0)->Arg(16)->Arg(256);

void BM_ServiceDispatch_Ping(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoImpl impl;
  PingRequest request;
  request.set_payload(std::string(n, 'q'));
  const std::string bytes = request.SerializeAsString();
  const uint32_t id = EchoService::Descriptor().methods[0].id;
  std::string response;
  for (auto _ : state) {
    CallContext ctx;
    response.clear();
    absl::Status s = impl.Dispatch(id, ctx, bytes, &response);
    if (!s.ok()) {
      state.SkipWithError("Dispatch failed");
      break;
    }
    benchmark::DoNotOptimize(response.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * 2);
}
BENCHMARK(BM_ServiceDispatch_Ping)->Arg(0)->Arg(64)->Arg(1024)->Arg(64 << 10);

void BM_ServiceDispatch_Mirror(benchmark::State& state) {
  EchoImpl impl;
  MirrorRequest request;
  *request.mutable_record() = MakeRecord(static_cast<int>(state.range(0)));
  const std::string bytes = request.SerializeAsString();
  const uint32_t id = EchoService::Descriptor().methods[1].id;
  std::string response;
  for (auto _ : state) {
    CallContext ctx;
    response.clear();
    absl::Status s = impl.Dispatch(id, ctx, bytes, &response);
    if (!s.ok()) {
      state.SkipWithError("Dispatch failed");
      break;
    }
    benchmark::DoNotOptimize(response.data());
  }
}
BENCHMARK(BM_ServiceDispatch_Mirror)->Arg(0)->Arg(16)->Arg(256);

void BM_ServerDispatch_Ping(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoImpl impl;
  Server server;
  if (!server.RegisterService(&impl).ok()) {
    state.SkipWithError("RegisterService failed");
    return;
  }
  PingRequest request;
  request.set_payload(std::string(n, 'q'));
  const std::string bytes = request.SerializeAsString();
  const InterfaceDescriptor& iface = EchoService::Descriptor();
  const uint32_t id = iface.methods[0].id;
  std::string response;
  for (auto _ : state) {
    CallContext ctx;
    response.clear();
    absl::Status s = server.Dispatch(iface.full_name, id, ctx, bytes, &response);
    if (!s.ok()) {
      state.SkipWithError("Dispatch failed");
      break;
    }
    benchmark::DoNotOptimize(response.data());
  }
}
BENCHMARK(BM_ServerDispatch_Ping)->Arg(0)->Arg(64);

// Dispatch of an unknown interface: the lookup and the error path alone.
void BM_ServerDispatch_UnknownInterface(benchmark::State& state) {
  EchoImpl impl;
  Server server;
  if (!server.RegisterService(&impl).ok()) {
    state.SkipWithError("RegisterService failed");
    return;
  }
  std::string response;
  for (auto _ : state) {
    CallContext ctx;
    absl::Status s = server.Dispatch("lpc.bench.echo.Nope", 1, ctx, "", &response);
    benchmark::DoNotOptimize(s.ok());
  }
}
BENCHMARK(BM_ServerDispatch_UnknownInterface);

void BM_StubLoopback_Ping(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoImpl impl;
  Server server;
  if (!server.RegisterService(&impl).ok()) {
    state.SkipWithError("RegisterService failed");
    return;
  }
  EchoClient client(std::make_shared<LoopbackChannel>(&server));
  const std::string payload(n, 'p');
  for (auto _ : state) {
    CallContext ctx;
    absl::StatusOr<std::string> r = client.Ping(payload, &ctx);
    if (!r.ok() || r->size() != n) {
      state.SkipWithError("Ping failed");
      break;
    }
    benchmark::DoNotOptimize(r->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * 2);
}
BENCHMARK(BM_StubLoopback_Ping)->Arg(0)->Arg(64)->Arg(1024)->Arg(64 << 10);

void BM_StubLoopback_Mirror(benchmark::State& state) {
  EchoImpl impl;
  Server server;
  if (!server.RegisterService(&impl).ok()) {
    state.SkipWithError("RegisterService failed");
    return;
  }
  EchoClient client(std::make_shared<LoopbackChannel>(&server));
  const Record record = MakeRecord(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    CallContext ctx;
    absl::StatusOr<Record> r = client.Mirror(record, &ctx);
    if (!r.ok()) {
      state.SkipWithError("Mirror failed");
      break;
    }
    benchmark::DoNotOptimize(r->id());
  }
}
BENCHMARK(BM_StubLoopback_Mirror)->Arg(16)->Arg(256);

void BM_InProcessCall_Ping(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EchoImpl impl;
  Server server;
  auto transport = std::make_unique<InProcessTransport>("stub_benchmark");
  std::shared_ptr<Channel> channel = transport->NewChannel();
  if (!server.RegisterService(&impl).ok() ||
      !server.AddTransport(std::move(transport)).ok() ||
      !server.Start().ok()) {
    state.SkipWithError("server did not start");
    return;
  }
  EchoClient client(channel);
  const std::string payload(n, 'p');
  for (auto _ : state) {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(10));
    absl::StatusOr<std::string> r = client.Ping(payload, &ctx);
    if (!r.ok() || r->size() != n) {
      state.SkipWithError("Ping failed");
      break;
    }
  }
  server.Shutdown();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * 2);
}
BENCHMARK(BM_InProcessCall_Ping)->Arg(64)->Arg(64 << 10)->UseRealTime();

}  // namespace
}  // namespace lpc::bench
