// Network namespaces and veth pairs for replica_test.
#include "tests/replicas/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace lpc::replicas {
namespace {

constexpr int kPort = 50051;

// Sets up the replica's side once this process has made the veth pair, then
// becomes the server. $1 ip, $2 the replica's IP address, $3 the server,
// $4 its name, $5 its listening address.
constexpr char kReplicaScript[] =
    "echo netns\n"
    "read go || exit 1\n"
    "\"$1\" link set lo up && \"$1\" addr add \"$2/24\" dev eth0 &&\n"
    "  \"$1\" link set eth0 up || exit 1\n"
    "exec \"$3\" \"$5\" \"$4\"\n";

std::string ReplicaIp(int index) { return absl::StrCat("198.18.", index, ".2"); }

}  // namespace

int EnterOwnNamespaces() {
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) return errno;
  // New mounts stay in this namespace, whatever the host's / shares.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return errno;
  }
  return 0;
}

absl::Status OverrideHostsFile(const std::string& contents,
                               const std::string& dir) {
  // Refuse unless every mount is private: a bind mount must never reach
  // the host's /etc/hosts.
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    if (line.find(" shared:") != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat("a mount propagates to other namespaces: ", line));
    }
  }
  std::string path = absl::StrCat(dir, "/hosts");
  {
    std::ofstream out(path, std::ios::trunc);
    out << contents;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  if (mount(path.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
    return absl::InternalError(
        absl::StrCat("bind mount over /etc/hosts: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status AllThreadsInOneNetworkNamespace() {
  auto namespace_of = [](const std::string& path) {
    char buf[64];
    ssize_t n = readlink(path.c_str(), buf, sizeof buf);
    return n <= 0 ? std::string() : std::string(buf, n);
  };
  std::string mine = namespace_of("/proc/self/ns/net");
  if (mine.empty()) return absl::InternalError("cannot read /proc/self/ns/net");
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return absl::InternalError("cannot list /proc/self/task");
  absl::Status result;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::string theirs =
        namespace_of(absl::StrCat("/proc/self/task/", entry->d_name, "/ns/net"));
    if (!theirs.empty() && theirs != mine) {
      result = absl::FailedPreconditionError(absl::StrCat(
          "thread ", entry->d_name, " is in ", theirs, ", not in ", mine));
      break;
    }
  }
  closedir(dir);
  return result;
}

std::string FindIpBinary() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

absl::Status RunCommand(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  std::string command = absl::StrJoin(args, " ");
  if (rc != 0) {
    return absl::InternalError(absl::StrCat(command, ": ", strerror(rc)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(command, " failed (wait status ",
                                            status, ")"));
  }
  return absl::OkStatus();
}

NetnsReplica::NetnsReplica(int index, std::string ip_binary,
                           std::string server_binary)
    : index_(index),
      ip_(std::move(ip_binary)),
      server_(std::move(server_binary)),
      name_(absl::StrCat("r", index)),
      host_link_(absl::StrCat("lpc-r", index)) {}

NetnsReplica::~NetnsReplica() { Stop(); }

std::string NetnsReplica::address() const {
  return absl::StrCat(ReplicaIp(index_), ":", kPort);
}

absl::Status NetnsReplica::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("already running");
  // A dead replica's namespace, and with it this side's link, is torn down
  // by the kernel once nothing holds it; its TCP connections may hold it a
  // while (trying to send a FIN over a link that is down). The link is in
  // this test's own namespace: delete it (both ends go).
  if (if_nametoindex(host_link_.c_str()) != 0) {
    RunCommand({ip_, "link", "del", host_link_}).IgnoreError();
  }
  absl::Time limit = absl::Now() + absl::Seconds(10);
  while (if_nametoindex(host_link_.c_str()) != 0) {
    if (absl::Now() > limit) {
      return absl::DeadlineExceededError(
          absl::StrCat(host_link_, " still exists 10 s after its replica died"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return absl::InternalError("pipe failed");
  }
  // Everything the child needs is built before fork: after it, the child
  // makes only async-signal-safe calls.
  std::vector<std::string> args = {"/bin/sh", "-c", kReplicaScript, "sh",
                                   ip_, ReplicaIp(index_), server_, name_,
                                   address()};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(125);
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  pid_ = pid;
  to_child_ = in[1];
  from_child_ = out[0];

  std::string line;
  absl::Status s = ReadLine(absl::Seconds(10), &line);
  if (s.ok() && line != "netns") {
    s = absl::InternalError(absl::StrCat("unexpected line '", line, "'"));
  }
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(
        name_, " could not enter a network namespace of its own: ",
        s.message()));
  }
  std::string pid_text = absl::StrCat(pid_);
  std::string host_address = absl::StrCat("198.18.", index_, ".1/24");
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{ip_, "link", "add", host_link_, "type", "veth",
                                 "peer", "name", "eth0", "netns", pid_text},
        std::vector<std::string>{ip_, "addr", "add", host_address, "dev",
                                 host_link_},
        std::vector<std::string>{ip_, "link", "set", host_link_, "up"}}) {
    s = RunCommand(command);
    if (!s.ok()) return s;
  }
  if (write(to_child_, "go\n", 3) != 3) {
    return absl::InternalError(absl::StrCat(name_, " exited before its setup"));
  }
  s = ReadLine(absl::Seconds(30), &line);
  if (!s.ok()) return s;
  if (line.rfind("ready ", 0) != 0) {
    return absl::InternalError(
        absl::StrCat(name_, " did not start: '", line, "'"));
  }
  return absl::OkStatus();
}

absl::Status NetnsReplica::ReadLine(absl::Duration timeout, std::string* line) {
  line->clear();
  absl::Time limit = absl::Now() + timeout;
  while (true) {
    absl::Duration left = limit - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, " printed no line within ",
                       absl::FormatDuration(timeout)));
    }
    pollfd p{from_child_, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) return absl::InternalError("poll failed");
    if (n <= 0) continue;
    char c;
    ssize_t r = read(from_child_, &c, 1);
    if (r <= 0) {
      return absl::UnavailableError(
          absl::StrCat(name_, " exited (see its stderr above)"));
    }
    if (c == '\n') return absl::OkStatus();
    line->push_back(c);
  }
}

absl::Status NetnsReplica::Kill() {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  if (kill(pid_, SIGKILL) != 0) {
    return absl::InternalError(absl::StrCat("kill: ", strerror(errno)));
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  CloseFds();
  return absl::OkStatus();
}

absl::Status NetnsReplica::SetLinkUp(bool up) {
  return RunCommand({ip_, "link", "set", host_link_, up ? "up" : "down"});
}

void NetnsReplica::Stop() {
  if (to_child_ >= 0) {
    close(to_child_);
    to_child_ = -1;
  }
  if (pid_ > 0) {
    int status = 0;
    absl::Time limit = absl::Now() + absl::Seconds(5);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > limit) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    pid_ = -1;
  }
  CloseFds();
}

void NetnsReplica::CloseFds() {
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  to_child_ = -1;
  from_child_ = -1;
}

}  // namespace lpc::replicas
