// The access-policy and identity rows of docs/reliability.md, with clients running as real
// other users (setpriv --reuid/--regid/--groups; the test runs as root and
// skips otherwise).
//
// Item 12, the access matrix: allowed uid / denied uid; allowed gid as the
// primary group and as a supplementary group; an accept callback's veto;
// and a client that demands the server's uid facing a squatter (a server
// started by another uid on the port name). Reports wrong decisions (0).
//
// Item 13, identity from the kernel: a raw client running as uid 65534
// fills every byte it may write (section header, padding, free ring slots,
// its data half, its payload) with a forged identity "uid=0 gid=0 pid=1"
// and calls Peer; the handler's context must show its real uid, gid and
// pid (SO_PEERCRED).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/reliability_util.h"

namespace lpc::reliability {
namespace {

// The peer binary copied where other users can run it.
std::string PublicPeer(const std::string& dir) {
  const std::string bin = dir + "/peer";
  std::error_code ec;
  std::filesystem::copy_file(PeerBinary(), bin,
                             std::filesystem::copy_options::overwrite_existing, ec);
  ::chmod(bin.c_str(), 0755);
  return bin;
}

std::vector<std::string> AsUser(uint32_t uid, uint32_t gid,
                                const std::string& groups,
                                std::vector<std::string> argv) {
  std::vector<std::string> v = {"/usr/bin/setpriv", absl::StrCat("--reuid=", uid),
                                absl::StrCat("--regid=", gid)};
  if (groups.empty()) {
    v.push_back("--clear-groups");
  } else {
    v.push_back(absl::StrCat("--groups=", groups));
  }
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

// Status code of one Echo call made by `argv` (a peer "call").
int CallCode(const std::vector<std::string>& argv) {
  ChildProcess c(argv);
  const std::string line = c.ReadLine();
  c.Wait();
  if (line.empty()) return -1;
  return std::atoi(line.c_str());
}

TEST(AclTest, AccessMatrixAsRealUsers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other users";
  TempDir dir;
  // Shared by every user of the test, sticky as /tmp (a runtime dir that
  // others may write without it is refused).
  ::chmod(dir.path().c_str(), 01777);
  const std::string peer = PublicPeer(dir.path());
  constexpr int kOk = 0;
  constexpr int kDenied = static_cast<int>(absl::StatusCode::kPermissionDenied);
  int decisions = 0, wrong = 0;
  std::string detail;
  auto expect = [&](const std::string& what, int got, int want) {
    ++decisions;
    if (got != want) {
      ++wrong;
      absl::StrAppend(&detail, " ", what, ": got ", got, " want ", want, ";");
    }
  };

  {
    TestServerOptions o;
    o.dir = dir.path();
    o.local_name = "uids";
    o.local.allowed_uids = {1000};
    TestServer s(o);
    ASSERT_TRUE(s.start_status().ok());
    expect("allowed uid", CallCode(AsUser(1000, 1000, "", {peer, "call", dir.path(), "uids"})), kOk);
    expect("denied uid", CallCode(AsUser(1001, 1001, "", {peer, "call", dir.path(), "uids"})), kDenied);
    expect("root not special", CallCode({peer, "call", dir.path(), "uids"}), kDenied);
  }
  {
    TestServerOptions o;
    o.dir = dir.path();
    o.local_name = "gids";
    o.local.allowed_gids = {2000};
    TestServer s(o);
    ASSERT_TRUE(s.start_status().ok());
    expect("primary gid", CallCode(AsUser(1001, 2000, "", {peer, "call", dir.path(), "gids"})), kOk);
    expect("supplementary gid",
           CallCode(AsUser(1001, 3000, "2000", {peer, "call", dir.path(), "gids"})), kOk);
    expect("no matching gid",
           CallCode(AsUser(1001, 3000, "3001,3002", {peer, "call", dir.path(), "gids"})),
           kDenied);
  }
  {
    TestServerOptions o;
    o.dir = dir.path();
    o.local_name = "veto";
    o.local.accept_callback = [](const local::PeerCredentials& c) {
      return c.uid != 1002;
    };
    TestServer s(o);
    ASSERT_TRUE(s.start_status().ok());
    expect("callback veto", CallCode(AsUser(1002, 1002, "", {peer, "call", dir.path(), "veto"})), kDenied);
    expect("callback admits", CallCode(AsUser(1003, 1003, "", {peer, "call", dir.path(), "veto"})), kOk);
  }
  {
    // A squatter: uid 1005 serves port "sq" before the real (root) server.
    ChildProcess squatter(AsUser(1005, 1005, "", {peer, "server", dir.path(), "sq", "0"}));
    ASSERT_EQ(squatter.ReadLine(), "READY");
    expect("squatter refused by expected_server_uid=0",
           CallCode({peer, "call", dir.path(), "sq", "0"}), kDenied);
    expect("expected_server_uid matches the squatter",
           CallCode({peer, "call", dir.path(), "sq", "1005"}), kOk);
    // The real server on another name is accepted with the same demand.
    TestServerOptions o;
    o.dir = dir.path();
    o.local_name = "real";
    TestServer s(o);
    ASSERT_TRUE(s.start_status().ok());
    expect("real server accepted by expected_server_uid=0",
           CallCode(AsUser(1006, 1006, "", {peer, "call", dir.path(), "real", "0"})), kOk);
  }
  Report("acl", absl::StrFormat("decisions=%d wrong=%d%s", decisions, wrong, detail));
  EXPECT_EQ(wrong, 0) << detail;
}

TEST(IdentityTest, ForgedIdentityBytesChangeNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other users";
  TempDir dir;
  const std::string peer = PublicPeer(dir.path());
  TestServerOptions o;
  o.dir = dir.path();
  TestServer s(o);
  ASSERT_TRUE(s.start_status().ok());
  int checks = 0, wrong = 0;
  std::string seen;
  for (auto [uid, gid] : {std::pair<uint32_t, uint32_t>{65534, 65534},
                          std::pair<uint32_t, uint32_t>{1234, 5678},
                          std::pair<uint32_t, uint32_t>{0, 0}}) {
    std::vector<std::string> argv = {peer, "forge", dir.path(), "p"};
    if (uid != 0) argv = AsUser(uid, gid, "", argv);
    ChildProcess c(argv);
    const std::string line = c.ReadLine();
    // setpriv execs the peer, so the child's pid is the client's pid.
    const std::string want = absl::StrCat("uid=", uid, " gid=", gid,
                                          " pid=", c.pid(), " transport=local");
    c.Wait();
    ++checks;
    if (line != want) {
      ++wrong;
      absl::StrAppend(&seen, " got \"", line, "\" want \"", want, "\";");
    }
  }
  Report("identity", absl::StrFormat("forging_clients=%d wrong_identities=%d "
                                     "cut_offs=%llu%s",
                                     checks, wrong,
                                     static_cast<unsigned long long>(
                                         s.local()->stats().clients_cut_off),
                                     seen));
  EXPECT_EQ(wrong, 0) << seen;
}

}  // namespace
}  // namespace lpc::reliability
