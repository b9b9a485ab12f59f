// The in-process transport's synchronous calls, which run the handler on the
// caller's thread: the thread itself, re-entrant calls, cancellation and
// deadlines seen by the handler, shutdown waiting for such a call, the
// transport's counters, and the calls that still go to the handler pool.
// Each test runs twice: through the string API (Channel::Call, StartCall)
// and through the zero-copy one the generated stubs use (CallWith,
// StartCallWith).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/message.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::StatusIs;

inline constexpr MethodDescriptor kProbeMethods[] = {
    {"Thread", 1, false},  // replies with the handler's thread id
    {"Nested", 2, false},  // calls Thread on the same channel, replies
                           // "<own id> <nested id>"
    {"Gate", 3, false},    // waits until Open(), replies "opened"
    {"Poll", 4, false},    // polls IsCancelled (no wait, no callback)
    {"Late", 5, false},    // waits past its deadline, then replies "late"
};

const InterfaceDescriptor& ProbeDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Probe", "1f0e0d0c-0b0a-4908-8706-050403020100", {1, 0},
      kProbeMethods};
  return d;
}

const MethodDescriptor& M(int id) { return kProbeMethods[id - 1]; }

std::string Id(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}

const absl::Duration kBound = absl::Seconds(10);  // No test waits longer.

class ProbeService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return ProbeDescriptor();
  }

  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    switch (method_id) {
      case 1:
        *response = Id(std::this_thread::get_id());
        return absl::OkStatus();
      case 2: {
        CallContext child(&ctx);
        absl::StatusOr<std::string> nested =
            channel_->Call(ProbeDescriptor(), M(1), &child, "");
        if (!nested.ok()) return nested.status();
        *response = Id(std::this_thread::get_id()) + " " + *nested;
        return absl::OkStatus();
      }
      case 3: {
        MutexLock lock(&mu_);
        entered_ = true;
        cv_.SignalAll();
        const absl::Time limit = absl::Now() + kBound;
        while (!open_ && absl::Now() < limit) cv_.WaitWithDeadline(&mu_, limit);
        *response = open_ ? "opened" : "never opened";
        return absl::OkStatus();
      }
      case 4: {
        entered_poll_.store(true);
        const absl::Time limit = absl::Now() + kBound;
        while (!ctx.IsCancelled() && absl::Now() < limit) {
          std::this_thread::yield();
        }
        explicit_cancel_seen_.store(ctx.WasCancelledExplicitly());
        *response = "polled";
        return absl::OkStatus();
      }
      case 5: {
        deadline_seen_ = ctx.deadline();
        bool cancelled = ctx.WaitForCancellation(absl::Now() + kBound);
        late_saw_deadline_.store(cancelled && !ctx.WasCancelledExplicitly());
        *response = "late";
        return absl::OkStatus();
      }
    }
    (void)request;
    return absl::UnimplementedError("unknown method");
  }

  void set_channel(std::shared_ptr<Channel> channel) {
    channel_ = std::move(channel);
  }
  bool WaitEntered() {
    MutexLock lock(&mu_);
    const absl::Time limit = absl::Now() + kBound;
    while (!entered_ && absl::Now() < limit) cv_.WaitWithDeadline(&mu_, limit);
    return entered_;
  }
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }

  std::atomic<bool> entered_poll_{false};
  std::atomic<bool> explicit_cancel_seen_{false};
  std::atomic<bool> late_saw_deadline_{false};
  absl::Time deadline_seen_;

 private:
  std::shared_ptr<Channel> channel_;
  Mutex mu_;
  CondVar cv_;
  bool entered_ ABSL_GUARDED_BY(mu_) = false;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// The test's parameter: whether calls take the zero-copy API.
class InProcessInlineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ServerOptions options;
    // Long: the calls held in flight here finish by themselves.
    options.shutdown_grace = absl::Seconds(60);
    server_ = std::make_unique<Server>(options);
    ASSERT_OK(server_->RegisterService(&service_));
    auto t = std::make_unique<InProcessTransport>("inprocess_inline_test");
    transport_ = t.get();
    ASSERT_OK(server_->AddTransport(std::move(t)));
    ASSERT_OK(server_->Start());
    channel_ = transport_->NewChannel();
    service_.set_channel(channel_);
  }
  void TearDown() override {
    service_.Open();
    server_->Shutdown();
    service_.set_channel(nullptr);
  }

  // A synchronous call of method `id` with an empty request.
  absl::StatusOr<std::string> Call(int id, CallContext* ctx) {
    if (!GetParam()) return channel_->Call(ProbeDescriptor(), M(id), ctx, "");
    std::string reply;
    absl::Status s = channel_->CallWith(
        ProbeDescriptor(), M(id), ctx, BytesWriter(""),
        [&](ReceivedMessage& m) {
          reply = std::string(m.bytes());
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
    return reply;
  }

  // An asynchronous call of method `id` with an empty request.
  void StartCall(int id, CallContext* ctx,
                 std::function<void(absl::StatusOr<std::string>)> done) {
    if (!GetParam()) {
      channel_->StartCall(ProbeDescriptor(), M(id), ctx, "", std::move(done));
      return;
    }
    channel_->StartCallWith(
        ProbeDescriptor(), M(id), ctx, BytesWriter(""),
        [done = std::move(done)](absl::StatusOr<ReceivedMessage> r) {
          if (!r.ok()) {
            done(r.status());
          } else {
            done(std::string(r->bytes()));
          }
        });
  }

  std::map<std::string, uint64_t> Counters() {
    TransportReport report;
    transport_->Report(&report);
    EXPECT_TRUE(report.connections.empty());
    return {report.counters.begin(), report.counters.end()};
  }

  ProbeService service_;
  std::unique_ptr<Server> server_;
  InProcessTransport* transport_ = nullptr;
  std::shared_ptr<Channel> channel_;
};

TEST_P(InProcessInlineTest, SyncCallRunsTheHandlerOnTheCallersThread) {
  CallContext ctx;
  ASSERT_OK_AND_ASSIGN(std::string id,
                       Call(1, &ctx));
  EXPECT_EQ(id, Id(std::this_thread::get_id()));
  EXPECT_EQ(Counters()["calls_inline"], 1u);
  EXPECT_EQ(Counters()["calls_in_flight"], 0u);
}

TEST_P(InProcessInlineTest, AsyncCallRunsTheHandlerOnAPoolWorker) {
  CallContext ctx;
  Mutex mu;
  CondVar cv;
  std::optional<absl::StatusOr<std::string>> result;
  int runs = 0;
  StartCall(1, &ctx, [&](absl::StatusOr<std::string> r) {
    MutexLock lock(&mu);
    result = std::move(r);
    ++runs;
    cv.SignalAll();
  });
  MutexLock lock(&mu);
  const absl::Time limit = absl::Now() + kBound;
  while (!result.has_value() && absl::Now() < limit) {
    cv.WaitWithDeadline(&mu, limit);
  }
  ASSERT_TRUE(result.has_value());
  ASSERT_OK(*result);
  EXPECT_NE(**result, Id(std::this_thread::get_id()));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Counters()["calls_inline"], 0u);
}

TEST_P(InProcessInlineTest, HandlerCallsTheSameChannelReentrantly) {
  CallContext ctx;
  ASSERT_OK_AND_ASSIGN(std::string ids,
                       Call(2, &ctx));
  const std::string me = Id(std::this_thread::get_id());
  EXPECT_EQ(ids, me + " " + me);
  EXPECT_EQ(Counters()["calls_inline"], 2u);
  EXPECT_EQ(server_->calls_dispatched(), 2u);
}

TEST_P(InProcessInlineTest, ShutdownWaitsForAnInlineCallInFlight) {
  std::optional<absl::StatusOr<std::string>> result;
  std::thread caller([&] {
    CallContext ctx;
    result = Call(3, &ctx);
  });
  ASSERT_TRUE(service_.WaitEntered());
  EXPECT_EQ(Counters()["calls_in_flight"], 1u);
  std::atomic<bool> shutdown_returned{false};
  std::thread stopper([&] {
    server_->Shutdown();
    shutdown_returned.store(true);
  });
  // The transport refuses new calls once it drains; the held one is still
  // in flight, so the shutdown cannot have returned.
  absl::Status refused;
  const absl::Time limit = absl::Now() + kBound;
  do {
    CallContext ctx;
    refused = Call(1, &ctx).status();
  } while (refused.ok() && absl::Now() < limit);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(shutdown_returned.load());
  EXPECT_EQ(Counters()["calls_in_flight"], 1u);
  service_.Open();
  caller.join();
  stopper.join();
  EXPECT_TRUE(shutdown_returned.load());
  ASSERT_TRUE(result.has_value());
  ASSERT_OK(*result);
  EXPECT_EQ(**result, "opened");
  EXPECT_EQ(Counters()["calls_in_flight"], 0u);
}

TEST_P(InProcessInlineTest, CancelReachesAHandlerThatOnlyPolls) {
  CallContext ctx;
  std::optional<absl::StatusOr<std::string>> result;
  std::thread caller(
      [&] { result = Call(4, &ctx); });
  const absl::Time limit = absl::Now() + kBound;
  while (!service_.entered_poll_.load() && absl::Now() < limit) {
    std::this_thread::yield();
  }
  ASSERT_TRUE(service_.entered_poll_.load());
  ctx.Cancel();
  caller.join();
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(service_.explicit_cancel_seen_.load());
}

TEST_P(InProcessInlineTest, HandlerSeesTheDeadlineAndALateReplyIsNotDelivered) {
  CallContext ctx;
  ctx.set_timeout(absl::Milliseconds(100));
  EXPECT_THAT(Call(5, &ctx),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Seen by the handler before it returned (it ran on this thread).
  EXPECT_TRUE(service_.late_saw_deadline_.load());
  EXPECT_EQ(service_.deadline_seen_, ctx.deadline());
}

INSTANTIATE_TEST_SUITE_P(Api, InProcessInlineTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Writers" : "Strings";
                         });

}  // namespace
}  // namespace lpc
