// ClientConnection: one connected, handshaken client connection of a
// LocalChannel: its section's endpoint, the table of calls in flight, the
// interface bindings, and the leader/follower wait for replies.
//
// Waiting for replies is leader/follower: a calling thread that finds no
// reader becomes the leader, drains the reply ring for everyone (spinning
// while the server runs on another CPU, then sleeping on the ring's futex
// in chunks of at most 10 ms, checking the control socket before each
// sleep) and hands the role on when its own call ends. Followers sleep at
// once, each on its own condition variable, in a FIFO: a reply wakes its
// own caller only (in the order the replies come), and the role goes to
// the follower asleep longest. A caller spins only if fewer callers than
// the spin limit (LocalChannelOptions::spinning_callers: by default the
// CPUs this process may run on) were waiting when it began; a leader spins
// only while at most that many wait. Threads with async calls in flight
// are served by a pump thread that leads the same way. The waiting half
// lives in client_wait.cc.
//
// Locks, in nesting order: reader_mu_ (the leader role), then send_mu_,
// then mu_. LocalChannel's own lock is never held while taking them.
//
// Thread safety: thread-safe. Every wait is bounded by the caller's
// deadline; no wait depends on the server's pace beyond it.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_CONNECTION_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"
#include "runtime/mutex.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/buffer_pool.h"
#include "transports/local/internal/client_doorbell.h"
#include "transports/local/internal/client_handshake.h"
#include "transports/local/internal/pending_call.h"
#include "transports/local/local_transport.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

// Longest single sleep of a waiting thread: a dead server, a passed
// deadline or a handed-on leader role is noticed within this.
inline constexpr absl::Duration kClientSleepChunk = absl::Milliseconds(10);
// How often a busy connection polls its control socket (hang-up, goodbye).
inline constexpr int64_t kSocketCheckNs = 1000 * 1000;

// A stream of the connection as the connection sees it (the stream
// itself is client_streams.h).
class ClientStreamSink {
 public:
  virtual ~ClientStreamSink() = default;
  // A stream record (or a REPLY, which ends the stream) for this stream,
  // read by the leader. A non-OK status is the server's protocol error:
  // the connection ends.
  virtual absl::Status OnRecord(IncomingMessage& m) = 0;
  // The connection ended with `status`.
  virtual void OnConnectionEnd(const absl::Status& status) = 0;
  // Ends the stream if its deadline passed by `now`.
  virtual void CheckDeadline(absl::Time now) = 0;
};

// LocalChannelOptions::spinning_callers resolved: `option` if positive,
// else the CPUs the calling thread may run on (at least 1).
int SpinCallersFor(int option);

// Whether this thread is delivering stream records as the leader (their
// callbacks run there): such a thread must not wait for ring room.
bool InLeaderDrain();

