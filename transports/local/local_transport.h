// The local transport: lpc calls between processes on one host through
// per-connection shared sections (docs/local-transport.md).
//
// Server side:
//   lpc::local::LocalPortOptions port;
//   port.allowed_uids = {1000};
//   auto transport = lpc::local::MakeLocalServerTransport("calc", port);
//   server.AddTransport(std::move(*transport));
//
// Client side:
//   auto channel = lpc::local::CreateLocalChannel("calc", {}, {});
//   // or lpc::CreateChannel("local:calc") once RegisterLocalTransport() ran
//   // (it runs automatically when this library is linked in).
//
// The named connection port is a SOCK_SEQPACKET Unix socket at
// <runtime_dir>/<name>. Each accepted client gets its own sealed memfd
// section (request ring, reply ring, data area) and an eventfd doorbell;
// the socket stays open as the control channel and liveness signal.
//
// Thread safety: transports and channels are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_LOCAL_TRANSPORT_H_
#define LPC_TRANSPORTS_LOCAL_LOCAL_TRANSPORT_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"
#include "runtime/server.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local {

// The kernel's view of a connecting client (SO_PEERCRED, SO_PEERGROUPS),
// taken at connect time.
struct PeerCredentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
  std::vector<uint32_t> groups;  // Supplementary groups.
  // A pidfd for the connecting process, given to accept_callback (null
  // elsewhere, and where the kernel has no pidfds). Unlike `pid` it never
  // comes to name another process: after that process exits it names none
  // (see "Peer identity" in docs/local-transport.md). The server drops its
  // reference when the callback returns; the callback may keep a copy.
  std::shared_ptr<const UniqueFd> pidfd;
  // `pidfd` came from SO_PEERPIDFD, taken by the kernel at connect time;
  // false: from pidfd_open(pid), checked against the socket's hang-up.
  bool pidfd_from_kernel = false;
};

