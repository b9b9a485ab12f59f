// Network namespaces for replica_test: the test process moves into a
// namespace of its own, and each replica server runs in another one, linked
// to the test's by a veth pair. Only addresses of 198.18.0.0/15 are used,
// and every namespace belongs to a process, so the kernel removes it, with
// its veth pair, when that process exits, on every exit path.
//
//   replica i:  this side "lpc-r<i>" 198.18.<i>.1/24
//               the replica's side "eth0" 198.18.<i>.2/24, serving :50051
//
// Thread safety: a NetnsReplica is used by one thread.
#ifndef LPC_TESTS_REPLICAS_NETNS_H_
#define LPC_TESTS_REPLICAS_NETNS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lpc::replicas {

// Moves this process into a new network namespace, holding only a loopback
// device that is down, and a new mount namespace whose mounts do not
// propagate to the host's. Call it first in main, before any thread exists:
// unshare(2) moves only the calling thread. Returns 0 or the errno.
int EnterOwnNamespaces();

// Bind-mounts a file holding `contents` over /etc/hosts, in this process's
// own mount namespace only (FAILED_PRECONDITION when mounts here would
// propagate to another namespace). `dir` holds the file.
absl::Status OverrideHostsFile(const std::string& contents,
                               const std::string& dir);

// OK when every thread of this process is in the main thread's network
// namespace; otherwise names the first that is not. A thread that existed
// before EnterOwnNetworkNamespace stays in the old namespace, and the
// sockets it opens would reach the host's network.
absl::Status AllThreadsInOneNetworkNamespace();

// The path of iproute2's `ip`, or "" when it is not installed.
std::string FindIpBinary();

// Runs argv[0] (a path) with argv and waits for it; OK when it exits 0.
absl::Status RunCommand(const std::vector<std::string>& argv);

class NetnsReplica {
 public:
  // `index` < 256 picks the names and addresses above.
  NetnsReplica(int index, std::string ip_binary, std::string server_binary);
  NetnsReplica(const NetnsReplica&) = delete;
  NetnsReplica& operator=(const NetnsReplica&) = delete;
  // Stop().
  ~NetnsReplica();

  // Starts the replica in a fresh namespace and waits, at most 30 s, until
  // it serves. After Kill(), starts it again at the same address.
  absl::Status Start();
  // SIGKILL to the replica's pid, and reaps it.
  absl::Status Kill();
  // Sets this side's end of the veth pair down or up. Down, the replica is
  // cut off without its connections being closed, as when a link or a host
  // fails.
  absl::Status SetLinkUp(bool up);
  // Closes the replica's stdin (it then exits), waits up to 5 s, then
  // sends SIGKILL to its pid.
  void Stop();

  const std::string& name() const { return name_; }
  // "198.18.<i>.2:50051".
  std::string address() const;
  pid_t pid() const { return pid_; }

 private:
  // One line of the replica's stdout, without the newline.
  absl::Status ReadLine(absl::Duration timeout, std::string* line);
  void CloseFds();

  const int index_;
  const std::string ip_;
  const std::string server_;
  const std::string name_;
  const std::string host_link_;  // "lpc-r<i>".
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

}  // namespace lpc::replicas

#endif  // LPC_TESTS_REPLICAS_NETNS_H_
