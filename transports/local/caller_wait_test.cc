// Many caller threads on one LocalChannel: callers beyond the spin limit
// (LocalChannelOptions::spinning_callers) sleep at once, counted in
// LocalChannelStats; every caller's calls complete with their own replies;
// callers share the channel without one of them starving.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/config.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "runtime/service.h"
#include "testing/status_matchers.h"
#include "transports/connect.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

inline constexpr MethodDescriptor kGateMethods[] = {
    {"Echo", 1, false},
    {"Gated", 2, false},
};

const InterfaceDescriptor& GateDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Gate", "5b0c7e52-3d0f-4c1e-9a51-6a1f3c2b7d10", {1, 0},
      kGateMethods};
  return d;
}
const MethodDescriptor& Echo() { return GateDescriptor().methods[0]; }
const MethodDescriptor& Gated() { return GateDescriptor().methods[1]; }

// Echo replies at once; Gated replies once the test opens the gate (or
// after 60 s, so that a broken test still ends).
class GateService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return GateDescriptor();
  }
  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    if (method_id == 2) {
      const absl::Time end = absl::Now() + absl::Seconds(60);
      MutexLock lock(&mu_);
      while (!open_ && absl::Now() < end) cv_.WaitWithDeadline(&mu_, end);
    } else if (method_id != 1) {
      return absl::UnimplementedError("unknown method");
    }
    response->assign(request);
    return absl::OkStatus();
  }
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

class CallerWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lpc-callers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    server_ = std::make_unique<Server>();
    ASSERT_OK(server_->RegisterService(&service_));
    LocalPortOptions port;
    port.runtime_dir = dir_;
    auto transport = MakeLocalServerTransport("callers", port);
    ASSERT_OK(transport.status());
    ASSERT_OK(server_->AddTransport(std::move(*transport)));
    ASSERT_OK(server_->Start());
  }
  void TearDown() override {
    service_.Open();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<Channel> MakeChannel(int spinning_callers) {
    LocalChannelOptions local;
    local.runtime_dir = dir_;
    local.spinning_callers = spinning_callers;
    auto channel = CreateLocalChannel("callers", {}, local);
    EXPECT_OK(channel.status());
    return channel.ok() ? *channel : nullptr;
  }

  static absl::StatusOr<std::string> Call(Channel& ch,
                                          const MethodDescriptor& method,
                                          std::string request) {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(120));
    return ch.Call(GateDescriptor(), method, &ctx, std::move(request));
  }

  std::string dir_;
  GateService service_;
  std::unique_ptr<Server> server_;
};

TEST_F(CallerWaitTest, CallersBeyondTheSpinLimitSleepAtOnce) {
  constexpr int kCallers = 8;
  constexpr int kSpinning = 2;
  std::shared_ptr<Channel> ch = MakeChannel(kSpinning);
  ASSERT_NE(ch, nullptr);
  ASSERT_OK(Call(*ch, Echo(), "bind").status());  // Connects and binds.
  absl::StatusOr<LocalChannelStats> before = GetLocalChannelStats(*ch);
  ASSERT_OK(before.status());
  EXPECT_EQ(before->spinning_callers, static_cast<uint32_t>(kSpinning));
  EXPECT_EQ(before->callers_waiting, 0u);

  // No reply comes before the gate opens, so every caller finds the ones
  // before it still waiting: exactly kSpinning of them may spin.
  std::vector<absl::StatusOr<std::string>> got(kCallers, std::string());
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back(
        [&, i] { got[i] = Call(*ch, Gated(), absl::StrCat("caller ", i)); });
  }
  bool all_waiting = false;
  for (int polls = 0; polls < 60000 && !all_waiting; ++polls) {
    absl::StatusOr<LocalChannelStats> now = GetLocalChannelStats(*ch);
    ASSERT_OK(now.status());
    all_waiting = now->callers_waiting == kCallers;
    if (!all_waiting) absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(all_waiting);
  service_.Open();
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_OK(got[i].status());
    EXPECT_EQ(*got[i], absl::StrCat("caller ", i));
  }
  absl::StatusOr<LocalChannelStats> after = GetLocalChannelStats(*ch);
  ASSERT_OK(after.status());
  EXPECT_EQ(after->waits - before->waits, uint64_t{kCallers});
  EXPECT_EQ(after->waits_without_spin - before->waits_without_spin,
            uint64_t{kCallers - kSpinning});
  EXPECT_EQ(after->callers_waiting, 0u);
}

