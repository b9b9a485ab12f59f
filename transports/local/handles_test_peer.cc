// The server process of handles_test: serves lpc.test.Handles
// (handles_test_service.h) on a local port.
//
//   handles_test_peer <dir> <name>
//       prints "READY <pid>" and serves until SIGTERM, its parent's death,
//       or 300 seconds. Stats replies with the transport's handle counters.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/server.h"
#include "transports/local/handles_test_service.h"
#include "transports/local/local_transport.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: handles_test_peer <dir> <name>\n");
    return 1;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  lpc::ServerOptions so;
  so.shutdown_grace = absl::Milliseconds(200);
  lpc::Server server(so);
  lpc::testing::HandlesService service;
  if (!server.RegisterService(&service).ok()) return 2;
  lpc::local::LocalPortOptions po;
  po.runtime_dir = argv[1];
  po.socket_mode = 0600;
  po.stashed_fd_timeout = absl::Milliseconds(500);
  auto t = lpc::local::MakeLocalServerTransport(argv[2], po);
  if (!t.ok()) return 3;
  lpc::local::LocalServerTransport* local = t->get();
  service.set_stats([local] {
    const lpc::local::LocalServerStats s = local->stats();
    return absl::StrCat(
        "handles_received=", s.handles_received, "\nhandles_sent=",
        s.handles_sent, "\ntoo_many=", s.handle_errors_too_many,
        "\nunreferenced=", s.handle_errors_unreferenced,
        "\nmissing=", s.handle_errors_missing, "\ncut_off=",
        s.clients_cut_off, "\nstashed_fds=", s.stashed_fds, "\n");
  });
  if (!server.AddTransport(std::move(*t)).ok()) return 3;
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 4;
  }
  std::printf("READY %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  struct timespec limit = {300, 0};
  sigtimedwait(&set, nullptr, &limit);
  server.Shutdown();
  return 0;
}