struct LocalPortOptions {
  // Directory of the port sockets. Empty means $XDG_RUNTIME_DIR/lpc, or
  // /run/lpc when XDG_RUNTIME_DIR is unset (root included). Created if
  // missing (0700, or 0711 when socket_mode lets others connect); an
  // existing one must be a directory, not a symlink, owned by this user or
  // root and writable by nobody else (or sticky, as /tmp), or Start fails
  // with PERMISSION_DENIED.
  // Default: "".
  std::string runtime_dir;
  // File mode of the socket; who may connect(2) at all.
  // Default: 0600 (owner only).
  mode_t socket_mode = 0600;
  // Access policy: a client is admitted if both lists are empty, or if its
  // uid is in allowed_uids, or its primary or a supplementary gid is in
  // allowed_gids. Root is not special.
  // Default: empty (everyone who can open the socket).
  std::vector<uint32_t> allowed_uids;
  std::vector<uint32_t> allowed_gids;
  // Optional veto after the lists; return false to refuse. It runs on the
  // server's I/O thread, so it must not block; it sees the client's pidfd
  // (PeerCredentials::pidfd).
  // Default: none.
  std::function<bool(const PeerCredentials&)> accept_callback;
  // Sizes of each client's section.
  // Default: see SectionGeometry (256-slot rings, 2 MiB data halves).
  SectionGeometry geometry;
  // Largest record sent inline (header + payload), bytes.
  // Default: 1024.
  uint32_t max_inline_record = 1024;
  // Handlers running at once; 0 = number of CPUs.
  // Default: 0.
  int concurrency = 0;
  // Most handlers running at once, reached while handlers block or when
  // many connections each start one (see max_handlers_per_connection). The
  // pool keeps one thread more, which reads rings (CANCEL records, new
  // calls) while every handler blocks. 0 = 2 x concurrency.
  // Default: 0.
  int max_workers = 0;
  // Handlers one connection may run at once (fairness): beyond its first
  // handler, a connection needs the pool under `concurrency` and itself
  // under this cap. A connection with no handler running may always start
  // one, up to max_workers in all. 0 = max(1, max_workers / 2); a larger
  // value than max_workers counts as max_workers. In the config file:
  // server.max_handlers_per_connection (docs/config.md).
  // Default: 0.
  int max_handlers_per_connection = 0;
  // Threads for handlers that hold one for the life of a call: synchronous
  // streaming handlers (Service::StartCallBlocks). They run on the
  // runtime's handler pool (runtime/internal/handler_pool.h), one per
  // server, not on the workers above, so that long streams never hold a
  // worker that reads rings or runs unary calls. The pool starts one
  // thread and grows to max_stream_handler_threads while all are busy;
  // further streams wait for a thread, at most max_queued_stream_handlers
  // of them (0 = no limit), and past that end at once with
  // RESOURCE_EXHAUSTED. Threads outside [1, 4096]: MakeLocalServerTransport
  // fails with INVALID_ARGUMENT. In the config file:
  // server.max_stream_handler_threads (docs/config.md).
  // Default: 64, 4096.
  int max_stream_handler_threads = 64;
  uint32_t max_queued_stream_handlers = 4096;
  // Records taken from one connection per turn (fairness).
  // Default: 16.
  uint32_t batch_per_turn = 16;
  // Fairness between queued-up and light clients. A client is queued up
  // while two or more of its calls wait beyond those running, and light
  // while busy and not queued up. While a light client is busy, a queued-up
  // client's handler and ring-reading time (at most 1 ms per call) is
  // charged to a token bucket (2 ms deep) that refills at
  // max(contended_cpu_share, 1 - 4 x the light clients' share of a CPU);
  // when it is empty, that client's calls wait, its ring fills, and its
  // own sends block, leaving the CPUs to the light client. Queued-up
  // clients with no light one busy are not limited against each other.
  // 0 = never limit; outside [0, 1] MakeLocalServerTransport fails with
  // INVALID_ARGUMENT. See docs/local-transport.md, "Worker pool".
  // Default: 0.05.
  double contended_cpu_share = 0.05;
  // Capacity kept, in all clients' request and reply buffers of 64 KiB and
  // more, for reuse by later large calls (a buffer larger than a quarter
  // of this is not kept). A new large buffer costs a page fault per 4 KiB
  // once glibc has returned the last one to the kernel. 0 = keep none.
  // Default: 8 MiB.
  size_t payload_buffer_cache_bytes = size_t{8} << 20;
  // Capacity kept in larger buffers than that (a 16 MiB payload's, say),
  // which are kept only while in use: one not reused for
  // payload_cache_idle is freed (by the server's tick). 0 = keep none.
  // Default: 64 MiB.
  size_t large_payload_buffer_cache_bytes = size_t{64} << 20;
  // Bytes of reply memfds (mode 3, payloads larger than the data area) kept
  // after sending, over all connections, so that a later reply of the same
  // size class to the same client is written into one the client has read
  // instead of a new memfd: a new one costs the kernel a page per 4 KiB,
  // allocated, zeroed and freed again. A kept memfd unused for
  // payload_cache_idle is dropped. Kept memfds are shared memory, not in the server's RSS.
  // 0 = a new memfd per reply.
  // Default: 64 MiB.
  uint64_t payload_memfd_cache_bytes = uint64_t{64} << 20;
  // How long a kept large buffer or reply memfd may go unused before it is
  // freed.
  // Default: 1 second.
  absl::Duration payload_cache_idle = absl::Seconds(1);
  // Calls (oneway calls too) one connection may have running or queued;
  // past this its ring is not read (back-pressure).
  // Default: 256.
  uint32_t max_in_flight_per_connection = 256;
  // Streams and asynchronous calls (whose handlers returned from
  // StartCall and have not finished) one connection may have open; a
  // STREAM_OPEN past this ends at once with RESOURCE_EXHAUSTED. They take
  // none of max_in_flight_per_connection once their handler returned (or
  // was handed to the handler pool). In the config file:
  // server.max_streams_per_connection (docs/config.md).
  // Default: 4096.
  uint32_t max_streams_per_connection = 4096;
  // Replies queued for a client whose reply ring is full; beyond this, or
  // after reply_stall_timeout without progress, the client is cut off.
  // Streams' records may queue 2 * max_streams_per_connection beyond it,
  // as a client may open every stream before it reads (each has a window
  // announce and a finish that cannot wait); stream messages wait while
  // half of it is queued.
  // Default: 1024, 5 seconds.
  uint32_t max_queued_replies = 1024;
  absl::Duration reply_stall_timeout = absl::Seconds(5);
  // Connections at once; more are refused with RESOURCE_EXHAUSTED.
  // Default: 1024.
  uint32_t max_connections = 1024;
  // Connections at once from one uid; more are refused with
  // RESOURCE_EXHAUSTED. 0 = max_connections.
  // Default: 512.
  uint32_t max_connections_per_uid = 512;
  // A client that has not read its WELCOME this long after it was accepted
  // is dropped (counted in LocalServerStats::handshakes_timed_out).
  // Default: 5 seconds.
  absl::Duration handshake_timeout = absl::Seconds(5);
  // A payload fd that waits this long unclaimed while the client's request
  // ring holds no unread record (no record will claim it: a stray fd, or a
  // client's own socket end sent to keep its connection alive) cuts the
  // client off.
  // Default: 2 seconds.
  absl::Duration stashed_fd_timeout = absl::Seconds(2);
  // Payload fds received and not yet claimed, over all connections (each
  // connection also holds at most its request ring's slots + 16); a client
  // whose fd would pass this is cut off. 0 = no limit. The same bound
  // applies, separately, to reply memfds waiting in the outboxes of
  // clients whose control socket is full (each at most its reply ring's
  // slots + 16 packets).
  // Default: 4096.
  uint32_t max_stashed_fds = 4096;
  // Byte budgets, per connection and over the whole server; 0 = no limit.
  // Decoded requests queued or running: at the budget the server stops
  // reading the client's ring (back-pressure; each read may pass it by one
  // message). Replies queued for a full reply ring: a reply that would pass
  // the budget is replaced by a RESOURCE_EXHAUSTED failure of its call.
  // Reply memfds sent and not yet collected by the client: at the budget,
  // further large replies wait in the reply queue (one is always allowed).
  // Default: 64 MiB / 512 MiB, 64 MiB / 512 MiB, 256 MiB / 1 GiB.
  uint64_t max_request_bytes_per_connection = uint64_t{64} << 20;
  uint64_t max_request_bytes = uint64_t{512} << 20;
  uint64_t max_queued_reply_bytes_per_connection = uint64_t{64} << 20;
  uint64_t max_queued_reply_bytes = uint64_t{512} << 20;
  uint64_t max_reply_memfd_bytes_per_connection = uint64_t{256} << 20;
  uint64_t max_reply_memfd_bytes = uint64_t{1} << 30;
  // How long a worker spins for the next request of the client it just
  // answered, while that client runs on another CPU; 0 = never spin.
  // Default: 20 us.
  absl::Duration spin = absl::Microseconds(20);
  // Most descriptors (handle table entries) one request may carry, and one
  // reply a handler may send; a client that sends more is cut off
  // (too_many_handles). At most 253 (the kernel's SCM_MAX_FD), else
  // MakeLocalServerTransport fails with INVALID_ARGUMENT. In the config
  // file: server.max_handles_per_message.
  // Default: 16.
  uint32_t max_handles_per_message = 16;
  // Accept the same-uid buffer pool a client with
  // LocalChannelOptions::same_uid_buffer_pool offers, if its uid
  // (SO_PEERCRED) equals ours: its buffers are then chunks of one memfd
  // both sides map read-write and reuse, not sealed memfds, so a handler
  // reads memory the client can still write (docs/zero-copy.md, "The
  // same-uid shared pool"). In the config file: server.same_uid_buffer_pool.
  // Default: false.
  bool same_uid_buffer_pool = false;
  // The largest pool accepted; a bigger one cuts the client off
  // (refused_pool). In the config file: server.max_buffer_pool_bytes.
  // Default: 256 MiB.
  uint64_t max_buffer_pool_bytes = uint64_t{256} << 20;
};

