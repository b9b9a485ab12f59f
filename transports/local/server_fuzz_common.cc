// The server-side fuzz targets' shared pieces (server_fuzz_common.h).
#include "transports/local/server_fuzz_common.h"

#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "runtime/testing_service.h"
#include "transports/local/frame.h"
#include "transports/local/stream_test_service.h"

namespace lpc::local::fuzz {

Dispatcher* TestDispatcher() {
  static Server* server = [] {
    auto* s = new Server();
    static testing::RawService service;
    static testing::StreamsService streams;
    if (!s->RegisterService(&service).ok()) std::abort();
    if (!s->RegisterService(&streams).ok()) std::abort();
    return s;
  }();
  return server;
}

std::string MakeBindPayload(Input& in) {
  const uint8_t how = in.Byte();
  const InterfaceDescriptor& d = (how & 0xC0) == 0xC0
                                     ? testing::StreamsDescriptor()
                                     : testing::RawDescriptor();
  BindRequest r{std::string(d.full_name), std::string(d.uuid), d.version.major,
                d.version.minor};
  if (how & 1) r.full_name = in.Bytes(in.Byte());
  if (how & 2) r.uuid = in.Bytes(in.Byte() % 48);
  if (how & 4) r.major = in.Byte();
  if (how & 8) r.minor = in.U32();
  std::string p = EncodeBindRequest(r);
  if ((how & 0x30) == 0x30 && !p.empty()) p.resize(in.Byte() % p.size());
  if ((how & 0x30) == 0x10) p += in.Bytes(in.Byte() % 8);
  return p;
}

bool MakeStreamRecord(uint8_t type_byte, Input& in, MessageType* type,
                      std::string* payload) {
  if (type_byte < 200 || type_byte >= 240) return false;
  static constexpr MessageType kStreamTypes[] = {
      MessageType::kStreamOpen, MessageType::kStreamMessage,
      MessageType::kHalfClose, MessageType::kWindowUpdate,
      MessageType::kStreamFinish};
  *type = kStreamTypes[(type_byte - 200) % 5];
  switch (*type) {
    case MessageType::kStreamOpen: {
      const uint8_t how = in.Byte();
      const uint32_t messages = (how & 1) ? in.U32() : in.Byte() % 4;
      const uint64_t bytes = (how & 2) ? in.U64() : uint64_t{in.U16()};
      *payload = EncodeStreamOpenBody(messages, bytes);
      if (how & 4) *payload += in.Bytes(in.Byte() % 24);  // Trailing bytes.
      if (how & 8) payload->resize(in.Byte() % 16);       // Cut short.
      break;
    }
    case MessageType::kWindowUpdate: {
      const uint8_t how = in.Byte();
      *payload = EncodeWindowBody(how % 3, (how & 4) ? in.U32() : in.Byte() % 6,
                                  (how & 8) ? in.U64() : uint64_t{in.U16()});
      if (how & 16) payload->resize(in.Byte() % 24, 'w');
      break;
    }
    case MessageType::kStreamMessage:
      *payload = MakePayload(in);
      break;
    default:
      payload->clear();
      break;
  }
  return true;
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
