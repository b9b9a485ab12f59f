// A hand-written service of streaming methods and an asynchronous unary
// handler, over raw bytes, for the local transport's stream tests (in this
// process and in local_test_peer). Every handler is asynchronous: it takes
// the call in StartCall and returns at once; work continues in the
// stream's callbacks. Methods of "lpc.test.Streams":
//   1 Count  server streaming: request "N S" -> N messages of S bytes
//            (message i starts with "i:"), then OK.
//   2 Sum    client streaming: reads to the end; replies "<count>:<bytes>".
//   3 Echo   bidi: writes back every message; OK after the half-close.
//   4 Early  bidi: reads one message, writes "bye", finishes with
//            PERMISSION_DENIED "early".
//   5 Hold   bidi: reads one message (counted in got_first), then reads on
//            until the call ends; the status that ended it is recorded.
//   6 Gate   client streaming: reads nothing until Open(), then to the end;
//            replies "<count>".
//   7 Add    unary, asynchronous: the call waits in pending() until the
//            test finishes it.
//   8 Plain  unary, synchronous: echoes the request.
#ifndef LPC_TRANSPORTS_LOCAL_STREAM_TEST_SERVICE_H_
#define LPC_TRANSPORTS_LOCAL_STREAM_TEST_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/call.h"
#include "runtime/mutex.h"
#include "runtime/service.h"
#include "testing/stream_waits.h"

namespace lpc::testing {

inline constexpr MethodDescriptor kStreamMethods[] = {
    {"Count", 1, false, MethodKind::kServerStreaming},
    {"Sum", 2, false, MethodKind::kClientStreaming},
    {"Echo", 3, false, MethodKind::kBidiStreaming},
    {"Early", 4, false, MethodKind::kBidiStreaming},
    {"Hold", 5, false, MethodKind::kBidiStreaming},
    {"Gate", 6, false, MethodKind::kClientStreaming},
    {"Add", 7, false, MethodKind::kUnary},
    {"Plain", 8, false, MethodKind::kUnary},
};

inline const InterfaceDescriptor& StreamsDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Streams", "5f0e0d0c-0b0a-4908-8706-050403020101", {1, 0},
      kStreamMethods};
  return d;
}

// Runs `step` again and again without growing the stack when its
// continuation comes at once: step(next) starts one step and calls
// next(true) to go on or next(false) to stop, on any thread.
class StepLoop : public std::enable_shared_from_this<StepLoop> {
 public:
  using Step = std::function<void(std::function<void(bool)>)>;
  static void Start(Step step) {
    std::make_shared<StepLoop>(std::move(step))->Run();
  }
  explicit StepLoop(Step step) : step_(std::move(step)) {}

  void Run() {
    {
      MutexLock lock(&mu_);
      if (running_) {
        again_ = true;
        return;
      }
      running_ = true;
    }
    for (;;) {
      {
        MutexLock lock(&mu_);
        again_ = false;
      }
      std::shared_ptr<StepLoop> self = shared_from_this();
      step_([self](bool more) {
        if (more) self->Run();
      });
      MutexLock lock(&mu_);
      if (!again_) {
        running_ = false;
        return;
      }
    }
  }

 private:
  Step step_;
  Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool again_ ABSL_GUARDED_BY(mu_) = false;
};

