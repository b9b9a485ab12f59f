// An lpc server of lpc.interop.Streamer (streams.idl) over gRPC, for the
// Python streaming test: the service lpcc generates, with a synchronous
// server-streaming handler (Watch), an [async] client-streaming one
// (Upload) and a synchronous bidi one (Process).
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
#include "transports/grpc/grpc_server.h"
#include "transports/grpc/interop/streams.lpc.h"

namespace {

namespace pb = ::lpc::interop;

class Streamer final : public pb::StreamerService {
 public:
  absl::Status Watch(lpc::CallContext& ctx, const std::string& prefix,
                     int32_t count,
                     lpc::ServerWriter<pb::Change>& writer) override {
    if (count < 0) return absl::InvalidArgumentError("count must be >= 0");
    ctx.response_metadata().emplace("x-watch-prefix", prefix);
    for (int i = 0; i < count; ++i) {
      if (prefix == "fail" && i == 2) {
        return absl::FailedPreconditionError("watch failed after 2");
      }
      pb::Change change;
      change.set_key(absl::StrCat(prefix, i));
      change.set_value(std::string(static_cast<size_t>(i % 7), 'v'));
      change.set_version(i);
      // False once the call ended (cancelled, deadline): its status is set.
      if (!writer.Write(change)) return absl::CancelledError("watch ended");
    }
    return absl::OkStatus();
  }

  // Asynchronous: each read's callback asks for the next.
  void Upload(lpc::AsyncServerReader<pb::Sample, pb::Summary> call) override {
    Next(std::move(call), pb::Summary());
  }

  absl::Status Process(
      lpc::CallContext& ctx,
      lpc::ServerReaderWriter<pb::Frame, pb::Frame>& frames) override {
    pb::Frame frame;
    while (frames.Read(&frame)) {
      std::string* data = frame.mutable_data();
      std::reverse(data->begin(), data->end());
      if (!frames.Write(frame)) break;
    }
    return absl::OkStatus();
  }

 private:
  static void Next(lpc::AsyncServerReader<pb::Sample, pb::Summary> call,
                   pb::Summary summary) {
    call.Read([call, summary](std::optional<pb::Sample> sample) mutable {
      if (!sample.has_value()) {
        // The end of the samples, or the call ended (then Reply does
        // nothing).
        call.Reply(summary);
        return;
      }
      summary.set_count(summary.count() + 1);
      summary.set_sum(summary.sum() + sample->value());
      Next(std::move(call), std::move(summary));
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
