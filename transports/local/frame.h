// The frame codec: the records that travel through the rings, and the
// packets that travel over the control socket.
//
// Every wire id of the local transport is declared here, once, with an
// explicit number; numbers are never reused or renumbered.
//
// A ring record is a 48-byte FrameHeader followed by the inline payload (if
// payload_mode is kInline). With 64-byte slots, a header and up to 16 bytes
// of payload share one cache line.
//
// DecodeFrame validates every header field of a record that has already
// been copied to private memory; a record that breaks any rule is DATA_LOSS
// naming the field.
//
// Thread safety: free functions are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_FRAME_H_
#define LPC_TRANSPORTS_LOCAL_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lpc::local {

// --- Ring records ---------------------------------------------------------

enum class MessageType : uint8_t {
  kRequest = 1,   // client -> server: call a method, expects a kReply
  kReply = 2,     // server -> client: answers message_id
  kOneway = 3,    // client -> server: call a method, no reply
  kCancel = 4,    // client -> server: cancel call message_id
  kBind = 5,      // client -> server: bind an interface; payload BindRequest
  kBindReply = 6, // server -> client: answers a kBind; interface_slot set
  // Streams (docs/local-transport.md, "Streams"); message_id is the stream
  // id, never 0.
  kStreamOpen = 7,     // client -> server: opens a stream on a method, like
                       // kRequest; payload StreamOpenBody [+ metadata]
  kStreamMessage = 8,  // either way: one message of the stream
  kHalfClose = 9,      // client -> server: the client's flow ends
  kStreamFinish = 10,  // server -> client: final status [+ metadata]
  kWindowUpdate = 11,  // either way: payload WindowBody
  // Next: 12.
};

enum class PayloadMode : uint8_t {
  kInline = 0,    // payload follows the header in the record
  kDataArea = 1,  // payload at payload_ref in the sender's data-area half
  kMemfd = 2,     // payload in sealed memfd number payload_ref (control socket)
};

// Flag bits of FrameHeader::flags.
inline constexpr uint16_t kFlagNone = 0;
// kRequest, kOneway, kReply, kStreamOpen (after its StreamOpenBody),
// kStreamMessage (from the server), kStreamFinish: the payload starts with
// a metadata block (metadata.h).
inline constexpr uint16_t kFlagMetadata = 1;
// kRequest, kOneway, kReply with a message id: the message's `buffer` field
// travels beside it, as a sealed memfd in a kBuffer control packet sent
// before the record (docs/local-transport.md, "Buffers").
inline constexpr uint16_t kFlagBuffer = 2;
inline constexpr uint16_t kFlagKnownMask = kFlagMetadata | kFlagBuffer;

struct FrameHeader {
  uint32_t record_size;     // bytes of this record: header + inline payload
  uint8_t type;             // MessageType
  uint8_t payload_mode;     // PayloadMode
  uint16_t flags;           // kFlag* bits; unknown bits are rejected
  uint64_t message_id;      // chosen by the client; replies echo it
  int64_t deadline_ns;      // kRequest/kOneway: absolute CLOCK_MONOTONIC ns,
                            // 0 = none; otherwise 0
  uint32_t interface_slot;  // kRequest/kOneway: slot from a kBindReply
  uint32_t method_id;       // kRequest/kOneway: method ordinal
  uint32_t status_code;     // kReply/kBindReply: absl::StatusCode (0..16);
                            // a non-OK reply's payload is the message text
  uint32_t payload_length;  // payload bytes
  uint32_t payload_ref;     // kDataArea: byte offset; kMemfd: memfd number
  uint32_t handle_count;    // kRequest/kOneway/kReply: descriptors in the
                            // message's handle table, sent in a kHandles
                            // packet (<= kMaxHandlesHardLimit); else 0
};
static_assert(sizeof(FrameHeader) == 48);
static_assert(alignof(FrameHeader) == 8);
static_assert(std::is_trivially_copyable_v<FrameHeader>);
static_assert(std::is_standard_layout_v<FrameHeader>);

