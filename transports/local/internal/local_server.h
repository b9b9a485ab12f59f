// The local server: the LocalServerTransport that owns the listener, the
// connection table, the I/O thread, the worker pool and the call path.
// Defined in two files: transports/local/local_server.cc (start, shutdown,
// the table) and server_io.cc (the I/O thread: accept, control packets,
// the tick, cut-off and close).
//
// Threads:
//  - the I/O thread: epoll over the listening socket and every client's
//    control socket (packets, hang-up); a 10 ms tick for housekeeping
//    (stalled replies, pool growth, missed doorbells, handshake and stash
//    timeouts);
//  - the workers of worker_pool.h, which drain clients' rings and run
//    their calls (server_calls.h) in the order of fair_scheduler.h;
//  - the runtime's handler pool (runtime/internal/handler_pool.h), which
//    runs the handlers that hold a thread for a call's life (synchronous
//    streaming handlers).
//
// Locks, in the order they may nest: Connection::recv_mu, then
// Connection::send_mu, then Connection::state_mu; the pool's mutex and
// conns_mu_ are leaves (never held while taking another lock).
//
// Thread safety: thread-safe (LocalServerTransport).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_LOCAL_SERVER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_LOCAL_SERVER_H_

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/handle_errors.h"
#include "runtime/call_context.h"
#include "runtime/internal/handler_pool.h"
#include "runtime/mutex.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/internal/listener.h"
#include "transports/local/internal/log_rate_limit.h"
#include "transports/local/internal/peer_pidfd.h"
#include "transports/local/internal/port_name.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/server_fuzz_peer.h"
#include "transports/local/internal/server_calls.h"
#include "transports/local/internal/server_handshake.h"
#include "transports/local/internal/worker_pool.h"
#include "transports/local/local_transport.h"
#include "transports/local/metadata.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"

