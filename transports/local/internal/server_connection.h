// The server's state for one accepted client: its socket, section and
// endpoint, the call table (calls in flight, oneway calls, early cancels),
// the bound interface slots, the reply queue, and the payload memfds the
// client sent ahead of the records that use them.
//
// Thread safety: a Connection is shared (std::shared_ptr) by the I/O
// thread, the workers and the calls it queued. Its mutexes nest in this
// order: recv_mu, then send_mu, then state_mu, then outbox_mu; none is held
// while taking a lock of the server's (the pool's or the connection table's). recv_mu
// serialises the consumer side of `ep`, send_mu its producer side.
// `pool_entry` is the worker pool's, under its mutex.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CONNECTION_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/call_context.h"
#include "runtime/context_handle.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/budget.h"
#include "transports/local/internal/buffer_pool.h"
#include "transports/local/internal/fair_scheduler.h"
#include "transports/local/internal/fifo_queue.h"
#include "transports/local/internal/stream_table.h"
#include "transports/local/local_transport.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

// Interfaces one client may bind.
inline constexpr size_t kMaxBoundInterfaces = 256;

// Payload memfds a client may have sent but the server not yet claimed.
// A client sends a memfd just before it publishes the record that refers to
// it, and the server claims it when it consumes that record, so an honest
// client never has more than one per ring slot, plus the few its threads
// are sending at that moment.
size_t MaxStashedFds(const SectionGeometry& g);

// Early CANCELs (control packets for ids not in flight) kept per client:
// an honest client's unread requests are at most the ring's slots, and its
// calls in flight at most max_in_flight_per_connection; capped for
// memory whatever the options say. The oldest entry is evicted first.
size_t MaxEarlyCancels(const SectionGeometry& g, uint32_t max_in_flight);

// Replies this short (an error's message, say) are queued whatever the
// reply byte budgets say: the failure that replaces a reply over budget is
// one of them.
inline constexpr uint64_t kMaxBudgetFreeReply = 256;

// Descriptors a client sent (a request's handle table): closed on the
// FdCloser's thread, never where they are dropped, unless taken out.
// Move-only.
class PeerFds {
 public:
  PeerFds() = default;
  explicit PeerFds(std::vector<UniqueFd> fds) : fds_(std::move(fds)) {}
  PeerFds(PeerFds&& o) noexcept : fds_(std::move(o.fds_)) { o.fds_.clear(); }
  PeerFds& operator=(PeerFds&& o) noexcept {
    if (this != &o) {
      Close();
      fds_ = std::move(o.fds_);
      o.fds_.clear();
    }
    return *this;
  }
  ~PeerFds() { Close(); }
  bool empty() const { return fds_.empty(); }
  size_t size() const { return fds_.size(); }
  // Gives the descriptors up (to a CallContext's handle table).
  std::vector<UniqueFd> Take() { return std::exchange(fds_, {}); }
  void Close();  // On the FdCloser's thread.

 private:
  std::vector<UniqueFd> fds_;
};

struct OwnedReply {
  MessageType type;
  uint64_t message_id;
  uint32_t status_code;
  uint32_t interface_slot;
  std::string payload;
  uint16_t flags = 0;  // kFlagMetadata when the payload starts with metadata.
  // While queued: the payload's bytes against the reply budgets.
  ByteCharge charge;
  // The reply's handle table (the server's own descriptors), sent in a
  // HANDLES packet when the record is placed.
  std::vector<UniqueFd> handles;
};

class Connection;

// Closes a reply's handle table on the FdCloser's thread.
void CloseHandles(OwnedReply& r);

// A decoded call's entry in Connection::in_flight (or oneway_calls), which
// points at the call's CallContext: this erases the entry when the call's
// WorkItem goes without having run (a client closed or cut off while its
// calls were queued), so that no entry outlives its context. RunCall erases
// the entry itself and disarms this. Move-only; the moved-from one is
// disarmed.
class CallRegistration {
 public:
  CallRegistration() = default;
  CallRegistration(Connection* c, uint64_t key, bool oneway)
      : conn_(c), key_(key), oneway_(oneway) {}
  CallRegistration(CallRegistration&& o) noexcept
      : conn_(std::exchange(o.conn_, nullptr)),
        key_(o.key_),
        oneway_(o.oneway_) {}
  CallRegistration& operator=(CallRegistration&& o) noexcept {
    if (this != &o) {
      if (conn_ != nullptr) Forget();
      conn_ = std::exchange(o.conn_, nullptr);
      key_ = o.key_;
      oneway_ = o.oneway_;
    }
    return *this;
  }
  ~CallRegistration() {
    if (conn_ != nullptr) Forget();
  }
  void Disarm() { conn_ = nullptr; }