inline constexpr uint32_t kFrameHeaderSize = sizeof(FrameHeader);

// Most descriptors one message may carry, whatever the options say: the
// kernel's SCM_MAX_FD, the most one SCM_RIGHTS message holds.
inline constexpr uint32_t kMaxHandlesHardLimit = 253;

// Limits the receiver applies while decoding.
struct FrameLimits {
  // Largest payload in any mode. Default: 64 MiB.
  uint64_t max_payload = uint64_t{64} << 20;
};

// Validates a record copied out of a ring and returns its header. For
// kInline the payload is record.subspan(kFrameHeaderSize).
absl::StatusOr<FrameHeader> DecodeFrame(absl::Span<const std::byte> record,
                                        const FrameLimits& limits);

// Whether a message type may travel client->server, and server->client
// (kStreamMessage and kWindowUpdate travel both ways).
bool IsClientToServer(MessageType type);
bool IsServerToClient(MessageType type);

// kStreamOpen's payload starts with this: the client's window for the
// server-to-client flow (both fields >= 1).
struct StreamOpenBody {
  uint32_t window_messages;
  uint32_t reserved;  // 0
  uint64_t window_bytes;
};
static_assert(sizeof(StreamOpenBody) == 16);
static_assert(std::is_trivially_copyable_v<StreamOpenBody>);

// kWindowUpdate's payload (exactly this, inline).
inline constexpr uint32_t kWindowCredits = 0;   // the reader took these
inline constexpr uint32_t kWindowAnnounce = 1;  // the server's window
struct WindowBody {
  uint32_t messages;
  uint32_t kind;  // kWindowCredits or kWindowAnnounce
  uint64_t bytes;
};
static_assert(sizeof(WindowBody) == 16);
static_assert(std::is_trivially_copyable_v<WindowBody>);

// Encode and decode the two bodies. Decoding checks the size and the
// fixed fields (reserved 0, known kind, a nonzero window) and is DATA_LOSS
// naming what is wrong; `rest` receives what follows a StreamOpenBody.
std::string EncodeStreamOpenBody(uint32_t window_messages,
                                 uint64_t window_bytes);
absl::StatusOr<StreamOpenBody> DecodeStreamOpenBody(std::string_view payload,
                                                    std::string_view* rest);
std::string EncodeWindowBody(uint32_t kind, uint32_t messages, uint64_t bytes);
absl::StatusOr<WindowBody> DecodeWindowBody(std::string_view payload);

// --- Control-socket packets -----------------------------------------------
//
// The control socket is SOCK_SEQPACKET, so each packet arrives whole. Every
// packet starts with ControlHeader; the body depends on the type.

enum class ControlType : uint16_t {
  kHello = 1,      // client -> server, first packet: HelloBody
  kWelcome = 2,    // server -> client: WelcomeBody + fds [section, doorbell]
  kRefused = 3,    // server -> client: status code + message; then close
  kPayloadFd = 4,  // either way: PayloadFdBody + fd [payload memfd]
  kGoodbye = 5,    // either way: status code + message (reason); then close
  kCancel = 6,     // client -> server: CancelBody; no fds
  kHandles = 7,    // either way: HandlesBody + fds [the handle table]
  kBuffer = 8,     // either way: BufferBody + fd [a sealed buffer memfd]
  kPool = 9,        // c->s: PoolBody + fd [the pool memfd]; s->c: PoolBody
  kPoolBuffer = 10,  // either way: PoolBufferBody, no fd
  kPoolReturn = 11,  // either way: PoolReturnBody + chunk indexes, no fd
  // Next: 12.
};

inline constexpr uint32_t kControlMagic = 0x4C504331;  // "LPC1"
inline constexpr uint32_t kProtocolVersion = 1;

