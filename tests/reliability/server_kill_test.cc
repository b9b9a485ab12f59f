// Items 1 and 16 of docs/reliability.md: a server killed with SIGKILL while
// 64 clients have over 1,000 calls in flight. Every caller must get an
// error (no hung caller), and that error must be UNAVAILABLE; the test
// reports the time from the kill to each caller's error. Runs over the
// local transport and over gRPC (Unix socket), with the same assertions.
//
// Clients are processes (reliability_peer load): short mode 4 processes x
// 16 channels x 16 calls; long mode 64 processes x 1 channel x 32 calls.
#include <signal.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

void RunServerKill(const std::string& transport) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ChildProcess server({PeerBinary(), "server", dir.path(), "p", "1"});
  ASSERT_EQ(server.ReadLine(), "READY");
  const std::string target = transport == "local"
                                 ? std::string("local:p")
                                 : absl::StrCat("grpc:", GrpcAddress(dir.path()));
  const int procs = static_cast<int>(Scaled(4, 64));
  const int channels = static_cast<int>(Scaled(16, 1));
  const int per_channel = static_cast<int>(Scaled(16, 32));
  std::vector<std::unique_ptr<ChildProcess>> clients;
  for (int i = 0; i < procs; ++i) {
    clients.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
        PeerBinary(), "load", target, dir.path(), absl::StrCat(channels),
        absl::StrCat(per_channel)}));
  }
  for (auto& c : clients) ASSERT_EQ(c->ReadLine(absl::Seconds(60)), "WARM");
  { std::ofstream go(dir.path() + "/go"); }
  for (auto& c : clients) ASSERT_EQ(c->ReadLine(absl::Seconds(60)), "SENT");
  const int total = procs * channels * per_channel;
  // The calls are sent; give the server a moment to start handling them
  // (the figure does not depend on it: queued calls must fail too).
  absl::SleepFor(absl::Milliseconds(100));
  const int64_t kill_ns = MonoNs();
  server.Kill();

  int done = 0, unavailable = 0;
  std::vector<double> ms;
  std::map<int, int> codes;
  for (auto& c : clients) {
    for (int n = 0; n < 100000; ++n) {
      const std::string line = c->ReadLine(absl::Seconds(40));
      if (line.empty() || line.rfind("END", 0) == 0) break;
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      int code = -1;
      int64_t at = 0;
      if (f.size() != 3 || f[0] != "DONE" || !absl::SimpleAtoi(f[1], &code) ||
          !absl::SimpleAtoi(f[2], &at)) {
        ADD_FAILURE() << "bad line: " << line;
        continue;
      }
      ++done;
      ++codes[code];
      unavailable += code == static_cast<int>(absl::StatusCode::kUnavailable);
      ms.push_back(static_cast<double>(at - kill_ns) / 1e6);
    }
  }
  std::string code_text;
  for (auto& [code, n] : codes) absl::StrAppend(&code_text, code, ":", n, " ");
  const int hung = total - done;
  Report(absl::StrCat("server_kill_", transport),
         absl::StrFormat("clients=%d calls=%d hung=%d p50_ms=%.1f p99_ms=%.1f "
                         "max_ms=%.1f unavailable=%d/%d codes={%s}",
                         procs * channels, total, hung, Quantile(ms, 0.5),
                         Quantile(ms, 0.99), Quantile(ms, 1.0), unavailable,
                         total, code_text));
  EXPECT_EQ(hung, 0);
  EXPECT_EQ(unavailable, total);
  EXPECT_GE(total, 1000);
}

TEST(ServerKillTest, LocalCallersAllFailWithUnavailable) {
  RunServerKill("local");
}

TEST(ServerKillTest, GrpcCallersAllFailWithUnavailable) {
  RunServerKill("grpc");
}

}  // namespace
}  // namespace lpc::reliability
