// A hand-written lpc::Service over raw bytes, used by the gRPC transport's
// tests in place of generated code. Its methods exercise one behaviour each:
//
//   Echo     (1)  replies with the request.
//   Fail     (2)  request "<code>:<message>"; fails with that status.
//   Block    (3)  blocks until its context is cancelled (at most 30 s) and
//                 records that it saw the cancellation.
//   Inspect  (4)  replies with the peer, deadline and request metadata as
//                 text lines, and returns each request metadata entry as
//                 response metadata under "echo-<key>".
//   Notify   (5)  oneway; records the request.
//   Sized    (6)  request is a decimal size; replies with that many 'x'.
//   Hold     (7)  waits until ReleaseHolds() (at most 30 s), replies "held".
//
// Thread safety: all methods are thread-safe.
#ifndef LPC_TRANSPORTS_GRPC_TEST_SERVICE_H_
#define LPC_TRANSPORTS_GRPC_TEST_SERVICE_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "runtime/service.h"

namespace lpc::grpc_test {

enum TestMethodId : uint32_t {
  kEcho = 1,
  kFail = 2,
  kBlock = 3,
  kInspect = 4,
  kNotify = 5,
  kSized = 6,
  kHold = 7,
};

// The interface lpc.test.TestService, version 1.2.
const InterfaceDescriptor& TestInterface();
const MethodDescriptor& TestMethod(TestMethodId id);

class TestService final : public Service {
 public:
  TestService() = default;

  const InterfaceDescriptor& descriptor() const override {
    return TestInterface();
  }
  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override;

  // Runs (on the handler's thread, with the handler's context) when a
  // Block call starts.
  void set_on_block_started(std::function<void(CallContext&)> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    on_block_started_ = std::move(fn);
  }

  // Each waits until the condition holds or `timeout` passes; returns
  // whether it holds.
  bool WaitForBlockStarted(int n, absl::Duration timeout);
  bool WaitForBlockCancelled(int n, absl::Duration timeout);
  bool WaitForNotifies(int n, absl::Duration timeout);
  bool WaitForHolds(int n, absl::Duration timeout);

  std::vector<std::string> notifies() const;
  void ReleaseHolds();

 private:
  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int block_started_ = 0;
  int block_cancelled_ = 0;
  int holds_ = 0;
  bool released_ = false;
  std::vector<std::string> notifies_;
  std::function<void(CallContext&)> on_block_started_;
};

}  // namespace lpc::grpc_test

#endif  // LPC_TRANSPORTS_GRPC_TEST_SERVICE_H_
