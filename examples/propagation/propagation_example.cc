// The examples of docs/propagation.md, compiled and run as a test: a
// handler that calls another server with its context as the parent, a
// cancelled stream as both sides see it, and an [async] handler that may
// finish after its client went away, beside the three streaming kinds.
// docs_snippets_test checks that the page's code blocks are this file's.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "examples/propagation/ticker.lpc.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "runtime/stream.h"

namespace {

using example::ticker::Count;
using example::ticker::Tick;
using example::ticker::TickerClient;

#define CHECK_OR_DIE(cond)                                            \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__,  \
                   #cond);                                            \
      std::exit(1);                                                   \
    }                                                                 \
  } while (0)

class TickerImpl final : public example::ticker::TickerService {
 public:
  // [server streaming handler]
  absl::Status Ticks(lpc::CallContext& ctx, uint32_t n,
                     lpc::ServerWriter<Tick>& writer) override {
    for (uint32_t i = 0; i < n; ++i) {
      Tick tick;
      tick.set_seq(i);
      // Write waits while the client's window is full; false once the
      // call ended (the client cancelled, went away, or its deadline passed).
      if (!writer.Write(tick)) return absl::CancelledError("client gone");
    }
    return absl::OkStatus();  // Ends the stream with OK.
  }
  // [end]

  // [client streaming handler]
  absl::StatusOr<Count> Tally(lpc::CallContext& ctx,
                              lpc::ServerReader<Tick>& ticks) override {
    Count count;
    Tick tick;
    while (ticks.Read(&tick)) count.set_ticks(count.ticks() + 1);
    if (ctx.IsCancelled()) return absl::CancelledError("cancelled");
    return count;  // Read returned false: the client half-closed.
  }
  // [end]

  absl::Status Echo(lpc::CallContext& ctx,
                    lpc::ServerReaderWriter<Tick, Tick>& stream) override {
    Tick tick;
    while (stream.Read(&tick)) {
      if (!stream.Write(tick)) break;
    }
    return absl::OkStatus();
  }

  // [async handler]
  // Returns at once; no thread is held while the answer is pending. Copies
  // of `call` share the call; any thread may finish it.
  void Later(lpc::AsyncUnaryCall<LaterResult> call,
             const std::string& text) override {
    std::thread([call, text] {
      if (call.context().IsCancelled()) return;  // Finishing is harmless too.
      call.Reply(LaterResult{"later: " + text});
    }).detach();
  }
  // [end]

  // [propagation]
  absl::StatusOr<std::string> Forward(lpc::CallContext& ctx,
                                      const std::string& text) override {
    // The child takes the earlier deadline and is cancelled with `ctx`:
    // when our caller cancels or its deadline passes, so does this call.
    lpc::CallContext child(&ctx);
    return TickerClient(next_).Later(text, &child);
  }
  // [end]

  void set_next(std::shared_ptr<lpc::Channel> next) { next_ = std::move(next); }

 private:
  std::shared_ptr<lpc::Channel> next_;
};

void Client(std::shared_ptr<lpc::Channel> channel) {
  // [server streaming client]
  TickerClient client(channel);
  lpc::ClientReader<Tick> ticks = client.Ticks(3);
  Tick tick;
  while (ticks.Read(&tick)) std::printf("tick %llu\n",
                                        static_cast<unsigned long long>(tick.seq()));
  absl::Status status = ticks.Finish();  // Why the stream ended.
  // [end]
  CHECK_OR_DIE(status.ok());

  // [client streaming client]
  lpc::ClientWriter<Tick, Count> tally = client.Tally();
  for (int i = 0; i < 5; ++i) tally.Write(Tick());
  absl::StatusOr<Count> count = tally.Finish();  // Half-closes, then waits.
  // [end]
  CHECK_OR_DIE(count.ok() && count->ticks() == 5);

  // [bidi client]
  lpc::ClientReaderWriter<Tick, Tick> echo = client.Echo();
  std::thread writer([&echo] {
    for (uint64_t i = 0; i < 100; ++i) {
      Tick t;
      t.set_seq(i);
      if (!echo.Write(t)) break;
    }
    echo.WritesDone();  // The server's Read returns false after the 100.
  });
  uint64_t echoed = 0;
  while (echo.Read(&tick)) ++echoed;
  writer.join();
  status = echo.Finish();
  // [end]
  CHECK_OR_DIE(status.ok() && echoed == 100);

  // [cancel a stream]
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  lpc::ClientReader<Tick> endless = client.Ticks(1000000, &ctx);
  endless.Read(&tick);
  endless.Cancel();  // The handler's Write returns false.
  status = endless.Finish();  // CANCELLED
  // [end]
  CHECK_OR_DIE(absl::IsCancelled(status));

  absl::StatusOr<std::string> later = client.Later("x");
  CHECK_OR_DIE(later.ok() && *later == "later: x");
  absl::StatusOr<std::string> forwarded = client.Forward("y");
  CHECK_OR_DIE(forwarded.ok() && *forwarded == "later: y");
}

}  // namespace

int main() {
  TickerImpl impl;
  lpc::Server server;
  CHECK_OR_DIE(server.RegisterService(&impl).ok());
  auto transport = std::make_unique<lpc::InProcessTransport>("ticker");
  lpc::InProcessTransport* in_process = transport.get();
  CHECK_OR_DIE(server.AddTransport(std::move(transport)).ok());
  CHECK_OR_DIE(server.Start().ok());
  absl::StatusOr<std::shared_ptr<lpc::Channel>> channel =
      in_process->NewChannel(lpc::ChannelOptions());
  CHECK_OR_DIE(channel.ok());
  impl.set_next(*channel);  // Forward calls this same server.
  Client(*channel);
  server.Shutdown();
  impl.set_next(nullptr);
  std::printf("ok\n");
  return 0;
}
