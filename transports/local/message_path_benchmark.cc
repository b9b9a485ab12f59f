// The local transport's zero-copy message path, measured between two
// processes (docs/local-transport.md, "Buffers" and "Payload modes"):
//
//   message_path_benchmark [--rounds=N] [--cpus=C,S] [--only=ROW]
//
// (--only: echo1, echo16, frame or memcpy runs that row alone, so that a
// `perf stat` of the process tree counts one kind of call.)
// forks a server (pinned to CPU S; the client to C, default 0,1) and
// prints, per row, the p10/p50/p90 of the per-call time in us:
//   - echo/<bytes>: CallWith of a message of that many bytes that the
//     handler echoes through its ReplySink (the message path: the request
//     writes itself into the data area or a payload memfd, the reply
//     likewise); 1 MiB and 16 MiB;
//   - frame/16MiB: a 16 MiB buffer from the channel (shared, where the
//     channel makes one), filled by the
//     client, sent beside the request, read in place and checksummed by
//     the handler, which answers 8 bytes; with the fill and the checksum
//     (measured by the handler) as rows of their own, and "rest" = round
//     trip - fill - checksum, per call;
//   - memcpy/16MiB and memcpy/1MiB: one copy between two warm buffers.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "runtime/buffer.h"
#include "runtime/message.h"
#include "runtime/server.h"
#include "transports/local/local_transport.h"

namespace {

constexpr lpc::MethodDescriptor kMethods[] = {{"Echo", 1, false},
                                              {"Frame", 2, false}};

const lpc::InterfaceDescriptor& Descriptor() {
  static const lpc::InterfaceDescriptor d{
      "lpc.bench.MessagePath", "9a7b5c3d-1e2f-4a6b-8c0d-2e4f6a8b0c1d", {1, 0},
      kMethods};
  return d;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint64_t Checksum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    sum += w;
  }
  return sum;
}

// Bytes of a pattern, written without a string.
class FillWriter final : public lpc::MessageWriter {
 public:
  explicit FillWriter(size_t n) : n_(n) {}
  size_t size() const override { return n_; }
  void WriteTo(uint8_t* dst) const override { std::memset(dst, 0x5a, n_); }

 private:
  size_t n_;
};

// A message whose only field is the buffer (field 1).
class FrameWriter final : public lpc::MessageWriter {
 public:
  explicit FrameWriter(lpc::Buffer* b) {
    field_.field_number = 1;
    field_.buffer = b;
  }
  size_t size() const override { return 0; }
  void WriteTo(uint8_t*) const override {}
  const lpc::BufferField* buffer() const override { return &field_; }

 private:
  lpc::BufferField field_;
};

class Service final : public lpc::Service {
 public:
  const lpc::InterfaceDescriptor& descriptor() const override {
    return Descriptor();
  }
  // The string path (a server that does not dispatch with the zero-copy
  // API): the same answers, the buffer read from the bytes.
  absl::Status Dispatch(uint32_t id, lpc::CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    lpc::ReceivedMessage m(request, nullptr);
    if (id == 2 && request.size() > 1 && request[0] == 0x0a) {
      size_t pos = 1;
      uint64_t len = 0;
      for (int shift = 0; pos < request.size() && shift < 64; shift += 7) {
        const uint8_t b = static_cast<uint8_t>(request[pos++]);
        len |= uint64_t{b & 0x7fu} << shift;
        if ((b & 0x80) == 0) break;
      }
      if (len > request.size() - pos) return absl::InvalidArgumentError("len");
      m.Attach(1, lpc::internal::BufferAccess::MakeView(
                      nullptr,
                      reinterpret_cast<const uint8_t*>(request.data() + pos),
                      len));
    }
    lpc::StringReplySink sink(response);
    return DispatchWith(id, ctx, m, sink);
  }
  absl::Status DispatchWith(uint32_t id, lpc::CallContext&,
                            lpc::ReceivedMessage& request,
                            lpc::ReplySink& reply) override {
    if (id == 1) return reply.Write(lpc::BytesWriter(request.bytes()));
    if (!request.attached().has_value()) {
      return absl::InvalidArgumentError("no buffer");
    }
    const lpc::BufferView& v = request.attached()->view;
    const int64_t t0 = NowNs();
    uint64_t out[2] = {Checksum(v.data(), v.size()), 0};
    out[1] = static_cast<uint64_t>(NowNs() - t0);
    return reply.Write(lpc::BytesWriter(std::string_view(
        reinterpret_cast<const char*>(out), sizeof(out))));
  }
};

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof(set), &set);
}

