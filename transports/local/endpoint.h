// Endpoint: one side's view of a connection's shared section. It produces
// into its outbound ring and data-area half and consumes the peer's
// inbound ring and half, choosing a payload mode per message:
//
//   mode 1 (inline):    header + payload fit in max_inline_record bytes
//   mode 2 (data area): payload copied into the sender's data-area half
//   mode 3 (memfd):     payload in its own sealed memfd, sent over the
//                       control socket via a MemfdPort before the record
//
// Receive() is the consumer code the fuzzer drives: every record is copied
// out of shared memory, decoded and validated (frame.h), its payload copied
// out (validating data-area offsets and memfd seals and size), and only then
// returned. Any violation is a non-OK status; the caller then drops the
// peer. The endpoint never asserts on shared contents.
//
// Thread safety: sending (TrySend/Flush) and receiving (Receive/
// ReleaseReceived) are independent; each must be serialised by the caller.
#ifndef LPC_TRANSPORTS_LOCAL_ENDPOINT_H_
#define LPC_TRANSPORTS_LOCAL_ENDPOINT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/message.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/data_area.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/memfd.h"
#include "transports/local/ring.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local {

enum class Side { kClient, kServer };

// A BUFFER packet received: its body and its memfd (whose kind the reader
// of the socket has checked: F_GET_SEALS answered).
struct ReceivedBuffer {
  BufferBody body;
  UniqueFd fd;
  // Instead of `fd`: a chunk of the connection's same-uid buffer pool,
  // already checked and borrowed (POOL_BUFFER).
  std::optional<BufferView> pooled;
};

// Carries mode-3 payload memfds over the control socket.
class MemfdPort {
 public:
  virtual ~MemfdPort() = default;
  // Sends `fd` as payload memfd `number` holding `length` bytes.
  virtual absl::Status SendPayloadFd(uint32_t number, uint64_t length,
                                     int fd) = 0;
  // Returns payload memfd `number` (they arrive in order), waiting at most
  // until `deadline`. The endpoint validates it before mapping.
  virtual absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number,
                                                 uint64_t length,
                                                 absl::Time deadline) = 0;
  // Sends the handle table of message `message_id` (a HANDLES packet).
  // Default: not supported (FAILED_PRECONDITION).
  virtual absl::Status SendHandles(uint64_t message_id,
                                   absl::Span<const int> fds);
  // Returns the handle table of message `message_id`, which its record
  // announces with `count` descriptors, waiting at most until `deadline`
  // (DEADLINE_EXCEEDED if it has not come). With `count` 0, checks that no
  // table for `message_id` waits. A table of another size, or one that
  // waits for a record announcing none, is a handle error
  // (handle_errors.h). Default: none ever arrives.
  virtual absl::StatusOr<std::vector<UniqueFd>> TakeHandles(
      uint64_t message_id, uint32_t count, absl::Time deadline);
  // Sends a message's buffer field beside it (a BUFFER packet with `fd`,
  // a sealed memfd). Default: not supported (FAILED_PRECONDITION).
  virtual absl::Status SendBuffer(const BufferBody& body, int fd);
  // Sends a message's buffer field as a chunk of the connection's
  // same-uid buffer pool (a POOL_BUFFER packet), marking it on loan.
  // Default: not supported (FAILED_PRECONDITION).
  virtual absl::Status SendPoolBuffer(uint64_t message_id,
                                      uint32_t field_number, Buffer* chunk);
  // Returns the BUFFER packet of message `message_id`, waiting at most
  // until `deadline` (DEADLINE_EXCEEDED if it has not come). Default: none
  // ever arrives (the buffer error kBufferMissing).
  virtual absl::StatusOr<ReceivedBuffer> TakeBuffer(uint64_t message_id,
                                                    absl::Time deadline);
};