 private:
  void Forget();  // Takes Connection::state_mu if armed.

  Connection* conn_ = nullptr;  // Kept alive by the WorkItem's `conn`.
  uint64_t key_ = 0;
  bool oneway_ = false;
};

struct WorkItem {
  std::shared_ptr<Connection> conn;
  IncomingMessage msg;
  // In Connection::bound, which only grows (a deque: stable addresses) and
  // lives as long as `conn`.
  const std::string* interface_name = nullptr;
  // The interface resolved when it was bound (owned by the Server), and the
  // method; null method: the interface has no such method.
  const BoundInterface* iface = nullptr;
  const BoundInterface::Method* method = nullptr;
  // A STREAM_OPEN: the stream that RunCall hands to Dispatcher::StartCall;
  // with unary_over_stream, a plain unary method's stream whose request
  // (msg.payload) RunCall dispatches.
  std::shared_ptr<ConnStream> stream;
  bool unary_over_stream = false;
  std::unique_ptr<CallContext> ctx;
  // The request's handle table, until RunCall hands it to `ctx`.
  PeerFds handles;
  uint64_t oneway_serial = 0;  // Key in Connection::oneway_calls; 0 = none.
  // The request's bytes against the request budgets, from its decoding
  // until its handler returns.
  ByteCharge charge;
  // Last: destroyed first, while `ctx` and `conn` still live.
  CallRegistration registration;
};

struct CallRecord {
  // Valid while the entry exists: the entry is erased (under state_mu)
  // before the context dies. Its CancelState is made only when a cancel
  // needs it (cancel_state(), under state_mu).
  CallContext* ctx = nullptr;
  bool answered = false;  // Shutdown answered it; drop the handler's reply.
};

// What a request's registration found (Connection::Register).
enum class Registered {
  kOk,               // In the call table; run it.
  kCancelledEarly,   // Its CANCEL came first: drop it, no reply.
  kNotBound,         // Its interface slot is not bound.
  kDuplicateId,      // A call with its id is in flight.
};

class Connection : public MemfdPort {
 public:
  Connection() = default;
  // The socket and the stashed payload fds close on the FdCloser's thread:
  // closing the socket drops the fds the client queued on it, and any of
  // those may block in close().
  ~Connection() override;
  // Keeps alive what the endpoint and the byte charges below point to (the
  // server's buffer cache, memfd pool and budgets: ServerHandshakeOptions)
  // while the connection lives, which may be past its server (a handler
  // holding a stream). First, so that it goes last.
  std::shared_ptr<const void> server_state;
  uint64_t id = 0;
  UniqueFd sock;
  UniqueFd eventfd;
  Mapping map;
  SectionLayout layout;
  PeerCredentials creds;
  PeerIdentity peer;
  std::unique_ptr<Endpoint> ep;
  // The client's context handles: attached to every call's context, run
  // down when the connection closes (LocalServer::Close). Its size() is the
  // connection's open context count.
  std::shared_ptr<ContextTable> contexts;

  // The same-uid buffer pool (docs/local-transport.md, "The same-uid
  // buffer pool"): set once, by the I/O thread when it accepts the
  // client's POOL packet, and never changed after; null without one.
  BufferPool* pool() const { return pool_.load(std::memory_order_acquire); }
  void SetPool(std::shared_ptr<BufferPool> pool) {
    pool_owner_ = std::move(pool);
    pool_.store(pool_owner_.get(), std::memory_order_release);
  }
  bool pool_offered = false;  // I/O thread: a POOL packet came.