// Counters of a server transport, for tests and monitoring.
struct LocalServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;
  uint64_t clients_cut_off = 0;  // Protocol violations and stalls.
  // clients_cut_off by the status code of the reason, indexed by
  // absl::StatusCode (DATA_LOSS: a protocol violation; RESOURCE_EXHAUSTED:
  // a limit). Every cut-off is counted; its log line on stderr is
  // rate-limited (10 a second, then a line saying how many were left out).
  std::array<uint64_t, 17> clients_cut_off_by_code{};
  uint64_t connections_open = 0;
  uint64_t calls_started = 0;
  // Times a connection's calls were held back by contended_cpu_share.
  uint64_t throttle_pauses = 0;
  // Worker threads the pool has started, the first ones included. A pool
  // that grows for blocked handlers and shrinks after idle spells starts
  // a few; one that replaced a spare at every handler's start started one
  // per call.
  uint64_t threads_started = 0;
  // Times a worker moved to another CPU because the client it answered ran
  // on its own CPU (see "Sharing a CPU" in docs/local-transport.md).
  uint64_t colocated_moves = 0;
  // Large request and reply buffers taken from the kept ones
  // (payload_buffer_cache_bytes) and made new; capacity kept now.
  uint64_t payload_buffers_reused = 0;
  uint64_t payload_buffers_made = 0;
  uint64_t payload_buffer_bytes_kept = 0;
  // Reply memfds created, replies written into a kept one, and the bytes
  // of memfds kept now (payload_memfd_cache_bytes).
  uint64_t payload_memfds_made = 0;
  uint64_t payload_memfds_reused = 0;
  uint64_t payload_memfd_bytes_kept = 0;
  // CANCEL control packets received (the ring's CANCEL records are not
  // counted here).
  uint64_t cancel_packets = 0;
  // Requests not run because a CANCEL control packet for them came before
  // the server read them from the ring.
  uint64_t calls_cancelled_before_read = 0;
  // CANCELs (either kind) that cancelled nothing: a duplicate, an unknown
  // or finished id, or an early CANCEL whose request never came (evicted).
  uint64_t cancels_ignored = 0;
  // Clients dropped for not reading WELCOME within handshake_timeout.
  uint64_t handshakes_timed_out = 0;
  // Times accept(2) failed for want of file descriptors (EMFILE, ENFILE);
  // the listener then pauses (see docs/local-transport.md, "Limits").
  uint64_t accept_fd_exhausted = 0;
  // Bytes held now against the server-wide budgets.
  uint64_t request_bytes = 0;
  uint64_t queued_reply_bytes = 0;
  uint64_t reply_memfd_bytes = 0;
  uint64_t stashed_fds = 0;
  // The longest time, in ns since the server started, that a server thread
  // shared by every client spent on one turn before it could serve anyone
  // else: one turn of the I/O loop (accepts, control packets, the tick),
  // a worker's read of one client's ring (lock wait included), one reply's
  // send (lock wait included). A handler's own run time is not counted; a
  // wait on a client's pace would be. Measured with CLOCK_MONOTONIC_COARSE
  // (its resolution, a few ms, is the figure's), and the time includes any
  // preemption of the thread meanwhile: an upper bound.
  int64_t longest_io_turn_ns = 0;
  int64_t longest_ring_read_ns = 0;
  int64_t longest_reply_send_ns = 0;
  // Streams opened, stream records dropped because their stream had
  // ended, and clients cut off for each stream protocol error (see
  // "Streams" in docs/local-transport.md).
  uint64_t streams_opened = 0;
  uint64_t stream_records_dropped = 0;
  uint64_t stream_errors_after_half_close = 0;
  uint64_t stream_errors_unknown_stream = 0;
  uint64_t stream_errors_window_exceeded = 0;
  uint64_t stream_errors_bad_window_update = 0;
  uint64_t stream_errors_bad_open = 0;
  // Descriptors received in HANDLES packets and sent in replies' tables,
  // and clients cut off for each handle error (see "Handles" in
  // docs/local-transport.md).
  uint64_t handles_received = 0;
  uint64_t handles_sent = 0;
  uint64_t handle_errors_too_many = 0;
  uint64_t handle_errors_unreferenced = 0;
  uint64_t handle_errors_missing = 0;
  // Shared buffers received in BUFFER packets, and clients cut off for
  // each buffer error (see "Buffers" in docs/local-transport.md): a memfd
  // that failed the checks, one no record claims (or a second for one
  // message), one a record announces that never came.
  uint64_t buffers_received = 0;
  uint64_t buffer_errors_refused = 0;
  uint64_t buffer_errors_unreferenced = 0;
  uint64_t buffer_errors_missing = 0;
  // The same-uid buffer pool (docs/local-transport.md, "The same-uid
  // buffer pool"): pools accepted and declined (not opted in, or another
  // uid), replies whose buffer went as a pool chunk or as a sealed memfd,
  // and clients cut off for a bad POOL packet or a bad chunk reference or
  // return.
  uint64_t buffer_pools_accepted = 0;
  uint64_t buffer_pools_declined = 0;
  uint64_t pool_buffers_received = 0;  // POOL_BUFFER packets (in buffers_received)
  uint64_t pool_buffers_sent = 0;
  uint64_t sealed_buffers_sent = 0;
  uint64_t pool_errors_refused = 0;
  uint64_t pool_errors_chunk = 0;
};

