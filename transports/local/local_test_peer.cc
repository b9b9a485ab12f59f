// A peer process for the local transport's cross-process tests.
//
//   local_test_peer server <dir> <name> [max_message_kib] [spin_us] [cpu]
//       serves lpc.test.Raw on port <name>, prints "READY" and runs until
//       SIGTERM (graceful shutdown), its parent's death, or 60 seconds.
//       spin_us sets LocalPortOptions::spin (-1 = InfiniteDuration; absent
//       = the default); cpu pins the whole server process to that CPU.
//   local_test_peer call <dir> <name>
//       makes one Echo call and prints the status code.
//   local_test_peer block <dir> <name>
//       prints "CALLING" and makes one Block call (the test kills it).
//   local_test_peer hostile <dir> <name> <iterations>
//       makes calls while scribbling random bytes over its own section.
//   local_test_peer stream <dir> <name>
//       opens a Hold stream of lpc.test.Streams (stream_test_service.h),
//       writes one message, prints "STREAMING" and waits (the test kills
//       it).
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "runtime/server.h"
#include "runtime/testing_service.h"
#include "transports/local/stream_test_service.h"
#include "transports/local/local_transport.h"

namespace {

using lpc::local::CreateLocalChannel;
using lpc::local::LocalChannelOptions;
using lpc::local::LocalPortOptions;
using lpc::local::MakeLocalServerTransport;
using lpc::testing::RawDescriptor;

int Server(const std::string& dir, const std::string& name, long max_kib,
           const char* spin_us, const char* cpu) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (cpu != nullptr && std::atoi(cpu) >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::atoi(cpu), &set);
    ::sched_setaffinity(0, sizeof(set), &set);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  lpc::ServerOptions so;
  if (max_kib > 0) so.max_message_size = size_t(max_kib) << 10;
  so.shutdown_grace = absl::Milliseconds(200);
  lpc::Server server(so);
  lpc::testing::RawService service;
  if (!server.RegisterService(&service).ok()) return 2;
  LocalPortOptions po;
  po.runtime_dir = dir;
  po.socket_mode = 0666;
  if (spin_us != nullptr) {
    const long us = std::atol(spin_us);
    po.spin = us < 0 ? absl::InfiniteDuration() : absl::Microseconds(us);
  }
  auto t = MakeLocalServerTransport(name, po);
  if (!t.ok() || !server.AddTransport(std::move(*t)).ok()) return 3;
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 4;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  struct timespec limit = {60, 0};
  sigtimedwait(&set, nullptr, &limit);
  server.Shutdown();
  return 0;
}

int Call(const std::string& dir, const std::string& name, bool block) {
  LocalChannelOptions lo;
  lo.runtime_dir = dir;
  auto ch = CreateLocalChannel(name, {}, lo);
  if (!ch.ok()) return 5;
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(block ? 30 : 5));
  if (block) {
    std::printf("CALLING\n");
    std::fflush(stdout);
  }
  auto r = (*ch)->Call(RawDescriptor(), RawDescriptor().methods[block ? 2 : 0],
                       &ctx, "hello");
  std::printf("%d\n", static_cast<int>(r.status().code()));
  std::fflush(stdout);
  return 0;
}

// Finds this process's mapping of its connection section.
bool FindSection(char** base, size_t* size) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("memfd:lpc-section") == std::string::npos) continue;
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    *base = reinterpret_cast<char*>(lo);
    *size = hi - lo;
    return true;
  }
  return false;
}

int Hostile(const std::string& dir, const std::string& name, int iterations) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  LocalChannelOptions lo;
  lo.runtime_dir = dir;
  auto ch = CreateLocalChannel(name, {}, lo);
  if (!ch.ok()) return 5;
  std::mt19937_64 rng(99);
  int ok = 0;
  for (int i = 0; i < iterations; ++i) {
    char* base = nullptr;
    size_t size = 0;
    if (i > 0 && FindSection(&base, &size)) {
      // Mostly the control words and rings (the first 40 KiB), some of the
      // data area.
      for (int k = 0; k < 16; ++k) {
        const size_t span = (k % 4 == 0) ? size : std::min<size_t>(size, 40960);
        const size_t off = (rng() % (span / 8)) * 8;
        const uint64_t v = (k % 2) ? rng() : rng() % 300;
        std::memcpy(base + off, &v, 8);
      }
    }
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Milliseconds(200));
    std::string payload(rng() % 5000, 'h');
    auto r = (*ch)->Call(RawDescriptor(), RawDescriptor().methods[0], &ctx,
                         payload);
    ok += r.ok();
  }
  std::printf("%d\n", ok);
  return 0;
}

int Stream(const std::string& dir, const std::string& name) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  LocalChannelOptions lo;
  lo.runtime_dir = dir;
  auto ch = CreateLocalChannel(name, {}, lo);
  if (!ch.ok()) return 5;
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(60));
  const lpc::InterfaceDescriptor& d = lpc::testing::StreamsDescriptor();
  std::shared_ptr<lpc::ClientStream> s =
      (*ch)->OpenStream(d, d.methods[4], &ctx);
  s->Write("first", [](absl::Status) {});
  std::printf("STREAMING\n");
  std::fflush(stdout);
  absl::SleepFor(absl::Seconds(60));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 1;
  const std::string mode = argv[1], dir = argv[2], name = argv[3];
  if (mode == "server") {
    return Server(dir, name, argc > 4 ? std::atol(argv[4]) : 0,
                  argc > 5 ? argv[5] : nullptr, argc > 6 ? argv[6] : nullptr);
  }
  if (mode == "call") return Call(dir, name, false);
  if (mode == "block") return Call(dir, name, true);
  if (mode == "stream") return Stream(dir, name);
  if (mode == "hostile") return Hostile(dir, name, argc > 4 ? std::atoi(argv[4]) : 100);
  return 1;
}