  std::atomic<bool> closed{false};
  std::atomic<bool> hung_up{false};  // Socket gone; oneway calls still run.
  std::atomic<int64_t> hung_up_ns{0};  // When (monotonic), for the bound.
  std::atomic<bool> queued{false};  // In the ready list or being drained.
  std::atomic<bool> spinning{false};  // A worker spins for its next call.
  // Calls in a row after which the client was found sharing its worker's
  // CPU (AfterCall).
  std::atomic<int> colocated_calls{0};
  std::atomic<int> handlers{0};     // Handlers running for this client.
  // Calls (oneway ones too) decoded from the ring and not yet finished:
  // queued in the pool or running. Bounded by max_in_flight_per_connection.
  std::atomic<uint32_t> pending_calls{0};
  // For the introspection service (relaxed): calls and streams started,
  // payload bytes of the records read from the ring and of the replies and
  // stream messages sent; and when it joined the table (Unix ms).
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  int64_t connected_unix_ms = 0;  // Set before it joins the table.

  // Byte budgets of this client (limits set on accept): decoded requests
  // queued or running, and replies queued for its full reply ring; and the
  // server's, shared by every connection.
  Budget request_bytes;
  Budget reply_bytes;
  ServerBudgets* budgets = nullptr;
  // I/O thread only: when it was accepted, and whether the client has read
  // its WELCOME (the handshake timeout drops it otherwise).
  int64_t accepted_ns = 0;
  bool welcome_read = false;
  // A memfd-mode record at the head of the ring waits for its payload
  // memfd (Endpoint::memfd_parked): since when (monotonic ns; 0 = none).
  // The ring is not read meanwhile; the PAYLOAD_FD's arrival schedules the
  // connection, and a record parked longer than `memfd_wait_ns` cuts the
  // client off (the tick). Written under recv_mu, read anywhere.
  std::atomic<int64_t> memfd_parked_ns{0};
  int64_t memfd_wait_ns = 500 * 1000 * 1000;
  // The parked record waits for its handle table (HANDLES), not a memfd.
  std::atomic<bool> parked_on_handles{false};
  // The same, for its BUFFER packet.
  std::atomic<bool> parked_on_buffer{false};
  // The server's epoll set, in which `sock` is watched with this tag; the
  // outbox adds EPOLLOUT while it holds packets. -1 = not watched.
  int epoll_fd = -1;
  uint64_t epoll_tag = 0;

  // The pool's view of this client: its decoded calls waiting for a
  // worker and its scheduling state. Guarded by the pool's mutex, and
  // reached only through WorkerPool::EntryLocked.
  struct PoolEntry : FairScheduler::Client {
    FifoQueue<WorkItem> calls;  // No allocation per call, unlike a deque.
  };
  PoolEntry pool_entry;
  // Handler and ring-reading time charged while clients compete
  // (accumulated by workers, read by the tick).
  std::atomic<int64_t> busy_ns{0};

  // Doorbell accounting, for the storm check in the tick: every doorbell
  // the poller saw, every record consumed, every time the server asked for
  // a doorbell when reply slots free up. An honest client rings at most
  // once per record it publishes or per such request.
  std::atomic<uint64_t> doorbells{0};
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> room_requests{0};
  // The current one-second window's starting counts (I/O thread only).
  int64_t window_start_ns = 0;
  uint64_t window_doorbells = 0, window_records = 0, window_room = 0;

  // Serialises the consumer side of `ep` (Receive, ReleaseReceived,
  // PrepareToSleep from a drain).
  Mutex recv_mu;

  // Serialises the producer side of `ep` and guards the reply queue.
  Mutex send_mu ABSL_ACQUIRED_AFTER(recv_mu);
  std::deque<OwnedReply> pending_replies ABSL_GUARDED_BY(send_mu);
  absl::Time pending_since ABSL_GUARDED_BY(send_mu) = absl::InfiniteFuture();
  // Size of the last reply a handler made: a hint for the next one's buffer.
  std::atomic<uint64_t> last_reply_bytes{0};

  // The call table, the bound interfaces and the memfd stash.
  Mutex state_mu ABSL_ACQUIRED_AFTER(send_mu);

  // --- Replies (send_mu) ---

