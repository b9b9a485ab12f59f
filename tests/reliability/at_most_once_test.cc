// Items 4 and 16 of docs/reliability.md: at most once. Clients call a
// non-idempotent Count method with unique ids while the server is killed
// (SIGKILL) at random moments and restarted, many times. The server appends
// each execution to a log file before it replies, so the log survives the
// kills. Afterwards:
//   - no id ran twice (duplicates must be 0);
//   - every call that returned OK ran exactly once;
//   - calls that failed before anything was sent (local: "cannot connect",
//     "retrying", "handshake failed"; gRPC: "failed to connect") never ran;
//   - UNAVAILABLE after sending and DEADLINE_EXCEEDED mean "may have run":
//     the test reports how many of them did.
// Runs over the local transport and over gRPC with the same assertions.
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

struct Outcome {
  absl::StatusCode code;
  bool not_sent;  // Failed before the request could reach a server.
};

void RunAtMostOnce(const std::string& transport) {
  TempDir dir;
  const std::string log = dir.path() + "/count.log";
  const std::string target = transport == "local"
                                 ? std::string("local:p")
                                 : absl::StrCat("grpc:", GrpcAddress(dir.path()));
  const int kills = static_cast<int>(Scaled(30, 1000));
  const int threads_n = 8;
  std::vector<std::shared_ptr<Channel>> chs;
  for (int i = 0; i < threads_n; ++i) {
    auto ch = MakeChannel(target, dir.path());
    ASSERT_TRUE(ch.ok()) << ch.status();
    chs.push_back(*ch);
  }
  std::mutex mu;
  std::map<std::string, Outcome> outcomes;  // mu
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t seq = 0; !stop.load() && seq < 10000000; ++seq) {
        const std::string id = absl::StrCat("t", t, "-", seq);
        absl::StatusOr<std::string> r =
            CallRel(*chs[t], CountMethod(), id, absl::Milliseconds(500));
        const std::string msg(r.status().message());
        Outcome o{r.status().code(),
                  absl::StrContains(msg, "cannot connect") ||
                      absl::StrContains(msg, "retrying") ||
                      absl::StrContains(msg, "handshake failed") ||
                      absl::StrContains(msg, "failed to connect")};
        {
          std::lock_guard<std::mutex> lock(mu);
          outcomes[id] = o;
        }
        if (r.ok()) ok_calls.fetch_add(1);
        if (!r.ok()) absl::SleepFor(absl::Milliseconds(1));
      }
    });
  }
  std::mt19937 rng(42);
  int start_failures = 0;
  const absl::Time time_limit = absl::Now() + absl::Seconds(Scaled(20, 1200));
  int done_kills = 0;
  for (; done_kills < kills && absl::Now() < time_limit; ++done_kills) {
    ChildProcess server(
        {PeerBinary(), "server", dir.path(), "p", "1", log});
    if (server.ReadLine() != "READY") {
      ++start_failures;
      break;
    }
    // Kill at a random point once this server has completed a call (so
    // every server lifetime sees traffic, however slow the build).
    const int64_t before = ok_calls.load();
    WaitFor([&] { return ok_calls.load() > before; }, absl::Seconds(10));
    absl::SleepFor(absl::Microseconds(rng() % 60000));
    server.Kill();
  }
  stop = true;
  for (auto& t : threads) t.join();

  std::map<std::string, int> executed;
  {
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) ++executed[line];
  }
  int64_t duplicates = 0, ok = 0, ok_not_run = 0, not_sent = 0,
          not_sent_ran = 0, maybe = 0, maybe_ran = 0, other = 0, unknown_ran = 0;
  std::map<int, int64_t> codes;
  for (auto& [id, n] : executed) {
    if (n > 1) duplicates += n - 1;
    if (outcomes.find(id) == outcomes.end()) ++unknown_ran;
  }
  for (auto& [id, o] : outcomes) {
    const int n = executed.count(id) ? executed[id] : 0;
    ++codes[static_cast<int>(o.code)];
    if (o.code == absl::StatusCode::kOk) {
      ++ok;
      ok_not_run += n != 1;
    } else if (o.not_sent) {
      ++not_sent;
      not_sent_ran += n > 0;
    } else if (o.code == absl::StatusCode::kUnavailable ||
               o.code == absl::StatusCode::kDeadlineExceeded) {
      ++maybe;
      maybe_ran += n > 0;
    } else {
      ++other;
    }
  }
  std::string code_text;
  for (auto& [code, n] : codes) absl::StrAppend(&code_text, code, ":", n, " ");
  Report(absl::StrCat("at_most_once_", transport),
         absl::StrFormat(
             "kills=%d calls=%d duplicates=%lld ok=%lld ok_not_run_once=%lld "
             "not_sent=%lld not_sent_ran=%lld may_have_run=%lld "
             "of_which_ran=%lld other_errors=%lld unknown_ids_ran=%lld "
             "codes={%s}",
             done_kills, static_cast<int>(outcomes.size()),
             static_cast<long long>(duplicates), static_cast<long long>(ok),
             static_cast<long long>(ok_not_run),
             static_cast<long long>(not_sent),
             static_cast<long long>(not_sent_ran),
             static_cast<long long>(maybe), static_cast<long long>(maybe_ran),
             static_cast<long long>(other), static_cast<long long>(unknown_ran),
             code_text));
  EXPECT_EQ(start_failures, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(ok_not_run, 0);
  EXPECT_EQ(not_sent_ran, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(unknown_ran, 0);
  EXPECT_GT(ok, 0);
}

TEST(AtMostOnceTest, Local) { RunAtMostOnce("local"); }
TEST(AtMostOnceTest, Grpc) { RunAtMostOnce("grpc"); }

}  // namespace
}  // namespace lpc::reliability
