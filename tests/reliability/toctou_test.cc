// Item 7 of docs/reliability.md: a TOCTOU flipper. A real sealed section is
// shared with a separate process (reliability_peer flip) that flips bits of
// the request ring and the client->server data half at random times, i.e.
// of records already published and being consumed. In this process a
// client Endpoint produces messages (inline and data-area payloads) and the
// server Endpoint consumes them. The flipper is another process so that
// the sanitizers see only this process's own accesses, as in production.
//
// Every message the consumer returns must satisfy the invariants of a
// validated message (direction, mode, payload length equal to the header's,
// inline record size); any error must be a DATA_LOSS-style status, after
// which both endpoints start over on a zeroed section. Reports messages,
// errors, invariant violations (0); sanitizer reports fail the test.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/endpoint.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"

namespace lpc::reliability {
namespace {

using namespace ::lpc::local;

TEST(ToctouTest, FlippedPublishedRecordsNeverBreakTheConsumer) {
  SectionGeometry g;
  g.c2s_data_bytes = 64 << 10;
  g.s2c_data_bytes = 4096;
  absl::StatusOr<SectionLayout> layout = ComputeLayout(g);
  ASSERT_TRUE(layout.ok());
  absl::StatusOr<UniqueFd> fd = CreateSealedMemfd("lpcr-toctou", layout->total_size);
  ASSERT_TRUE(fd.ok());
  absl::StatusOr<Mapping> map = Mapping::Map(fd->get(), layout->total_size, true);
  ASSERT_TRUE(map.ok());
  std::byte* base = map->data();

  // The flipper covers the request ring and the c2s data half (records and
  // payloads); control words are covered by the scribbler and fuzzer.
  const uint64_t from = layout->request_ring_offset;
  const uint64_t to = layout->c2s_data_offset + g.c2s_data_bytes;
  const int seconds = static_cast<int>(Scaled(60, 3600));
  ChildProcess flipper({PeerBinary(), "flip", absl::StrCat(::getpid()),
                        absl::StrCat(fd->get()), absl::StrCat(from),
                        absl::StrCat(to - from), absl::StrCat(seconds)});
  ASSERT_EQ(flipper.ReadLine(), "FLIPPING");

  const int64_t target = Scaled(200000, 10000000);
  const absl::Time limit = absl::Now() + absl::Seconds(seconds - 5);
  int64_t sent = 0, received = 0, intact = 0, errors = 0, violations = 0,
          resets = 0;
  std::string first_violation;
  EndpointOptions eo;
  eo.max_payload = 1 << 20;
  auto fresh = [&](std::unique_ptr<Endpoint>* client,
                   std::unique_ptr<Endpoint>* server) {
    std::memset(base, 0, layout->total_size);
    InitializeSection(base, *layout);
    *client = std::make_unique<Endpoint>(Side::kClient, base, *layout, nullptr, eo);
    *server = std::make_unique<Endpoint>(Side::kServer, base, *layout, nullptr, eo);
  };
  std::unique_ptr<Endpoint> client, server;
  fresh(&client, &server);
  std::string payload;
  uint64_t id = 0;
  while (received < target && absl::Now() < limit) {
    // Produce a batch: sizes 0..2000 (inline up to 976 B, else data area).
    bool broken = false;
    for (int k = 0; k < 32; ++k) {
      ++id;
      const size_t size = (id * 37) % 2001;
      payload.assign(size, static_cast<char>('a' + id % 26));
      OutgoingMessage m;
      m.type = MessageType::kRequest;
      m.message_id = id;
      m.interface_slot = 1;
      m.method_id = 1;
      m.payload = payload;
      absl::StatusOr<bool> ok = client->TrySend(m);
      if (!ok.ok()) {  // The flipper hit the consumer's index: start over.
        broken = true;
        break;
      }
      if (!*ok) break;
      ++sent;
    }
    client->Flush();
    // Consume everything published.
    for (int k = 0; !broken && k < 64; ++k) {
      absl::StatusOr<std::optional<IncomingMessage>> msg = server->Receive();
      if (!msg.ok()) {
        ++errors;
        broken = true;
        break;
      }
      if (!msg->has_value()) break;
      ++received;
      const IncomingMessage& in = **msg;
      const FrameHeader& h = in.header;
      std::string why;
      if (!IsClientToServer(in.type())) why = "direction";
      if (h.payload_mode > 1) why = "mode";
      if (in.payload.size() != h.payload_length) why = "payload length";
      if (h.payload_mode == 0 && h.record_size != kFrameHeaderSize + h.payload_length) {
        why = "inline record size";
      }
      if (h.payload_mode == 1 && h.record_size != kFrameHeaderSize) {
        why = "data-area record size";
      }
      if ((h.flags & ~kFlagKnownMask) != 0 || h.handle_count != 0) {
        why = "unknown flag or reserved bits";
      }
      if (!why.empty()) {
        if (violations++ == 0) first_violation = why;
      }
      intact += h.message_id <= id && in.payload ==
                std::string(in.payload.size(), static_cast<char>('a' + h.message_id % 26));
    }
    if (broken) {
      ++resets;
      fresh(&client, &server);
      continue;
    }
    server->ReleaseReceived();
  }
  flipper.Kill();
  Report("toctou",
         absl::StrFormat("messages_sent=%lld received=%lld intact=%lld "
                         "consumer_errors=%lld resets=%lld invariant_violations=%lld%s",
                         static_cast<long long>(sent), static_cast<long long>(received),
                         static_cast<long long>(intact), static_cast<long long>(errors),
                         static_cast<long long>(resets),
                         static_cast<long long>(violations),
                         first_violation.empty() ? ""
                                                 : absl::StrCat(" first=", first_violation)));
  EXPECT_EQ(violations, 0) << first_violation;
  EXPECT_GT(received, 0);
}

}  // namespace
}  // namespace lpc::reliability