namespace lpc::local::internal {

inline constexpr uint64_t kListenTag = ~uint64_t{0};

// The large payload buffers and the sent reply memfds kept for reuse, and
// the server-wide byte budgets (LocalServer::state_).
struct ServerState {
  ServerState(size_t buffer_bytes, size_t large_buffer_bytes,
              int64_t buffer_idle_ns, uint64_t memfd_bytes)
      : buffers(buffer_bytes, large_buffer_bytes, buffer_idle_ns),
        memfd_pool(memfd_bytes) {}
  BufferCache buffers;
  PayloadMemfdPool memfd_pool;
  ServerBudgets budgets;
};

class LocalServer final : public LocalServerTransport,
                          public internal::WorkerPool::Delegate,
                          public internal::ServerCalls::Owner {
 public:
  friend class internal::ServerFuzzPeer;  // Test-only (server_fuzz_peer.h).

  LocalServer(std::string name, std::string path, LocalPortOptions options)
      : name_(std::move(name)), path_(std::move(path)), options_(std::move(options)) {
    concurrency_ = options_.concurrency > 0
                       ? options_.concurrency
                       : std::max(1u, std::thread::hardware_concurrency());
    max_workers_ = options_.max_workers > 0
                       ? std::max(options_.max_workers, concurrency_)
                       : 2 * concurrency_;
    max_handlers_per_connection_ =
        options_.max_handlers_per_connection > 0
            ? std::min(options_.max_handlers_per_connection, max_workers_)
            : std::max(1, max_workers_ / 2);
    internal::WorkerPool::Options po;
    po.concurrency = concurrency_;
    po.max_workers = max_workers_;
    po.max_handlers_per_connection = max_handlers_per_connection_;
    po.contended_cpu_share = options_.contended_cpu_share;
    budgets_.request_bytes.limit = options_.max_request_bytes;
    budgets_.reply_bytes.limit = options_.max_queued_reply_bytes;
    budgets_.reply_memfd_bytes.limit = options_.max_reply_memfd_bytes;
    budgets_.stashed_fds.limit = options_.max_stashed_fds;
    budgets_.outbox_fds.limit = options_.max_stashed_fds;
    pool_ = std::make_unique<internal::WorkerPool>(po, this);
    ::lpc::internal::HandlerPool::Options ho;
    ho.min_workers = 1;
    ho.max_workers = std::max(1, options_.max_stream_handler_threads);
    if (options_.max_queued_stream_handlers > 0) {
      ho.max_queued = options_.max_queued_stream_handlers;
    }
    handler_pool_ = std::make_unique<::lpc::internal::HandlerPool>(ho);
    calls_ = std::make_unique<internal::ServerCalls>(
        options_, &buffers_, &budgets_, pool_.get(), handler_pool_.get(),
        this);
  }

  ~LocalServer() override { Shutdown(absl::Now()); }

  absl::Status Start(Dispatcher* dispatcher) override;
  void Shutdown(absl::Time deadline) override;
  std::string target() const override { return "local:" + name_; }
  std::string path() const override { return path_; }
  // Every connection in the table, the counters of stats() and the
  // cut-offs by status code (local_server.cc).
  void Report(TransportReport* report) const override
      ABSL_LOCKS_EXCLUDED(conns_mu_);

  LocalServerStats stats() const override {
    LocalServerStats s;
    s.connections_accepted = accepted_.load();
    s.connections_refused = refused_.load();
    s.clients_cut_off = cut_off_.load();
    for (size_t i = 0; i < s.clients_cut_off_by_code.size(); ++i) {
      s.clients_cut_off_by_code[i] =
          cut_off_by_code_[i].load(std::memory_order_relaxed);
    }
    s.calls_started = calls_->calls_started();
    s.throttle_pauses = pool_->throttle_pauses();
    s.threads_started = pool_->threads_started();
    s.colocated_moves = calls_->colocated_moves();
    s.cancel_packets = cancel_packets_.load();
    s.calls_cancelled_before_read = calls_->cancelled_before_read();
    s.cancels_ignored = calls_->cancels_ignored();
    s.handshakes_timed_out = handshakes_timed_out_.load();
    s.accept_fd_exhausted = accept_fd_exhausted_.load();
    s.request_bytes = budgets_.request_bytes.used.load();
    s.queued_reply_bytes = budgets_.reply_bytes.used.load();
    s.reply_memfd_bytes = budgets_.reply_memfd_bytes.used.load();
    s.stashed_fds = budgets_.stashed_fds.used.load();
    s.longest_io_turn_ns = longest_io_turn_.ns();
    s.longest_ring_read_ns = calls_->longest_ring_read_ns();
    s.longest_reply_send_ns = calls_->longest_reply_send_ns();
    const internal::StreamHost& sh = calls_->stream_host();
    s.streams_opened = sh.opened.load();
    s.stream_records_dropped = sh.dropped_records.load();
    auto err = [&sh](internal::StreamError e) {
      return sh.errors[static_cast<size_t>(e)].load();
    };
    s.stream_errors_after_half_close = err(internal::StreamError::kAfterHalfClose);
    s.stream_errors_unknown_stream = err(internal::StreamError::kUnknownStream);
    s.stream_errors_window_exceeded = err(internal::StreamError::kWindowExceeded);
    s.stream_errors_bad_window_update =
        err(internal::StreamError::kBadWindowUpdate);
    s.stream_errors_bad_open = err(internal::StreamError::kBadOpen);
    s.handles_received = handles_received_.load(std::memory_order_relaxed);
    s.handles_sent = calls_->handles_sent();
    s.handle_errors_too_many = handle_errors_[0].load();
    s.handle_errors_unreferenced = handle_errors_[1].load();
    s.handle_errors_missing = handle_errors_[2].load();
    s.buffer_errors_refused = handle_errors_[3].load();
    s.buffer_errors_unreferenced = handle_errors_[4].load();
    s.buffer_errors_missing = handle_errors_[5].load();
    s.buffers_received = buffers_received_.load();
    s.pool_errors_refused = handle_errors_[6].load();
    s.pool_errors_chunk = handle_errors_[7].load();
    s.buffer_pools_accepted = pools_accepted_.load();
    s.buffer_pools_declined = pools_declined_.load();
    s.pool_buffers_received = pool_buffers_received_.load();
    s.pool_buffers_sent = calls_->pool_buffers_sent();
    s.sealed_buffers_sent = calls_->sealed_buffers_sent();
    const BufferCache::Stats b = buffers_.stats();
    s.payload_buffers_reused = b.reused;
    s.payload_buffers_made = b.missed;
    s.payload_buffer_bytes_kept = b.kept_bytes;
    s.payload_memfds_made = memfd_pool_.made.load(std::memory_order_relaxed);
    s.payload_memfds_reused = memfd_pool_.reused.load(std::memory_order_relaxed);
    s.payload_memfd_bytes_kept =
        memfd_pool_.kept_bytes.load(std::memory_order_relaxed);
    MutexLock lock(&conns_mu_);
    s.connections_open = conns_.size();
    return s;
  }

 private:
  absl::Status BindListener();
  void IoLoop();
  void Accept();
  void AcceptOutOfFds(int err);
  void CheckEnding(const std::shared_ptr<Connection>& c, int64_t now_ns);
  internal::ServerHandshakeOptions HandshakeOptions();
  // Gives a handshaken connection its id and puts it in the table.
  void AddConnection(const std::shared_ptr<Connection>& c)
      ABSL_LOCKS_EXCLUDED(conns_mu_);
  void HandleSocketEvent(const std::shared_ptr<Connection>& c, uint32_t events);
  void Tick();
  void Schedule(const std::shared_ptr<Connection>& c, bool wake) {
    pool_->Schedule(c, wake);
  }

  // WorkerPool::Delegate.
  void Drain(const std::shared_ptr<Connection>& c) override {
    calls_->Drain(c);
  }
  void RunCall(WorkItem& item) override { calls_->RunCall(item); }
  std::shared_ptr<Connection> Lookup(uint64_t id) override
      ABSL_LOCKS_EXCLUDED(conns_mu_);
  void ScanBusyConnections() override ABSL_LOCKS_EXCLUDED(conns_mu_);

  void CheckDoorbellStorm(const std::shared_ptr<Connection>& c, int64_t now_ns);
  // ServerCalls::Owner.
  absl::Status HandlePoolPacket(const std::shared_ptr<Connection>& c,
                                ControlType type,
                                absl::Span<const std::byte> body,
                                std::vector<UniqueFd>& fds);
  void CutOff(const std::shared_ptr<Connection>& c,
              const absl::Status& why) override;
  void Close(const std::shared_ptr<Connection>& c) override;

  void HangUp(const std::shared_ptr<Connection>& c);
  void StopWatchingAndCancel(Connection& c, bool closing);

  const std::string name_;
  const std::string path_;
  const LocalPortOptions options_;
  // What connections reach of the server, shared with each of them
  // (Connection::server_state): a connection may outlive the server, kept
  // by a stream that a handler still holds (runtime/call.h), and its
  // endpoint and byte charges use these until it goes.
  const std::shared_ptr<ServerState> state_ = std::make_shared<ServerState>(
      options_.payload_buffer_cache_bytes,
      options_.large_payload_buffer_cache_bytes,
      absl::ToInt64Nanoseconds(options_.payload_cache_idle),
      options_.payload_memfd_cache_bytes);
  BufferCache& buffers_ = state_->buffers;
  PayloadMemfdPool& memfd_pool_ = state_->memfd_pool;
  internal::ServerBudgets& budgets_ = state_->budgets;
  int concurrency_ = 1;
  int max_workers_ = 2;
  int max_handlers_per_connection_ = 1;
  Dispatcher* dispatcher_ = nullptr;

  UniqueFd listen_fd_;
  std::unique_ptr<internal::PortName> port_name_;  // Set once bound.
  UniqueFd epoll_fd_;
  std::thread io_thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};       // The I/O thread exits.
  Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;

