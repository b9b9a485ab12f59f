// At its deadline a served call ends by its deadline, not by a cancel: the
// handler sees IsCancelled() without WasCancelledExplicitly(), and the call
// it made with its context as the parent ends DEADLINE_EXCEEDED. A real
// client cancel still reaches the bottom of the chain as a cancel.
// client -first-> A -second-> B, for each serving transport of A.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/server.h"
#include "tests/propagation/propagation.lpc.h"
#include "transports/connect.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

namespace lpc::propagation {
namespace {

// What the two handlers saw, for the test thread.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  bool bottom_started = false;
  std::optional<bool> bottom_explicit;  // B: WasCancelledExplicitly().
  std::optional<absl::Status> child;    // A: its call to B.
  bool middle_cancelled = false;        // A: IsCancelled() after it.
  bool middle_explicit = false;         // A: WasCancelledExplicitly().

  template <typename F>
  void Update(F f) {
    std::lock_guard<std::mutex> lock(mu);
    f();
    cv.notify_all();
  }
  template <typename P>
  bool WaitFor(P p) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), p);
  }
};

class HopImpl final : public HopService {
 public:
  HopImpl(std::shared_ptr<Channel> next, Seen* seen)
      : next_(next == nullptr ? nullptr : std::make_unique<HopClient>(next)),
        seen_(seen) {}

  absl::StatusOr<propagation::Seen> Forward(CallContext& ctx, bool, bool) override {
    if (next_ == nullptr) {  // B: waits until its call ends.
      seen_->Update([&] { seen_->bottom_started = true; });
      ctx.WaitForCancellation(absl::Now() + absl::Seconds(30));
      const bool explicit_cancel = ctx.WasCancelledExplicitly();
      seen_->Update([&] { seen_->bottom_explicit = explicit_cancel; });
      if (explicit_cancel) return absl::CancelledError("B saw a cancel");
      return absl::DeadlineExceededError("B saw its deadline");
    }
    CallContext child(&ctx);  // A.
    absl::Status status = next_->Forward(true, true, &child).status();
    // A transport that (wrongly) cancelled this context at the deadline
    // would do it at about the time the child ended: give it a moment.
    std::mutex mu;
    std::condition_variable cv;
    bool cancel_seen = false;
    const uint64_t handle =
        ::lpc::internal::CallContextAccess::AddTransportCancelCallback(
            ctx, [&] {
              std::lock_guard<std::mutex> lock(mu);
              cancel_seen = true;
              cv.notify_all();
            });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(300),
                  [&] { return cancel_seen; });
    }
    ctx.RemoveCancelCallback(handle);
    const bool cancelled = ctx.IsCancelled();
    const bool explicit_cancel = ctx.WasCancelledExplicitly();
    seen_->Update([&] {
      seen_->child = status;
      seen_->middle_cancelled = cancelled;
      seen_->middle_explicit = explicit_cancel;
    });
    return status;
  }

 private:
  const std::unique_ptr<HopClient> next_;
  Seen* const seen_;
};

std::string Dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/lpc_deadline_XXXXXX";  // Short: socket paths.
    const char* made = ::mkdtemp(tmpl);
    return std::string(made == nullptr ? "/tmp" : made);
  }();
  return dir;
}

// Server `name` with a local port, a gRPC Unix socket and an in-process
// name; target(t) is its address over transport t.
struct Node {
  Node(const std::string& name, std::shared_ptr<Channel> next, Seen* seen)
      : impl(std::move(next), seen), name(name) {
    EXPECT_TRUE(server.RegisterService(&impl).ok());
    local::LocalPortOptions po;
    po.runtime_dir = Dir();
    auto local = local::MakeLocalServerTransport(name, po);
    EXPECT_TRUE(local.ok()) << local.status();
    EXPECT_TRUE(server.AddTransport(*std::move(local)).ok());
    GrpcServerOptions go;
    go.listen_addresses = {absl::StrCat("unix:", Dir(), "/", name, ".sock")};
    EXPECT_TRUE(server.AddTransport(MakeGrpcServerTransport(go)).ok());
    EXPECT_TRUE(
        server.AddTransport(std::make_unique<InProcessTransport>(name)).ok());
    EXPECT_TRUE(server.Start().ok());
  }
  ~Node() { server.Shutdown(); }
  std::string target(const std::string& t) const {
    if (t == "grpc") return absl::StrCat("grpc:unix:", Dir(), "/", name, ".sock");
    return absl::StrCat(t, ":", name);
  }

  HopImpl impl;
  Server server;
  const std::string name;
};

std::shared_ptr<Channel> Connect(const std::string& target) {
  config::Endpoint e;
  e.mutable_local()->set_runtime_dir(Dir());
  e.set_default_timeout_ms(30000);
  absl::StatusOr<std::shared_ptr<Channel>> ch = ConnectTarget(target, &e);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

// (transport client -> A, transport A -> B)
class DeadlineTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    static int generation = 0;
    ++generation;
    const auto& [first, second] = GetParam();
    b_ = std::make_unique<Node>(absl::StrCat("dlb", generation), nullptr, &seen_);
    a_ = std::make_unique<Node>(absl::StrCat("dla", generation),
                                Connect(b_->target(second)), &seen_);
    client_ = std::make_unique<HopClient>(Connect(a_->target(first)));
  }
  void TearDown() override {
    client_.reset();
    a_.reset();
    b_.reset();
  }

  Seen seen_;
  std::unique_ptr<Node> b_;
  std::unique_ptr<Node> a_;
  std::unique_ptr<HopClient> client_;
};

TEST_P(DeadlineTest, DeadlineIsNotACancel) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(1));
  absl::Status status = client_->Forward(true, true, &ctx).status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  ASSERT_TRUE(seen_.WaitFor([&] { return seen_.child.has_value(); }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_TRUE(absl::IsDeadlineExceeded(*seen_.child)) << *seen_.child;
  EXPECT_TRUE(seen_.middle_cancelled);
  EXPECT_FALSE(seen_.middle_explicit);
}

TEST_P(DeadlineTest, ClientCancelIsACancel) {
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::Status> result;
  client_->ForwardAsync(true, true,
                        [&](absl::StatusOr<HopClient::ForwardResult> r) {
                          std::lock_guard<std::mutex> lock(mu);
                          result = r.status();
                          cv.notify_all();
                        },
                        &ctx);
  ASSERT_TRUE(seen_.WaitFor([&] { return seen_.bottom_started; }));
  ctx.Cancel();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20),
                            [&] { return result.has_value(); }));
    EXPECT_TRUE(absl::IsCancelled(*result)) << *result;
  }
  ASSERT_TRUE(seen_.WaitFor(
      [&] { return seen_.child.has_value() && seen_.bottom_explicit; }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_TRUE(*seen_.bottom_explicit);
  EXPECT_TRUE(absl::IsCancelled(*seen_.child)) << *seen_.child;
  EXPECT_TRUE(seen_.middle_explicit);
}

INSTANTIATE_TEST_SUITE_P(
    Transports, DeadlineTest,
    ::testing::Combine(::testing::Values("grpc", "local", "inprocess"),
                       ::testing::Values("grpc", "local")),
    [](const auto& info) {
      return absl::StrCat(std::get<0>(info.param), "_to_",
                          std::get<1>(info.param));
    });

}  // namespace
}  // namespace lpc::propagation