class ClientConnection : public MemfdPort,
                         public std::enable_shared_from_this<ClientConnection> {
 public:
  // Takes over a completed handshake's socket, doorbell and section.
  ClientConnection(ClientHandshake handshake, const LocalChannelOptions& o,
                   const ChannelOptions& co);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  bool dead() const { return dead_flag_.load(std::memory_order_acquire); }
  // Whether the server hung up (a poll of the control socket).
  bool HungUp();

  // Registers a call (an async one if call->callback is set) and returns
  // the interface slot `iface` is bound to. NOT_FOUND: `iface` is not bound
  // on this connection yet (nothing registered); RESOURCE_EXHAUSTED over
  // the in-flight limit. With iface null (bind calls) the slot is 0.
  absl::StatusOr<uint32_t> Register(PendingCall* call,
                                    const InterfaceDescriptor* iface)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Registers stream `id` (held weakly) like Register does a call: the
  // slot `iface` is bound to, NOT_FOUND if it is not bound yet. While any
  // stream is registered the pump leads.
  absl::StatusOr<uint32_t> RegisterStream(
      uint64_t id, std::weak_ptr<ClientStreamSink> stream,
      const InterfaceDescriptor* iface) ABSL_LOCKS_EXCLUDED(mu_);
  void UnregisterStream(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `fn` on the pump thread, outside every lock of the connection (a
  // stream's held-back message, sent once credits came back).
  void Defer(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);

  // A fresh message id (async calls take theirs before registering).
  uint64_t NextId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  void SetBound(const std::string& iface, uint32_t slot)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<uint32_t> BoundSlot(std::string_view iface)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Places a message and publishes it, waiting for ring room until
  // `deadline`.
  absl::Status Send(const OutgoingMessage& m, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(send_mu_);

  // Places and publishes a message only if that needs no wait (the send
  // lock is free and the ring has room); DEADLINE_EXCEEDED otherwise.
  absl::Status SendWithoutWaiting(const OutgoingMessage& m)
      ABSL_LOCKS_EXCLUDED(send_mu_);

  // Tells the server to cancel call `id`: a control packet if the socket
  // takes it at once, else a ring CANCEL (see client_connection.cc).
  void SendCancel(uint64_t id);

  BufferCache& buffers() { return buffers_; }

  // Completes call `id` with `result` if it is still registered; runs its
  // callback if async. Returns whether it was registered.
  bool Complete(uint64_t id, absl::StatusOr<std::string> result)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends call `id` with `why` (a cancel or the deadline) if it is still
  // registered: sends the server its CANCEL first, then completes it, so
  // that the caller's callback (which may take long) never delays the
  // cancel. Returns whether it was registered.
  bool CompleteAndCancel(uint64_t id, const absl::Status& why)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the connection: every pending call fails with `status`.
  void MarkDead(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // The server broke the rules of the reply tables (`why`, a handle error
  // or a malformed HANDLES packet): the call it names fails with INTERNAL,
  // the others with UNAVAILABLE, and the connection is shut down at once.
  void FailForHandles(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status dead_status() ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes a leader sleeping on the reply ring's futex.
  void WakeLeader();

  // Waits until `call` completes or its deadline passes, leading while
  // nobody else does.
  //
  // `cancelled()` is polled (cheap) while the call spins; `before_sleep()`
  // runs (without locks held) before this thread first sleeps, so that a
  // call that never sleeps never pays for registering a cancel callback.
  void Wait(PendingCall* call);
  void Wait(PendingCall* call, absl::FunctionRef<bool()> cancelled,
            absl::FunctionRef<void()> before_sleep);

  // Completes call `id` with DEADLINE_EXCEEDED and tells the server.
  void Expire(uint64_t id);

  // The counters of its synchronous waits (GetLocalChannelStats).
  LocalChannelStats stats() const;

  // Whether the control socket is due for a look (rate limit shared by all
  // threads; claims the slot when it returns true).
  bool SocketCheckDue(int64_t now_ns);

  // MemfdPort (runs under reader_mu_ or send_mu_, inside the endpoint).
  absl::Status SendPayloadFd(uint32_t number, uint64_t length,
                             int fd) override;
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t length,
                                         absl::Time deadline) override;
  absl::Status SendHandles(uint64_t message_id,
                           absl::Span<const int> fds) override;
  absl::StatusOr<std::vector<UniqueFd>> TakeHandles(
      uint64_t message_id, uint32_t count, absl::Time deadline) override;
  absl::Status SendBuffer(const BufferBody& body, int fd) override;
  absl::Status SendPoolBuffer(uint64_t message_id, uint32_t field_number,
                              Buffer* chunk) override;
  absl::StatusOr<ReceivedBuffer> TakeBuffer(uint64_t message_id,
                                            absl::Time deadline) override;

  // The same-uid buffer pool (docs/local-transport.md, "The same-uid
  // buffer pool"). OfferPool, right after the connection is made: with
  // LocalChannelOptions::same_uid_buffer_pool and a server of our uid,
  // makes the pool and sends POOL; the pool is active once the server's
  // answer has been read. `self` is this connection.
  void OfferPool(std::weak_ptr<ClientConnection> self);
  // The active pool, or null.
  BufferPool* pool() const { return pool_.load(std::memory_order_acquire); }
  // A chunk of the active pool for `size` bytes, reading the control
  // packets that wait (the server's answer, returns) without waiting if
  // none is free; nullopt if there is still none.
  std::optional<Buffer> TryNewPoolBuffer(size_t size);

 private:
  // The pool's packets, read under reader_mu_; an error is the server's.
  absl::Status HandlePoolPacket(ControlType type,
                                absl::Span<const std::byte> body,
                                size_t fds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);
  // Reads one control packet (under reader_mu_). DEADLINE_EXCEEDED: none.
  absl::Status ReadOnePacket(absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);

  // Drains the reply ring until it is empty or, once a message was
  // handled, `stop()`; returns how many messages it handled.
  int DrainReplies(absl::FunctionRef<bool()> stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);
  void ExpireOverdue() ABSL_LOCKS_EXCLUDED(mu_);
  // Hands a stream record to its stream (under reader_mu_); false if the
  // connection had to end.
  bool RouteStreamRecord(IncomingMessage& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends `call`, already removed from calls_: a sync call gets its result
  // and `done`; an async call's callback moves to `*out` and its record is
  // deleted.
  void CompleteLocked(PendingCall* call, absl::StatusOr<std::string> result,
                      Completion* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The leader loop: until `stop()` or the deadline (client_wait.cc).
  // `yield` (the async pump): every few microseconds of spinning the
  // leader yields its CPU. `before_sleep()` runs before every futex sleep.
  // `may_spin`: false for a caller that began beyond the spin limit; it
  // sleeps at once.
  void Lead(absl::FunctionRef<bool()> stop, absl::Time deadline, bool yield,
            bool may_spin, absl::FunctionRef<void()> before_sleep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);
  // Leads (reader_mu_ held by the caller, released here), then hands the
  // leader role on to a waiting follower or the pump, if there is one.
  void LeadAndHandOff(absl::FunctionRef<bool()> stop, absl::Time deadline,
                      bool yield, bool may_spin,
                      absl::FunctionRef<void()> before_sleep)
      ABSL_UNLOCK_FUNCTION(reader_mu_);
  // Whether the callers waiting now leave room for a spinning leader.
  bool SpinRoom() const {
    return waiting_.load(std::memory_order_relaxed) <= spin_callers_;
  }
  // The FIFO of sleeping followers.
  void EnqueueSleeperLocked(FollowerWait* f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnlinkSleeperLocked(FollowerWait* f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Offers the leader role to the follower asleep longest, and to the
  // pump if it waits for the role.
  void HandOffLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void StartPumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One turn of the pump thread, which serves async calls and streams
  // while any are pending; false once the connection stops it.
  bool PumpTurn() ABSL_LOCKS_EXCLUDED(mu_);

  UniqueFd sock_;
  ClientDoorbell doorbell_;  // Rings the server's eventfd (never blocks).
  Mapping map_;
  SectionLayout layout_;
  const LocalChannelOptions options_;
  const int64_t spin_ns_;
  // At most this many waiting callers leave room for spinning (>= 1).
  const int spin_callers_;
  // A sent request's large buffer holds the next large reply (see
  // buffer_cache.h). Before ep_, which takes from it.
  BufferCache buffers_{options_.payload_buffer_cache_bytes,
                      options_.large_payload_buffer_cache_bytes};
  // Sent request memfds kept for reuse (endpoint.h). Before ep_ too.
  PayloadMemfdPool memfd_pool_{options_.payload_memfd_cache_bytes};
  // Its send side is serialised by send_mu_, its receive side by
  // reader_mu_.
  std::unique_ptr<Endpoint> ep_;

  // The leader role: the receive side of ep_ and reads of the socket.
  Mutex reader_mu_;
  std::deque<std::pair<uint32_t, UniqueFd>> stash_
      ABSL_GUARDED_BY(reader_mu_);
  // Reply handle tables (HANDLES packets) by message id, until their
  // records are read; at most reply ring slots + 16.
  absl::flat_hash_map<uint64_t, std::vector<UniqueFd>> handle_stash_
      ABSL_GUARDED_BY(reader_mu_);
  // Reply buffers (BUFFER packets) by message id, until their records are
  // read; at most reply ring slots + 16.
  absl::flat_hash_map<uint64_t, ReceivedBuffer> buffer_stash_
      ABSL_GUARDED_BY(reader_mu_);
  // The pool offered and not answered yet; then the active one, set once.
  std::shared_ptr<BufferPool> pool_offered_ ABSL_GUARDED_BY(reader_mu_);
  std::shared_ptr<BufferPool> pool_owner_ ABSL_GUARDED_BY(reader_mu_);
  std::atomic<BufferPool*> pool_{nullptr};

  Mutex send_mu_;  // The send side of ep_.
  // The deadline of the message being sent: bounds a payload memfd's
  // control packet too.
  absl::Time send_deadline_ ABSL_GUARDED_BY(send_mu_) =
      absl::InfiniteFuture();

  Mutex mu_;  // The call table, bindings and death.
  CondVar cv_;  // The pump; signalled under mu_.
  absl::flat_hash_map<uint64_t, PendingCall*> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::weak_ptr<ClientStreamSink>> streams_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> deferred_count_{0};  // deferred_.size(), read without mu_.
  std::atomic<uint64_t> next_id_{1};
  // Interface name -> slot.
  std::map<std::string, uint32_t, std::less<>> bound_ ABSL_GUARDED_BY(mu_);
  // A cache of bound_ (descriptors are static data).
  const InterfaceDescriptor* last_iface_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint32_t last_slot_ ABSL_GUARDED_BY(mu_) = 0;
  // Threads (and the pump) following: asleep for the leader role or their
  // call; changed under mu_, read without it by a leader handing on.
  std::atomic<int> followers_{0};
  // Followers asleep, oldest first; whoever wakes one unlinks it.
  FollowerWait* sleepers_head_ ABSL_GUARDED_BY(mu_) = nullptr;
  FollowerWait* sleepers_tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The pump waits on cv_ for the leader role.
  bool pump_following_ ABSL_GUARDED_BY(mu_) = false;
  // Synchronous callers inside Wait, and the counters of wait_stats().
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> waits_without_spin_{0};
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> dead_flag_{false};  // dead_, readable without mu_.
  absl::Status dead_status_ ABSL_GUARDED_BY(mu_);
  // Written under mu_; read without it by the pump's leader loop.
  std::atomic<int> async_pending_{0};
  std::atomic<bool> stop_pump_{false};
  bool pump_started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread pump_;
  std::atomic<uint64_t> stray_replies_{0};
  std::atomic<int64_t> last_socket_check_ns_{0};
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_CONNECTION_H_
