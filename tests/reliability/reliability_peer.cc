// The reliability suite's peer process: servers to kill, clients to kill,
// and clients that run as other users or misbehave. Every mode exits by
// itself (parent death, or a time limit) so nothing outlives a test.
//
//   server <dir> <name> <grpc 0|1> [count_log_path|-] [max_connections]
//          [limits]
//       serves RelService on local port <name> (and gRPC on
//       unix:<dir>/g.sock); prints "READY"; runs until killed, SIGTERM or
//       120 s (2 hours in long mode). <limits>: comma-separated key=value
//       LocalPortOptions (request_bytes, request_bytes_per_conn,
//       handshake_ms, stash_ms, per_uid, stashed_fds) and nofile (the
//       RLIMIT_NOFILE the server runs under).
//   load <target> <dir> <channels> <calls_per_channel>
//       warms up fresh channels, prints "WARM", waits for <dir>/go, starts
//       that many Hold calls (60 s deadline), prints "SENT", then one "DONE <code> <monotonic_ns>" per completed
//       call and "END <completed>" (gives up after 30 s).
//   rawstep <dir> <name> <step>
//       a raw client that stops at <step> of a call and prints "AT" (the
//       test kills it there): hold_slot, half_record, published_no_wake,
//       in_handler, reply_writing.
//   soak <target> <dir> <calls> <seed>
//       mixed sync/async/oneway Echo calls of 0 B - 1 MiB, every reply
//       checked; prints "SOAK ok=N lost=N dup=N mismatch=N failed=N
//       oneway=N bytes=N".
//   call <dir> <name> [expected_server_uid]
//       one Echo call; prints "<code> <message>".
//   flip <pid> <fd> <offset> <length> <seconds>
//       maps /proc/<pid>/fd/<fd> shared and flips random bytes in
//       [offset, offset + length) at random times until killed or <seconds>.
//   forge <dir> <name>
//       a raw client that fills every byte it controls with a forged
//       identity (uid 0, pid 1) and then calls Peer; prints the reply.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/doorbell.h"
#include "transports/local/shared_word.h"