struct ControlHeader {
  uint32_t magic;    // kControlMagic
  uint16_t type;     // ControlType
  uint16_t version;  // kProtocolVersion
};
static_assert(sizeof(ControlHeader) == 8);
static_assert(std::is_trivially_copyable_v<ControlHeader>);

struct HelloBody {
  uint32_t max_message_size_kib;  // the client's limit, informational
  uint32_t reserved;
};
static_assert(sizeof(HelloBody) == 8);

// The section geometry, as sent in kWelcome (see section.h).
struct WelcomeBody {
  uint32_t request_slots;
  uint32_t reply_slots;
  uint64_t c2s_data_bytes;
  uint64_t s2c_data_bytes;
  uint32_t max_record_slots;
  uint32_t server_max_message_kib;  // the server's payload limit in KiB
  uint64_t section_size;            // must equal the client's ComputeLayout
};
static_assert(sizeof(WelcomeBody) == 40);
static_assert(std::is_trivially_copyable_v<WelcomeBody>);

struct PayloadFdBody {
  uint32_t memfd_number;  // sequence number per direction, from 0
  uint32_t reserved;
  uint64_t length;        // payload bytes (the memfd may be rounded up)
};
static_assert(sizeof(PayloadFdBody) == 16);

struct StatusBody {  // kRefused and kGoodbye; followed by message bytes
  uint32_t status_code;
  uint32_t message_length;
};
static_assert(sizeof(StatusBody) == 8);

// kCancel: cancel the call `message_id` of this connection. The control
// socket carries it because the server always reads that socket, even while
// it has stopped reading the client's request ring (back-pressure). The
// ring's MessageType::kCancel record means the same and remains the
// fallback when the socket would block.
struct CancelBody {
  uint64_t message_id;  // a kRequest's id; never 0
};
static_assert(sizeof(CancelBody) == 8);
static_assert(std::is_trivially_copyable_v<CancelBody>);

// kHandles: the handle table of the message `message_id` (a kRequest's,
// kOneway's, or the kReply to request `message_id`), `count` descriptors
// in table order, sent before the record is published.
struct HandlesBody {
  uint64_t message_id;  // never 0
  uint32_t count;       // descriptors carried, 1..kMaxHandlesHardLimit
  uint32_t reserved;    // 0
};
static_assert(sizeof(HandlesBody) == 16);
static_assert(std::is_trivially_copyable_v<HandlesBody>);

// Encodes a kHandles packet (header + HandlesBody).
std::string EncodeHandlesPacket(uint64_t message_id, uint32_t count);
// Decodes a kHandles body: exactly sizeof(HandlesBody) bytes, reserved 0,
// a non-zero id, and a count in [1, kMaxHandlesHardLimit] equal to
// `fds_received`; else DATA_LOSS naming what is wrong.
absl::StatusOr<HandlesBody> DecodeHandlesBody(absl::Span<const std::byte> body,
                                              size_t fds_received);

// kBuffer: the `buffer` field `field_number` of the message `message_id`
// (a kRequest's, kOneway's, or the kReply to request `message_id`): bytes
// [offset, offset + length) of the one memfd carried, which is sealed
// against writes, shrinking and growing. Sent before the record, whose
// flags carry kFlagBuffer.
struct BufferBody {
  uint64_t message_id;    // never 0
  uint32_t field_number;  // a protobuf field number, 1..2^29-1
  uint32_t reserved;      // 0
  uint64_t offset;
  uint64_t length;        // >= 1; offset + length does not overflow
};
static_assert(sizeof(BufferBody) == 32);
static_assert(std::is_trivially_copyable_v<BufferBody>);

// Encodes a kBuffer packet (header + BufferBody).
std::string EncodeBufferPacket(const BufferBody& b);
// Decodes a kBuffer body: exactly sizeof(BufferBody) bytes, reserved 0, a
// non-zero id, a valid field number, a non-empty range that does not
// overflow, and exactly one descriptor received; else DATA_LOSS naming
// what is wrong.
absl::StatusOr<BufferBody> DecodeBufferBody(absl::Span<const std::byte> body,
                                            size_t fds_received);