  mutable Mutex conns_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns_
      ABSL_GUARDED_BY(conns_mu_);
  std::unordered_map<uint32_t, uint32_t> conns_per_uid_
      ABSL_GUARDED_BY(conns_mu_);
  // A spare descriptor, given up on EMFILE to accept and refuse one client
  // (AcceptOutOfFds); the listener then pauses until this time (monotonic
  // ns, 0 = watched). I/O thread only.
  UniqueFd reserve_fd_;
  int64_t accept_paused_until_ns_ = 0;
  bool fd_exhaustion_logged_ = false;
  uint64_t next_conn_id_ = 1;  // I/O thread only.

  // Declared after the caches and the dispatcher it runs calls against.
  std::unique_ptr<internal::WorkerPool> pool_;
  // Runs the handlers that hold a thread for a call's life (synchronous
  // streaming handlers), apart from the workers.
  std::unique_ptr<::lpc::internal::HandlerPool> handler_pool_;
  std::unique_ptr<internal::ServerCalls> calls_;  // Uses both pools.

  std::atomic<uint64_t> accepted_{0}, refused_{0}, cut_off_{0};
  std::array<std::atomic<uint64_t>, 17> cut_off_by_code_{};
  Mutex log_mu_;  // A leaf.
  LogRateLimit cut_off_log_ ABSL_GUARDED_BY(log_mu_);
  std::atomic<uint64_t> cancel_packets_{0}, handshakes_timed_out_{0},
      accept_fd_exhausted_{0}, handles_received_{0};
  // Cut-offs by HandleError (too many, unreferenced, missing).
  std::array<std::atomic<uint64_t>, kHandleErrorKinds> handle_errors_{};
  std::atomic<uint64_t> buffers_received_{0};  // BUFFER packets stashed.
  std::atomic<uint64_t> pools_accepted_{0}, pools_declined_{0},
      pool_buffers_received_{0};
  LongestTurn longest_io_turn_;  // LocalServerStats::longest_io_turn_ns.
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_LOCAL_SERVER_H_
