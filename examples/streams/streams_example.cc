// The examples of docs/streams.md, compiled and run as a test: synchronous
// handlers for each streaming kind, two asynchronous handlers, and the
// client side of each, through the in-process transport (the code is the
// same over the local port and gRPC; only the channel differs).
// docs_snippets_test checks that the page's code blocks are this file's.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/streams/feed.lpc.h"
#include "runtime/inprocess.h"
#include "runtime/mutex.h"
#include "runtime/server.h"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

class FeedImpl final : public example::feed::FeedService {
 public:
  absl::Status Watch(lpc::CallContext& ctx, const std::string& prefix,
                     lpc::ServerWriter<example::feed::Change>& writer) override {
    for (int i = 0; i < 3; ++i) {
      example::feed::Change change;
      change.set_key(prefix + std::to_string(i));
      // Waits while the client's window is full; false once the call
      // ended (the client cancelled, went away, or ran out of time).
      if (!writer.Write(change)) return absl::CancelledError("watch ended");
    }
    return absl::OkStatus();  // Ends the stream: the client's Read is false.
  }

  absl::StatusOr<example::feed::Summary> Upload(
      lpc::CallContext& ctx,
      lpc::ServerReader<example::feed::Sample>& samples) override {
    example::feed::Summary summary;
    example::feed::Sample sample;
    while (samples.Read(&sample)) {  // False after the client's WritesDone.
      summary.set_count(summary.count() + 1);
      summary.set_total(summary.total() + sample.value());
    }
    if (ctx.IsCancelled()) return absl::CancelledError("upload abandoned");
    return summary;  // The one reply.
  }

  absl::Status Process(lpc::CallContext& ctx,
                       lpc::ServerReaderWriter<example::feed::Frame,
                                               example::feed::Frame>& frames)
      override {
    example::feed::Frame frame;
    while (frames.Read(&frame)) {
      absl::AsciiStrToUpper(frame.mutable_data());
      if (!frames.Write(frame)) break;
    }
    return absl::OkStatus();
  }

  // [async] int64 Add(...): park the call and return; no thread waits.
  void Add(lpc::AsyncUnaryCall<AddResult> call, int64_t a,
           int64_t b) override {
    lpc::MutexLock lock(&mu_);
    pending_.push_back({std::move(call), a + b});
  }
  // Later, on any thread: reply to every parked call.
  void ReplyToAll() {
    std::vector<std::pair<lpc::AsyncUnaryCall<AddResult>, int64_t>> pending;
    {
      lpc::MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    for (const auto& [call, sum] : pending) {
      AddResult result;
      result.value = sum;
      call.Reply(result);  // Or call.Fail(status).
    }
  }

  // [async] stream<Change> Tail(...): changes until the client cancels.
  void Tail(lpc::AsyncServerStream<example::feed::Change> call,
            const std::string& prefix) override {
    SendFrom(std::move(call), prefix, 0);
  }
  // One Write at a time: the next one goes from the previous one's
  // callback, which runs once the message is within the client's window.
  static void SendFrom(lpc::AsyncServerStream<example::feed::Change> call,
                       std::string prefix, int i) {
    example::feed::Change change;
    change.set_key(prefix + std::to_string(i));
    call.Write(change, [call, prefix, i](bool ok) {
      if (ok) SendFrom(call, prefix, i + 1);
      // Else the call ended: the client cancelled, went away, or ran out
      // of time. (A stream that ends by itself calls call.Finish(status).)
    });
  }

  size_t parked() {
    lpc::MutexLock lock(&mu_);
    return pending_.size();
  }

 private:
  lpc::Mutex mu_;
  std::vector<std::pair<lpc::AsyncUnaryCall<AddResult>, int64_t>> pending_
      ABSL_GUARDED_BY(mu_);
};

void ClientExamples(const std::shared_ptr<lpc::Channel>& channel,
                    FeedImpl& impl) {
  example::feed::FeedClient feed(channel);

  lpc::ClientReader<example::feed::Change> watch = feed.Watch("news/");
  example::feed::Change change;
  while (watch.Read(&change)) {
    std::printf("changed: %s\n", change.key().c_str());
  }
  absl::Status watched = watch.Finish();  // OK, or why the stream ended.

  Check(watched.ok(), "Watch finishes OK");
  Check(change.key() == "news/2", "Watch's last change is news/2");

  lpc::ClientWriter<example::feed::Sample, example::feed::Summary> upload =
      feed.Upload();
  for (double v : {1.0, 2.0, 3.5}) {
    example::feed::Sample sample;
    sample.set_value(v);
    if (!upload.Write(sample)) break;  // The call ended; Finish says why.
  }
  absl::StatusOr<example::feed::Summary> summary = upload.Finish();

  Check(summary.ok() && summary->count() == 3 && summary->total() == 6.5,
        "Upload sums three samples");

  lpc::ClientReaderWriter<example::feed::Frame, example::feed::Frame> process =
      feed.Process();
  for (uint64_t seq = 0; seq < 3; ++seq) {
    example::feed::Frame frame;
    frame.set_seq(seq);
    frame.set_data("frame");
    process.Write(frame);
    example::feed::Frame back;
    if (process.Read(&back)) std::printf("%s\n", back.data().c_str());
  }
  process.WritesDone();  // The server's Read returns false.
  absl::Status processed = process.Finish();

  Check(processed.ok(), "Process finishes OK");

  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));  // For the whole stream.
  lpc::ClientReader<example::feed::Change> tail = feed.Tail("t/", &ctx);
  tail.Read(&change);
  tail.Cancel();  // The handler's context is cancelled too.
  absl::Status tailed = tail.Finish();  // CANCELLED

  Check(change.key() == "t/0", "Tail's first change is t/0");
  Check(tailed.code() == absl::StatusCode::kCancelled, "Tail is cancelled");

  // On the client an [async] method is an ordinary unary call.
  auto sum = feed.AddFuture(2, 3);

  for (int i = 0; i < 10000 && impl.parked() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));  // Until the call is parked.
  }
  Check(sum.wait_for(std::chrono::seconds(0)) == std::future_status::timeout,
        "Add waits for its reply");
  impl.ReplyToAll();
  absl::StatusOr<example::feed::FeedClient::AddResult> added = sum.get();
  Check(added.ok() && added->value == 5, "Add replies 5");
}

}  // namespace

int main() {
  FeedImpl impl;
  lpc::Server server;
  auto transport = std::make_unique<lpc::InProcessTransport>("feed");
  std::shared_ptr<lpc::Channel> channel = transport->NewChannel();
  if (!server.RegisterService(&impl).ok() ||
      !server.AddTransport(std::move(transport)).ok() || !server.Start().ok()) {
    std::fprintf(stderr, "FAIL: the server did not start\n");
    return 1;
  }
  ClientExamples(channel, impl);
  server.Shutdown();
  if (failures > 0) return 1;
  std::printf("PASS\n");
  return 0;
}
