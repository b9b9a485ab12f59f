// The implementation of testdata/test_streams.idl that the streaming code
// tests call: every streaming kind, synchronous and [async].
#ifndef LPC_CODEGEN_STREAMS_TEST_SERVICE_H_
#define LPC_CODEGEN_STREAMS_TEST_SERVICE_H_

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "codegen/testdata/test_streams.lpc.h"
#include "runtime/mutex.h"
#include "testing/stream_waits.h"

namespace lpc::codegen::streams_test {

namespace s = ::lpc::codegen::streams;
namespace tt = ::lpc::codegen::testtypes;

inline s::Change MakeChange(const std::string& key, uint32_t kind) {
  s::Change c;
  c.set_key(key);
  c.set_value("v:" + key);
  c.set_kind(kind);
  return c;
}

inline s::Frame MakeFrame(uint64_t seq, const std::string& data) {
  s::Frame f;
  f.set_seq(seq);
  f.set_data(data);
  return f;
}

inline std::string Reversed(std::string s) { return std::string(s.rbegin(), s.rend()); }

// Waits until `done()` holds (polled), up to 10 s; returns whether it did.
template <typename Fn>
inline bool WaitFor(Fn done) {
  return ::lpc::testing::WaitFor(std::move(done), absl::Seconds(10));
}

class StreamsImpl : public s::StreamsService {
 public:
  ~StreamsImpl() override {
    std::vector<std::thread> threads;
    {
      MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  absl::Status Watch(CallContext& ctx, const std::string& prefix,
                     uint32_t limit,
                     ServerWriter<s::Change>& writer) override {
    if (prefix == "forever") {
      // Writes until the call ends (the client cancels).
      for (uint64_t i = 0;; ++i) {
        if (!writer.Write(MakeChange(prefix + std::to_string(i), 1))) break;
      }
      watch_saw_end = true;
      return absl::OkStatus();
    }
    for (uint32_t i = 0; i < limit; ++i) {
      uint32_t kind = prefix == "bad" ? 300 : i;
      if (!writer.Write(MakeChange(prefix + std::to_string(i), kind))) {
        return absl::OkStatus();
      }
    }
    if (prefix == "fail") return absl::NotFoundError("no more under fail");
    return absl::OkStatus();
  }

  absl::StatusOr<s::Summary> Upload(CallContext& ctx,
                                    ServerReader<s::Sample>& samples) override {
    s::Summary out;
    s::Sample sample;
    while (samples.Read(&sample)) {
      out.set_count(out.count() + 1);
      out.set_total(out.total() + sample.value() * sample.weight());
    }
    if (ctx.IsCancelled()) return absl::CancelledError("upload ended");
    return out;
  }

  absl::Status Process(CallContext& ctx,
                       ServerReaderWriter<s::Frame, s::Frame>& frames) override {
    s::Frame f;
    while (frames.Read(&f)) {
      if (!frames.Write(MakeFrame(f.seq(), Reversed(f.data())))) break;
    }
    return absl::OkStatus();
  }

  absl::Status Tags(CallContext& ctx,
                    ServerWriter<tt::Tag>& writer) override {
    for (int i = 0; i < 2; ++i) {
      tt::Tag t;
      t.set_key("tag" + std::to_string(i));
      t.set_weight(-i);
      writer.Write(t);
    }
    return absl::OkStatus();
  }

  absl::Status Drain(CallContext& ctx,
                     ServerReader<s::Frame>& frames) override {
    s::Frame f;
    while (frames.Read(&f)) drained += f.data().size();
    return absl::OkStatus();
  }

  // [async] unary: parked until the test replies from its own thread.
  void Add(AsyncUnaryCall<AddResult> call, int64_t a, int64_t b) override {
    if (a < 0) return;  // Drops the call.
    MutexLock lock(&mu_);
    pending_adds_.push_back({std::move(call), a + b});
  }
  // Replies to every parked Add from a new thread; returns how many.
  size_t ReplyToAdds() {
    std::vector<std::pair<AsyncUnaryCall<AddResult>, int64_t>> adds;
    {
      MutexLock lock(&mu_);
      adds.swap(pending_adds_);
    }
    size_t n = adds.size();
    std::thread t([adds = std::move(adds)] {
      for (const auto& [call, sum] : adds) {
        AddResult r;
        r.value = sum;
        call.Reply(r);
      }
    });
    t.join();
    return n;
  }
  size_t PendingAdds() {
    MutexLock lock(&mu_);
    return pending_adds_.size();
  }

  // [async] server-streaming: a thread of its own writes and finishes.
  void Tail(AsyncServerStream<s::Change> call,
            const std::string& prefix) override {
    MutexLock lock(&mu_);
    threads_.emplace_back([call, prefix] {
      for (int i = 0; i < 3; ++i) {
        std::promise<bool> written;
        call.Write(MakeChange(prefix + std::to_string(i), i),
                   [&written](bool ok) { written.set_value(ok); });
        if (!written.get_future().get()) return;
      }
      call.Finish(absl::OkStatus());
    });
  }

  // [async] client-streaming: reads through callbacks, then replies.
  void Collect(AsyncServerReader<s::Sample, s::Summary> call) override {
    auto summary = std::make_shared<s::Summary>();
    ReadAll(call, summary);
  }
  static void ReadAll(AsyncServerReader<s::Sample, s::Summary> call,
                      std::shared_ptr<s::Summary> summary) {
    call.Read([call, summary](std::optional<s::Sample> sample) {
      if (!sample.has_value()) {
        if (!call.context().IsCancelled()) call.Reply(*summary);
        return;
      }
      summary->set_count(summary->count() + 1);
      summary->set_total(summary->total() + sample->value());
      ReadAll(call, summary);
    });
  }

  // [async] bidi: each frame back, then OK at the end of the client's.
  void Echo(AsyncServerReaderWriter<s::Frame, s::Frame> call) override {
    EchoNext(std::move(call));
  }
  static void EchoNext(AsyncServerReaderWriter<s::Frame, s::Frame> call) {
    call.Read([call](std::optional<s::Frame> frame) {
      if (!frame.has_value()) {
        call.Finish(absl::OkStatus());
        return;
      }
      call.Write(*frame, [call](bool ok) {
        if (ok) EchoNext(call);
      });
    });
  }

  absl::Status Names(CallContext& ctx_, const std::string& writer,
                     const std::string& ctx,
                     ServerWriter<s::Change>& writer_) override {
    writer_.Write(MakeChange(writer + "/" + ctx, 0));
    return absl::OkStatus();
  }

  void Calls(AsyncUnaryCall<CallsResult> call_, int32_t call,
             const std::string& note) override {
    CallsResult r;
    r.value = call * 2;
    r.note = note + "!";
    call_.Reply(r);
  }

  absl::StatusOr<int32_t> Count(CallContext& ctx,
                                const std::string& prefix) override {
    return static_cast<int32_t>(prefix.size());
  }

  std::atomic<bool> watch_saw_end{false};
  std::atomic<size_t> drained{0};

 private:
  Mutex mu_;
  std::vector<std::pair<AsyncUnaryCall<AddResult>, int64_t>> pending_adds_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc::codegen::streams_test

#endif  // LPC_CODEGEN_STREAMS_TEST_SERVICE_H_