class LocalServerTransport : public ServerTransport {
 public:
  virtual LocalServerStats stats() const = 0;
  // The socket path.
  virtual std::string path() const = 0;
};

// Creates the server transport for port `name` ([A-Za-z0-9._-]+, not
// ending in ".lock"). Nothing is bound until Start, which claims the name
// (a lock file <name>.lock beside the socket): a second server on a live
// server's name fails with ALREADY_EXISTS and leaves the name alone.
absl::StatusOr<std::unique_ptr<LocalServerTransport>> MakeLocalServerTransport(
    std::string name, LocalPortOptions options = {});

struct LocalChannelOptions {
  // As LocalPortOptions::runtime_dir.
  // Default: "".
  std::string runtime_dir;
  // Refuse a server whose socket is owned by another uid (SO_PEERCRED of
  // the server), which defeats name squatting.
  // Default: none.
  std::optional<uint32_t> expected_server_uid;
  // How long the caller spins for a reply while the server runs on another
  // CPU before sleeping; 0 = never spin.
  // Default: 20 us.
  absl::Duration spin = absl::Microseconds(20);
  // Callers of one channel that may spin for their replies: a caller that
  // finds this many callers already waiting on the channel sleeps at once,
  // without spinning (with more callers than CPUs, spinners keep the others
  // off the CPU and make most of the calls). 0 = the CPUs the connecting
  // thread may run on (sched_getaffinity).
  // Default: 0.
  int spinning_callers = 0;
  // Connect + handshake timeout, a full listen backlog included; the
  // call's deadline bounds them too. Reaching it is UNAVAILABLE; reaching
  // the deadline first, DEADLINE_EXCEEDED.
  // Default: 2 seconds.
  absl::Duration connect_timeout = absl::Seconds(2);
  // Reconnect backoff after a failed connect: doubles from initial to max.
  // Default: 10 ms, 1 second.
  absl::Duration reconnect_backoff_initial = absl::Milliseconds(10);
  absl::Duration reconnect_backoff_max = absl::Seconds(1);
  // Calls in flight on one channel; more fail with RESOURCE_EXHAUSTED.
  // Default: 1024.
  uint32_t max_in_flight = 1024;
  // Largest record sent inline (header + payload), bytes.
  // Default: 1024.
  uint32_t max_inline_record = 1024;
  // Largest section the client maps.
  // Default: 256 MiB.
  uint64_t max_section_bytes = uint64_t{256} << 20;
  // As LocalPortOptions::payload_buffer_cache_bytes: a sent request's
  // buffer of 64 KiB or more is kept, and a large reply is read into it.
  // Default: 8 MiB.
  size_t payload_buffer_cache_bytes = size_t{8} << 20;
  // As LocalPortOptions::large_payload_buffer_cache_bytes; the channel
  // frees them as soon as it has no call in flight.
  // Default: 64 MiB.
  size_t large_payload_buffer_cache_bytes = size_t{64} << 20;
  // As LocalPortOptions::payload_memfd_cache_bytes, for this channel's
  // request memfds. Kept ones unused for payload_cache_idle are dropped at
  // the next send, or when the connection closes.
  // Default: 32 MiB.
  uint64_t payload_memfd_cache_bytes = uint64_t{32} << 20;
  // How long a kept request memfd may go unused before the next send
  // drops it.
  // Default: 1 second.
  absl::Duration payload_cache_idle = absl::Seconds(1);
  // Most descriptors a reply may carry; a server that sends more fails
  // that call with INTERNAL and the connection ends. At most 253.
  // Default: 16.
  uint32_t max_handles_per_message = 16;
  // Offer the server a same-uid buffer pool: used when the server opted in
  // too (LocalPortOptions::same_uid_buffer_pool) and runs as our uid
  // (SO_PEERCRED). NewBuffer then hands out chunks of it, which the server
  // reads where we can still write them, and the server's buffer results
  // come the same way (docs/zero-copy.md, "The same-uid shared pool").
  // With it, NewBuffer connects first if the channel is not connected
  // (bounded by connect_timeout; failing that, it makes a sealed-memfd
  // buffer). In the config file: local { same_uid_buffer_pool: true }.
  // Default: false.
  bool same_uid_buffer_pool = false;
  // The pool's layout: chunk size (a multiple of 4096) and count (even,
  // 2..1024; half are ours, half the server's); all of it is allocated
  // when the connection is made. A buffer bigger than a chunk is a sealed
  // memfd. In the config file: local.buffer_pool_chunk_bytes and
  // local.buffer_pool_chunks.
  // Default: 4 MiB, 8.
  uint64_t buffer_pool_chunk_bytes = uint64_t{4} << 20;
  uint32_t buffer_pool_chunks = 8;
};