namespace lpc::reliability {
namespace {

void DieWithParent() { ::prctl(PR_SET_PDEATHSIG, SIGKILL); }

// Applies "key=value,..." to `o`; false on an unknown key.
bool ApplyLimits(const std::string& text, local::LocalPortOptions* o) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(at, end - at);
    at = end + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return false;
    const std::string key = item.substr(0, eq);
    const uint64_t v = std::strtoull(item.c_str() + eq + 1, nullptr, 10);
    if (key == "request_bytes") {
      o->max_request_bytes = v;
    } else if (key == "request_bytes_per_conn") {
      o->max_request_bytes_per_connection = v;
    } else if (key == "handshake_ms") {
      o->handshake_timeout = absl::Milliseconds(v);
    } else if (key == "stash_ms") {
      o->stashed_fd_timeout = absl::Milliseconds(v);
    } else if (key == "per_uid") {
      o->max_connections_per_uid = static_cast<uint32_t>(v);
    } else if (key == "stashed_fds") {
      o->max_stashed_fds = static_cast<uint32_t>(v);
    } else if (key == "nofile") {
      struct rlimit r = {v, v};
      if (::setrlimit(RLIMIT_NOFILE, &r) != 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

int Server(const std::string& dir, const std::string& name, bool grpc,
           const std::string& log_path, int max_connections,
           const std::string& limits) {
  DieWithParent();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int log_fd = -1;
  if (!log_path.empty() && log_path != "-") {
    log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                    0644);
    if (log_fd < 0) return 2;
  }
  TestServerOptions o;
  o.dir = dir;
  o.local_name = name;
  o.grpc = grpc;
  o.count_log_fd = log_fd;
  o.local.max_workers = 64;
  if (max_connections > 0) o.local.max_connections = max_connections;
  if (!ApplyLimits(limits, &o.local)) {
    std::fprintf(stderr, "server: bad limits '%s'\n", limits.c_str());
    return 2;
  }
  o.server.shutdown_grace = absl::Milliseconds(200);
  TestServer server(o);
  if (!server.start_status().ok()) {
    std::fprintf(stderr, "start: %s\n", server.start_status().ToString().c_str());
    return 3;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  // Long-mode tests keep one server for many minutes. SIGUSR1 asks for
  // the longest turns of the server's shared threads.
  const absl::Time end = absl::Now() + absl::Seconds(LongMode() ? 7200 : 120);
  for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
    const timespec limit = absl::ToTimespec(end - now);
    const int sig = sigtimedwait(&set, nullptr, &limit);
    if (sig == SIGUSR1) {
      const local::LocalServerStats st = server.local()->stats();
      std::printf("BLOCKED %lld %lld %lld\n",
                  static_cast<long long>(st.longest_io_turn_ns),
                  static_cast<long long>(st.longest_ring_read_ns),
                  static_cast<long long>(st.longest_reply_send_ns));
      std::fflush(stdout);
      continue;
    }
    if (sig == SIGTERM || (sig < 0 && errno == EAGAIN)) break;
  }
  return 0;
}

int Load(const std::string& target, const std::string& dir, int channels,
         int per_channel) {
  DieWithParent();
  std::vector<std::shared_ptr<Channel>> chs;
  for (int i = 0; i < channels; ++i) {
    auto ch = MakeChannel(target, dir);
    if (!ch.ok()) {
      std::fprintf(stderr, "load: channel: %s\n", ch.status().ToString().c_str());
      return 5;
    }
    chs.push_back(*ch);
  }
  // Warm up: connect and bind every channel before the calls that count.
  // A server under a sanitizer may take longer than gRPC's connect timeout to
  // answer many simultaneous connections, so UNAVAILABLE is retried for up
  // to a minute.
  const absl::Time warm_limit = absl::Now() + absl::Seconds(60);
  for (auto& ch : chs) {
    absl::StatusOr<std::string> warm = CallRel(*ch, EchoMethod(), "warm");
    while (absl::IsUnavailable(warm.status()) && absl::Now() < warm_limit) {
      absl::SleepFor(absl::Milliseconds(50));
      warm = CallRel(*ch, EchoMethod(), "warm");
    }
    if (!warm.ok()) {
      std::fprintf(stderr, "load: warm-up call: %s\n",
                   warm.status().ToString().c_str());
      return 6;
    }
  }
  // Every client warms up before any starts its Hold calls (they occupy
  // the server's workers): wait for the test's <dir>/go.
  std::printf("WARM\n");
  std::fflush(stdout);
  for (int i = 0; i < 30000 && ::access((dir + "/go").c_str(), F_OK) != 0; ++i) {
    ::usleep(1000);
  }
  const int total = channels * per_channel;
  std::vector<std::unique_ptr<CallContext>> ctxs(total);
  std::mutex mu;
  std::vector<std::string> lines;
  std::atomic<int> done{0};
  for (int i = 0; i < total; ++i) {
    ctxs[i] = std::make_unique<CallContext>();
    ctxs[i]->set_timeout(absl::Seconds(60));
    chs[i % channels]->StartCall(
        RelDescriptor(), HoldMethod(), ctxs[i].get(), absl::StrCat("h", i),
        [&](absl::StatusOr<std::string> r) {
          const int64_t now = MonoNs();
          std::lock_guard<std::mutex> lock(mu);
          lines.push_back(absl::StrCat("DONE ", static_cast<int>(r.status().code()),
                                       " ", now));
          done.fetch_add(1);
        });
  }
  std::printf("SENT\n");
  std::fflush(stdout);
  const absl::Time end = absl::Now() + absl::Seconds(30);
  size_t printed = 0;
  while (absl::Now() < end) {
    std::vector<std::string> out;
    {
      std::lock_guard<std::mutex> lock(mu);
      out.assign(lines.begin() + printed, lines.end());
      printed = lines.size();
    }
    for (auto& l : out) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
    if (static_cast<int>(printed) == total) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  std::printf("END %d\n", done.load());
  std::fflush(stdout);
  // The gRPC channels wait for unfinished calls on destruction; calls that
  // never finished are the test's "hung" figure, so exit without waiting.
  ::_exit(0);
}

void PrintAt() {
  std::printf("AT\n");
  std::fflush(stdout);
}

[[noreturn]] void WaitToBeKilled() {
  for (int i = 0; i < 6000; ++i) ::usleep(10000);
  ::_exit(0);
}

int RawStep(const std::string& dir, const std::string& name,
            const std::string& step) {
  DieWithParent();
  auto c = RawClient::Connect(dir + "/" + name);
  if (!c.ok()) return 5;
  absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
  if (!slot.ok()) return 6;
  const uint64_t id = (*c)->NextId();
  // A Hold call of 3 slots (header + 100 bytes of payload).
  const std::string payload(100, 'p');
  local::FrameHeader h = RequestHeader(id, *slot, HoldMethod().id,
                                       static_cast<uint32_t>(payload.size()));
  h.deadline_ns = local::MonotonicNowNs() + int64_t{30} * 1000000000;
  const std::string record = MakeRecord(h, payload);
  if (step == "hold_slot") {
    (*c)->WriteRaw(record);  // Written, never published.
  } else if (step == "half_record") {
    (*c)->WriteRaw(record.substr(0, record.size() / 2));
  } else if (step == "published_no_wake") {
    (*c)->WriteRaw(record);
    local::SharedStore<uint64_t>((*c)->control()->request.producer_index,
                                 local::SharedLoad(
                                     (*c)->control()->request.producer_index) +
                                     (record.size() + 63) / 64,
                                 std::memory_order_seq_cst);
  } else if (step == "in_handler") {
    (*c)->SendRaw(record);
  } else if (step == "reply_writing") {
    // Many large echoes whose replies it never reads: the server is
    // writing (or queueing) replies when it dies.
    const std::string big(200 << 10, 'r');
    for (int i = 0; i < 24; ++i) {
      local::OutgoingMessage m;
      m.type = local::MessageType::kRequest;
      m.message_id = (*c)->NextId();
      m.interface_slot = *slot;
      m.method_id = EchoMethod().id;
      m.deadline_ns = local::MonotonicNowNs() + int64_t{30} * 1000000000;
      m.payload = big;
      if (!(*c)->Send(m).ok()) break;
    }
  } else {
    return 7;
  }
  PrintAt();
  WaitToBeKilled();
}

// Deterministic payload of `n` bytes for call `k`.
std::string SoakPayload(uint64_t k, size_t n) {
  std::string s(n, '\0');
  uint64_t x = k * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(s.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return s;
}

int Soak(const std::string& target, const std::string& dir, int64_t calls,
         uint64_t seed) {
  DieWithParent();
  auto ch = MakeChannel(target, dir);
  if (!ch.ok()) return 5;
  std::mt19937_64 rng(seed);
  std::atomic<int64_t> ok{0}, mismatch{0}, failed{0}, dup{0}, completions{0};
  std::atomic<int64_t> bytes{0};
  int64_t oneway = 0, started_async = 0;
  std::vector<std::atomic<uint8_t>> seen(calls);
  for (auto& s : seen) s.store(0);
  auto check = [&](int64_t k, const std::string& expect,
                   const absl::StatusOr<std::string>& r) {
    if (seen[k].fetch_add(1) != 0) {
      dup.fetch_add(1);
      return;
    }
    completions.fetch_add(1);
    if (!r.ok()) {
      failed.fetch_add(1);
      std::fprintf(stderr, "soak call %lld: %s\n", static_cast<long long>(k),
                   r.status().ToString().c_str());
    } else if (*r != expect) {
      mismatch.fetch_add(1);
    } else {
      ok.fetch_add(1);
      bytes.fetch_add(static_cast<int64_t>(expect.size()) * 2);
    }
  };
  std::vector<std::unique_ptr<CallContext>> async_ctx;
  std::atomic<int> in_flight{0};
  for (int64_t k = 0; k < calls; ++k) {
    const uint64_t r = rng();
    // Sizes: mostly small, some data-area sized, a few up to 1 MiB (memfd).
    size_t size;
    switch (r % 16) {
      case 0: size = 0; break;
      case 1: size = (r >> 8) % (1 << 20) + 1; break;
      case 2: case 3: size = (r >> 8) % (64 << 10); break;
      default: size = (r >> 8) % 1000; break;
    }
    std::string payload = SoakPayload(k + (seed << 32), size);
    const int kind = static_cast<int>((r >> 40) % 8);
    if (kind == 0) {
      CallContext ctx;
      ctx.set_timeout(absl::Seconds(30));
      absl::Status s =
          (*ch)->SendOneway(RelDescriptor(), NoteMethod(), &ctx, payload);
      ++oneway;
      seen[k].store(1);
      completions.fetch_add(1);
      s.ok() ? ok.fetch_add(1) : failed.fetch_add(1);
    } else if (kind <= 3) {
      // Async, at most 32 in flight.
      for (int i = 0; i < 30000 && in_flight.load() >= 32; ++i) ::usleep(100);
      in_flight.fetch_add(1);
      ++started_async;
      async_ctx.push_back(std::make_unique<CallContext>());
      async_ctx.back()->set_timeout(absl::Seconds(30));
      std::string expect = payload;
      (*ch)->StartCall(RelDescriptor(), EchoMethod(), async_ctx.back().get(),
                       std::move(payload),
                       [&, k, expect = std::move(expect)](
                           absl::StatusOr<std::string> result) {
                         check(k, expect, result);
                         in_flight.fetch_sub(1);
                       });
    } else {
      absl::StatusOr<std::string> result =
          CallRel(**ch, EchoMethod(), payload, absl::Seconds(30));
      check(k, payload, result);
    }
  }
  for (int i = 0; i < 60000 && in_flight.load() > 0; ++i) ::usleep(1000);
  const int64_t lost = calls - completions.load();
  std::printf("SOAK ok=%lld lost=%lld dup=%lld mismatch=%lld failed=%lld "
              "oneway=%lld bytes=%lld\n",
              static_cast<long long>(ok.load()), static_cast<long long>(lost),
              static_cast<long long>(dup.load()),
              static_cast<long long>(mismatch.load()),
              static_cast<long long>(failed.load()),
              static_cast<long long>(oneway),
              static_cast<long long>(bytes.load()));
  std::fflush(stdout);
  ::_exit(0);
}

int CallOnce(const std::string& dir, const std::string& name,
             const char* expected_uid) {
  local::LocalChannelOptions lo;
  if (expected_uid != nullptr) lo.expected_server_uid = std::atoi(expected_uid);
  auto ch = MakeChannel("local:" + name, dir, {}, lo);
  if (!ch.ok()) return 5;
  absl::StatusOr<std::string> r = CallRel(**ch, EchoMethod(), "hi");
  std::printf("%d %s\n", static_cast<int>(r.status().code()),
              std::string(r.status().message()).c_str());
  std::fflush(stdout);
  return 0;
}

int Forge(const std::string& dir, const std::string& name) {
  DieWithParent();
  auto c = RawClient::Connect(dir + "/" + name);
  if (!c.ok()) return 5;
  absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
  if (!slot.ok()) return 6;
  const std::string forged = "uid=0 gid=0 pid=1 transport=local";
  // Every byte of the section a client may write without breaking the
  // protocol: the header (written by the server, read once by the client),
  // the padding of the control words, the unused ring slots and both data
  // halves, all filled with a forged identity (uid 0, pid 1).
  const local::SectionLayout& l = (*c)->layout();
  std::byte* base = (*c)->base();
  auto fill = [&](uint64_t off, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      base[off + i] = static_cast<std::byte>(forged[i % forged.size()]);
    }
  };
  fill(0, sizeof(local::SectionHeader));
  local::SectionControl* ctl = (*c)->control();
  fill(reinterpret_cast<std::byte*>(&ctl->request.pad0) - base,
       sizeof(ctl->request.pad0));
  fill(reinterpret_cast<std::byte*>(&ctl->request.pad1) - base,
       sizeof(ctl->request.pad1));
  fill(reinterpret_cast<std::byte*>(&ctl->client.pad) - base,
       sizeof(ctl->client.pad));
  fill(l.c2s_data_offset, l.geometry.c2s_data_bytes);
  // The request itself carries the forged identity as its payload, in the
  // reserved fields' neighbourhood and the rest of the ring.
  const uint64_t head =
      local::SharedLoad(ctl->request.producer_index) % l.geometry.request_slots;
  for (uint64_t s = head + 2; s < l.geometry.request_slots; ++s) {
    fill(l.request_ring_offset + s * 64, 64);
  }
  absl::StatusOr<std::string> r =
      (*c)->Call(*slot, PeerMethod().id, forged, absl::Seconds(5));
  std::printf("%s\n", r.ok() ? r->c_str() : r.status().ToString().c_str());
  std::fflush(stdout);
  return 0;
}

int Flip(int pid, int fd, uint64_t offset, uint64_t length, int seconds) {
  DieWithParent();
  const std::string path = absl::StrCat("/proc/", pid, "/fd/", fd);
  int f = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (f < 0) return 5;
  struct stat st;
  if (::fstat(f, &st) != 0 || offset + length > static_cast<uint64_t>(st.st_size)) {
    return 6;
  }
  void* p = ::mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
  if (p == MAP_FAILED) return 7;
  auto* base = static_cast<volatile uint8_t*>(p) + offset;
  std::printf("FLIPPING\n");
  std::fflush(stdout);
  std::mt19937_64 rng(pid);
  const int64_t end = MonoNs() + int64_t{seconds} * 1000000000;
  for (uint64_t i = 0; MonoNs() < end; ++i) {
    const uint64_t r = rng();
    const uint64_t at = r % length;
    base[at] = base[at] ^ static_cast<uint8_t>(1u << ((r >> 40) & 7));
    if ((i & 15) == 0) ::usleep((r >> 48) % 50);
  }
  return 0;
}

}  // namespace
}  // namespace lpc::reliability

int main(int argc, char** argv) {
  using namespace lpc::reliability;
  if (argc < 2) return 1;
  const std::string mode = argv[1];
  if (mode == "server" && argc >= 5) {
    return Server(argv[2], argv[3], std::atoi(argv[4]) != 0,
                  argc > 5 ? argv[5] : "", argc > 6 ? std::atoi(argv[6]) : 0,
                  argc > 7 ? argv[7] : "");
  }
  if (mode == "load" && argc == 6) {
    return Load(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  }
  if (mode == "rawstep" && argc == 5) return RawStep(argv[2], argv[3], argv[4]);
  if (mode == "soak" && argc == 6) {
    return Soak(argv[2], argv[3], std::atoll(argv[4]), std::atoll(argv[5]));
  }
  if (mode == "call" && argc >= 4) {
    return CallOnce(argv[2], argv[3], argc > 4 ? argv[4] : nullptr);
  }
  if (mode == "forge" && argc == 4) return Forge(argv[2], argv[3]);
  if (mode == "flip" && argc == 7) {
    return Flip(std::atoi(argv[2]), std::atoi(argv[3]), std::atoll(argv[4]),
                std::atoll(argv[5]), std::atoi(argv[6]));
  }
  return 1;
}