TEST_F(CallerWaitTest, SpinningCallersFromTheConfigFile) {
  absl::StatusOr<config::Config> cfg = ParseConfig(
      absl::StrCat("endpoint { service: \"s\" target: \"local:callers\"\n"
                   "  local { runtime_dir: \"", dir_,
                   "\" spinning_callers: 3 } }"),
      "callers.textproto");
  ASSERT_OK(cfg.status());
  absl::StatusOr<std::shared_ptr<Channel>> ch = ConnectFromConfig(*cfg, "s");
  ASSERT_OK(ch.status());
  ASSERT_OK(Call(**ch, Echo(), "bind").status());  // Connects.
  absl::StatusOr<LocalChannelStats> stats = GetLocalChannelStats(**ch);
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->spinning_callers, 3u);
}

TEST_F(CallerWaitTest, ManyCallersOnOneChannelEachGetTheirOwnReplies) {
  constexpr int kCallers = 32;
  constexpr int kCalls = 100;
  service_.Open();
  std::shared_ptr<Channel> ch = MakeChannel(0);
  ASSERT_NE(ch, nullptr);
  ASSERT_OK(Call(*ch, Echo(), "bind").status());
  absl::StatusOr<LocalChannelStats> before = GetLocalChannelStats(*ch);
  ASSERT_OK(before.status());
  EXPECT_GE(before->spinning_callers, 1u);  // The CPUs we may run on.
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      for (int n = 0; n < kCalls; ++n) {
        const std::string req = absl::StrCat(i, "/", n);
        absl::StatusOr<std::string> r = Call(*ch, Echo(), req);
        if (!r.ok() || *r != req) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  absl::StatusOr<LocalChannelStats> after = GetLocalChannelStats(*ch);
  ASSERT_OK(after.status());
  EXPECT_EQ(after->waits - before->waits, uint64_t{kCallers * kCalls});
  EXPECT_LE(after->waits_without_spin - before->waits_without_spin,
            after->waits - before->waits);
  EXPECT_EQ(after->callers_waiting, 0u);
}

// Callers that call until the channel made kTotal calls between them: the
// server takes the calls about in the order they were sent, and each reply
// wakes its own caller only, so none falls far behind (the scheduler
// decides the rest; the margin is wide).
TEST_F(CallerWaitTest, NoCallerStarves) {
  constexpr int kCallers = 16;
  constexpr int kTotal = kCallers * 150;
  service_.Open();
  std::shared_ptr<Channel> ch = MakeChannel(1);
  ASSERT_NE(ch, nullptr);
  ASSERT_OK(Call(*ch, Echo(), "bind").status());
  std::atomic<int> total{0};
  std::atomic<int> failed{0};
  std::vector<int> made(kCallers, 0);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      while (total.load(std::memory_order_relaxed) < kTotal) {
        if (!Call(*ch, Echo(), "x").ok()) failed.fetch_add(1);
        ++made[i];
        total.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failed.load(), 0);
  const int least = *std::min_element(made.begin(), made.end());
  const int mean = total.load() / kCallers;
  EXPECT_GE(least * 8, mean) << "least " << least << ", mean " << mean;
}

TEST(LocalChannelStatsTest, OtherChannelsAreRefused) {
  class Other final : public Channel {
   public:
    Other() : Channel(ChannelOptions{}) {}
    std::string_view transport_name() const override { return "other"; }
    void StartCall(const InterfaceDescriptor&, const MethodDescriptor&,
                   CallContext*, std::string, ResponseCallback done) override {
      done(absl::UnimplementedError("no"));
    }
    absl::Status SendOneway(const InterfaceDescriptor&,
                            const MethodDescriptor&, CallContext*,
                            std::string) override {
      return absl::UnimplementedError("no");
    }
  };
  Other other;
  EXPECT_EQ(GetLocalChannelStats(other).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lpc::local
