// Conformance cases for propagation and client interceptors: a child
// context's deadline and cancellation reach the server on every transport,
// and a client interceptor sees, changes and can refuse every call.
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "runtime/interceptor.h"
#include "testing/status_matchers.h"
#include "tests/conformance/conformance.lpc.h"
#include "tests/conformance/conformance_suite.h"

namespace lpc::conformance {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;

// Polls `done` until it is true or 10 s passed.
template <typename Pred>
bool Eventually(Pred done) {
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > limit) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

bool HandlerWaits(ConformanceClient& client, const std::string& tag) {
  return Eventually([&] {
    absl::StatusOr<std::vector<std::string>> r = client.Recorded();
    return r.ok() && std::find(r->begin(), r->end(), "waiting:" + tag) != r->end();
  });
}

TEST_P(ConformanceTest, ChildContextCarriesTheParentDeadline) {
  ConformanceClient client(channel_);
  ASSERT_OK(client.EchoBytes("connect").status());
  // The handler would wait 15 s and the channel's default is 20 s: a call
  // that ends DEADLINE_EXCEEDED took the parent's deadline. Doubled until
  // one attempt reaches the handler before it passes (loaded machines).
  bool handler_ran = false;
  for (int attempt = 0; attempt < 6 && !handler_ran; ++attempt) {
    const std::string tag = absl::StrCat("child-deadline-", attempt);
    CallContext parent;
    parent.set_timeout(absl::Milliseconds(100) * (1 << attempt));
    CallContext child(&parent);
    EXPECT_EQ(child.deadline(), parent.deadline());
    EXPECT_THAT(client.WaitForCancel(tag, 15000, &child),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
    absl::StatusOr<std::vector<std::string>> seen = client.Recorded();
    ASSERT_OK(seen.status());
    handler_ran = std::find(seen->begin(), seen->end(), "waiting:" + tag) !=
                  seen->end();
  }
  ASSERT_TRUE(handler_ran) << "no attempt reached the handler";
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<uint32_t> n = client.CancellationsSeen();
    return n.ok() && *n >= 1;
  })) << "the handler never saw the inherited deadline pass";
}

TEST_P(ConformanceTest, ParentCancelReachesTheHandler) {
  ConformanceClient client(channel_);
  CallContext parent;
  parent.set_timeout(absl::Seconds(30));
  CallContext child(&parent);
  std::optional<absl::StatusOr<bool>> result;
  std::thread caller(
      [&] { result = client.WaitForCancel("parent-cancel", 20000, &child); });
  const bool started = HandlerWaits(client, "parent-cancel");
  parent.Cancel();  // Not the child: the link carries it.
  caller.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<uint32_t> n = client.CancellationsSeen();
    return n.ok() && *n >= 1;
  })) << "the handler never saw the parent's cancellation";
}

// Adds metadata, records what it saw, and refuses calls to "Fail".
class TestClientInterceptor final : public ClientInterceptor {
 public:
  absl::Status OnStart(const InterceptedCall& call, CallContext& ctx) override {
    Add(absl::StrCat("start ", std::string(call.method->name)));
    if (call.method->name == "Fail") {
      return absl::PermissionDeniedError("refused by the interceptor");
    }
    ctx.metadata().emplace("x-intercepted", "yes");
    return absl::OkStatus();
  }
  void OnMessage(const InterceptedCall&, CallContext&, MessageDirection d,
                 std::string_view) override {
    Add(d == MessageDirection::kClientToServer ? "request" : "reply");
  }
  void OnFinish(const InterceptedCall&, CallContext&, const absl::Status& s,
                const CallStats& stats) override {
    Add(absl::StrCat("finish ", absl::StatusCodeToString(s.code()),
                     stats.request_bytes > 0 ? " with bytes" : " no bytes"));
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  void Add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST_P(ConformanceTest, ClientInterceptorsSeeChangeAndRefuseCalls) {
  auto interceptor = std::make_shared<TestClientInterceptor>();
  ConformanceClient client(InterceptChannel(channel_, {interceptor}));
  absl::StatusOr<std::map<std::string, std::string>> md = client.EchoMetadata();
  ASSERT_OK(md.status());
  EXPECT_EQ((*md)["x-intercepted"], "yes");  // The server saw the addition.
  EXPECT_THAT(client.Fail(5, "not reached"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(interceptor->lines(),
              ElementsAre("start EchoMetadata", "request", "reply",
                          "finish OK no bytes", "start Fail",
                          "finish PERMISSION_DENIED no bytes"));
}

}  // namespace
}  // namespace lpc::conformance
