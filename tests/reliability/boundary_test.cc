// Item 8 of docs/reliability.md: boundary values in every field a client
// controls. For each field, the values {0, 1, min-1, min, max, max+1, 2^31,
// 2^32-1, 2^63} (truncated to the field's width) are written by a raw
// client into an otherwise valid message, on a fresh connection, followed
// by an honest probe call. The outcome is one of: executed (the call ran
// and answered OK), refused (an error reply; the connection stays), cut off
// (GOODBYE/hang-up), or ignored (no effect; the probe still works).
//
// A bad value "accepted" means it was executed as if valid, or broke the
// probe without a cut-off; a good value "rejected" means it was refused or
// cut off. Both must be 0.
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/reliability/harness.h"
#include "tests/reliability/raw_client.h"
#include "tests/reliability/reliability_util.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/shared_word.h"

namespace lpc::reliability {
namespace {

using local::FrameHeader;

enum class Outcome { kExecuted, kRefused, kCutOff, kIgnored, kBroken };

const char* Name(Outcome o) {
  switch (o) {
    case Outcome::kExecuted: return "executed";
    case Outcome::kRefused: return "refused";
    case Outcome::kCutOff: return "cut_off";
    case Outcome::kIgnored: return "ignored";
    case Outcome::kBroken: return "BROKEN";
  }
  return "?";
}

constexpr uint64_t kInjectedId = 1000;
constexpr uint64_t kProbeId = 2000;
const std::string kPayload = "abcdefgh";

// Connects, binds, runs `inject`, sends a probe Echo and classifies what
// happened to the injected message.
Outcome Probe(const std::string& path,
              const std::function<void(RawClient&, uint32_t)>& inject) {
  auto c = RawClient::Connect(path);
  if (!c.ok()) return Outcome::kBroken;
  absl::StatusOr<uint32_t> slot = (*c)->Bind(RelDescriptor());
  if (!slot.ok()) return Outcome::kBroken;
  inject(**c, *slot);
  FrameHeader p = RequestHeader(kProbeId, *slot, EchoMethod().id, 5);
  (*c)->SendRaw(MakeRecord(p, "probe"));
  bool injected_reply = false, injected_ok = false, probe_ok = false;
  const absl::Time end = absl::Now() + absl::Seconds(3);
  // Wait for the probe, then briefly for the injected message's reply.
  absl::Time stop = end;
  while (absl::Now() < stop && !(probe_ok && injected_reply)) {
    absl::StatusOr<local::IncomingMessage> m =
        (*c)->WaitReply(stop - absl::Now());
    if (!m.ok() && absl::IsDeadlineExceeded(m.status())) break;
    if (!m.ok()) {
      return absl::IsUnavailable(m.status()) ? Outcome::kCutOff
                                             : Outcome::kBroken;
    }
    if (m->header.message_id == kProbeId) {
      probe_ok = m->header.status_code == 0 && m->payload == "probe";
      if (!probe_ok) return Outcome::kBroken;
      stop = std::min(end, absl::Now() + absl::Milliseconds(200));
    } else {  // The injected message's reply, whatever id it carried.
      injected_reply = true;
      injected_ok = m->header.status_code == 0;
    }
  }
  if (!probe_ok) return Outcome::kBroken;
  if (injected_reply) return injected_ok ? Outcome::kExecuted : Outcome::kRefused;
  return Outcome::kIgnored;
}

std::vector<uint64_t> BoundaryValues(uint64_t min, uint64_t max, int bits) {
  std::vector<uint64_t> v = {0,
                             1,
                             min - 1,
                             min,
                             max,
                             max + 1,
                             uint64_t{1} << 31,
                             (uint64_t{1} << 32) - 1,
                             uint64_t{1} << 63};
  if (bits < 64) {
    for (auto& x : v) x &= (uint64_t{1} << bits) - 1;
  }
  return v;
}

struct Tally {
  int cases = 0, fields = 0, bad_accepted = 0, good_rejected = 0, broken = 0;
  int outcomes[5] = {0, 0, 0, 0, 0};  // By Outcome.
  std::string details;
};

// `good(v)`: kGood if the protocol allows v (it must not be refused or cut
// off), kBad if not (it must be refused, cut off or ignored without harm),
// kEither where both are correct (a deadline already past).
enum Verdict { kBad = 0, kGood = 1, kEither = 2 };
void RunField(const std::string& path, const std::string& field, uint64_t min,
              uint64_t max, int bits, const std::function<int(uint64_t)>& good,
              const std::function<void(RawClient&, uint32_t, uint64_t)>& inject,
              Tally* t) {
  ++t->fields;
  for (uint64_t v : BoundaryValues(min, max, bits)) {
    ++t->cases;
    const Outcome o =
        Probe(path, [&](RawClient& c, uint32_t slot) { inject(c, slot, v); });
    ++t->outcomes[static_cast<int>(o)];
    const int verdict = good(v);
    const bool is_good = verdict == kGood;
    bool wrong = false;
    if (o == Outcome::kBroken) {
      ++t->broken;
      wrong = true;
    } else if (is_good && (o == Outcome::kRefused || o == Outcome::kCutOff)) {
      ++t->good_rejected;
      wrong = true;
    } else if (verdict == kBad && o == Outcome::kExecuted) {
      ++t->bad_accepted;
      wrong = true;
    }
    if (wrong) {
      absl::StrAppend(&t->details, " ", field, "=", v, ":", Name(o),
                      is_good ? "(good)" : "(bad)");
    }
  }
}

FrameHeader BaseHeader(uint32_t slot) {
  FrameHeader h = RequestHeader(kInjectedId, slot, EchoMethod().id,
                                static_cast<uint32_t>(kPayload.size()));
  h.deadline_ns = local::MonotonicNowNs() + int64_t{2} * 1000000000;
  return h;
}

// A frame with one field replaced by `v`, sent raw.
template <typename Setter>
std::function<void(RawClient&, uint32_t, uint64_t)> FrameField(Setter set) {
  return [set](RawClient& c, uint32_t slot, uint64_t v) {
    FrameHeader h = BaseHeader(slot);
    set(h, v);
    c.SendRaw(MakeRecord(h, kPayload));
  };
}

TEST(BoundaryTest, EveryPeerControlledField) {
  TempDir dir;
  TestServerOptions o;
  o.dir = dir.path();
  TestServer server(o);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  const std::string path = dir.path() + "/p";
  const uint32_t max_record = 64 * 64;
  Tally t;
  auto eq = [](uint64_t want) {
    return [want](uint64_t v) { return v == want ? kGood : kBad; };
  };
  auto at_most = [](uint64_t top) {
    return [top](uint64_t v) { return v <= top ? kGood : kBad; };
  };
  auto any = [](uint64_t) { return kGood; };

  // --- Frame header fields of a REQUEST (inline, 8-byte payload). ---
  RunField(path, "record_size", 48, max_record, 32, eq(56),
           FrameField([](FrameHeader& h, uint64_t v) { h.record_size = v; }), &t);
  RunField(path, "type", 1, 6, 8,
           [](uint64_t v) { return v == 1 || v == 3 ? kGood : kBad; },
           FrameField([](FrameHeader& h, uint64_t v) { h.type = v; }), &t);
  RunField(path, "payload_mode", 0, 2, 8, eq(0),
           FrameField([](FrameHeader& h, uint64_t v) { h.payload_mode = v; }), &t);
  RunField(path, "flags", 0, 0, 16, eq(0),
           FrameField([](FrameHeader& h, uint64_t v) { h.flags = v; }), &t);
  RunField(path, "message_id", 1, UINT64_MAX, 64,
           [](uint64_t v) { return v == kProbeId ? kEither : kGood; },
           FrameField([](FrameHeader& h, uint64_t v) { h.message_id = v; }), &t);
  RunField(path, "deadline_ns", 0, INT64_MAX, 64,
           [](uint64_t v) {
             // 0 = none; a past deadline may be refused (DEADLINE_EXCEEDED)
             // or run; negative values are invalid.
             if (v > static_cast<uint64_t>(INT64_MAX)) return kBad;
             if (v == 0) return kGood;
             return static_cast<int64_t>(v) > local::MonotonicNowNs() ? kGood
                                                                      : kEither;
           },
           FrameField([](FrameHeader& h, uint64_t v) {
             h.deadline_ns = static_cast<int64_t>(v);
           }),
           &t);
  RunField(path, "interface_slot", 1, 1, 32, eq(1),
           FrameField([](FrameHeader& h, uint64_t v) { h.interface_slot = v; }), &t);
  RunField(path, "method_id", 1, 6, 32,
           [](uint64_t v) {
             return v == 1 || v == 3 || v == 4 || v == 5 || v == 6 ? kGood
                                                                   : kBad;
           },
           FrameField([](FrameHeader& h, uint64_t v) { h.method_id = v; }), &t);
  RunField(path, "status_code", 0, 0, 32, eq(0),
           FrameField([](FrameHeader& h, uint64_t v) { h.status_code = v; }), &t);
  RunField(path, "payload_length", 8, 8, 32, eq(8),
           FrameField([](FrameHeader& h, uint64_t v) { h.payload_length = v; }), &t);
  RunField(path, "payload_ref", 0, 0, 32, eq(0),
           FrameField([](FrameHeader& h, uint64_t v) { h.payload_ref = v; }), &t);
  RunField(path, "handle_count", 0, 0, 32, eq(0),
           FrameField([](FrameHeader& h, uint64_t v) { h.handle_count = v; }), &t);

  // --- Data-area payload reference (mode 1): offset and length. ---
  // The server runs with the default geometry: a payload may fill the
  // whole client->server half.
  const uint64_t half = local::SectionGeometry{}.c2s_data_bytes;
  RunField(path, "data_area.payload_ref", 0, 0, 32, eq(0),
           [](RawClient& c, uint32_t slot, uint64_t v) {
             FrameHeader h = BaseHeader(slot);
             h.payload_mode = 1;
             h.record_size = 48;
             h.payload_ref = v;
             std::memcpy(c.base() + c.layout().c2s_data_offset, kPayload.data(), 8);
             c.SendRaw(MakeRecord(h));
           },
           &t);
  RunField(path, "data_area.payload_length", 1, half, 32,
           [&](uint64_t v) { return v >= 1 && v <= half ? kGood : kBad; },
           [](RawClient& c, uint32_t slot, uint64_t v) {
             FrameHeader h = BaseHeader(slot);
             h.payload_mode = 1;
             h.record_size = 48;
             h.payload_length = v;
             c.SendRaw(MakeRecord(h));
           },
           &t);

  // --- Ring and data-area control words the client writes. ---
  RunField(path, "request.producer_index", 2, 2, 64, eq(2),
           [](RawClient& c, uint32_t, uint64_t v) {
             // After the bind (2 slots) the honest value is 2.
             local::SharedStore<uint64_t>(c.control()->request.producer_index, v);
             c.Ring();
             absl::SleepFor(absl::Milliseconds(20));
             local::SharedStore<uint64_t>(c.control()->request.producer_index, 2);
           },
           &t);
  // After the bind reply (1 slot) the honest value is 1; 0 only un-frees.
  RunField(path, "reply.consumer_index", 0, 1, 64, at_most(1),
           [](RawClient& c, uint32_t, uint64_t v) {
             local::SharedStore<uint64_t>(c.control()->reply.consumer_index, v);
           },
           &t);
  RunField(path, "s2c.released", 0, 0, 64, eq(0),
           [](RawClient& c, uint32_t, uint64_t v) {
             local::SharedStore<uint64_t>(c.control()->s2c.released, v);
           },
           &t);

  // --- Bind request fields (a second bind of the same interface). ---
  auto bind_field = [&](const std::string& name, int index, uint64_t min,
                        uint64_t max, std::function<int(uint64_t)> good) {
    RunField(path, name, min, max, 32, good,
             [index](RawClient& c, uint32_t, uint64_t v) {
               local::BindRequest req{std::string(RelDescriptor().full_name),
                                      std::string(RelDescriptor().uuid), 1, 0};
               std::string payload = local::EncodeBindRequest(req);
               const uint32_t v32 = static_cast<uint32_t>(v);
               std::memcpy(payload.data() + 4 * index, &v32, 4);
               FrameHeader h;
               std::memset(&h, 0, sizeof(h));
               h.type = static_cast<uint8_t>(local::MessageType::kBind);
               h.message_id = kInjectedId;
               h.payload_length = static_cast<uint32_t>(payload.size());
               h.record_size = 48 + h.payload_length;
               c.SendRaw(MakeRecord(h, payload));
             },
             &t);
  };
  const uint32_t name_len = RelDescriptor().full_name.size();
  const uint32_t uuid_len = RelDescriptor().uuid.size();
  bind_field("bind.major", 0, 1, 1, eq(1));
  bind_field("bind.minor", 1, 0, UINT32_MAX, any);
  bind_field("bind.name_len", 2, name_len, name_len, eq(name_len));
  bind_field("bind.uuid_len", 3, uuid_len, uuid_len, eq(uuid_len));

  // --- PAYLOAD_FD control packet fields (mode-2 payload of 8 bytes). ---
  auto fd_field = [&](const std::string& name, int which, uint64_t min,
                      uint64_t max, int bits, std::function<int(uint64_t)> good) {
    RunField(path, name, min, max, bits, good,
             [which](RawClient& c, uint32_t slot, uint64_t v) {
               auto fd = local::CreateSealedMemfd("lpcr-payload",
                                                  local::PayloadMemfdSize(8));
               if (!fd.ok() || !local::WriteWhole(fd->get(), "payload!").ok()) {
                 return;
               }
               local::ControlHeader ch{local::kControlMagic,
                                       static_cast<uint16_t>(local::ControlType::kPayloadFd),
                                       1};
               local::PayloadFdBody b{0, 0, 8};
               if (which == 0) ch.magic = v;
               if (which == 1) ch.type = v;
               if (which == 2) ch.version = v;
               if (which == 3) b.memfd_number = v;
               if (which == 4) b.reserved = v;
               if (which == 5) b.length = v;
               std::string packet(sizeof(ch) + sizeof(b), '\0');
               std::memcpy(packet.data(), &ch, sizeof(ch));
               std::memcpy(packet.data() + sizeof(ch), &b, sizeof(b));
               const int fds[1] = {fd->get()};
               local::SendPacket(c.socket(), packet, fds).IgnoreError();
               FrameHeader h = BaseHeader(slot);
               h.payload_mode = 2;
               h.record_size = 48;
               c.SendRaw(MakeRecord(h));
             },
             &t);
  };
  fd_field("control.magic", 0, local::kControlMagic, local::kControlMagic, 32,
           eq(local::kControlMagic));
  fd_field("control.type", 1, 4, 4, 16, eq(4));
  fd_field("control.version", 2, 1, 1, 16, eq(1));
  fd_field("payload_fd.number", 3, 0, 0, 32, eq(0));
  // Not checked by the server (the memfd's fstat size is what counts), so
  // any value is harmless: the payload is still the first 8 bytes of the
  // sealed memfd.
  fd_field("payload_fd.reserved", 4, 0, 0, 32, any);
  fd_field("payload_fd.length", 5, 8, 8, 64, any);

  Report("boundary",
         absl::StrFormat("fields=%d cases=%d bad_accepted=%d good_rejected=%d "
                         "probe_broken=%d outcomes={executed=%d refused=%d "
                         "cut_off=%d ignored=%d} server_cut_offs=%llu%s",
                         t.fields, t.cases, t.bad_accepted, t.good_rejected,
                         t.broken, t.outcomes[0], t.outcomes[1], t.outcomes[2],
                         t.outcomes[3],
                         static_cast<unsigned long long>(
                             server.local()->stats().clients_cut_off),
                         t.details.empty() ? "" : absl::StrCat(" wrong:", t.details)));
  EXPECT_EQ(t.bad_accepted, 0) << t.details;
  EXPECT_EQ(t.good_rejected, 0) << t.details;
  EXPECT_EQ(t.broken, 0) << t.details;
}

}  // namespace
}  // namespace lpc::reliability
