// An honest client whose large requests (memfd payloads) queue up while
// every server worker is busy must not be cut off: its calls should
// complete once a worker is free.
//
// The server's I/O thread stashes each PAYLOAD_FD packet as it arrives,
// while only workers claim them, and an honest LocalChannel sends the
// memfd before each record. The stash therefore holds up to the request
// ring's slot count + 16 (MaxStashedFds in
// transports/local/internal/server_connection.cc), which only a
// misbehaving client exceeds (docs/reliability.md, "Threats and
// guarantees").
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

TEST(BusyServerMemfdTest, LargeCallsQueuedBehindBusyWorkersSucceed) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  o.local.concurrency = 1;
  o.local.max_workers = 1;
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok());
  auto ch = MakeChannel("local:p", dir.path());
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(CallRel(**ch, EchoMethod(), "warm").ok());
  // Occupy the only worker for 500 ms.
  std::thread hold([&] {
    CallRel(**ch, HoldMethod(), "hold", absl::Milliseconds(500)).IgnoreError();
  });
  ASSERT_TRUE(WaitFor([&] { return server.service().running() == 1; }));
  const int calls = 24;
  const std::string big(2 << 20, 'b');  // Over the 1 MiB data half: memfd.
  std::vector<std::unique_ptr<CallContext>> ctxs;
  std::atomic<int> ok{0}, done{0};
  for (int i = 0; i < calls; ++i) {
    ctxs.push_back(std::make_unique<CallContext>());
    ctxs.back()->set_timeout(absl::Seconds(10));
    (*ch)->StartCall(RelDescriptor(), EchoMethod(), ctxs.back().get(), big,
                     [&](absl::StatusOr<std::string> r) {
                       ok += r.ok() && r->size() == big.size();
                       ++done;
                     });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load() == calls; }, absl::Seconds(20)));
  hold.join();
  Report("busy_server_memfd",
         absl::StrFormat("calls=%d ok=%d cut_offs=%llu", calls, ok.load(),
                         static_cast<unsigned long long>(
                             server.local()->stats().clients_cut_off)));
  EXPECT_EQ(ok.load(), calls);
  EXPECT_EQ(server.local()->stats().clients_cut_off, 0u);
}

}  // namespace
}  // namespace lpc::reliability
