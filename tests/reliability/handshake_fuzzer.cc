// Fuzz target for the local transport's control-socket handshake, both
// ways (docs/reliability.md, "Fuzzers"):
//   - first byte even: a fake server answers a real LocalChannel's connect
//     with a control packet built from the input (header, WELCOME body,
//     trailing bytes) and fds chosen by the input (a sealed memfd whose
//     size, seals and header bytes come from the input, a pipe, an eventfd,
//     /dev/zero, nothing). The channel must fail the call cleanly or, for a
//     valid welcome, proceed; never crash.
//   - first byte 1 mod 4: a raw client connected to a real server sends
//     control packets built from the input (any type, body and fds) and
//     then rings the doorbell; the server must cut it off or carry on,
//     never crash, and keep serving an honest client.
//   - first byte 3 mod 4: the same with CANCEL packets: valid, id 0, huge
//     ids, bodies of any size, fds attached, and floods past the server's
//     early-cancel bound.
// Built as a libFuzzer binary (tools/fuzz) and as a test over the seed
// corpus with testing/fuzz_driver_main.cc.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "runtime/server.h"
#include "tests/reliability/reliability_service.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/local_transport.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace {

using namespace ::lpc::local;

// Reads the input front to back; past the end everything is zero.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{Byte()} << (8 * i);
    return v;
  }
  std::string Bytes(size_t n) {
    std::string s;
    while (n-- > 0 && pos_ < size_) s.push_back(static_cast<char>(data_[pos_++]));
    return s;
  }
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Global {
  std::string dir;
  std::unique_ptr<lpc::Server> server;
  lpc::reliability::RelService service;
  std::string fake_path;
  UniqueFd fake_listener;
  uint64_t runs = 0;
};

Global* G() {
  static Global* g = [] {
    auto* g = new Global();
    char tmpl[] = "/tmp/lpcr-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    g->dir = tmpl;
    g->server = std::make_unique<lpc::Server>();
    if (!g->server->RegisterService(&g->service).ok()) std::abort();
    LocalPortOptions po;
    po.runtime_dir = g->dir;
    auto t = MakeLocalServerTransport("real", po);
    if (!t.ok() || !g->server->AddTransport(std::move(*t)).ok() ||
        !g->server->Start().ok()) {
      std::abort();
    }
    g->fake_path = g->dir + "/fake";
    g->fake_listener.Reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, g->fake_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(g->fake_listener.get(), reinterpret_cast<sockaddr*>(&addr),
               sizeof(addr)) != 0 ||
        ::listen(g->fake_listener.get(), 16) != 0) {
      std::abort();
    }
    std::atexit([] {
      G()->server->Shutdown();
      std::error_code ec;
      std::filesystem::remove_all(G()->dir, ec);
    });
    return g;
  }();
  return g;
}

// A descriptor of the kind the input picks, for a region of `size` bytes.
UniqueFd MakeFd(Input& in, uint64_t size, const SectionLayout* layout) {
  switch (in.Byte() % 6) {
    case 0: {  // The right kind; size, seals and header from the input.
      const uint8_t how = in.Byte();
      uint64_t actual = size;
      if (how & 1) actual = in.U32() % (8 << 20);
      UniqueFd fd(::memfd_create("lpcr-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
      if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(actual)) != 0) {
        return UniqueFd();
      }
      if (layout != nullptr && actual >= layout->total_size && actual > 0) {
        void* p = ::mmap(nullptr, actual, PROT_READ | PROT_WRITE, MAP_SHARED,
                         fd.get(), 0);
        if (p != MAP_FAILED) {
          auto* base = static_cast<std::byte*>(p);
          InitializeSection(base, *layout);
          // Overwrite some header and control bytes.
          for (int i = in.Byte() % 16; i > 0; --i) {
            const uint32_t off = in.U32() % 1024;
            base[off] = static_cast<std::byte>(in.Byte());
          }
          ::munmap(p, actual);
        }
      }
      int seals = (how & 2) ? 0 : (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      if (how & 4) seals |= F_SEAL_WRITE;
      if (how & 8) seals &= ~F_SEAL_GROW;
      if (seals != 0) ::fcntl(fd.get(), F_ADD_SEALS, seals);
      return fd;
    }
    case 1: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return UniqueFd();
      ::close(p[1]);
      return UniqueFd(p[0]);
    }
    case 2:
      return UniqueFd(::eventfd(0, EFD_CLOEXEC));
    case 3:
      return UniqueFd(::open("/dev/zero", O_RDWR | O_CLOEXEC));
    default:
      return UniqueFd();
  }
}