void Print(const char* row, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  std::printf("%-16s p10 %9.1f  p50 %9.1f  p90 %9.1f us  (n=%zu)\n", row,
              at(0.1), at(0.5), at(0.9), us.size());
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 40;
  int ccpu = 0, scpu = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--rounds=", 0) == 0) rounds = std::atoi(a.c_str() + 9);
    if (a.rfind("--only=", 0) == 0) only = a.substr(7);
    if (a.rfind("--cpus=", 0) == 0) {
      std::vector<std::string> p = absl::StrSplit(a.substr(7), ',');
      if (p.size() == 2) {
        ccpu = std::atoi(p[0].c_str());
        scpu = std::atoi(p[1].c_str());
      }
    }
  }
  char tmpl[] = "/tmp/lpc-mpb-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  int ready[2], stop[2];
  if (::pipe(ready) != 0 || ::pipe(stop) != 0) return 1;
  const pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    Pin(scpu);
    Service service;
    lpc::Server server;
    lpc::local::LocalPortOptions po;
    po.runtime_dir = dir;
    auto t = lpc::local::MakeLocalServerTransport("mpb", po);
    if (!t.ok() || !server.RegisterService(&service).ok() ||
        !server.AddTransport(std::move(*t)).ok() || !server.Start().ok()) {
      _exit(2);
    }
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) _exit(3);
    ::close(stop[1]);
    // Until the parent closes its end (or dies): then exit normally, so
    // that tools that report at exit (valgrind) see this process too.
    while (::read(stop[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  char c;
  if (::read(ready[0], &c, 1) != 1) return 1;
  Pin(ccpu);
  lpc::local::LocalChannelOptions lo;
  lo.runtime_dir = dir;
  auto ch = lpc::local::CreateLocalChannel("mpb", lpc::ChannelOptions{}, lo);
  if (!ch.ok()) return 1;
  lpc::Channel& channel = **ch;
  const auto call = [&](const lpc::MethodDescriptor& m,
                        const lpc::MessageWriter& w, std::string* out) {
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Seconds(30));
    return channel.CallWith(Descriptor(), m, &ctx, w,
                            [&](lpc::ReceivedMessage& r) {
                              if (out != nullptr) out->assign(r.bytes());
                              return absl::OkStatus();
                            });
  };
  const auto run = [&](const char* row) { return only.empty() || only == row; };
  for (size_t bytes : {size_t{1} << 20, size_t{16} << 20}) {
    if (!run(bytes == (1u << 20) ? "echo1" : "echo16")) continue;
    std::vector<double> us;
    const FillWriter w(bytes);
    for (int i = 0; i < rounds + 3; ++i) {
      const int64_t t0 = NowNs();
      if (!call(kMethods[0], w, nullptr).ok()) return 4;
      if (i >= 3) us.push_back((NowNs() - t0) / 1e3);
    }
    Print(bytes == (1u << 20) ? "echo/1MiB" : "echo/16MiB", us);
  }
  constexpr size_t kFrame = size_t{16} << 20;
  std::vector<double> rt, fill, sum, rest;
  for (int i = 0; run("frame") && i < rounds + 3; ++i) {
    const int64_t t0 = NowNs();
    absl::StatusOr<lpc::Buffer> b = channel.NewBuffer(kFrame);
    if (!b.ok()) return 5;
    if (i == 0 && !b->shared()) std::printf("(NewBuffer made a heap buffer)\n");
    const int64_t f0 = NowNs();
    std::memset(b->data(), static_cast<int>(i), kFrame);
    const int64_t f1 = NowNs();
    std::string out;
    if (!call(kMethods[1], FrameWriter(&*b), &out).ok() || out.size() != 16) {
      return 6;
    }
    const int64_t t1 = NowNs();
    uint64_t reply[2];
    std::memcpy(reply, out.data(), 16);
    if (i < 3) continue;
    rt.push_back((t1 - t0) / 1e3);
    fill.push_back((f1 - f0) / 1e3);
    sum.push_back(reply[1] / 1e3);
    rest.push_back(((t1 - t0) - (f1 - f0) - int64_t(reply[1])) / 1e3);
  }
  if (run("frame")) {
    Print("frame/16MiB", rt);
    Print("  fill", fill);
    Print("  checksum", sum);
    Print("  rest", rest);
  }
  for (size_t bytes : {size_t{1} << 20, size_t{16} << 20}) {
    if (!run("memcpy")) continue;
    std::vector<char> a(bytes, 1), b(bytes, 2);
    std::vector<double> us;
    for (int i = 0; i < rounds + 3; ++i) {
      const int64_t t0 = NowNs();
      std::memcpy(b.data(), a.data(), bytes);
      asm volatile("" : : "r"(b.data()) : "memory");
      if (i >= 3) us.push_back((NowNs() - t0) / 1e3);
    }
    Print(bytes == (1u << 20) ? "memcpy/1MiB" : "memcpy/16MiB", us);
  }
  ::close(stop[1]);
  ::waitpid(child, nullptr, 0);
  std::string rm = "rm -rf " + dir;
  return std::system(rm.c_str()) == 0 ? 0 : 0;
}