// A MemfdPort over a control socket that carries nothing else (tests and
// the fuzzer); stage-2 connections implement their own.
class SocketMemfdPort : public MemfdPort {
 public:
  explicit SocketMemfdPort(int socket) : socket_(socket) {}
  absl::Status SendPayloadFd(uint32_t number, uint64_t length, int fd) override;
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t length,
                                         absl::Time deadline) override;

 private:
  int socket_;
};

// The budget and counters for the mode-3 payload memfds that senders keep
// for reuse; shared by the endpoints of one server (or one channel).
//
// Creating a memfd and filling it costs the kernel a fresh page per 4 KiB
// (allocated, zeroed, charged, and freed again when the last descriptor
// closes): for 16 MiB about twice the time of the copy itself. A sender
// therefore keeps the memfds it sent, and writes a later payload of the
// same size class (PayloadMemfdSize) into one that the receiver has
// finished reading: the receiver's consumer index on the ring has passed
// the record that carried it (it reads the memfd, with pread, before it
// consumes the record, and releases its index at once after such a
// record). A kept memfd is only ever sent to the peer it was first sent
// to, so nothing crosses between clients; a receiver that lies about its
// index can only garble payloads addressed to itself.
struct PayloadMemfdPool {
  // Each kept memfd holds a descriptor: at most this many per endpoint,
  // and kMaxKeptPerPool in all, whatever the byte budget.
  static constexpr size_t kMaxKeptPerEndpoint = 8;
  static constexpr uint64_t kMaxKeptPerPool = 64;

  explicit PayloadMemfdPool(uint64_t budget_bytes) : budget(budget_bytes) {}
  // Most bytes of memfd size kept, over all endpoints using the pool.
  const uint64_t budget;
  std::atomic<uint64_t> kept_bytes{0};
  std::atomic<uint64_t> kept_count{0};
  std::atomic<uint64_t> made{0};    // New memfds created for payloads.
  std::atomic<uint64_t> reused{0};  // Payloads written into a kept one.
};

struct EndpointOptions {
  // Largest record (header + inline payload) sent inline, in bytes; clamped
  // to the geometry's max_record_slots * 64.
  // Default: 1024.
  uint32_t max_inline_record = 1024;
  // Largest payload accepted in any mode, either way.
  // Default: 64 MiB.
  uint64_t max_payload = uint64_t{64} << 20;
  // Payloads above this (but within max_payload) are not copied out: the
  // message arrives with `oversized` set and an empty payload, so that the
  // receiver can refuse that one call and keep the connection. 0 = same as
  // max_payload.
  // Default: 0.
  uint64_t accept_payload = 0;
  // How long Receive waits for a mode-3 memfd whose record has arrived.
  // Default: 1 second.
  absl::Duration memfd_wait = absl::Seconds(1);
  // Never wait for a mode-3 memfd (the server): Receive asks the MemfdPort
  // with the deadline InfinitePast, and if the memfd has not arrived
  // (DEADLINE_EXCEEDED) it leaves the record unread in the ring, returns
  // nullopt and sets memfd_parked(); the next Receive reads that record
  // again. The caller decides how long a record may stay parked.
  // Default: false.
  bool park_missing_memfd = false;
  // Doorbell of the peer when it is the server (an eventfd; -1 = use the
  // futex words). Not owned.
  int peer_eventfd = -1;
  // Rings the server's doorbell instead of writing `peer_eventfd` directly
  // (clients; see internal/client_doorbell.h). Not owned.
  // Default: null.
  PeerDoorbell* peer_doorbell = nullptr;
  // Most descriptors a received message may announce (handle_count); more
  // is the handle error too_many_handles.
  // Default: 16.
  uint32_t max_handles = 16;
  // Where a large payload read from the data area or a memfd gets its
  // buffer (see buffer_cache.h); null = a new string each time. Not owned.
  // Default: null.
  BufferCache* buffers = nullptr;
  // Where sent payload memfds are kept for reuse (see PayloadMemfdPool);
  // null = a new memfd per payload. Not owned.
  // Default: null.
  PayloadMemfdPool* memfd_pool = nullptr;
  // A kept memfd unused this long is dropped (at the next send, or at
  // TrimKeptMemfds).
  // Default: 1 second.
  absl::Duration memfd_keep_idle = absl::Seconds(1);
  // Budgets on payload memfds sent and not yet collected (their records
  // not yet consumed by the peer), in bytes of memfd: this endpoint's, and
  // optionally a counter shared with other endpoints and its limit. While
  // a payload would pass one, TrySend places nothing and returns false, as
  // for a full ring (one memfd is always allowed when none is out). 0 = no
  // limit. Not owned.
  // Default: none.
  // Asked, before a payload of more than 64 KiB is copied in, whether it
  // may be: false makes it arrive as `over_budget`, not copied (the
  // receiver refuses that one call). Null = always.
  // Default: null.
  std::function<bool(uint64_t)> admit_payload;
  uint64_t max_uncollected_memfd_bytes = 0;
  std::atomic<uint64_t>* shared_uncollected_memfd_bytes = nullptr;
  uint64_t max_shared_uncollected_memfd_bytes = 0;
};