std::string MakePacket(Input& in, uint16_t default_type, const void* body,
                       size_t body_size) {
  ControlHeader h{kControlMagic, default_type, kProtocolVersion};
  const uint8_t mutate = in.Byte();
  if (mutate & 1) h.magic = in.U32();
  if (mutate & 2) h.type = in.Byte() % 8;
  if (mutate & 4) h.version = in.Byte() % 3;
  std::string p(sizeof(h) + body_size, '\0');
  std::memcpy(p.data(), &h, sizeof(h));
  if (body_size > 0) std::memcpy(p.data() + sizeof(h), body, body_size);
  if (mutate & 8) p.resize(in.Byte() % (p.size() + 1));
  if (mutate & 16) p += in.Bytes(in.Byte() % 64);
  return p;
}

void FuzzClientHandshake(Input& in) {
  Global* g = G();
  SectionGeometry geom;
  const uint8_t which = in.Byte();
  if (which & 1) geom.request_slots = in.U32();
  if (which & 2) geom.reply_slots = in.U32();
  if (which & 4) geom.c2s_data_bytes = uint64_t{in.U32()} << (in.Byte() % 16);
  if (which & 8) geom.s2c_data_bytes = uint64_t{in.U32()};
  if (which & 16) geom.max_record_slots = in.U32();
  absl::StatusOr<SectionLayout> layout = ComputeLayout(geom);
  const uint64_t size = layout.ok() ? layout->total_size : in.U32();
  WelcomeBody w{geom.request_slots, geom.reply_slots, geom.c2s_data_bytes,
                geom.s2c_data_bytes, geom.max_record_slots, in.U32(),
                (which & 32) ? uint64_t{in.U32()} : size};
  UniqueFd section = MakeFd(in, size, layout.ok() ? &*layout : nullptr);
  UniqueFd doorbell = (in.Byte() & 1) ? MakeFd(in, 4096, nullptr)
                                      : UniqueFd(::eventfd(0, EFD_CLOEXEC));
  const std::string packet =
      MakePacket(in, static_cast<uint16_t>(ControlType::kWelcome), &w, sizeof(w));
  const uint8_t nfds = in.Byte() % 4;
  std::thread fake([&] {
    struct pollfd pfd = {g->fake_listener.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 2000) <= 0) return;  // The client never connected.
    UniqueFd conn(::accept4(g->fake_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    std::vector<int> fds;
    if (nfds >= 1 && section) fds.push_back(section.get());
    if (nfds >= 2 && doorbell) fds.push_back(doorbell.get());
    if (nfds >= 3 && section) fds.push_back(section.get());
    SendPacket(conn.get(), packet, fds).IgnoreError();
    // Answer nothing more; wait for the client to give up.
    RecvPacket(conn.get(), absl::Now() + absl::Milliseconds(200)).IgnoreError();
  });
  LocalChannelOptions lo;
  lo.runtime_dir = g->dir;
  lo.connect_timeout = absl::Milliseconds(200);
  auto ch = CreateLocalChannel("fake", {}, lo);
  if (ch.ok()) {
    lpc::CallContext ctx;
    ctx.set_timeout(absl::Milliseconds(50));
    (*ch)->Call(lpc::reliability::RelDescriptor(),
                lpc::reliability::EchoMethod(), &ctx, "x")
        .IgnoreError();
  }
  ch = absl::UnknownError("released");
  fake.join();
}

// Connects to the real server and takes its welcome (section memfd and
// doorbell eventfd); the real server must always accept.
UniqueFd ConnectToRealServer(Packet* welcome) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string path = G()->dir + "/real";
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::abort();
  }
  absl::StatusOr<Packet> w = RecvPacket(sock.get(), absl::Now() + absl::Seconds(5));
  if (!w.ok() || w->fds.size() != 2) std::abort();
  *welcome = std::move(*w);
  return sock;
}