// kPool: the same-uid buffer pool (docs/local-transport.md, "The same-uid
// buffer pool"): one memfd of chunk_bytes x chunk_count bytes.
struct PoolBody {
  uint64_t chunk_bytes;  // a multiple of 4096, >= 4096
  uint32_t chunk_count;  // even, 2..kMaxPoolChunks
  uint32_t reserved;     // 0
};
static_assert(sizeof(PoolBody) == 16);
inline constexpr uint32_t kMaxPoolChunks = 1024;
// The most indexes one kPoolReturn carries.
inline constexpr uint32_t kMaxPoolReturns = 512;

// kPoolBuffer: the `buffer` field `field_number` of message `message_id`
// is bytes [0, length) of pool chunk `chunk`, lent to the receiver.
struct PoolBufferBody {
  uint64_t message_id;    // never 0
  uint32_t field_number;  // 1..2^29-1
  uint32_t chunk;
  uint64_t length;        // >= 1
};
static_assert(sizeof(PoolBufferBody) == 24);

struct PoolReturnBody {
  uint32_t count;     // 1..kMaxPoolReturns u32 chunk indexes follow
  uint32_t reserved;  // 0
};
static_assert(sizeof(PoolReturnBody) == 8);

std::string EncodePoolPacket(const PoolBody& b);
// Exactly sizeof(PoolBody) bytes, reserved 0, a layout as above and
// `fds_received` descriptors equal to `want_fds`; else DATA_LOSS.
absl::StatusOr<PoolBody> DecodePoolBody(absl::Span<const std::byte> body,
                                        size_t fds_received, size_t want_fds);
std::string EncodePoolBufferPacket(const PoolBufferBody& b);
// Exactly sizeof(PoolBufferBody) bytes, id not 0, a valid field number,
// length >= 1, no descriptor; else DATA_LOSS. The chunk is the pool's to
// check.
absl::StatusOr<PoolBufferBody> DecodePoolBufferBody(
    absl::Span<const std::byte> body, size_t fds_received);
// At most kMaxPoolReturns indexes.
std::string EncodePoolReturnPacket(absl::Span<const uint32_t> chunks);
// Exactly 8 + 4 x count bytes, count 1..kMaxPoolReturns, reserved 0, no
// descriptor; else DATA_LOSS.
absl::StatusOr<std::vector<uint32_t>> DecodePoolReturnBody(
    absl::Span<const std::byte> body, size_t fds_received);

// Builds a packet: header + body bytes.
std::string EncodeControl(ControlType type, const void* body, size_t body_size,
                          std::string_view trailer = {});

// Parses a packet's header; returns the type and the body span.
absl::StatusOr<ControlType> DecodeControlHeader(
    absl::Span<const std::byte> packet, absl::Span<const std::byte>* body);

// Encodes/decodes kRefused and kGoodbye bodies. The message is capped at
// 1024 bytes; the code must be a canonical status code.
std::string EncodeStatusPacket(ControlType type, const absl::Status& status);
absl::Status DecodeStatusBody(absl::Span<const std::byte> body);

// Encodes a kCancel packet (header + CancelBody) for `message_id`.
std::string EncodeCancelPacket(uint64_t message_id);
// Decodes a kCancel body: exactly sizeof(CancelBody) bytes and a non-zero
// id, else DATA_LOSS naming what is wrong.
absl::StatusOr<uint64_t> DecodeCancelBody(absl::Span<const std::byte> body);

// The bind request payload (kBind): uuid, version and interface name.
struct BindRequest {
  std::string full_name;
  std::string uuid;
  uint32_t major = 0;
  uint32_t minor = 0;
};
std::string EncodeBindRequest(const BindRequest& r);
absl::StatusOr<BindRequest> DecodeBindRequest(std::string_view bytes);

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_FRAME_H_
