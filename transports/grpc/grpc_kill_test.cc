// A gRPC server process killed with SIGKILL mid-call: callers get
// UNAVAILABLE, promptly, and nothing hangs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/target.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/test_service.h"

namespace lpc {
namespace {

using ::lpc::grpc_test::TestInterface;
using ::lpc::grpc_test::TestMethod;
using ::lpc::testing::StatusIs;

constexpr absl::Duration kWait = absl::Seconds(10);

// The child server, started with fork+exec and killed by pid.
class ChildServer {
 public:
  ~ChildServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (to_child_ >= 0) close(to_child_);
    if (from_child_ >= 0) close(from_child_);
  }

  // Starts `binary address`; the child's stdin and stdout are pipes.
  bool Start(const std::string& binary, const std::string& address) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    std::vector<std::string> args = {binary, address};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec.
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    return true;
  }

  // Reads one line the child printed, waiting at most `timeout`.
  std::optional<std::string> ReadLine(absl::Duration timeout) {
    absl::Time limit = absl::Now() + timeout;
    std::string line;
    while (absl::Now() < limit) {
      pollfd p{from_child_, POLLIN, 0};
      int ms = static_cast<int>(
          absl::ToInt64Milliseconds(limit - absl::Now()) + 1);
      if (poll(&p, 1, ms) <= 0) continue;
      char c;
      if (read(from_child_, &c, 1) != 1) return std::nullopt;  // Child gone.
      if (c == '\n') return line;
      line.push_back(c);
    }
    return std::nullopt;
  }

  void Kill() {
    ASSERT_EQ(kill(pid_, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
    EXPECT_TRUE(WIFSIGNALED(status));
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

// The result of an asynchronous call, waited for with a bound.
class Result {
 public:
  ResponseCallback Callback() {
    return [this](absl::StatusOr<std::string> r) {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  std::optional<absl::StatusOr<std::string>> Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout),
                   [&] { return result_.has_value(); });
    return result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<absl::StatusOr<std::string>> result_;
};

TEST(GrpcKillTest, KilledServerFailsCallsWithUnavailable) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* tmpdir = getenv("TEST_TMPDIR");
  ASSERT_NE(srcdir, nullptr);
  ASSERT_NE(tmpdir, nullptr);
  std::string binary =
      absl::StrCat(srcdir, "/lpc/transports/grpc/grpc_test_server");
  // Socket paths are limited to 107 bytes: work in TEST_TMPDIR and use a
  // relative path.
  ASSERT_EQ(chdir(tmpdir), 0);
  unlink("kill.sock");

  ChildServer child;
  ASSERT_TRUE(child.Start(binary, "unix:kill.sock"));
  ASSERT_EQ(child.ReadLine(kWait), "ready");

  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> channel,
                       CreateChannel("grpc:unix:kill.sock"));
  {
    CallContext ctx;
    ctx.set_timeout(kWait);
    auto r = channel->Call(TestInterface(), TestMethod(grpc_test::kEcho), &ctx,
                           "alive");
    ASSERT_OK(r.status());
    EXPECT_EQ(*r, "alive");
  }

  // Three calls in flight, each blocked in the child's handler.
  constexpr int kCalls = 3;
  CallContext ctxs[kCalls];
  Result results[kCalls];
  for (int i = 0; i < kCalls; ++i) {
    ctxs[i].set_timeout(kWait);
    channel->StartCall(TestInterface(), TestMethod(grpc_test::kBlock),
                       &ctxs[i], "", results[i].Callback());
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(child.ReadLine(kWait), "blocked");
  }

  absl::Time killed_at = absl::Now();
  child.Kill();
  for (int i = 0; i < kCalls; ++i) {
    auto r = results[i].Wait(kWait);
    ASSERT_TRUE(r.has_value()) << "call " << i << " hangs";
    EXPECT_THAT(*r, StatusIs(absl::StatusCode::kUnavailable)) << "call " << i;
  }
  // Well before the calls' own deadline: the broken connection ended them.
  EXPECT_LT(absl::Now() - killed_at, kWait / 2);

  // New calls fail the same way (nothing listens on the socket any more).
  CallContext ctx;
  ctx.set_timeout(kWait);
  EXPECT_THAT(channel->Call(TestInterface(), TestMethod(grpc_test::kEcho),
                            &ctx, "dead?"),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace lpc
