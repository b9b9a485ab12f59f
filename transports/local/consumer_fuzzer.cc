// libFuzzer target for the consumer side of the local transport.
//
// The input is laid over a connection's shared section (everything after
// the 128-byte header: control words, both rings, both data-area halves);
// bytes beyond the section feed the payload memfds a hostile peer would
// send. Both consumers (server reading requests, client reading replies)
// then run until they report an error or run dry. The raw input is also fed
// to every decoder that parses peer bytes. Nothing may crash, hang or read
// out of bounds; errors are the expected outcome.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"

namespace lpc::local {
namespace {

// Hands out memfds built from fuzz bytes; every third one is wrong in some
// way, so that validation paths run too.
class FuzzMemfdPort : public MemfdPort {
 public:
  FuzzMemfdPort(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  absl::Status SendPayloadFd(uint32_t, uint64_t, int) override {
    return absl::OkStatus();
  }
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t length,
                                         absl::Time) override {
    if (length > (1u << 20)) return absl::DeadlineExceededError("no fd");
    const uint8_t selector = size_ > 0 ? data_[number % size_] : 0;
    uint64_t made = PayloadMemfdSize(length);
    if (selector % 3 == 1) made += 4096;  // Wrong size.
    if (selector % 3 == 2) return absl::DeadlineExceededError("no fd");
    auto fd = CreateSealedMemfd("fuzz", made == 0 ? 1 : made);
    return fd;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

SectionLayout FuzzLayout() {
  SectionGeometry g;
  g.request_slots = 16;
  g.reply_slots = 16;
  g.c2s_data_bytes = 4096;
  g.s2c_data_bytes = 4096;
  g.max_record_slots = 8;
  return *ComputeLayout(g);
}

void DrainConsumer(Endpoint& e) {
  for (int i = 0; i < 64; ++i) {
    auto msg = e.Receive();
    if (!msg.ok() || !msg->has_value()) break;
    e.ReleaseReceived();
  }
}

}  // namespace
}  // namespace lpc::local

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lpc::local;
  static const SectionLayout layout = FuzzLayout();
  // 64-byte aligned private stand-in for the mapping.
  std::unique_ptr<std::byte, void (*)(void*)> section(
      static_cast<std::byte*>(std::aligned_alloc(64, layout.total_size)),
      &std::free);
  std::memset(section.get(), 0, layout.total_size);
  InitializeSection(section.get(), layout);
  const size_t body = layout.total_size - layout.control_offset;
  const size_t n = size < body ? size : body;
  std::memcpy(section.get() + layout.control_offset, data, n);
  const uint8_t* extra = data + n;
  const size_t extra_size = size - n;

  FuzzMemfdPort port(extra, extra_size);
  EndpointOptions options;
  options.max_payload = 1 << 20;
  options.memfd_wait = absl::ZeroDuration();
  {
    Endpoint server(Side::kServer, section.get(), layout, &port, options);
    DrainConsumer(server);
  }
  {
    Endpoint client(Side::kClient, section.get(), layout, &port, options);
    DrainConsumer(client);
    // The producer side also reads peer-written counters.
    OutgoingMessage m;
    std::string p(3000, 'p');
    m.payload = p;
    (void)client.TrySend(m);
  }

  // The raw bytes through every decoder of peer input.
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  absl::Span<const std::byte> span(bytes, size);
  (void)ValidateSectionHeader(bytes, size, layout);
  (void)DecodeFrame(span, FrameLimits{});
  absl::Span<const std::byte> control_body;
  if (DecodeControlHeader(span, &control_body).ok()) {
    (void)DecodeStatusBody(control_body);
  }
  (void)DecodeBindRequest(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
