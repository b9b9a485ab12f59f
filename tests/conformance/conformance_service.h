// ConformanceServiceImpl: the reference implementation of the conformance
// interface, served by every transport under test. It keeps what the
// client cannot observe directly (oneway deliveries, cancellations the
// handlers saw) so the suite can read it back through ordinary calls.
//
// Thread safety: handlers run concurrently; state is guarded by mu_.
#ifndef LPC_TESTS_CONFORMANCE_CONFORMANCE_SERVICE_H_
#define LPC_TESTS_CONFORMANCE_CONFORMANCE_SERVICE_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel.h"
#include "runtime/interceptor.h"
#include "runtime/mutex.h"
#include "runtime/stream.h"
#include "tests/conformance/conformance.lpc.h"

namespace lpc::conformance {

// A server interceptor that logs what it sees of the calls whose request
// metadata has "conf-tag": Intercepted(tag) reads the log back.
class RecordingInterceptor final : public ServerInterceptor {
 public:
  absl::Status OnStart(const InterceptedCall& call, CallContext& ctx) override;
  void OnMessage(const InterceptedCall& call, CallContext& ctx,
                 MessageDirection direction,
                 std::string_view message) override;
  void OnFinish(const InterceptedCall& call, CallContext& ctx,
                const absl::Status& status, const CallStats& stats) override;

  std::vector<std::string> Log(const std::string& tag) const;

 private:
  void Add(const CallContext& ctx, std::string event);

  mutable lpc::Mutex mu_;
  std::map<std::string, std::vector<std::string>> log_ ABSL_GUARDED_BY(mu_);
};

class ConformanceServiceImpl final : public ConformanceService {
 public:
  absl::StatusOr<AllTypes> Echo(lpc::CallContext& ctx,
                                const AllTypes& value) override;
  absl::StatusOr<int64_t> Scalars(lpc::CallContext& ctx, bool b, int8_t i8,
                                  int16_t i16, int32_t i32, int64_t i64,
                                  uint8_t u8, uint16_t u16, uint32_t u32,
                                  uint64_t u64, float f, double d,
                                  uint64_t* u64_out, double* d_out) override;
  absl::Status Swap(lpc::CallContext& ctx, std::string* a,
                    std::string* b) override;
  absl::Status Split(lpc::CallContext& ctx, const std::string& text,
                     std::vector<std::string>* words, int32_t* count) override;
  absl::StatusOr<std::string> EchoBytes(lpc::CallContext& ctx,
                                        const std::string& data) override;
  void Record(lpc::CallContext& ctx, const std::string& event) override;
  absl::StatusOr<std::vector<std::string>> Recorded(
      lpc::CallContext& ctx) override;
  absl::StatusOr<bool> WaitForCancel(lpc::CallContext& ctx,
                                     const std::string& tag,
                                     uint32_t max_millis) override;
  absl::StatusOr<uint32_t> CancellationsSeen(lpc::CallContext& ctx) override;
  absl::Status Fail(lpc::CallContext& ctx, int32_t code,
                    const std::string& message) override;
  absl::StatusOr<std::string> MakeBytes(lpc::CallContext& ctx,
                                        uint64_t size) override;
  absl::StatusOr<std::map<std::string, std::string>> EchoMetadata(
      lpc::CallContext& ctx) override;
  absl::StatusOr<std::string> Peer(lpc::CallContext& ctx) override;
  absl::Status Range(lpc::CallContext& ctx, uint32_t count, uint32_t size,
                     int32_t code, lpc::ServerWriter<Item>& writer) override;
  absl::Status Forever(lpc::CallContext& ctx, uint32_t size,
                       lpc::ServerWriter<Item>& writer) override;
  absl::StatusOr<uint32_t> StreamEndsSeen(lpc::CallContext& ctx) override;
  absl::StatusOr<Totals> Total(lpc::CallContext& ctx,
                               lpc::ServerReader<Item>& items) override;
  absl::Status Mirror(lpc::CallContext& ctx,
                      lpc::ServerReaderWriter<Item, Item>& items) override;
  absl::Status Early(lpc::CallContext& ctx,
                     lpc::ServerReaderWriter<Item, Item>& items) override;
  void Later(lpc::AsyncUnaryCall<LaterResult> call, uint32_t v) override;

  ~ConformanceServiceImpl() override;

  // Streams and asynchronous handlers (conformance_service_streams.cc).
  absl::Status Generate(lpc::CallContext& ctx, uint32_t count, uint64_t size,
                        int32_t end_code, ServerWriter<Item>& writer) override;
  absl::StatusOr<ItemSum> Sum(lpc::CallContext& ctx,
                            ServerReader<Item>& items) override;
  absl::Status Chat(lpc::CallContext& ctx,
                    ServerReaderWriter<Item, Item>& items) override;
  void AsyncChat(AsyncServerReaderWriter<Item, Item> call) override;
  void Park(AsyncUnaryCall<ParkResult> call, const std::string& tag) override;
  absl::StatusOr<uint32_t> Release(lpc::CallContext& ctx) override;
  absl::StatusOr<uint32_t> Parked(lpc::CallContext& ctx) override;
  absl::StatusOr<uint32_t> ActiveStreams(lpc::CallContext& ctx) override;
  absl::StatusOr<bool> Relay(lpc::CallContext& ctx, const std::string& tag,
                             uint32_t max_millis) override;
  absl::StatusOr<std::vector<std::string>> Intercepted(
      lpc::CallContext& ctx, const std::string& tag) override;

  // The channel Relay calls through (to this same server); set once the
  // server listens, reset before it is destroyed.
  void set_relay_channel(std::shared_ptr<Channel> channel);
  // The interceptor to install on the server (Server::AddInterceptor).
  const std::shared_ptr<RecordingInterceptor>& interceptor() const {
    return interceptor_;
  }

  // For the streaming handlers: a stream started, ended; a handler found
  // its call cancelled (`what` is recorded as "stream-cancelled:<what>").
  void StreamStarted();
  void StreamEnded();
  void SawCancellation(const std::string& what);

 private:
  const std::shared_ptr<RecordingInterceptor> interceptor_ =
      std::make_shared<RecordingInterceptor>();
  lpc::Mutex mu_;
  uint32_t stream_ends_seen_ ABSL_GUARDED_BY(mu_) = 0;
  // The threads that answer Later; joined by the destructor.
  std::vector<std::thread> repliers_ ABSL_GUARDED_BY(mu_);
  uint32_t active_streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<AsyncUnaryCall<ParkResult>> parked_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Channel> relay_channel_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> recorded_ ABSL_GUARDED_BY(mu_);
  uint32_t cancellations_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lpc::conformance

#endif  // LPC_TESTS_CONFORMANCE_CONFORMANCE_SERVICE_H_
