// A service whose handlers call Server::Shutdown, and the checks that every
// transport's shutdown_from_handler_test runs with it: the process lives,
// the calling call gets its reply, and the server ends up shut down (a new
// call fails with UNAVAILABLE). Methods of "lpc.test.Stopper":
//   1 Stop        unary, synchronous: calls Shutdown, replies "stopping".
//   2 StopStream  server streaming, synchronous (the handler holds its
//                 thread): calls Shutdown, writes "stopping", finishes OK.
//   3 Echo        unary: returns the request.
#ifndef LPC_RUNTIME_SHUTDOWN_TEST_SERVICE_H_
#define LPC_RUNTIME_SHUTDOWN_TEST_SERVICE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "runtime/call.h"
#include "runtime/channel.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "runtime/service.h"

namespace lpc::testing {

inline constexpr MethodDescriptor kStopperMethods[] = {
    {"Stop", 1, false, MethodKind::kUnary},
    {"StopStream", 2, false, MethodKind::kServerStreaming},
    {"Echo", 3, false, MethodKind::kUnary},
};

inline const InterfaceDescriptor& StopperDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Stopper", "5f0e0d0c-0b0a-4908-8706-050403020177", {1, 0},
      kStopperMethods};
  return d;
}

// A value set once from any thread and awaited with a deadline.
template <typename T>
class Slot {
 public:
  void Set(T v) {
    MutexLock lock(&mu_);
    if (!v_.has_value()) v_ = std::move(v);
    cv_.SignalAll();
  }
  // The value, or nullopt when none came within 30 s.
  std::optional<T> Get() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    MutexLock lock(&mu_);
    while (!v_.has_value() && absl::Now() < deadline) {
      cv_.WaitWithDeadline(&mu_, deadline);
    }
    return v_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::optional<T> v_ ABSL_GUARDED_BY(mu_);
};

class StopperService final : public Service {
 public:
  void set_server(Server* server) { server_ = server; }
  // Handlers whose Shutdown call returned.
  int shutdowns_returned() const { return shutdowns_returned_.load(); }

  const InterfaceDescriptor& descriptor() const override {
    return StopperDescriptor();
  }
  bool StartCallBlocks(uint32_t method_id) const override {
    return method_id == 2;
  }

  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    (void)ctx;
    switch (method_id) {
      case 1:
        server_->Shutdown();
        shutdowns_returned_.fetch_add(1);
        *response = "stopping";
        return absl::OkStatus();
      case 3:
        response->assign(request);
        return absl::OkStatus();
    }
    return absl::UnimplementedError("unknown method");
  }

  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override {
    if (method_id != 2) {
      call->Finish(absl::UnimplementedError("unknown method"));
      return;
    }
    server_->Shutdown();
    shutdowns_returned_.fetch_add(1);
    // A synchronous handler: it holds its thread until the write is done.
    auto written = std::make_shared<Slot<absl::Status>>();
    call->Write("stopping", [written](absl::Status s) { written->Set(s); });
    std::optional<absl::Status> s = written->Get();
    call->Finish(s.has_value() ? *s
                               : absl::DeadlineExceededError("write hung"));
  }

 private:
  Server* server_ = nullptr;
  std::atomic<int> shutdowns_returned_{0};
};

// The unary Stop call's result.
inline absl::StatusOr<std::string> CallStop(Channel& channel) {
  CallContext ctx;
  ctx.set_deadline(absl::Now() + absl::Seconds(30));
  return channel.Call(StopperDescriptor(), kStopperMethods[0], &ctx, "");
}

// The StopStream call: its messages joined, or its error status.
inline absl::StatusOr<std::string> CallStopStream(Channel& channel) {
  CallContext ctx;
  ctx.set_deadline(absl::Now() + absl::Seconds(30));
  std::shared_ptr<ClientStream> stream =
      channel.OpenStream(StopperDescriptor(), kStopperMethods[1], &ctx);
  stream->Write("go", [](absl::Status) {});
  stream->WritesDone();
  std::string got;
  while (true) {
    Slot<absl::StatusOr<std::optional<std::string>>> read;
    stream->Read([&read](absl::StatusOr<std::optional<std::string>> r) {
      read.Set(std::move(r));
    });
    auto r = read.Get();
    if (!r.has_value()) return absl::DeadlineExceededError("test: no read");
    if (!r->ok() || !r->value().has_value()) break;
    got += *r->value();
  }
  Slot<absl::Status> finished;
  stream->Finish([&finished](absl::Status s) { finished.Set(s); });
  std::optional<absl::Status> s = finished.Get();
  if (!s.has_value()) return absl::DeadlineExceededError("test: no finish");
  if (!s->ok()) return *s;
  return got;
}

// How the test thread learns that the shutdown a handler began is over.
enum class AfterStop {
  kWait,      // Server::Wait
  kShutdown,  // a second Shutdown, which waits for the first
  kDestroy,   // the destructor
};

// After a handler's Shutdown returned: the server shuts down completely
// and a new call fails with UNAVAILABLE.
inline void ExpectShutDown(std::unique_ptr<Server>& server, Channel& channel,
                           const StopperService& service, AfterStop after) {
  EXPECT_EQ(service.shutdowns_returned(), 1);
  switch (after) {
    case AfterStop::kWait:
      server->Wait();
      break;
    case AfterStop::kShutdown:
      server->Shutdown();
      break;
    case AfterStop::kDestroy:
      server.reset();
      break;
  }
  if (server != nullptr) {
    EXPECT_FALSE(server->serving());
    server->Wait();  // Over already: returns at once.
  }
  CallContext ctx;
  ctx.set_deadline(absl::Now() + absl::Seconds(30));
  absl::StatusOr<std::string> echo =
      channel.Call(StopperDescriptor(), kStopperMethods[2], &ctx, "hi");
  EXPECT_EQ(echo.status().code(), absl::StatusCode::kUnavailable)
      << echo.status();
}

}  // namespace lpc::testing

#endif  // LPC_RUNTIME_SHUTDOWN_TEST_SERVICE_H_