struct OutgoingMessage {
  MessageType type = MessageType::kRequest;
  uint64_t message_id = 0;
  uint32_t interface_slot = 0;
  uint32_t method_id = 0;
  int64_t deadline_ns = 0;
  uint32_t status_code = 0;
  uint16_t flags = 0;  // kFlag* bits (frame.h).
  std::string_view payload;
  // The zero-copy path (docs/zero-copy.md): a message that writes itself
  // straight into the ring slot, the data area or the payload memfd, after
  // `payload` (which then holds only a metadata block, if any). Its buffer
  // field, if it has one, is appended as an ordinary field. Not owned.
  const MessageWriter* body = nullptr;
  // The body's buffer field as a sealed memfd (kRequest, kOneway, kReply;
  // message_id != 0): sent in a BUFFER packet before the record is
  // published, and not appended to the bytes. Not owned.
  const ::lpc::internal::SealedBuffer* sealed_buffer = nullptr;
  // Instead of `sealed_buffer`: the body's buffer field is this chunk of
  // the connection's same-uid buffer pool, sent in a POOL_BUFFER packet
  // (MemfdPort::SendPoolBuffer). Not owned.
  Buffer* pool_buffer = nullptr;
  uint32_t buffer_field = 0;
  // The handle table (kRequest, kOneway, kReply; message_id != 0): sent in
  // a HANDLES packet before the record is published. Not owned.
  absl::Span<const int> handles;
};

// Makes a shared Buffer ready to travel beside a message
// (docs/local-transport.md, "Buffers"): seals it (BufferAccess::Seal: our
// writable mapping goes, then F_SEAL_WRITE and the others), then gives
// every page of its range that was never written a zeroed page
// (fallocate, allowed under the seals), so that the receiver, which
// refuses holes, takes it. Consumes `*b` either way.
absl::StatusOr<::lpc::internal::SealedBuffer> SealForSending(Buffer* b);

// Appends a length-delimited field `field_number` holding `bytes` to
// `*out` (protobuf's wire format): a buffer field sent as bytes.
void AppendBytesField(uint32_t field_number, std::string_view bytes,
                      std::string* out);

// The payload's length: `payload`, then `body` and its buffer field.
uint64_t PayloadLength(const OutgoingMessage& m);
// Writes the PayloadLength(m) bytes of the payload at `dst`.
void WritePayload(const OutgoingMessage& m, uint8_t* dst);

struct IncomingMessage {
  FrameHeader header;
  std::string payload;
  bool oversized = false;  // payload_length > accept_payload; not copied.
  bool over_budget = false;  // admit_payload said no; not copied.
  // The handle table its record announced (close-on-exec descriptors).
  std::vector<UniqueFd> handles;
  // Its buffer field, if it came beside it (kFlagBuffer): a read-only
  // view of the sender's sealed memfd.
  std::optional<AttachedBuffer> buffer;
  MessageType type() const { return static_cast<MessageType>(header.type); }
  PayloadMode mode() const {
    return static_cast<PayloadMode>(header.payload_mode);
  }
};

