// Fuzz target for the local server's HandleMessage, the handler of every
// message a worker reads from a client's request ring. Each input sets up
// one connection (made by the server's handshake over a socket pair) in a
// state of its choosing: lpc.test.Raw bound or not, an unknown interface
// refused, calls in flight, early CANCELs by the control socket, the
// client hung up. Then it hands HandleMessage up to 64 messages whose
// header fields (type, id, slot, method, flags, deadline, length,
// oversized) and payloads (bind requests, metadata blocks, any bytes) come
// from the input, and between them drops decoded calls without running
// them, sends CANCEL control packets, and reads the replies.
// Checks: no crash or sanitizer report; every reply decodes on the client;
// the process holds as many descriptors after the input as before.
// Built as a libFuzzer binary (tools/fuzz) and as a test over the seed
// corpus with testing/fuzz_driver_main.cc.
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "transports/local/control_socket.h"
#include "transports/local/frame.h"
#include "transports/local/internal/server_fuzz_peer.h"
#include "transports/local/metadata.h"
#include "transports/local/server_fuzz_client.h"
#include "transports/local/server_fuzz_common.h"
#include "transports/local/stream_test_service.h"

namespace {

using namespace ::lpc::local;
using namespace ::lpc::local::fuzz;

constexpr int kMaxSteps = 64;

IncomingMessage Message(MessageType type, uint64_t id, uint32_t slot,
                        std::string payload) {
  IncomingMessage m;
  m.header = FrameHeader{};
  m.header.type = static_cast<uint8_t>(type);
  m.header.message_id = id;
  m.header.interface_slot = slot;
  m.header.payload_length = static_cast<uint32_t>(payload.size());
  m.header.record_size = kFrameHeaderSize;
  m.payload = std::move(payload);
  return m;
}

IncomingMessage MessageFromInput(Input& in) {
  const uint8_t type = in.Byte();
  static constexpr MessageType kTypes[] = {
      MessageType::kRequest, MessageType::kOneway, MessageType::kBind,
      MessageType::kCancel, MessageType::kBindReply};
  MessageType t =
      type < 240 ? kTypes[type % 5] : static_cast<MessageType>(type);
  const uint8_t how = in.Byte();
  std::string payload;
  if (MakeStreamRecord(type, in, &t, &payload)) {
    // Stream records: bodies from the input (how & 1 still sets the flag).
  } else if (t == MessageType::kBind) {
    payload = MakeBindPayload(in);
  } else if (how & 1) {
    // A metadata block (perhaps cut or flipped), then the request.
    lpc::Metadata md;
    for (int n = in.Byte() % 4; n > 0; --n) {
      md.emplace(in.Bytes(in.Byte() % 12), in.Bytes(in.Byte() % 24));
    }
    EncodeMetadata(md, &payload).IgnoreError();  // Bad keys: no block.
    if ((how & 6) == 2 && !payload.empty()) payload.resize(in.Byte() % payload.size());
    if ((how & 6) == 4 && !payload.empty()) {
      payload[in.Byte() % payload.size()] ^= static_cast<char>(in.Byte());
    }
    payload += MakePayload(in);
  } else {
    payload = MakePayload(in);
  }
  IncomingMessage m = Message(
      t, (how & 8) ? in.U64() : in.Byte() % 8,
      (how & 16) ? in.U32() : in.Byte() % 4, std::move(payload));
  m.header.method_id = (how & 32) ? in.U32() : in.Byte() % 7;
  m.header.flags = (how & 1) ? kFlagMetadata : 0;
  if (how & 64) m.header.flags = in.U16();
  m.header.deadline_ns = static_cast<int64_t>(in.U64() >> (in.Byte() % 64));
  if (how & 128) {  // Oversized: counted, not copied.
    m.oversized = true;
    m.header.payload_length = in.U32();
    m.payload.clear();
  }
  return m;
}

void ReadReplies(FuzzClient& client) {
  size_t replies = 0;
  if (absl::Status s = client.ReadReplies(&replies); !s.ok()) {
    std::fprintf(stderr,
                 "handle_message_fuzzer: the server wrote a reply its client "
                 "cannot read: %s\n",
                 s.ToString().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lpc::Dispatcher* dispatcher = TestDispatcher();
  const int fds_before = CountOpenFds();
  {
    Input in(data, size);
    const LocalPortOptions options = SmallPortOptions(4096);
    internal::ServerFuzzPeer server(options, dispatcher);
    absl::StatusOr<std::unique_ptr<FuzzClient>> made =
        FuzzClient::Connect(server, options.max_inline_record);
    if (!made.ok()) {
      std::fprintf(stderr, "handle_message_fuzzer: connect: %s\n",
                   made.status().ToString().c_str());
      std::abort();
    }
    FuzzClient& client = **made;
    const std::shared_ptr<internal::Connection>& c = client.conn();
    std::vector<internal::WorkItem> items;
    auto handle = [&](IncomingMessage m) {
      server.HandleMessage(c, std::move(m), &items);
    };

    // The connection's state before the fuzzed messages.
    const uint8_t setup = in.Byte();
    if (setup & 1) {
      Input bind(nullptr, 0);  // lpc.test.Raw, its uuid and version.
      handle(Message(MessageType::kBind, 100, 0, MakeBindPayload(bind)));
    }
    if (setup & 2) {
      handle(Message(MessageType::kBind, 101, 0,
                     EncodeBindRequest({"lpc.test.Missing", "x", 1, 0})));
    }
    if (setup & 4) {  // Calls in flight (ids 1-3), never run.
      for (uint64_t id = 1; id <= 3; ++id) {
        handle(Message(MessageType::kRequest, id, 1, "in flight"));
      }
    }
    if (setup & 8) {  // Early cancels: ids 4-6 before their requests.
      for (uint64_t id = 4; id <= 6; ++id) {
        SendRaw(client.sock(), EncodeCancelPacket(id), {});
      }
      server.OnSocketReadable(c);
    }
    if (setup & 32) {  // lpc.test.Streams bound (slot 1 or 2).
      handle(Message(MessageType::kBind, 102, 0,
                     EncodeBindRequest(
                         {std::string(::lpc::testing::StreamsDescriptor().full_name),
                          std::string(::lpc::testing::StreamsDescriptor().uuid), 1,
                          0})));
    }
    if (setup & 16) {  // The client is gone; oneway calls still run.
      ::shutdown(client.sock(), SHUT_RDWR);
      server.OnSocketReadable(c);
    }
    ReadReplies(client);

    for (int step = 0; step < kMaxSteps && in.left() > 0; ++step) {
      if (c->closed.load()) break;  // As Drain: a cut-off client is done.
      switch (in.Byte() % 8) {
        case 0: {  // Decoded calls end without running.
          const size_t n = in.Byte() % (items.size() + 1);
          items.erase(items.begin(), items.begin() + static_cast<long>(n));
          break;
        }
        case 1:
          SendRaw(client.sock(), EncodeCancelPacket(in.Byte() % 8), {});
          server.OnSocketReadable(c);
          break;
        case 2:
          ReadReplies(client);
          break;
        default:
          handle(MessageFromInput(in));
          break;
      }
    }
    ReadReplies(client);
    items.clear();
    server.Close(c);
  }
  ExpectFdCount("handle_message_fuzzer", fds_before);
  return 0;
}