class StreamsService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return StreamsDescriptor();
  }
  bool UsesStartCall(uint32_t method_id) const override {
    return method_id != 8;
  }
  // Every StartCall returns at once: it runs on the worker that read it.
  bool StartCallBlocks(uint32_t) const override { return false; }
  absl::Status Dispatch(uint32_t method_id, CallContext&,
                        std::string_view request,
                        std::string* response) override {
    if (method_id != 8) return absl::UnimplementedError("not unary");
    response->assign(request);
    return absl::OkStatus();
  }

  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override {
    switch (method_id) {
      case 1:
        return Count(std::move(call));
      case 2:
        return Sum(std::move(call), /*gate=*/false);
      case 3:
        return Echo(std::move(call));
      case 4:
        return Early(std::move(call));
      case 5:
        return Hold(std::move(call));
      case 6:
        return Sum(std::move(call), /*gate=*/true);
      case 7: {
        MutexLock lock(&mu_);
        pending_.push_back(std::move(call));
        return;
      }
    }
    call->Finish(absl::UnimplementedError("unknown method"));
  }

  // Server messages whose Write completed (Count), and client messages
  // taken (Sum, Gate).
  uint64_t writes_done() const { return writes_done_.load(); }
  uint64_t reads_done() const { return reads_done_.load(); }
  int got_first() const { return got_first_.load(); }
  int started() const { return started_.load(); }
  // Statuses that ended Hold streams (their pending Read's error).
  std::vector<absl::Status> hold_ends() {
    MutexLock lock(&mu_);
    return hold_ends_;
  }
  // Open streams' handlers that saw their context cancelled.
  int cancels_seen() const { return cancels_seen_.load(); }
  // Gate: lets the handlers read; returns writes... of the client seen.
  void OpenGate() {
    std::vector<std::function<void()>> go;
    {
      MutexLock lock(&mu_);
      gate_open_ = true;
      go.swap(gated_);
    }
    for (auto& fn : go) fn();
  }
  // Add: the calls waiting for the test.
  std::vector<std::shared_ptr<ServerStream>> TakePending() {
    MutexLock lock(&mu_);
    std::vector<std::shared_ptr<ServerStream>> v(pending_.begin(),
                                                 pending_.end());
    pending_.clear();
    return v;
  }
  size_t pending() {
    MutexLock lock(&mu_);
    return pending_.size();
  }

 private:
  void Count(std::shared_ptr<ServerStream> call) {
    started_.fetch_add(1);
    call->Read([this, call](absl::StatusOr<std::optional<std::string>> r) {
      if (!r.ok() || !r->has_value()) {
        call->Finish(absl::InvalidArgumentError("no request"));
        return;
      }
      long n = 0, size = 0;
      if (std::sscanf((*r)->c_str(), "%ld %ld", &n, &size) < 1 || n < 0) {
        call->Finish(absl::InvalidArgumentError("bad request"));
        return;
      }
      auto i = std::make_shared<std::atomic<long>>(0);
      StepLoop::Start([this, call, i, n, size](std::function<void(bool)> next) {
        const long k = i->load();
        if (k == n) {
          call->Finish(absl::OkStatus());
          next(false);
          return;
        }
        std::string m = absl::StrCat(k, ":");
        if (static_cast<long>(m.size()) < size) m.resize(size, 'x');
        call->Write(std::move(m), [this, i, next](absl::Status s) {
          if (!s.ok()) {
            next(false);
            return;
          }
          writes_done_.fetch_add(1);
          i->fetch_add(1);
          next(true);
        });
      });
    });
  }

  void Sum(std::shared_ptr<ServerStream> call, bool gate) {
    started_.fetch_add(1);
    auto count = std::make_shared<std::atomic<uint64_t>>(0);
    auto bytes = std::make_shared<std::atomic<uint64_t>>(0);
    auto run = [this, call, count, bytes, gate] {
      StepLoop::Start([this, call, count, bytes,
                       gate](std::function<void(bool)> next) {
        call->Read([this, call, count, bytes, gate,
                    next](absl::StatusOr<std::optional<std::string>> r) {
          if (!r.ok()) {
            next(false);
            return;
          }
          if (!r->has_value()) {
            call->Write(gate ? absl::StrCat(count->load())
                             : absl::StrCat(count->load(), ":", bytes->load()),
                        [](absl::Status) {});
            call->Finish(absl::OkStatus());
            next(false);
            return;
          }
          reads_done_.fetch_add(1);
          count->fetch_add(1);
          bytes->fetch_add((*r)->size());
          next(true);
        });
      });
    };
    if (gate) {
      MutexLock lock(&mu_);
      if (!gate_open_) {
        gated_.push_back(run);
        return;
      }
    }
    run();
  }

  void Echo(std::shared_ptr<ServerStream> call) {
    started_.fetch_add(1);
    StepLoop::Start([call](std::function<void(bool)> next) {
      call->Read([call, next](absl::StatusOr<std::optional<std::string>> r) {
        if (!r.ok()) {
          next(false);
          return;
        }
        if (!r->has_value()) {
          call->Finish(absl::OkStatus());
          next(false);
          return;
        }
        call->Write(std::move(**r),
                    [next](absl::Status s) { next(s.ok()); });
      });
    });
  }

  void Early(std::shared_ptr<ServerStream> call) {
    started_.fetch_add(1);
    call->Read([call](absl::StatusOr<std::optional<std::string>>) {
      call->Write("bye", [call](absl::Status) {
        call->Finish(absl::PermissionDeniedError("early"));
      });
    });
  }

  void Hold(std::shared_ptr<ServerStream> call) {
    started_.fetch_add(1);
    call->context().AddCancelCallback([this] { cancels_seen_.fetch_add(1); });
    auto first = std::make_shared<std::atomic<bool>>(true);
    StepLoop::Start([this, call, first](std::function<void(bool)> next) {
      call->Read([this, call, first,
                  next](absl::StatusOr<std::optional<std::string>> r) {
        if (!r.ok() || !r->has_value()) {
          {
            MutexLock lock(&mu_);
            hold_ends_.push_back(r.ok() ? absl::OkStatus() : r.status());
          }
          // Harmless after the end.
          call->Write("late", [](absl::Status) {});
          call->Finish(absl::OkStatus());
          next(false);
          return;
        }
        if (first->exchange(false)) got_first_.fetch_add(1);
        next(true);
      });
    });
  }

  std::atomic<uint64_t> writes_done_{0}, reads_done_{0};
  std::atomic<int> got_first_{0}, started_{0}, cancels_seen_{0};
  Mutex mu_;
  std::vector<absl::Status> hold_ends_ ABSL_GUARDED_BY(mu_);
  bool gate_open_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> gated_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<ServerStream>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc::testing

#endif  // LPC_TRANSPORTS_LOCAL_STREAM_TEST_SERVICE_H_