class Endpoint {
 public:
  // `base` maps `layout.total_size` bytes whose header has been validated
  // (or initialised). `memfds` is not owned and outlives the endpoint.
  Endpoint(Side side, std::byte* base, const SectionLayout& layout,
           MemfdPort* memfds, EndpointOptions options);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // --- Sending ---
  // Places one message. Returns false if the ring has no room now (nothing
  // was placed). RESOURCE_EXHAUSTED for a payload over max_payload;
  // DATA_LOSS if the peer corrupted our ring or data-area counters.
  absl::StatusOr<bool> TrySend(const OutgoingMessage& m);
  // Makes placed messages visible; rings the doorbell if the peer sleeps.
  // Returns true if it rang.
  bool Flush();
  // Drops kept payload memfds unused for memfd_keep_idle (serialised with
  // sending). `now_ns` is MonotonicNowNs().
  void TrimKeptMemfds(int64_t now_ns);
  // Bytes of payload memfds sent whose records the peer has not consumed,
  // after forgetting those it has (serialised with sending).
  uint64_t UncollectedMemfdBytes();
  // Marks the producer as waiting for room without sleeping: the consumer
  // rings the doorbell after it frees slots. Retry TrySend once after this.
  void MarkWaitingForRoom();
  // Marks the producer as waiting for room, then sleeps until woken or
  // `timeout`. The caller retries TrySend before calling again.
  void WaitForRoom(absl::Duration timeout);

  // --- Receiving ---
  // The next message, or nullopt if none is published (or, with
  // park_missing_memfd, if the next one waits for its memfd).
  absl::StatusOr<std::optional<IncomingMessage>> Receive();
  // The last Receive stopped at a mode-3 record whose memfd has not
  // arrived (park_missing_memfd).
  bool memfd_parked() const { return memfd_parked_; }
  // Parked for the record's handle table, not its payload memfd.
  bool parked_on_handles() const { return parked_on_handles_; }
  // Parked for the record's BUFFER packet.
  bool parked_on_buffer() const { return parked_on_buffer_; }
  // Gives up the handle table held for a parked record (so that its owner
  // closes those descriptors where a blocking close hurts no one).
  std::vector<UniqueFd> TakeHeldHandles() {
    std::vector<UniqueFd> fds;
    if (held_handles_.has_value()) fds = std::move(held_handles_->second);
    held_handles_.reset();
    held_buffer_.reset();
    return fds;
  }
  // Frees consumed data-area bytes, and consumed ring slots in batches
  // (RingConsumer::ReleaseBatched: fewer than a quarter of the ring stay
  // unreleased, so a producer facing a drained ring always has room for a
  // record); wakes a producer waiting for room. Call it after every drain.
  void ReleaseReceived();
  // Waits for inbound messages: spins up to `spin_ns` while the peer runs on
  // another CPU, then sleeps on the futex at most `timeout`. Returns true if
  // something may have arrived.
  bool WaitForInbound(int64_t spin_ns, absl::Duration timeout);
  // Sleep protocol for callers that wait elsewhere (epoll on an eventfd):
  // true = the consumer is now marked sleeping and the ring was empty.
  bool PrepareToSleep() { return inbound_.PrepareToSleep(); }
  void ClearSleeping() { inbound_.ClearSleeping(); }
  bool HasInboundHint() const { return inbound_.HasPublishedHint(); }

  // Running hints (section.h RunningWord).
  void SetRunning(bool running);
  // Sets the hint to `value` (RunningValueForThisCpu() read by the caller).
  void SetRunningValue(uint32_t value);
  uint32_t PeerRunning() const;
  // The peer's `running` value from before it last cleared it (0: never).
  uint32_t PeerLastCpu() const;

  Side side() const { return side_; }
  const SectionLayout& layout() const { return layout_; }
  uint32_t inline_payload_limit() const {
    return max_inline_record_ - kFrameHeaderSize;
  }

