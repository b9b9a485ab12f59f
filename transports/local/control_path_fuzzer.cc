// Fuzz target for the local server's control-socket path with descriptors
// attached. Each input is one connection, made by the server's handshake
// over a real SOCK_SEQPACKET socket pair, and a sequence of steps:
//   - a control packet (PAYLOAD_FD for the next memfd or another, CANCEL,
//     GOODBYE, any type, raw bytes; every size from empty to past
//     kMaxControlPacket) with 0-7 descriptors of the kinds in FdKind, or
//     240-253 copies of one;
//   - a record from the client's endpoint (bind, request, oneway, cancel,
//     any type; inline, data-area or memfd payload), its payload memfd
//     handed over honestly, not at all, as another kind of descriptor,
//     under another number, or with a second descriptor;
//   - the server's I/O-thread turn on the socket, a worker's drain of the
//     ring, the client reading its replies, a scribble on the request
//     ring, a hang-up.
// Checks: no crash or sanitizer report; every reply the server wrote
// decodes on the client (unless the input scribbled on the ring); the
// process holds as many descriptors after the input as before; each input
// is bounded (no waits on the peer beyond the 2 ms memfd wait).
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
#include "transports/local/server_fuzz_client.h"
#include "transports/local/server_fuzz_common.h"

namespace {

using namespace ::lpc::local;
using namespace ::lpc::local::fuzz;

constexpr int kMaxSteps = 64;

void SendControl(Input& in, FuzzClient& client) {
  const std::string p = MakeControlPacket(in, client.memfds_sent());
  std::vector<UniqueFd> owned;
  std::vector<int> fds;
  const uint8_t count = in.Byte();
  if (count >= 240) {
    // A flood: up to SCM_MAX_FD (253) copies of one descriptor.
    UniqueFd fd = MakePeerFd(in, client.sock());
    if (fd) fds.assign(count < 253 ? count : 253, fd.get());
    SendRaw(client.sock(), p, fds);
    return;
  }
  for (int n = count % 8; n > 0; --n) {
    UniqueFd fd = MakePeerFd(in, client.sock());
    if (!fd) continue;
    fds.push_back(fd.get());
    owned.push_back(std::move(fd));
  }
  SendRaw(client.sock(), p, fds);  // A full socket drops it: fine.
}

void SendRecord(Input& in, FuzzClient& client) {
  client.SetHandOver(static_cast<MemfdHandOver>(
                         in.Byte() % static_cast<int>(MemfdHandOver::kCount)),
                     &in);
  OutgoingMessage m;
  const uint8_t type = in.Byte();
  static constexpr MessageType kTypes[] = {
      MessageType::kRequest, MessageType::kOneway, MessageType::kBind,
      MessageType::kCancel, MessageType::kReply};
  m.type = type < 240 ? kTypes[type % 5] : static_cast<MessageType>(type);
  m.message_id = (type & 1) ? in.U64() : in.Byte() % 8;
  m.interface_slot = in.Byte() % 3;
  m.method_id = in.Byte() % 7;
  m.flags = in.Byte() % 4 == 0 ? kFlagMetadata : 0;
  std::string payload;
  if (!MakeStreamRecord(type, in, &m.type, &payload)) {
    payload =
        m.type == MessageType::kBind ? MakeBindPayload(in) : MakePayload(in);
  }
  m.payload = payload;
  // A full ring or socket refuses it: fine.
  if (absl::StatusOr<bool> sent = client.ep().TrySend(m); sent.ok() && *sent) {
    client.ep().Flush();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lpc::Dispatcher* dispatcher = TestDispatcher();
  const int fds_before = CountOpenFds();
  {
    Input in(data, size);
    const uint8_t setup = in.Byte();
    const LocalPortOptions options =
        SmallPortOptions((setup & 1) ? 4096 : 0);
    internal::ServerFuzzPeer server(options, dispatcher);
    absl::StatusOr<std::unique_ptr<FuzzClient>> made =
        FuzzClient::Connect(server, options.max_inline_record);
    if (!made.ok()) {
      std::fprintf(stderr, "control_path_fuzzer: connect: %s\n",
                   made.status().ToString().c_str());
      std::abort();
    }
    FuzzClient& client = **made;
    const std::shared_ptr<internal::Connection>& c = client.conn();
    bool scribbled = false;
    for (int step = 0; step < kMaxSteps && in.left() > 0; ++step) {
      switch (in.Byte() % 9) {
        case 0:
        case 1:
          SendControl(in, client);
          break;
        case 2:
          server.OnSocketReadable(c);
          break;
        case 3:
        case 4:
          SendRecord(in, client);
          break;
        case 5:
          server.Drain(c);
          break;
        case 6: {
          size_t replies = 0;
          absl::Status s = client.ReadReplies(&replies);
          if (!s.ok() && !scribbled) {
            std::fprintf(stderr,
                         "control_path_fuzzer: the server wrote a reply its "
                         "client cannot read: %s\n",
                         s.ToString().c_str());
            std::abort();
          }
          break;
        }
        case 7: {  // Scribble on the request ring's slots.
          const SectionLayout& l = client.layout();
          const uint64_t span = l.reply_ring_offset - l.request_ring_offset;
          client.section()[l.request_ring_offset + in.U16() % span] =
              static_cast<std::byte>(in.Byte());
          scribbled = true;
          break;
        }
        default:
          ::shutdown(client.sock(), SHUT_RDWR);  // Hang up.
          break;
      }
    }
    // The server reads what is left, then ends the connection.
    server.OnSocketReadable(c);
    server.Drain(c);
    server.Close(c);
  }  // The client, the server and every descriptor they hold go here.
  ExpectFdCount("control_path_fuzzer", fds_before);
  return 0;
}