// Counters of a local channel's current connection (all zero before it
// connects), for tests and monitoring.
struct LocalChannelStats {
  // Synchronous calls (binds included) that waited for their reply.
  uint64_t waits = 0;
  // Of those, the ones that found spinning_callers callers already
  // waiting, and so never spun.
  uint64_t waits_without_spin = 0;
  // Callers waiting for their replies now.
  uint32_t callers_waiting = 0;
  // LocalChannelOptions::spinning_callers as resolved (0: not connected).
  uint32_t spinning_callers = 0;
};

// The counters of `channel`; INVALID_ARGUMENT if CreateLocalChannel did not
// make it.
absl::StatusOr<LocalChannelStats> GetLocalChannelStats(Channel& channel);

// Whether `b` is a chunk of a local connection's same-uid buffer pool.
bool IsPoolChunk(const Buffer& b);

// Creates a channel to port `name`. Connects lazily, on the first call,
// and reconnects after the server went away.
absl::StatusOr<std::shared_ptr<Channel>> CreateLocalChannel(
    std::string name, ChannelOptions options = {},
    LocalChannelOptions local_options = {});

// Registers the "local" scheme with lpc::CreateChannel. Its
// ChannelArgs::transport_options, if set, points at a LocalChannelOptions.
// Idempotent; runs automatically at load time when this library is linked.
void RegisterLocalTransport();

// <runtime_dir>/<name>, with the defaults above. INVALID_ARGUMENT for a bad
// name.
absl::StatusOr<std::string> PortPath(std::string_view name,
                                     const std::string& runtime_dir);

// SO_PEERCRED and supplementary groups of a connected Unix socket's peer.
absl::StatusOr<PeerCredentials> GetPeerCredentials(int socket);

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_LOCAL_TRANSPORT_H_