 private:
  void WakeWaitingProducer();
  // Copies the payload out; with out == nullptr only validates and skips.
  absl::Status ReadPayload(const FrameHeader& h,
                           absl::Span<const std::byte> record,
                           std::string* out);
  // Gives `*out` a cached buffer for a large payload (options_.buffers).
  void TakeBuffer(const FrameHeader& h, std::string* out);

  // A sent payload memfd, kept for the next payload of its size.
  struct KeptMemfd {
    UniqueFd fd;
    uint64_t size = 0;
    // Our writable mapping of it, made the first time a payload is
    // written into it (the receiver reads it with pread, so the memfd
    // carries no F_SEAL_WRITE and may stay mapped here).
    Mapping map;
    // The peer has read it once its consumer index reaches this.
    uint64_t read_after = 0;
    int64_t last_used_ns = 0;
  };
  // Places `payload` in a memfd (a kept one that the peer has read, or a
  // new one), sends it, and returns the memfd's index in kept_memfds_ (or
  // -1 if it is not kept) for the caller to stamp.
  absl::StatusOr<int> SendPayloadMemfd(const OutgoingMessage& m,
                                       uint64_t length);
  // Keeps `*fd` (moving it) if the pool's budget allows, dropping this
  // endpoint's least recently used ones to make room; returns its index,
  // or -1 with `*fd` left as it was.
  int KeepMemfd(UniqueFd* fd, uint64_t size);
  void DropKeptMemfd(size_t i);
  // Whether sending a memfd payload of `payload_size` bytes now would pass
  // a budget on uncollected memfds.
  bool MemfdBudgetReached(uint64_t payload_size);

  const Side side_;
  std::byte* const base_;
  const SectionLayout layout_;
  MemfdPort* const memfds_;
  const EndpointOptions options_;
  uint32_t max_inline_record_;
  SectionControl* control_;
  uint32_t* own_running_;
  uint32_t* peer_running_;
  uint32_t* own_last_cpu_;
  uint32_t* peer_last_cpu_;

  RingProducer outbound_;
  DataAreaWriter out_data_;
  uint32_t next_out_memfd_ = 0;
  std::vector<KeptMemfd> kept_memfds_;  // Sending side.
  // Payload memfds sent and not yet collected: (the written index the
  // peer's consumer index must reach, memfd bytes), oldest first; and
  // their sum (also counted in options_.shared_uncollected_memfd_bytes).
  std::deque<std::pair<uint64_t, uint64_t>> uncollected_memfds_;
  uint64_t uncollected_memfd_bytes_ = 0;

  RingConsumer inbound_;
  DataAreaReader in_data_;
  uint32_t next_in_memfd_ = 0;
  // A memfd payload was read since the last release: the next release is
  // not batched, so that the sender may reuse that memfd.
  bool memfd_read_ = false;
  bool remaining_validated_ = false;  // Poll() done and records remain.
  bool memfd_parked_ = false;  // See memfd_parked().
  bool parked_on_handles_ = false;  // See parked_on_handles().
  bool parked_on_buffer_ = false;  // See parked_on_buffer().
  // The buffer field taken (checked and mapped) for the record at the head
  // of the ring while it parked for something else: the record, read again,
  // must name the same id.
  std::optional<std::pair<uint64_t, AttachedBuffer>> held_buffer_;
  // Takes, checks and maps the buffer field `h` announces (or holds it);
  // sets memfd_parked_ if its packet has not come and the endpoint parks.
  absl::Status TakeBufferFor(const FrameHeader& h);
  // The handle table taken for the record at the head of the ring while
  // its payload memfd had not come (parked): the record, read again, must
  // name the same id and count.
  std::optional<std::pair<uint64_t, std::vector<UniqueFd>>> held_handles_;
  // Takes the handle table `h` announces (or holds it); sets
  // memfd_parked_ if it has not come and the endpoint parks.
  absl::Status TakeHandlesFor(const FrameHeader& h);

};

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_ENDPOINT_H_
