// A hand-written Service over raw bytes, for testing the runtime and the
// transports without generated code. Methods:
//   1 Echo      returns the request
//   2 Fail      fails with the code in the first request byte and the rest
//               of the request as the message
//   3 Block     waits for cancellation (at most 10 s); replies "cancelled"
//               or "timeout"
//   4 Note      oneway; appends the request to notes()
//   5 Peer      replies with ctx.peer().ToString()
#ifndef LPC_RUNTIME_TESTING_SERVICE_H_
#define LPC_RUNTIME_TESTING_SERVICE_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "runtime/mutex.h"
#include "runtime/service.h"

namespace lpc::testing {

inline constexpr MethodDescriptor kRawMethods[] = {
    {"Echo", 1, false}, {"Fail", 2, false}, {"Block", 3, false},
    {"Note", 4, true},  {"Peer", 5, false},
};

inline const InterfaceDescriptor& RawDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Raw", "0f0e0d0c-0b0a-4908-8706-050403020100", {2, 1},
      kRawMethods};
  return d;
}

class RawService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return RawDescriptor();
  }

  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    switch (method_id) {
      case 1:
        response->assign(request);
        return absl::OkStatus();
      case 2: {
        if (request.empty()) return absl::InvalidArgumentError("empty");
        auto code = static_cast<absl::StatusCode>(request[0]);
        return absl::Status(code, std::string(request.substr(1)));
      }
      case 3: {
        blocked_.fetch_add(1);
        bool cancelled =
            ctx.WaitForCancellation(absl::Now() + absl::Seconds(10));
        if (cancelled) cancels_seen_.fetch_add(1);
        *response = cancelled ? "cancelled" : "timeout";
        return absl::OkStatus();
      }
      case 4: {
        MutexLock lock(&mu_);
        notes_.emplace_back(request);
        return absl::OkStatus();
      }
      case 5:
        *response = ctx.peer().ToString();
        return absl::OkStatus();
    }
    return absl::UnimplementedError("unknown method");
  }

  std::vector<std::string> notes() {
    MutexLock lock(&mu_);
    return notes_;
  }
  int blocked() const { return blocked_.load(); }
  int cancels_seen() const { return cancels_seen_.load(); }

 private:
  Mutex mu_;
  std::vector<std::string> notes_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> blocked_{0};
  std::atomic<int> cancels_seen_{0};
};

}  // namespace lpc::testing

#endif  // LPC_RUNTIME_TESTING_SERVICE_H_
