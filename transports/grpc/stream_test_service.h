// A hand-written lpc::Service whose methods run through the call model
// (Service::StartCall on byte-level ServerStreams), for the gRPC transport's
// stream tests and the streaming benchmark. Each method exercises one
// behaviour:
//
//   Count      (1, server-streaming, blocking)  request "n": writes "0" ..
//              "n-1", then OK. Adds response metadata x-count: n before its
//              first write.
//   Sum        (2, client-streaming, async)  sums the decimal messages until
//              the half-close, replies with the sum, adds x-sum.
//   Echo       (3, bidi, async)  writes back every message; OK at the
//              half-close.
//   FailAfter  (4, server-streaming, blocking)  request "k:code:message":
//              writes k messages, then finishes with that status.
//   Hang       (5, bidi, blocking)  reads until a Read fails, records that
//              and whether its context was cancelled, finishes.
//   Flood      (6, server-streaming, blocking)  request "n:size": writes n
//              messages of `size` bytes, each starting with its index;
//              counts writes started and completed.
//   Reverse    (7, unary, async)  replies with the request reversed.
//   Sink       (8, client-streaming, async)  counts messages and bytes,
//              replies with the count.
//
// Thread safety: all methods are thread-safe.
#ifndef LPC_TRANSPORTS_GRPC_STREAM_TEST_SERVICE_H_
#define LPC_TRANSPORTS_GRPC_STREAM_TEST_SERVICE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/call.h"
#include "runtime/service.h"
#include "testing/stream_waits.h"

namespace lpc::stream_test {

// The blocking stream operations the tests and the handlers use.
using ::lpc::testing::FinishBlocking;
using ::lpc::testing::ReadBlocking;
using ::lpc::testing::WriteBlocking;

enum StreamMethodId : uint32_t {
  kCount = 1,
  kSum = 2,
  kEcho = 3,
  kFailAfter = 4,
  kHang = 5,
  kFlood = 6,
  kReverse = 7,
  kSink = 8,
};

// The interface lpc.test.StreamService, version 1.0.
const InterfaceDescriptor& StreamInterface();
const MethodDescriptor& StreamMethod(StreamMethodId id);

class StreamService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return StreamInterface();
  }
  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override;
  bool UsesStartCall(uint32_t method_id) const override;
  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override;

  // Hang: how many started, and how many saw their Read fail while their
  // context was cancelled; the last failed Read's status.
  bool WaitForHangs(int started, int cancelled, absl::Duration timeout);
  absl::Status last_hang_status() const;

  // Flood: writes whose callback ran, and whether the handler is inside a
  // Write right now.
  int64_t flood_completed() const;
  // Waits until the flood handler waits in a Write (or has finished); returns
  // how many writes completed by then.
  std::optional<int64_t> WaitForFloodBlocked(absl::Duration timeout);

  // Sink: messages and bytes received so far.
  int64_t sink_messages() const;

 private:
  void RunCount(ServerStream& call);
  void RunFailAfter(ServerStream& call);
  void RunHang(ServerStream& call);
  void RunFlood(ServerStream& call);
  static void EchoNext(std::shared_ptr<ServerStream> call);
  static void SumNext(std::shared_ptr<ServerStream> call, int64_t sum);
  void SinkNext(std::shared_ptr<ServerStream> call, int64_t count);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int hangs_started_ = 0;
  int hangs_cancelled_ = 0;
  absl::Status last_hang_status_;
  int64_t flood_completed_ = 0;
  bool flood_in_write_ = false;
  bool flood_finished_ = false;
  int64_t sink_messages_ = 0;
};

}  // namespace lpc::stream_test

#endif  // LPC_TRANSPORTS_GRPC_STREAM_TEST_SERVICE_H_
