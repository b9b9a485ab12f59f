// An lpc server of lpc.interop.Streamer (streams.proto) over gRPC, for the
// Python streaming test: a hand-written lpc::Service whose three methods run
// through the call model (Service::StartCall), one of each kind.
// Usage: stream_server <listen-address>
//
// Prints "ready" on stdout once serving; shuts down when stdin reaches EOF
// or after 60 seconds.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/server.h"
#include "runtime/service.h"
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/interop/streams.pb.h"
#include "transports/grpc/stream_test_service.h"

namespace {

using lpc::ServerStream;
using lpc::stream_test::ReadBlocking;
using lpc::stream_test::WriteBlocking;

constexpr lpc::MethodDescriptor kMethods[] = {
    {"Watch", 1, false, lpc::MethodKind::kServerStreaming},
    {"Upload", 2, false, lpc::MethodKind::kClientStreaming},
    {"Process", 3, false, lpc::MethodKind::kBidiStreaming},
};

const lpc::InterfaceDescriptor kStreamer{
    "lpc.interop.Streamer", "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", {1, 0},
    absl::Span<const lpc::MethodDescriptor>(kMethods)};

using Call = std::shared_ptr<ServerStream>;

class Streamer final : public lpc::Service {
 public:
  const lpc::InterfaceDescriptor& descriptor() const override {
    return kStreamer;
  }
  absl::Status Dispatch(uint32_t, lpc::CallContext&, std::string_view,
                        std::string*) override {
    return absl::UnimplementedError("every method streams");
  }
  bool UsesStartCall(uint32_t) const override { return true; }

  void StartCall(uint32_t method_id, Call call) override {
    switch (method_id) {
      case 1:
        return Watch(*call);
      case 2:
        return Upload(std::move(call), lpc::interop::Summary());
      case 3:
        return Process(std::move(call));
    }
    call->Finish(absl::UnimplementedError("no such method"));
  }

 private:
  // Blocking, on the worker that started the call.
  static void Watch(ServerStream& call) {
    const absl::Time until = call.context().deadline();
    auto read = ReadBlocking(call, until);
    lpc::interop::WatchRequest request;
    if (!read.ok() || !read->has_value() ||
        !request.ParseFromString(**read)) {
      call.Finish(absl::InvalidArgumentError("Watch wants a WatchRequest"));
      return;
    }
    if (request.count() < 0) {
      call.Finish(absl::InvalidArgumentError("count must be >= 0"));
      return;
    }
    call.context().response_metadata().emplace("x-watch-prefix",
                                               request.prefix());
    for (int i = 0; i < request.count(); ++i) {
      if (request.prefix() == "fail" && i == 2) {
        call.Finish(absl::FailedPreconditionError("watch failed after 2"));
        return;
      }
      lpc::interop::Change change;
      change.set_key(absl::StrCat(request.prefix(), i));
      change.set_value(std::string(static_cast<size_t>(i % 7), 'v'));
      change.set_version(i);
      absl::Status s = WriteBlocking(call, change.SerializeAsString(), until);
      if (!s.ok()) {
        call.Finish(s);
        return;
      }
    }
    call.Finish(absl::OkStatus());
  }

  // Asynchronous: each read's callback asks for the next.
  static void Upload(Call call, lpc::interop::Summary summary) {
    ServerStream* raw = call.get();
    raw->Read([call = std::move(call), summary](
                  absl::StatusOr<std::optional<std::string>> r) mutable {
      if (!r.ok()) return call->Finish(r.status());
      if (!r->has_value()) {
        lpc::interop::UploadResponse response;
        *response.mutable_result() = summary;
        ServerStream* s = call.get();
        s->Write(response.SerializeAsString(),
                 [call](absl::Status st) { call->Finish(st); });
        return;
      }
      lpc::interop::Sample sample;
      if (!sample.ParseFromString(**r)) {
        return call->Finish(absl::InvalidArgumentError("not a Sample"));
      }
      summary.set_count(summary.count() + 1);
      summary.set_sum(summary.sum() + sample.value());
      Upload(std::move(call), summary);
    });
  }

  static void Process(Call call) {
    ServerStream* raw = call.get();
    raw->Read([call = std::move(call)](
                  absl::StatusOr<std::optional<std::string>> r) mutable {
      if (!r.ok()) return call->Finish(r.status());
      if (!r->has_value()) return call->Finish(absl::OkStatus());
      lpc::interop::Frame frame;
      if (!frame.ParseFromString(**r)) {
        return call->Finish(absl::InvalidArgumentError("not a Frame"));
      }
      std::string* data = frame.mutable_data();
      std::reverse(data->begin(), data->end());
      ServerStream* s = call.get();
      s->Write(frame.SerializeAsString(), [call](absl::Status st) {
        if (!st.ok()) return call->Finish(st);
        Process(call);
      });
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: stream_server <listen-address>\n");
    return 2;
  }
  Streamer streamer;
  lpc::ServerOptions server_options;
  server_options.shutdown_grace = absl::Milliseconds(200);
  lpc::Server server(server_options);
  lpc::GrpcServerOptions grpc_options;
  grpc_options.listen_addresses = {argv[1]};
  absl::Status s = server.RegisterService(&streamer);
  if (s.ok()) s = server.AddTransport(lpc::MakeGrpcServerTransport(grpc_options));
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "stream_server: %s\n", s.ToString().c_str());
    return 1;
  }
  fprintf(stdout, "ready\n");
  fflush(stdout);
  absl::Time limit = absl::Now() + absl::Seconds(60);
  while (absl::Now() < limit) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) {
      char buf[64];
      if (read(STDIN_FILENO, buf, sizeof buf) <= 0) break;  // EOF.
    }
  }
  server.Shutdown();
  return 0;
}
