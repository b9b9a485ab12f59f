// The server-side fuzz targets' shared pieces (server_fuzz_common.h).
#include "transports/local/server_fuzz_common.h"

#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "runtime/testing_service.h"
#include "transports/local/frame.h"

namespace lpc::local::fuzz {

Dispatcher* TestDispatcher() {
  static Server* server = [] {
    auto* s = new Server();
    static testing::RawService service;
    if (!s->RegisterService(&service).ok()) std::abort();
    return s;
  }();
  return server;
}

std::string MakeBindPayload(Input& in) {
  const InterfaceDescriptor& d = testing::RawDescriptor();
  BindRequest r{std::string(d.full_name), std::string(d.uuid), d.version.major,
                d.version.minor};
  const uint8_t how = in.Byte();
  if (how & 1) r.full_name = in.Bytes(in.Byte());
  if (how & 2) r.uuid = in.Bytes(in.Byte() % 48);
  if (how & 4) r.major = in.Byte();
  if (how & 8) r.minor = in.U32();
  std::string p = EncodeBindRequest(r);
  if ((how & 0x30) == 0x30 && !p.empty()) p.resize(in.Byte() % p.size());
  if ((how & 0x30) == 0x10) p += in.Bytes(in.Byte() % 8);
  return p;
}

std::string MakePayload(Input& in) {
  const uint8_t how = in.Byte();
  size_t n = 0;
  switch (how % 4) {
    case 0: n = in.Byte(); break;
    case 1: n = 200 + in.Byte(); break;
    case 2: n = 2048 + in.U16() % 4096; break;
    default: n = in.U16(); break;
  }
  std::string p = in.Bytes(n < 64 ? n : 64);
  p.resize(n, static_cast<char>(how));
  return p;
}

void ExpectFdCount(const char* target, int before) {
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  int now = CountOpenFds();
  while (now != before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
    now = CountOpenFds();
  }
  if (now != before) {
    std::fprintf(stderr, "%s: %d descriptors open before the input, %d after\n",
                 target, before, now);
    std::abort();
  }
}

}  // namespace lpc::local::fuzz