  // Sends `reply` straight into the ring, or queues it (moving it out)
  // while the ring is full or others wait. Returns whether the ring's
  // doorbell woke the client; an error means the client must be cut off
  // (a bad ring, or more than `max_queued` replies waiting).
  absl::StatusOr<bool> SendReply(OwnedReply&& reply, size_t max_queued)
      ABSL_LOCKS_EXCLUDED(send_mu);
  // The zero-copy reply (a message that writes itself, no descriptors):
  // placed straight in the ring, slot, data area or memfd, only if no
  // reply is queued ahead of it and there is room now. nullopt when it did
  // not go, for any reason (the caller then sends it as an OwnedReply,
  // which queues, or meets the same error and reports it); otherwise
  // whether its wake-up woke the client.
  std::optional<bool> TrySendReplyNow(const OutgoingMessage& m)
      ABSL_LOCKS_EXCLUDED(send_mu);
  // Moves queued replies into the ring while it has room.
  absl::Status FlushRepliesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu);
  // Drops the queued replies (the client hung up or closed).
  void DropReplies() ABSL_LOCKS_EXCLUDED(send_mu);
  void DropRepliesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu) {
    for (OwnedReply& r : pending_replies) CloseHandles(r);
    pending_replies.clear();
    pending_since = absl::InfiniteFuture();
  }

  // --- The call table (state_mu) ---

  // Binds interface `name`, resolved as `iface` (Dispatcher::Bind): its
  // slot (1-based), the existing one if bound.
  absl::StatusOr<uint32_t> Bind(const std::string& name,
                                const BoundInterface* iface)
      ABSL_LOCKS_EXCLUDED(state_mu);
  // Registers request (or oneway call, or stream) `h` in the call table and
  // fills `item` (interface, method and its path, registration).
  Registered Register(const FrameHeader& h, bool oneway, bool run,
                      WorkItem& item) ABSL_LOCKS_EXCLUDED(state_mu);
  // A CANCEL for call `id`: a ring record, or (`by_socket`) a control
  // packet. Returns false if it was ignored (a duplicate, an unknown or
  // finished id).
  bool Cancel(uint64_t id, bool by_socket, uint32_t max_in_flight)
      ABSL_LOCKS_EXCLUDED(state_mu);
  // Takes a finished call out of the call table; returns whether shutdown
  // already answered it.
  bool Finish(uint64_t message_id, uint64_t oneway_serial, bool oneway)
      ABSL_LOCKS_EXCLUDED(state_mu);
  // The cancel states of the calls waiting for a reply and, with `closing`,
  // of oneway calls too; `closing` also drops the stashed memfds. Wakes a
  // worker waiting for a memfd either way.
  std::vector<std::shared_ptr<::lpc::internal::CancelState>> StopCalls(
      bool closing) ABSL_LOCKS_EXCLUDED(state_mu);
  // For shutdown: marks every unanswered call answered and returns its id
  // and cancel state, with the oneway calls' cancel states.
  void AnswerAll(
      std::vector<std::pair<uint64_t,
                            std::shared_ptr<::lpc::internal::CancelState>>>*
          unanswered,
      std::vector<std::shared_ptr<::lpc::internal::CancelState>>* oneway)
      ABSL_LOCKS_EXCLUDED(state_mu);
  size_t InFlight() ABSL_LOCKS_EXCLUDED(state_mu);

  // Streams and asynchronous calls (internal/server_streams.h).
  StreamTable streams;

  // --- Payload memfds (state_mu) ---

  // Keeps payload memfd `number` until its record is read; false if the
  // stash is full, or the server's stashed fds are at their budget (the
  // client must be cut off). `now_ns` is the monotonic time of arrival.
  bool StashPayloadFd(uint32_t number, UniqueFd fd, int64_t now_ns)
      ABSL_LOCKS_EXCLUDED(state_mu);
  // When the oldest unclaimed payload fd, handle table or buffer arrived
  // (monotonic); 0 if none. `*handles`: it is a handle table; `*buffer`:
  // a buffer.
  int64_t OldestStashedNs(bool* handles = nullptr, bool* buffer = nullptr)
      ABSL_LOCKS_EXCLUDED(state_mu);
  // Whether a payload fd or a handle table waits to be claimed.
  bool HasStashedFd() ABSL_LOCKS_EXCLUDED(state_mu);

  // --- Handle tables (state_mu) ---

  // Keeps the handle table of message `message_id` (HANDLES packet) until
  // its record is read. On error (the client must be cut off: a second
  // table for the id, or the stash or the server's stashed fds full) the
  // descriptors stay in `*fds`.
  absl::Status StashHandles(uint64_t message_id, std::vector<UniqueFd>* fds,
                            int64_t now_ns) ABSL_LOCKS_EXCLUDED(state_mu);

  // Keeps the BUFFER packet of message `message_id` (its memfd, whose
  // kind the caller checked) until its record is read. On error (the
  // client must be cut off: a second buffer for the id, or the stash or
  // the server's stashed fds full) the descriptor stays in `*fd`.
  absl::Status StashBuffer(const BufferBody& body, UniqueFd* fd,
                           int64_t now_ns) ABSL_LOCKS_EXCLUDED(state_mu);
  // The same for a POOL_BUFFER packet, whose chunk the pool has checked
  // and lent us (`view`).
  absl::Status StashPoolBuffer(const PoolBufferBody& body, BufferView view,
                               int64_t now_ns) ABSL_LOCKS_EXCLUDED(state_mu);

  // --- Control packets to the client (outbox_mu) ---

  // Sends a control packet with `fd` (-1 = none) without ever waiting: to
  // the socket if nothing waits before it and the socket takes it, else
  // into the outbox (with a duplicate of `fd`), which the I/O thread sends
  // once the socket is writable. RESOURCE_EXHAUSTED if the outbox is full
  // (the client does not read its control socket), UNAVAILABLE if the
  // socket failed: the client must be cut off either way.
  absl::Status SendControl(std::string_view bytes, int fd)
      ABSL_LOCKS_EXCLUDED(outbox_mu);
  absl::Status SendControl(std::string_view bytes, absl::Span<const int> fds)
      ABSL_LOCKS_EXCLUDED(outbox_mu);
  // The I/O thread, when the socket is writable: sends what the outbox
  // holds while the socket takes it. An error means the client must go.
  absl::Status FlushOutbox() ABSL_LOCKS_EXCLUDED(outbox_mu);
  // When the outbox last made progress (monotonic ns), 0 if it is empty.
  int64_t OutboxStalledSinceNs() ABSL_LOCKS_EXCLUDED(outbox_mu);

  // MemfdPort. SendPayloadFd never waits (SendControl). TakePayloadFd
  // never waits either, whatever the deadline: DEADLINE_EXCEEDED if the
  // memfd has not arrived (the endpoint parks the record).
  absl::Status SendPayloadFd(uint32_t number, uint64_t length,
                             int fd) override;
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t,
                                         absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(state_mu);
  // SendHandles never waits (SendControl). TakeHandles never waits:
  // DEADLINE_EXCEEDED if the table has not arrived (the endpoint parks the
  // record); descriptors of a mismatched table are closed on the closer.
  absl::Status SendHandles(uint64_t message_id,
                           absl::Span<const int> fds) override;
  absl::StatusOr<std::vector<UniqueFd>> TakeHandles(
      uint64_t message_id, uint32_t count, absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(state_mu);
  // SendBuffer never waits (SendControl); TakeBuffer never waits
  // (DEADLINE_EXCEEDED: the endpoint parks the record).
  absl::Status SendBuffer(const BufferBody& body, int fd) override;
  // Never waits (SendControl).
  absl::Status SendPoolBuffer(uint64_t message_id, uint32_t field_number,
                              Buffer* chunk) override;
  absl::StatusOr<ReceivedBuffer> TakeBuffer(uint64_t message_id,
                                            absl::Time deadline) override
      ABSL_LOCKS_EXCLUDED(state_mu);

  // Packets the outbox holds at most: an honest client has at most one
  // PAYLOAD_FD unread per reply record it has not consumed.
  size_t MaxOutbox() const { return size_t{layout.geometry.reply_slots} + 16; }

  // A leaf: held for a non-blocking send or an epoll_ctl, never while
  // taking another lock.
  Mutex outbox_mu ABSL_ACQUIRED_AFTER(state_mu);

 private:
  friend class CallRegistration;

  struct OutboxPacket {
    std::string bytes;
    std::vector<UniqueFd> fds;  // Ours (duplicates); may be empty.
    ByteCharge charge;  // Its fds against ServerBudgets::outbox_fds.
  };
  // Watches `sock` for EPOLLOUT too, or no longer.
  void WatchWritableLocked(bool writable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(outbox_mu);
  std::deque<OutboxPacket> outbox_ ABSL_GUARDED_BY(outbox_mu);
  int64_t outbox_progress_ns_ ABSL_GUARDED_BY(outbox_mu) = 0;

  struct Stashed {
    uint32_t number = 0;
    UniqueFd fd;
    int64_t arrived_ns = 0;
    ByteCharge charge;  // One fd against ServerBudgets::stashed_fds.
  };
  std::deque<Stashed> memfd_stash_ ABSL_GUARDED_BY(state_mu);
  struct StashedHandles {
    std::vector<UniqueFd> fds;
    int64_t arrived_ns = 0;
    ByteCharge charge;  // Its fds against ServerBudgets::stashed_fds.
  };
  absl::flat_hash_map<uint64_t, StashedHandles> handle_stash_
      ABSL_GUARDED_BY(state_mu);
  struct StashedBuffer {
    BufferBody body;
    UniqueFd fd;
    std::optional<BufferView> pooled;  // Instead of fd: a pool chunk.
    int64_t arrived_ns = 0;
    ByteCharge charge;  // One fd against ServerBudgets::stashed_fds.
  };
  absl::flat_hash_map<uint64_t, StashedBuffer> buffer_stash_
      ABSL_GUARDED_BY(state_mu);
  // handle_stash_.size(), read without state_mu: a record that announces
  // no descriptors looks in the stash only when this is not 0.
  std::atomic<size_t> handle_stash_size_{0};
  std::shared_ptr<BufferPool> pool_owner_;  // See pool().
  std::atomic<BufferPool*> pool_{nullptr};
  absl::flat_hash_map<uint64_t, CallRecord> in_flight_
      ABSL_GUARDED_BY(state_mu);
  // Oneway calls decoded and not finished, by a serial of ours (a client's
  // message ids are not trusted to be unique for them), so that a hang-up
  // or a shutdown cancels their handlers too. Same lifetime rule as
  // CallRecord::ctx.
  absl::flat_hash_map<uint64_t, CallContext*> oneway_calls_
      ABSL_GUARDED_BY(state_mu);
  uint64_t next_oneway_serial_ ABSL_GUARDED_BY(state_mu) = 0;
  // CANCEL control packets for ids that were not in flight: the request may
  // still be unread in the ring (the packet overtook it). A request read
  // with such an id is not run. `early_cancel_order_` is oldest first and
  // may name ids already taken out of the set; both are bounded by
  // MaxEarlyCancels.
  std::unordered_set<uint64_t> early_cancels_ ABSL_GUARDED_BY(state_mu);
  std::deque<uint64_t> early_cancel_order_ ABSL_GUARDED_BY(state_mu);
  // slot - 1 -> interface; only grows, and a deque, so that WorkItems may
  // point at its strings.
  std::deque<std::string> bound_ ABSL_GUARDED_BY(state_mu);
  // slot - 1 -> the interface resolved at bind (owned by the Server).
  std::vector<const BoundInterface*> bound_ifaces_ ABSL_GUARDED_BY(state_mu);
};

inline Registered Connection::Register(const FrameHeader& h, bool oneway,
                                       bool run, WorkItem& item) {
  // One lock: early cancel, binding, duplicate id, in-flight.
  MutexLock lock(&state_mu);
  if (!oneway && !early_cancels_.empty() &&
      early_cancels_.erase(h.message_id) != 0) {
    // Its CANCEL came first (control socket): the caller has already
    // completed it, so it is not run and needs no reply.
    return Registered::kCancelledEarly;
  }
  if (h.interface_slot == 0 || h.interface_slot > bound_.size()) {
    return Registered::kNotBound;
  }
  if (!oneway && in_flight_.count(h.message_id) != 0) {
    return Registered::kDuplicateId;
  }
  if (!run) return Registered::kOk;
  item.interface_name = &bound_[h.interface_slot - 1];
  item.iface = bound_ifaces_[h.interface_slot - 1];
  item.method = item.iface->FindMethod(h.method_id);
  if (item.method != nullptr) {
    // The Server's, which outlives its transports.
    lpc::internal::CallContextAccess::SetMethodPathRef(*item.ctx,
                                                       &item.method->path);
  }
  if (!oneway) {
    in_flight_.emplace(h.message_id, CallRecord{item.ctx.get(), false});
    item.registration = CallRegistration(this, h.message_id, false);
  } else {
    item.oneway_serial = ++next_oneway_serial_;
    oneway_calls_.emplace(item.oneway_serial, item.ctx.get());
    item.registration = CallRegistration(this, item.oneway_serial, true);
  }
  return Registered::kOk;
}

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CONNECTION_H_
