// ServerProcess: a server a test starts as a child process.
//
// The child's standard output is read until its first line, which must
// start with "ready " (lpc's example and test servers print their targets
// that way); its standard input is a pipe whose end of file tells it to
// shut down. The destructor closes that pipe, waits up to 10 s, then sends
// SIGKILL to the child's pid — only ever the process this object started.
#ifndef LPC_TESTING_SERVER_PROCESS_H_
#define LPC_TESTING_SERVER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace lpc::testing {

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Stop(); }

  // Spawns argv[0] (searched in PATH) and waits, at most 30 s, for its
  // "ready" line.
  absl::Status Start(std::vector<std::string> args) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return absl::InternalError("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(),
                          environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      close(out[0]);
      pid_ = -1;
      return absl::InternalError(absl::StrCat("spawn ", args[0], ": ", strerror(rc)));
    }
    std::string line;
    absl::Time limit = absl::Now() + absl::Seconds(30);
    while (line.find('\n') == std::string::npos && absl::Now() < limit) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, n);
    }
    close(out[0]);
    if (line.rfind("ready ", 0) != 0) {
      return absl::UnavailableError(
          absl::StrCat(args[0], " did not start: '", line, "'"));
    }
    ready_line_ = line.substr(0, line.find('\n'));
    return absl::OkStatus();
  }

  // Closes the child's stdin, waits up to 10 s, then kills it.
  void Stop() {
    if (stdin_ >= 0) {
      close(stdin_);
      stdin_ = -1;
    }
    if (pid_ <= 0) return;
    int status = 0;
    absl::Time limit = absl::Now() + absl::Seconds(10);
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

  // Kills the child with SIGKILL at once and reaps it.
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (stdin_ >= 0) {
      close(stdin_);
      stdin_ = -1;
    }
  }

  // The child's pid while it runs, else -1.
  pid_t pid() const { return pid_; }

  // "ready <target> [<target>...]", without the newline.
  const std::string& ready_line() const { return ready_line_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string ready_line_;
};

}  // namespace lpc::testing

#endif  // LPC_TESTING_SERVER_PROCESS_H_