void FuzzServerControl(Input& in) {
  Packet welcome;
  UniqueFd sock = ConnectToRealServer(&welcome);
  for (int n = 0; n < 8 && in.left() > 0; ++n) {
    PayloadFdBody b{in.U32(), in.U32(), uint64_t{in.U32()}};
    const std::string p = MakePacket(
        in, static_cast<uint16_t>(ControlType::kPayloadFd), &b, sizeof(b));
    UniqueFd fd = MakeFd(in, b.length, nullptr);
    std::vector<int> fds;
    if (fd && (in.Byte() & 1)) fds.push_back(fd.get());
    SendPacket(sock.get(), p, fds).IgnoreError();
  }
  SignalEventFd(welcome.fds[1].get());
  // The connection closes here; the server cleans up either way.
}

void FuzzServerCancel(Input& in) {
  Packet welcome;
  UniqueFd sock = ConnectToRealServer(&welcome);
  for (int n = 0; n < 16 && in.left() > 0; ++n) {
    const uint8_t kind = in.Byte();
    uint64_t id = uint64_t{in.U32()} | uint64_t{in.U32()} << 32;
    if (kind % 4 == 1) id = 0;
    if (kind % 4 == 2) id = ~uint64_t{0} - (id & 0xff);
    if (kind % 8 == 7) {
      // A flood of distinct valid ids, past the early-cancel bound.
      const int count = 1 + in.Byte() * 4;
      for (int i = 0; i < count; ++i) {
        if (!SendPacket(sock.get(), EncodeCancelPacket(id + i)).ok()) break;
      }
      continue;
    }
    std::string body(sizeof(CancelBody), '\0');
    std::memcpy(body.data(), &id, sizeof(id));
    if (kind % 4 == 3) body = in.Bytes(in.Byte() % 24);  // Any size.
    const std::string p = MakePacket(
        in, static_cast<uint16_t>(ControlType::kCancel), body.data(), body.size());
    std::vector<int> fds;
    UniqueFd fd;
    if (kind & 16) {
      fd = MakeFd(in, 4096, nullptr);
      if (fd) fds.push_back(fd.get());
    }
    SendPacket(sock.get(), p, fds).IgnoreError();
  }
  SignalEventFd(welcome.fds[1].get());
  // Wait briefly for the server's verdict (a GOODBYE) or nothing.
  RecvPacket(sock.get(), absl::Now() + absl::Milliseconds(5)).IgnoreError();
}

void CheckServerAlive() {
  Global* g = G();
  LocalChannelOptions lo;
  lo.runtime_dir = g->dir;
  auto ch = CreateLocalChannel("real", {}, lo);
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(10));
  absl::StatusOr<std::string> r =
      (*ch)->Call(lpc::reliability::RelDescriptor(),
                  lpc::reliability::EchoMethod(), &ctx, "alive");
  if (!r.ok() || *r != "alive") {
    std::fprintf(stderr, "server stopped serving: %s\n",
                 r.status().ToString().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t mode = in.Byte();
  if (mode % 2 == 0) {
    FuzzClientHandshake(in);
  } else if (mode % 4 == 1) {
    FuzzServerControl(in);
  } else {
    FuzzServerCancel(in);
  }
  if (++G()->runs % 256 == 0) CheckServerAlive();
  return 0;
}
