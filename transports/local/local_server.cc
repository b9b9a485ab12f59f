// The server side of the local transport: the named connection port, the
// access policy, per-client sections, and one completion-port-style worker
// pool for every connection. See local_transport.h and
// docs/local-transport.md.
//
// Threads:
//  - the I/O thread: epoll over the listening socket and every client's
//    control socket (packets, hang-up); a 10 ms tick for housekeeping
//    (stalled replies, pool growth, missed doorbells);
//  - workers: take ready connections (drain up to batch_per_turn records,
//    round-robin) and decoded calls, which wait in a queue per connection
//    and are taken round-robin across connections (see CanStartLocked for
//    the fairness rules). One idle worker at a time is the
//    doorbell poller: it waits in epoll on every client's eventfd (edge-
//    triggered, never read) and serves what it finds itself, so a request
//    that wakes the server costs one wake-up, not an I/O-thread hop. Before
//    it runs a handler (which may block) it promotes another idle worker to
//    poller. Other idle workers wait LIFO on their own condition variable.
//
// Locks, in the order they may nest: Connection::recv_mu, then
// Connection::send_mu, then Connection::state_mu; pool_mu_ and conns_mu_
// are leaves (never held while taking another lock).
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
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/call_context.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/internal/listener.h"
#include "transports/local/internal/peer_pidfd.h"
#include "transports/local/internal/port_name.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/server_fuzz_peer.h"
#include "transports/local/internal/server_handshake.h"
#include "transports/local/local_transport.h"
#include "transports/local/metadata.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"

namespace lpc::local {
namespace {

using internal::CallRegistration;
using internal::Connection;
using internal::OwnedReply;
using internal::Registered;
using internal::WorkItem;

// LocalPortOptions::spin = InfiniteDuration spins at most this long for a
// client's next call.
constexpr int64_t kMaxServerSpinNs = 100 * 1000 * 1000;
// While all workers are busy, how often one of them looks at the doorbells
// without waiting (see WorkerLoop).
constexpr int64_t kBusyPollNs = 50 * 1000;
// How long a client counts as busy after its last call arrived (see Tick).
constexpr int64_t kActiveWindowNs = 20 * 1000 * 1000;
// contended_cpu_share: the token bucket's depth, the most one call is
// charged (a handler that blocks for long uses no CPU meanwhile; the
// handler caps bound those), and the most debt a bucket runs up. The depth
// sets how often a throttled client runs: each of its turns puts a worker
// (and wakes the client) on a CPU where a neighbour may spin, and a
// neighbour's pair needs a while to spin again after that. With 250 us
// turns (200 a second at the 5% floor) the neighbour of a oneway flood
// kept 61-95% of its throughput over 30 s, p99 x1.1-4.1; with 2 ms turns
// (25 a second) 65-100%, p99 x0.95-1.95 (docs/reliability.md, item 10).
constexpr int64_t kShareBurstNs = 2000 * 1000;
constexpr int64_t kMaxChargeNs = 1000 * 1000;
constexpr int64_t kMaxShareDebtNs = 1000 * 1000;
// A lone client's handler that runs this long gets a poller beside it
// (see BeforeCallLocked).
constexpr int64_t kLazyPollerNs = 500 * 1000;
// How long a worker polls, yielding, for the next request of a client that
// sleeps (AfterCall): a wake-up of an idle CPU takes 20-30 us here.
constexpr int64_t kWakeSpinNs = 50 * 1000;
// A worker and its client that take turns on one CPU (AfterCall, NoteWake):
// a reply that wakes the client where it last ran, on this worker's CPU,
// or a first yield this long that ends with the client's next call, shows
// it; after this many calls in a row so, the worker moves to another CPU,
// at most once per kColocatedMoveGapNs.
constexpr int64_t kHandOverNs = 2 * 1000;
constexpr int kColocatedCallsToMove = 4;
constexpr int64_t kColocatedMoveGapNs = 10 * 1000 * 1000;
constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kPokeTag = ~uint64_t{0} - 1;  // The pool's own eventfd.

class LocalServer final : public LocalServerTransport {
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
    budgets_.request_bytes.limit = options_.max_request_bytes;
    budgets_.reply_bytes.limit = options_.max_queued_reply_bytes;
    budgets_.reply_memfd_bytes.limit = options_.max_reply_memfd_bytes;
    budgets_.stashed_fds.limit = options_.max_stashed_fds;
  }

  ~LocalServer() override { Shutdown(absl::Now()); }

  absl::Status Start(Dispatcher* dispatcher) override;
  void Shutdown(absl::Time deadline) override;
  std::string target() const override { return "local:" + name_; }
  std::string path() const override { return path_; }

  LocalServerStats stats() const override {
    LocalServerStats s;
    s.connections_accepted = accepted_.load();
    s.connections_refused = refused_.load();
    s.clients_cut_off = cut_off_.load();
    s.calls_started = calls_started_.load();
    s.throttle_pauses = throttle_pauses_.load();
    s.threads_started = threads_started_.load();
    s.colocated_moves = colocated_moves_.load();
    s.cancel_packets = cancel_packets_.load();
    s.calls_cancelled_before_read = cancelled_before_read_.load();
    s.cancels_ignored = cancels_ignored_.load();
    s.handshakes_timed_out = handshakes_timed_out_.load();
    s.accept_fd_exhausted = accept_fd_exhausted_.load();
    s.request_bytes = budgets_.request_bytes.used.load();
    s.queued_reply_bytes = budgets_.reply_bytes.used.load();
    s.reply_memfd_bytes = budgets_.reply_memfd_bytes.used.load();
    s.stashed_fds = budgets_.stashed_fds.used.load();
    const BufferCache::Stats b = buffers_.stats();
    s.payload_buffers_reused = b.reused;
    s.payload_buffers_made = b.missed;
    s.payload_buffer_bytes_kept = b.kept_bytes;
    s.payload_memfds_made = memfd_pool_.made.load(std::memory_order_relaxed);
    s.payload_memfds_reused = memfd_pool_.reused.load(std::memory_order_relaxed);
    s.payload_memfd_bytes_kept =
        memfd_pool_.kept_bytes.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(conns_mu_);
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
  void AddConnection(const std::shared_ptr<Connection>& c);
  void HandleSocketEvent(const std::shared_ptr<Connection>& c, uint32_t events);
  void Tick();
  std::shared_ptr<Connection> Lookup(uint64_t id);

  void Schedule(const std::shared_ptr<Connection>& c, bool wake);
  void WorkerLoop();
  void PollDoorbells(int timeout_ms, bool busy);
  void ScanBusyConnections();
  void PromotePollerLocked();
  void BeforeCallLocked();
  void PromoteLazyPoller();
  void SpawnWorkerLocked();
  void WakeOneLocked();
  bool CanStartLocked(const Connection& c) const;
  void ChargeLocked(Connection& c, int64_t ns, int64_t now_ns);
  int64_t ResumeAtLocked(const Connection& c, int64_t now_ns) const;
  void ParkLocked(std::shared_ptr<Connection> c, int64_t now_ns);
  void UnparkLocked(int64_t now_ns);
  void RefillLocked(Connection& c, int64_t now_ns);
  void SetWallAnchor(absl::Time wall_now, int64_t mono_now_ns) {
    wall_anchor_unix_ns_.store(
        absl::ToUnixNanos(WallClockAnchor(wall_now, mono_now_ns)),
        std::memory_order_relaxed);
  }
  void UpdateSharesLocked(
      const std::vector<std::shared_ptr<Connection>>& conns, int64_t now_ns);
  bool AnyCallMayStartLocked() const;
  bool NoCallMayStart();
  void SetActiveLocked(Connection& c, bool active);
  bool TakeCallLocked(WorkItem* item);
  void CheckDoorbellStorm(const std::shared_ptr<Connection>& c, int64_t now_ns);
  void Drain(const std::shared_ptr<Connection>& c);
  void HandleMessage(const std::shared_ptr<Connection>& c, IncomingMessage msg,
                     std::vector<WorkItem>* items);
  void CancelCall(Connection& c, uint64_t id, bool by_socket);
  void RunCall(WorkItem& item);
  void AfterCall(const std::shared_ptr<Connection>& c, bool woke_client);
  void NoteWake(Connection& c, bool woke_client, bool here);
  // Returns true if the reply went straight into the ring and woke the
  // client (it was asleep on it).
  // Sends `reply`, or queues it (moving it out) while the reply ring is
  // full. Returns true if its wake-up woke the client.
  bool SendReply(const std::shared_ptr<Connection>& c, OwnedReply&& reply);
  void CutOff(const std::shared_ptr<Connection>& c, const absl::Status& why);
  void HangUp(const std::shared_ptr<Connection>& c);
  void StopWatchingAndCancel(Connection& c, bool closing);
  void Close(const std::shared_ptr<Connection>& c);

  const std::string name_;
  const std::string path_;
  const LocalPortOptions options_;
  // Large payload buffers for reuse; declared early so that it outlives
  // every connection's endpoint, which takes buffers from it.
  BufferCache buffers_{options_.payload_buffer_cache_bytes,
                      options_.large_payload_buffer_cache_bytes,
                      absl::ToInt64Nanoseconds(options_.payload_cache_idle)};
  // Sent reply memfds kept for reuse, for all connections (endpoint.h);
  // early for the same reason.
  PayloadMemfdPool memfd_pool_{options_.payload_memfd_cache_bytes};
  // The server-wide byte budgets; early for the same reason.
  internal::ServerBudgets budgets_;
  int concurrency_ = 1;
  int max_workers_ = 2;
  int max_handlers_per_connection_ = 1;
  Dispatcher* dispatcher_ = nullptr;

  UniqueFd listen_fd_;
  std::unique_ptr<internal::PortName> port_name_;  // Set once bound.
  UniqueFd epoll_fd_;
  UniqueFd doorbell_epoll_fd_;  // Client eventfds (EPOLLET) + pool_eventfd_.
  UniqueFd pool_eventfd_;       // Pokes the doorbell poller.
  std::thread io_thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> shutting_down_{false};  // No new calls.
  std::atomic<bool> stopping_{false};       // Threads exit.
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // Guarded by shutdown_mu_.

  mutable std::mutex conns_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns_;
  std::unordered_map<uint32_t, uint32_t> conns_per_uid_;  // conns_mu_
  // A spare descriptor, given up on EMFILE to accept and refuse one client
  // (AcceptOutOfFds); the listener then pauses until this time (monotonic
  // ns, 0 = watched). I/O thread only.
  UniqueFd reserve_fd_;
  int64_t accept_paused_until_ns_ = 0;
  bool fd_exhaustion_logged_ = false;
  uint64_t next_conn_id_ = 1;  // I/O thread only.

  // The pool.
  struct Worker {
    std::condition_variable cv;
    bool signalled = false;
  };
  std::mutex pool_mu_;
  // Connections with decoded calls waiting, each once, round-robin.
  std::deque<std::shared_ptr<Connection>> runnable_;  // pool_mu_
  // Sum of calls.size() over runnable_. Written under pool_mu_; atomic so
  // that AfterCall may glance at it without the lock.
  std::atomic<size_t> queued_calls_{0};
  // Throttled clients with calls waiting, out of runnable_ until their
  // buckets are full again (ParkLocked, UnparkLocked), and the calls they
  // hold; pool_mu_. Parked calls are not in queued_calls_: while a flood
  // waits for its bucket, its queued calls must cost the other clients'
  // calls nothing, where they used to cost each of them a clock read and a
  // turn of runnable_ (TakeCallLocked), the pool's lock (NoCallMayStart), a
  // doorbell poll every kBusyPollNs, and a worker woken by every tick.
  std::vector<std::shared_ptr<Connection>> parked_;
  size_t parked_calls_ = 0;
  int active_conns_ = 0;     // Connections with `active` set.
  std::deque<std::shared_ptr<Connection>> ready_;   // pool_mu_
  std::vector<Worker*> idle_;                       // pool_mu_, LIFO
  bool poller_active_ = false;                      // pool_mu_
  // A worker polls, yielding, for a sleeping client's next request
  // (AfterCall); at most one at a time.
  std::atomic<bool> wake_spinner_{false};
  // Workers signalled (taken off idle_) that have not run yet; pool_mu_.
  int waking_ = 0;
  bool poller_long_wait_ = false;  // Poller sleeps 100 ms, not 1; pool_mu_
  std::vector<std::thread> threads_;                // pool_mu_
  std::vector<std::thread::id> finished_;  // Left WorkerLoop; pool_mu_
  int live_workers_ = 0;                            // pool_mu_
  int limit_ = 1;                                   // pool_mu_
  int running_ = 0;                                 // pool_mu_
  // When the first parked client gets its bucket back (0: none). Written
  // under pool_mu_; atomic so that a doorbell poll may glance at it.
  std::atomic<int64_t> next_resume_ns_{0};
  // contended_cpu_share: the buckets' refill rate, of one CPU; pool_mu_.
  double refill_share_ = 1;
  // A handler runs and nobody polls (BeforeCallLocked), since when;
  // pool_mu_. `unpolled_` mirrors it for the I/O thread's timeout.
  int64_t unpolled_since_ns_ = 0;
  std::atomic<bool> unpolled_{false};
  uint64_t completions_ = 0;                        // pool_mu_
  uint64_t last_completions_ = 0;                   // I/O thread

  std::atomic<uint64_t> accepted_{0}, refused_{0}, cut_off_{0},
      calls_started_{0}, throttle_pauses_{0}, threads_started_{0},
      colocated_moves_{0};
  // Workers time their handlers and ring reads (for contended_cpu_share)
  // only while several clients are busy; set by the tick.
  std::atomic<bool> accounting_{false};
  int64_t last_tick_ns_ = 0;  // I/O thread
  // WallClockAnchor as Unix ns, refreshed by every tick: requests' wire
  // deadlines become absl::Time with no clock read (a wall clock that is
  // set moves deadlines of calls read in the next tick by as much).
  std::atomic<int64_t> wall_anchor_unix_ns_{0};
  std::atomic<uint64_t> cancel_packets_{0}, cancelled_before_read_{0},
      cancels_ignored_{0}, handshakes_timed_out_{0}, accept_fd_exhausted_{0};
  std::atomic<int64_t> last_scan_ns_{0};  // ScanBusyConnections.
  std::atomic<int64_t> last_poll_ns_{0};  // Last look at the doorbells.
};

absl::Status LocalServer::BindListener() {
  // Only a claimed name is ever released (unlinked) again: a failed claim
  // leaves port_name_ empty and the live owner's socket alone.
  absl::StatusOr<std::unique_ptr<internal::PortName>> port =
      internal::PortName::Claim(path_, options_.socket_mode);
  if (!port.ok()) return port.status();
  listen_fd_ = (*port)->TakeListener();
  port_name_ = std::move(*port);
  return absl::OkStatus();
}

absl::Status LocalServer::Start(Dispatcher* dispatcher) {
  if (started_.exchange(true)) {
    return absl::FailedPreconditionError("local transport already started");
  }
  dispatcher_ = dispatcher;
  if (absl::StatusOr<SectionLayout> l = ComputeLayout(options_.geometry); !l.ok()) {
    return l.status();
  }
  if (absl::Status s = BindListener(); !s.ok()) return s;
  reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  epoll_fd_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_) return absl::ResourceExhaustedError("epoll_create1 failed");
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  doorbell_epoll_fd_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!doorbell_epoll_fd_) {
    return absl::ResourceExhaustedError("epoll_create1 failed");
  }
  absl::StatusOr<UniqueFd> poke = CreateEventFd();
  if (!poke.ok()) return poke.status();
  pool_eventfd_ = std::move(*poke);
  ev.events = EPOLLIN;
  ev.data.u64 = kPokeTag;
  ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_ADD, pool_eventfd_.get(), &ev);
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    limit_ = concurrency_;
    for (int i = 0; i < concurrency_; ++i) SpawnWorkerLocked();
  }
  SetWallAnchor(absl::Now(), MonotonicNowNs());  // Before any request.
  io_thread_ = std::thread([this] { IoLoop(); });
  return absl::OkStatus();
}

std::shared_ptr<Connection> LocalServer::Lookup(uint64_t id) {
  std::lock_guard<std::mutex> lock(conns_mu_);
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second;
}

void LocalServer::IoLoop() {
  struct epoll_event events[64];
  absl::Time next_tick = absl::Now();
  while (!stopping_.load()) {
    // Every millisecond while a handler runs with nobody polling.
    const int n = ::epoll_wait(epoll_fd_.get(), events, 64,
                               unpolled_.load(std::memory_order_relaxed) ? 1 : 10);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      std::shared_ptr<Connection> c = Lookup(tag >> 1);
      if (c == nullptr) continue;
      if ((tag & 1) != 0) {
        DrainEventFd(c->eventfd.get());
        Schedule(c, /*wake=*/true);
      } else {
        HandleSocketEvent(c, events[i].events);
      }
    }
    if (unpolled_.load(std::memory_order_relaxed)) PromoteLazyPoller();
    if (absl::Now() >= next_tick) {
      Tick();
      next_tick = absl::Now() + absl::Milliseconds(10);
    }
  }
}

internal::ServerHandshakeOptions LocalServer::HandshakeOptions() {
  internal::ServerHandshakeOptions ho;
  ho.geometry = options_.geometry;
  ho.max_inline_record = options_.max_inline_record;
  ho.max_message_size = dispatcher_->options().max_message_size;
  ho.buffers = &buffers_;
  ho.memfd_pool = &memfd_pool_;
  ho.payload_cache_idle = options_.payload_cache_idle;
  ho.address = target();
  ho.max_reply_memfd_bytes_per_connection =
      options_.max_reply_memfd_bytes_per_connection;
  ho.max_request_bytes_per_connection =
      options_.max_request_bytes_per_connection;
  ho.max_queued_reply_bytes_per_connection =
      options_.max_queued_reply_bytes_per_connection;
  ho.budgets = &budgets_;
  return ho;
}

void LocalServer::AddConnection(const std::shared_ptr<Connection>& c) {
  c->id = next_conn_id_++;
  c->tokens_ns = kShareBurstNs;
  c->accepted_ns = MonotonicNowNs();
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    conns_[c->id] = c;
    ++conns_per_uid_[c->creds.uid];
  }
  accepted_.fetch_add(1);
}

void LocalServer::Accept() {
  for (int i = 0; i < 64; ++i) {
    UniqueFd sock(::accept4(listen_fd_.get(), nullptr, nullptr,
                            SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!sock) {
      if (errno == EMFILE || errno == ENFILE) AcceptOutOfFds(errno);
      return;
    }
    fd_exhaustion_logged_ = false;  // The next shortage is logged again.
    absl::StatusOr<PeerCredentials> creds = GetPeerCredentials(sock.get());
    if (creds.ok() && options_.accept_callback) {
      // For the callback only (PeerCredentials::pidfd): dropped below.
      absl::StatusOr<internal::PeerPidfd> pidfd =
          internal::GetPeerPidfd(sock.get());
      if (pidfd.ok()) {
        creds->pidfd = std::make_shared<const UniqueFd>(std::move(pidfd->fd));
        creds->pidfd_from_kernel = pidfd->from_kernel;
      }
    }
    absl::Status verdict = creds.status();
    if (verdict.ok() && shutting_down_.load()) {
      verdict = absl::UnavailableError("server is shutting down");
    }
    if (verdict.ok()) verdict = internal::CheckAccess(options_, name_, *creds);
    if (creds.ok()) creds->pidfd.reset();  // The callback may keep a copy.
    if (verdict.ok()) {
      std::lock_guard<std::mutex> lock(conns_mu_);
      const uint32_t per_uid = options_.max_connections_per_uid;
      if (conns_.size() >= options_.max_connections) {
        verdict = absl::ResourceExhaustedError("too many connections");
      } else if (per_uid != 0 && conns_per_uid_[creds->uid] >= per_uid) {
        verdict = absl::ResourceExhaustedError(absl::StrCat(
            "too many connections from uid ", creds->uid));
      }
    }
    if (!verdict.ok()) {
      refused_.fetch_add(1);
      internal::SendRefusal(sock.get(), verdict);
      continue;  // Nothing was mapped or allocated for it.
    }
    absl::StatusOr<std::shared_ptr<Connection>> made =
        internal::ServerHandshake(std::move(sock), *creds, HandshakeOptions());
    if (!made.ok()) continue;
    std::shared_ptr<Connection> c = std::move(*made);
    // The client now holds its own reference to the memfd; ours closed.
    AddConnection(c);
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id << 1;
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, c->sock.get(), &ev);
    // Edge-triggered and never read: every write of the client is an edge,
    // and a counter the client saturates only stops its own doorbell (the
    // tick still finds its requests).
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = (c->id << 1) | 1;
    ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_ADD, c->eventfd.get(), &ev);
    Schedule(c, true);  // Requests may already be there.
  }
}

void LocalServer::HandleSocketEvent(const std::shared_ptr<Connection>& c,
                                    uint32_t events) {
  for (int i = 0; i < 32; ++i) {
    absl::StatusOr<Packet> p = RecvPacket(c->sock.get(), absl::InfinitePast());
    if (absl::IsDeadlineExceeded(p.status())) break;
    if (!p.ok()) {
      HangUp(c);  // The client is gone.
      return;
    }
    absl::Span<const std::byte> body;
    absl::StatusOr<ControlType> type = DecodeControlHeader(
        absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                            p->bytes.size()),
        &body);
    if (!type.ok()) {
      CutOff(c, type.status());
      return;
    }
    if (*type == ControlType::kGoodbye) {
      Close(c);
      return;
    }
    if (*type == ControlType::kCancel) {
      absl::StatusOr<uint64_t> id = DecodeCancelBody(body);
      if (id.ok() && !p->fds.empty()) {
        id = absl::DataLossError("control: CANCEL with descriptors");
      }
      if (!id.ok()) {
        CutOff(c, id.status());
        return;
      }
      CancelCall(*c, *id, /*by_socket=*/true);
      cancel_packets_.fetch_add(1);  // After: its effects are counted.
      continue;
    }
    PayloadFdBody b;
    if (*type != ControlType::kPayloadFd || body.size() != sizeof(b) ||
        p->fds.size() != 1) {
      CutOff(c, absl::DataLossError("unexpected control packet"));
      return;
    }
    std::memcpy(&b, body.data(), sizeof(b));
    if (c->StashPayloadFd(b.memfd_number, std::move(p->fds[0]),
                          MonotonicNowNs())) {
      continue;
    }
    CutOff(c, absl::ResourceExhaustedError("too many unclaimed payload memfds"));
    return;
  }
  if ((events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) HangUp(c);
}

// The client closed its socket or died. Calls waiting for a reply are
// cancelled at once (nobody will read the reply). Oneway calls it published
// before it went are still run, as a datagram written before a close is
// still delivered: the connection closes once its ring is empty and its
// last oneway handler has returned (Drain and AfterCall).
void LocalServer::HangUp(const std::shared_ptr<Connection>& c) {
  if (c->closed.load() || c->hung_up.exchange(true)) return;
  c->hung_up_ns.store(MonotonicNowNs());
  StopWatchingAndCancel(*c, /*closing=*/false);
  Schedule(c, /*wake=*/true);
}

// Takes the client's socket and doorbell out of the epoll sets and cancels
// its calls that wait for a reply. `closing` also cancels its oneway calls
// and drops the payload memfds it sent; either way, a worker waiting for
// such a memfd wakes up.
void LocalServer::StopWatchingAndCancel(Connection& c, bool closing) {
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, c.sock.get(), nullptr);
  ::epoll_ctl(doorbell_epoll_fd_.get(), EPOLL_CTL_DEL, c.eventfd.get(),
              nullptr);
  for (auto& cancel : c.StopCalls(closing)) cancel->Cancel();
}

void LocalServer::Tick() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (auto& [id, c] : conns_) conns.push_back(c);
  }
  const absl::Time now = absl::Now();
  const int64_t now_ns = MonotonicNowNs();
  SetWallAnchor(now, now_ns);
  buffers_.Trim(now_ns);  // Large buffers unused for a second go.
  if (accept_paused_until_ns_ != 0 && now_ns >= accept_paused_until_ns_ &&
      !shutting_down_.load()) {
    accept_paused_until_ns_ = 0;
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  }
  for (auto& c : conns) {
    CheckDoorbellStorm(c, now_ns);
    CheckEnding(c, now_ns);
    if (c->closed.load()) continue;
    // A peer that shut its socket but keeps publishing (another process
    // holding the section, say) gets reply_stall_timeout to finish, not
    // forever.
    if (c->hung_up.load() &&
        now_ns - c->hung_up_ns.load() >
            absl::ToInt64Nanoseconds(options_.reply_stall_timeout)) {
      Close(c);
      continue;
    }
    bool stalled = false, pending = false;
    {
      // Never wait here: the I/O thread also accepts new clients. A worker
      // holding send_mu is sending; the next tick looks again.
      if (c->send_mu.TryLock()) {
        c->ep->TrimKeptMemfds(now_ns);  // Idle ones go back to the kernel.
        c->ep->UncollectedMemfdBytes();  // Forgets the collected ones.
        pending = !c->pending_replies.empty();
        stalled =
            pending && now - c->pending_since > options_.reply_stall_timeout;
        c->send_mu.Unlock();
      }
    }
    if (stalled) {
      CutOff(c, absl::ResourceExhaustedError("client does not read its replies"));
    } else if (pending || c->hung_up.load() || c->ep->HasInboundHint()) {
      // (A hung-up client is looked at until Drain closes it: its hang-up
      // may have come while a worker was draining it.)
      Schedule(c, true);
    }
  }
  // Pool growth: work is waiting, nobody is idle and nothing completed
  // during the last tick, so the running handlers are blocked.
  std::lock_guard<std::mutex> lock(pool_mu_);
  // A client stays active (and counts when the CPU share is computed) for
  // kActiveWindowNs after its last call arrived: a client making one call
  // at a time is between calls most of the time, yet it is busy.
  for (auto& c : conns) {
    if (c->active && c->calls.empty() && c->running_calls == 0 &&
        now_ns - c->last_active_ns > kActiveWindowNs) {
      SetActiveLocked(*c, false);
    }
  }
  UpdateSharesLocked(conns, now_ns);
  UnparkLocked(now_ns);  // Buckets that refilled, and clients no longer
                         // contended.
  const bool waiting = queued_calls_ > 0 || !ready_.empty();
  const bool runnable =
      !ready_.empty() || (queued_calls_ > 0 && running_ < limit_);
  const bool free_worker = !idle_.empty() || poller_active_;
  if (runnable && free_worker) {
    WakeOneLocked();  // A free worker helps (or the poller is poked).
  } else if (waiting && (running_ >= limit_ || !free_worker) &&
             completions_ == last_completions_ && limit_ < max_workers_) {
    ++limit_;
    if (live_workers_ < limit_) SpawnWorkerLocked();
    WakeOneLocked();
  } else if (!waiting && limit_ > concurrency_) {
    --limit_;  // An idle worker above the limit exits.
    WakeOneLocked();
  }
  last_completions_ = completions_;
}

// A doorbell storm: a client ringing far more often than it publishes
// records (or than the server asked it to ring) makes the poller wake for
// nothing. Counted per one-second window; past kStormDoorbells beyond
// twice what honest use explains, the client is cut off.
void LocalServer::CheckDoorbellStorm(const std::shared_ptr<Connection>& c,
                                     int64_t now_ns) {
  constexpr uint64_t kStormDoorbells = 1000;
  const uint64_t rings = c->doorbells.load(std::memory_order_relaxed);
  const uint64_t records = c->records.load(std::memory_order_relaxed);
  const uint64_t room = c->room_requests.load(std::memory_order_relaxed);
  if (c->window_start_ns == 0 || now_ns - c->window_start_ns >= 1000000000) {
    c->window_start_ns = now_ns;
    c->window_doorbells = rings;
    c->window_records = records;
    c->window_room = room;
    return;
  }
  const uint64_t r = rings - c->window_doorbells;
  const uint64_t explained =
      2 * ((records - c->window_records) + (room - c->window_room));
  if (r > kStormDoorbells + explained) {
    CutOff(c, absl::ResourceExhaustedError(absl::StrCat(
                  "doorbell storm: ", r, " doorbells for ",
                  records - c->window_records, " records in ",
                  (now_ns - c->window_start_ns) / 1000000, " ms")));
  }
}

// Connections that must end although their socket stays open: a client
// that never read its WELCOME (handshake_timeout), and one whose payload fd
// waits unclaimed with no record in its ring to claim it
// (stashed_fd_timeout). The latter is how a client that sent its own
// socket end as a payload fd and exited is found: the stashed fd kept the
// socket open, so no hang-up came.
void LocalServer::CheckEnding(const std::shared_ptr<Connection>& c,
                              int64_t now_ns) {
  if (c->closed.load()) return;
  if (!c->welcome_read) {
    // SIOCOUTQ: bytes we sent that the client has not read yet.
    int unread = 0;
    if (::ioctl(c->sock.get(), SIOCOUTQ, &unread) != 0 || unread == 0 ||
        c->records.load(std::memory_order_relaxed) != 0 ||
        c->ep->HasInboundHint()) {
      c->welcome_read = true;
    } else if (now_ns - c->accepted_ns >
               absl::ToInt64Nanoseconds(options_.handshake_timeout)) {
      handshakes_timed_out_.fetch_add(1, std::memory_order_relaxed);
      Close(c);  // Not logged: it never became a client.
      return;
    }
  }
  const int64_t oldest = c->OldestStashedNs();
  if (oldest != 0 &&
      now_ns - oldest > absl::ToInt64Nanoseconds(options_.stashed_fd_timeout) &&
      !c->ep->HasInboundHint()) {
    CutOff(c, absl::DataLossError(absl::StrCat(
                  "a payload fd waited ", (now_ns - oldest) / 1000000,
                  " ms with no record to claim it")));
  }
}

// accept(2) failed with EMFILE or ENFILE. The listener is level-triggered,
// so returning would wake the I/O loop again at once, forever: the spare
// descriptor is given up to accept and refuse the first waiting client,
// and the listener is left out of the epoll set for 100 ms (the tick puts
// it back). Logged once per shortage.
void LocalServer::AcceptOutOfFds(int err) {
  accept_fd_exhausted_.fetch_add(1, std::memory_order_relaxed);
  if (!fd_exhaustion_logged_) {
    fd_exhaustion_logged_ = true;
    std::fprintf(stderr,
                 "lpc local %s: out of file descriptors (%s); accepting "
                 "paused, 100 ms at a time\n",
                 name_.c_str(), std::strerror(err));
  }
  if (reserve_fd_) {
    reserve_fd_.Reset();
    UniqueFd sock(::accept4(listen_fd_.get(), nullptr, nullptr,
                            SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (sock) {
      refused_.fetch_add(1);
      internal::SendRefusal(
          sock.get(),
          absl::ResourceExhaustedError("server is out of file descriptors"));
    }
    sock.Reset();
    reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
  accept_paused_until_ns_ = MonotonicNowNs() + 100 * 1000 * 1000;
}

void LocalServer::SpawnWorkerLocked() {
  // Join the threads that left after a burst of blocking, so that a pool
  // that grows and shrinks all day keeps no dead threads (and stacks).
  for (const std::thread::id& id : finished_) {
    auto it = std::find_if(threads_.begin(), threads_.end(),
                           [&](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join();  // It has left WorkerLoop; it needs no lock to finish.
      threads_.erase(it);
    }
  }
  finished_.clear();
  ++live_workers_;
  threads_started_.fetch_add(1, std::memory_order_relaxed);
  threads_.emplace_back([this] { WorkerLoop(); });
}

void LocalServer::WakeOneLocked() {
  if (!idle_.empty()) {
    Worker* w = idle_.back();  // LIFO: the most recently idle is warm.
    idle_.pop_back();
    ++waking_;
    w->signalled = true;
    w->cv.notify_one();
  } else if (poller_active_) {
    SignalEventFd(pool_eventfd_.get());
  }
}

// Called before running a handler: if nobody polls the doorbells, an idle
// worker takes over (a handler may block for long).
void LocalServer::PromotePollerLocked() {
  if (poller_active_) {
    if (poller_long_wait_) {  // Shorten its sleep to the 1 ms watch.
      poller_long_wait_ = false;
      SignalEventFd(pool_eventfd_.get());
    }
    return;
  }
  // A worker woken a moment ago is on its way (it polls unless it finds
  // work first, and then its own call promotes again). Waking or starting
  // another meanwhile is what grew the pool by a thread per call when
  // spinners held both CPUs and woken workers waited for one.
  if (waking_ > 0) return;
  if (!idle_.empty()) {
    WakeOneLocked();
  } else if (live_workers_ < max_workers_ + 1) {
    // One thread beyond the handlers always stays free to poll doorbells
    // and drain rings, so CANCEL records and new clients are read even
    // while every handler blocks.
    SpawnWorkerLocked();
  }
}

// Before a handler runs, someone must poll the doorbells (the handler may
// block). With clients or calls waiting that may start now, an idle worker
// takes over at once. Otherwise none is woken: on a shared CPU that
// wake-up is two context switches per call, and most calls end within
// microseconds. Calls held back by their client's caps or bucket do not
// count: while a slow flood's calls waited behind its handler cap, every
// call of a neighbour woke a worker (12,000 context switches a second in
// the server, `perf stat`, 2026-11-22); they start when one of their
// client's handlers ends, on that worker, or through the lazy poller.
// (Until this was also done with other clients busy, a neighbour's every
// call that came in by doorbell woke a second worker while a flood's
// handlers slept; see docs/reliability.md, Known problems 4.) The worker
// that ran it polls again afterwards; if it is still running after
// kLazyPollerNs, the I/O thread (which then wakes every millisecond)
// promotes a poller (PromoteLazyPoller). So a request that arrives while a
// lone handler blocks waits at most about kLazyPollerNs plus a millisecond
// (a CANCEL comes on the control socket, which the I/O thread reads).
void LocalServer::BeforeCallLocked() {
  if (poller_active_ || !ready_.empty() ||
      (queued_calls_ > 0 && AnyCallMayStartLocked())) {
    PromotePollerLocked();
    return;
  }
  if (unpolled_since_ns_ == 0) unpolled_since_ns_ = MonotonicNowNs();
  unpolled_.store(true, std::memory_order_relaxed);
}

void LocalServer::PromoteLazyPoller() {
  std::lock_guard<std::mutex> lock(pool_mu_);
  // Somebody polls, or the worker is back (it polls next).
  if (poller_active_ || unpolled_since_ns_ == 0 || running_ == 0) {
    unpolled_since_ns_ = 0;
    unpolled_.store(false, std::memory_order_relaxed);
    return;
  }
  if (MonotonicNowNs() - unpolled_since_ns_ < kLazyPollerNs) return;
  unpolled_since_ns_ = 0;
  unpolled_.store(false, std::memory_order_relaxed);
  PromotePollerLocked();
}

// Fairness. A client with no handler running may always start one (up to
// max_workers in all), even past the concurrency limit: a busy or hostile
// neighbour cannot make it wait for a worker. Further handlers of one
// client need the pool under its concurrency limit and the client under
// max_handlers_per_connection, so one client never holds every worker.
//
// The share: with several clients busy (calls within the last 20 ms), one
// client's handlers may fill at most its share of the concurrency limit,
// so a client flooding a fast method cannot take every CPU from a client
// that makes one call at a time. Alone, a client may use the whole limit.
// Whether a worker may stay with one client (AfterCall's spins): queued
// calls that may start come first; calls held back by their client's share
// (a flooding neighbour's) do not count. The lock only when calls wait.
bool LocalServer::NoCallMayStart() {
  if (queued_calls_.load(std::memory_order_relaxed) == 0) return true;
  std::lock_guard<std::mutex> lock(pool_mu_);
  return !AnyCallMayStartLocked();
}

bool LocalServer::AnyCallMayStartLocked() const {
  for (const std::shared_ptr<Connection>& c : runnable_) {
    if (CanStartLocked(*c)) return true;
  }
  return false;
}

bool LocalServer::CanStartLocked(const Connection& c) const {
  if (running_ >= max_workers_ || c.throttled) return false;
  if (c.running_calls == 0) return true;
  if (running_ >= limit_ || c.running_calls >= max_handlers_per_connection_) {
    return false;
  }
  return c.running_calls < std::max(1, limit_ / std::max(1, active_conns_));
}

// contended_cpu_share. Every tick measures each client's share of a CPU
// (a worker's whole time on it, smoothed; see WorkerLoop). A client is
// "queued up" while two or more of its calls wait beyond those running
// (this tick or the last), and "light" while busy and not queued up.
// While a light client is busy, a queued-up client is "contended": its
// time is charged to a token bucket refilling at max(contended_cpu_share,
// 1 - 4 x the light clients' share), and when the bucket is empty its
// calls wait (throttled, parked) until it is full again. Queued-up clients
// with no light one busy are not limited against each other.
void LocalServer::UpdateSharesLocked(
    const std::vector<std::shared_ptr<Connection>>& conns, int64_t now_ns) {
  const double floor_share = options_.contended_cpu_share;
  const int64_t dt = last_tick_ns_ == 0 ? 0 : now_ns - last_tick_ns_;
  last_tick_ns_ = now_ns;
  double light_sum = 0;
  int light = 0;
  for (const std::shared_ptr<Connection>& c : conns) {
    const int64_t busy = c->busy_ns.load(std::memory_order_relaxed);
    if (dt > 0) {
      const double now_share = static_cast<double>(busy - c->tick_busy_ns) /
                               static_cast<double>(dt);
      c->share = 0.5 * c->share + 0.5 * now_share;
    }
    c->tick_busy_ns = busy;
    const bool backlog_now =
        c->pending_calls.load(std::memory_order_relaxed) >=
        static_cast<uint32_t>(c->running_calls) + 2;
    c->backlogged = backlog_now || c->backlog_seen;
    c->backlog_seen = backlog_now;
    if (c->active && !c->backlogged) {
      ++light;
      light_sum += c->share;
    }
  }
  const bool accounting = floor_share > 0 && active_conns_ >= 2;
  accounting_.store(accounting, std::memory_order_relaxed);
  refill_share_ = std::clamp(1.0 - 4.0 * light_sum, floor_share, 1.0);
  for (const std::shared_ptr<Connection>& c : conns) {
    c->contended = accounting && c->backlogged && light > 0;
    if (!c->contended) {
      c->throttled = false;
      c->tokens_ns = kShareBurstNs;
      c->refilled_ns = now_ns;
    }
  }
}

void LocalServer::RefillLocked(Connection& c, int64_t now_ns) {
  const int64_t dt = std::max<int64_t>(0, now_ns - c.refilled_ns);
  c.refilled_ns = now_ns;
  c.tokens_ns = std::min<int64_t>(
      kShareBurstNs,
      c.tokens_ns + static_cast<int64_t>(static_cast<double>(dt) *
                                         refill_share_));
  // Hysteresis: a paused client resumes with a full bucket, so its turns
  // come as a few long bursts rather than many short ones; each turn wakes
  // a worker (and the client, whose ring is read again), which on a small
  // machine takes a CPU from whoever spins there.
  if (c.throttled && c.tokens_ns >= kShareBurstNs) c.throttled = false;
}

// When a throttled client's bucket is full again, at the present rate.
int64_t LocalServer::ResumeAtLocked(const Connection& c, int64_t now_ns) const {
  const double missing = static_cast<double>(kShareBurstNs - c.tokens_ns);
  return now_ns +
         static_cast<int64_t>(missing / std::max(refill_share_, 1e-3));
}

// Takes a throttled client (just taken off runnable_) out of the round
// until its bucket is full.
void LocalServer::ParkLocked(std::shared_ptr<Connection> c, int64_t now_ns) {
  const int64_t at = ResumeAtLocked(*c, now_ns);
  const int64_t next = next_resume_ns_.load(std::memory_order_relaxed);
  if (next == 0 || at < next) {
    next_resume_ns_.store(at, std::memory_order_relaxed);
  }
  queued_calls_ -= c->calls.size();
  parked_calls_ += c->calls.size();
  c->parked = true;
  parked_.push_back(std::move(c));
}

// Puts the parked clients whose buckets are full (or that are no longer
// throttled) back in the round; the poller and the tick call it once
// next_resume_ns_ has passed.
void LocalServer::UnparkLocked(int64_t now_ns) {
  int64_t next = 0;
  for (size_t i = 0; i < parked_.size();) {
    Connection& c = *parked_[i];
    RefillLocked(c, now_ns);
    if (c.throttled) {
      const int64_t at = ResumeAtLocked(c, now_ns);
      if (next == 0 || at < next) next = at;
      ++i;
      continue;
    }
    c.parked = false;
    parked_calls_ -= c.calls.size();
    queued_calls_ += c.calls.size();
    runnable_.push_back(std::move(parked_[i]));
    parked_[i] = std::move(parked_.back());
    parked_.pop_back();
  }
  next_resume_ns_.store(next, std::memory_order_relaxed);
}

void LocalServer::ChargeLocked(Connection& c, int64_t ns, int64_t now_ns) {
  if (!c.contended || ns <= 0) return;
  RefillLocked(c, now_ns);
  // The debt is bounded, so a pause lasts at most (depth + debt) / refill.
  c.tokens_ns = std::max(c.tokens_ns - std::min(ns, kMaxChargeNs),
                         -kMaxShareDebtNs);
  if (c.tokens_ns < 0 && !c.throttled) {
    c.throttled = true;
    throttle_pauses_.fetch_add(1, std::memory_order_relaxed);
  }
}

void LocalServer::SetActiveLocked(Connection& c, bool active) {
  if (c.active == active) return;
  c.active = active;
  active_conns_ += active ? 1 : -1;
}

// Takes the next call the pool may start: round-robin over the clients
// with waiting calls, one call per client per turn.
bool LocalServer::TakeCallLocked(WorkItem* item) {
  for (size_t n = runnable_.size(); n > 0; --n) {
    std::shared_ptr<Connection> c = std::move(runnable_.front());
    runnable_.pop_front();
    if (c->throttled) {  // Its bucket ran dry during its last call.
      const int64_t now_ns = MonotonicNowNs();
      RefillLocked(*c, now_ns);
      if (c->throttled) {
        ParkLocked(std::move(c), now_ns);
        continue;
      }
    }
    if (!CanStartLocked(*c)) {
      runnable_.push_back(std::move(c));
      continue;
    }
    *item = std::move(c->calls.front());
    c->calls.pop_front();
    --queued_calls_;
    ++c->running_calls;
    ++running_;
    if (c->calls.empty()) {
      c->runnable = false;
    } else {
      runnable_.push_back(std::move(c));
    }
    return true;
  }
  return false;
}

// The doorbell poller (no lock held): waits for client doorbells, at most
// `timeout_ms`, and queues the connections that rang; at most once per
// millisecond it also looks at the rings of clients whose handlers run.
void LocalServer::PollDoorbells(int timeout_ms, bool busy) {
  struct epoll_event events[64];
  const int n = ::epoll_wait(doorbell_epoll_fd_.get(), events, 64, timeout_ms);
  const int64_t polled_ns = MonotonicNowNs();
  last_poll_ns_.store(polled_ns, std::memory_order_relaxed);
  const int64_t resume_ns = next_resume_ns_.load(std::memory_order_relaxed);
  if (resume_ns != 0 && polled_ns >= resume_ns) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    UnparkLocked(polled_ns);  // This worker takes their calls next.
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag == kPokeTag) {
      DrainEventFd(pool_eventfd_.get());
      continue;
    }
    std::shared_ptr<Connection> c = Lookup(tag >> 1);
    if (c == nullptr) continue;
    c->doorbells.fetch_add(1, std::memory_order_relaxed);
    // The poller serves the first client itself; a busy worker has work
    // of its own, so every client it finds gets a free worker (which then
    // runs on another CPU while this one goes on).
    Schedule(c, /*wake=*/busy || i > 0);
  }
  const int64_t now = MonotonicNowNs();
  if (now - last_scan_ns_.load(std::memory_order_relaxed) >= 1000 * 1000) {
    last_scan_ns_.store(now, std::memory_order_relaxed);
    ScanBusyConnections();
  }
}

// Queues every client that has a handler running and records waiting.
void LocalServer::ScanBusyConnections() {
  std::vector<std::shared_ptr<Connection>> found;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (auto& [id, c] : conns_) {
      // A client at its in-flight limit is skipped: its ring is not read
      // until its calls finish (AfterCall reschedules it), so a drain now
      // would wake a worker for nothing, every millisecond.
      if (c->handlers.load(std::memory_order_relaxed) > 0 &&
          !c->queued.load(std::memory_order_relaxed) &&
          c->pending_calls.load(std::memory_order_relaxed) <
              options_.max_in_flight_per_connection &&
          c->ep->HasInboundHint()) {
        found.push_back(c);
      }
    }
  }
  for (size_t i = 0; i < found.size(); ++i) Schedule(found[i], i > 0);
}

void LocalServer::Schedule(const std::shared_ptr<Connection>& c, bool wake) {
  if (c->closed.load()) return;
  if (c->queued.exchange(true, std::memory_order_seq_cst)) return;
  std::lock_guard<std::mutex> lock(pool_mu_);
  ready_.push_back(c);
  if (wake) WakeOneLocked();
}

void LocalServer::WorkerLoop() {
  Worker self;
  bool idle_timed_out = false;  // The last idle wait ended with no signal.
  // contended_cpu_share charges a client for all of this worker's time on
  // it: at the end of each of its calls, the time since the worker's
  // previous charge (or since it began work after a wait), which includes
  // the ring read that queued the call. The pool's own cost between calls
  // (taking a call, the lock, freeing a call's buffers, the spin for the
  // client's next request) is then charged too, not only the handler: a
  // light client's worker spends most of its time on it spinning or
  // polling for the next request, and counting handlers alone made a
  // spinning neighbour look nearly idle, so a flood's bucket refilled far
  // above the floor (docs/reliability.md, Known problems 4). 0: not
  // accounting, or the worker has just waited.
  int64_t busy_since_ns = 0;
  std::unique_lock<std::mutex> lock(pool_mu_);
  // The end of a call of `c`: charges it, and returns with `lock` held.
  auto charge = [&](Connection& c) {
    if (!accounting_.load(std::memory_order_relaxed)) {
      busy_since_ns = 0;
      lock.lock();
      return;
    }
    const int64_t now_ns = MonotonicNowNs();
    const int64_t ns =
        busy_since_ns == 0 ? 0 : std::min(now_ns - busy_since_ns, kMaxChargeNs);
    busy_since_ns = now_ns;
    c.busy_ns.fetch_add(ns, std::memory_order_relaxed);
    lock.lock();
    ChargeLocked(c, ns, now_ns);
  };
  auto start_work = [&] {
    if (busy_since_ns == 0 && accounting_.load(std::memory_order_relaxed)) {
      busy_since_ns = MonotonicNowNs();
    }
  };
  while (!stopping_.load()) {
    // While every worker has work, nobody sleeps in the doorbell poller: a
    // busy worker then looks at the doorbells itself (without waiting),
    // at most every kBusyPollNs, so a quiet client's request is seen while
    // another client keeps the pool busy.
    if (!poller_active_ && (queued_calls_ > 0 || !ready_.empty()) &&
        MonotonicNowNs() - last_poll_ns_.load(std::memory_order_relaxed) >=
            kBusyPollNs) {
      poller_active_ = true;
      lock.unlock();
      PollDoorbells(0, /*busy=*/true);
      lock.lock();
      poller_active_ = false;
      continue;
    }
    // Rings first: reading a client's records is short, and only then can
    // its calls take their turn with other clients' (a busy client's queue
    // must not hide a quiet client's new request).
    if (!ready_.empty()) {
      idle_timed_out = false;
      std::shared_ptr<Connection> c = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      start_work();
      Drain(c);
      // Not charged here: reading the ring rolls into the charge of this
      // worker's next call, nearly always one of this client's (the one
      // it has just read). One clock read per call, not two.
      lock.lock();
      continue;  // (A last reference to `c` may go under the lock: see
                 // below.)
    }
    if (queued_calls_ > 0) {
      WorkItem item;
      if (TakeCallLocked(&item)) {
        idle_timed_out = false;
        BeforeCallLocked();
        lock.unlock();
        start_work();
        RunCall(item);
        std::shared_ptr<Connection> conn = std::move(item.conn);
        item = WorkItem();  // Frees the call's buffers outside the lock.
        charge(*conn);
        --running_;
        --conn->running_calls;
        ++completions_;
        continue;  // Perhaps the last reference to a closed connection
                   // goes under the lock: no member of it takes pool_mu_.
      }
    }
    // Shrink after a burst of blocking, keeping two threads beyond the
    // running handlers (the poller, and one to take a call at once). Only
    // while another thread polls: the thread that would become the poller
    // stays, or the next call would start a new thread (churn). And only
    // after a whole idle wait without work: a thread that left as soon as
    // it was spare was replaced at the next handler's start, and under a
    // flood of blocking calls the pool started and ended about a thousand
    // threads a second.
    if (idle_timed_out && poller_active_ &&
        live_workers_ > std::max(limit_, running_) + 2) {
      break;
    }
    idle_timed_out = false;
    if (!poller_active_) {
      // While handlers run, the poller also watches their clients' rings
      // (every millisecond), since their doorbells are off.
      poller_active_ = true;
      unpolled_since_ns_ = 0;
      unpolled_.store(false, std::memory_order_relaxed);
      // Parked calls (their clients' buckets refilling) need a look when
      // the first bucket is full (PollDoorbells unparks them), not every
      // millisecond.
      int timeout_ms = 100;
      if (running_ > 0 || queued_calls_ > 0) {
        timeout_ms = 1;
      } else if (!parked_.empty()) {
        const int64_t wait_ns =
            next_resume_ns_.load(std::memory_order_relaxed) - MonotonicNowNs();
        timeout_ms = static_cast<int>(
            std::clamp<int64_t>((wait_ns + 999999) / 1000000, 1, 100));
      }
      poller_long_wait_ = timeout_ms > 1;
      lock.unlock();
      PollDoorbells(timeout_ms, /*busy=*/false);
      busy_since_ns = 0;  // It waited.
      lock.lock();
      poller_active_ = false;
      poller_long_wait_ = false;
      continue;
    }
    self.signalled = false;
    busy_since_ns = 0;
    idle_.push_back(&self);
    idle_timed_out = !self.cv.wait_for(
        lock, std::chrono::milliseconds(100),
        [&] { return self.signalled || stopping_.load(); });
    if (self.signalled) --waking_;  // The waker took it off idle_.
    auto it = std::find(idle_.begin(), idle_.end(), &self);
    if (it != idle_.end()) idle_.erase(it);
  }
  --live_workers_;
  finished_.push_back(std::this_thread::get_id());
}

void LocalServer::Drain(const std::shared_ptr<Connection>& c) {
  // Reused per worker thread (Drain does not nest): no allocation per turn.
  thread_local std::vector<WorkItem> items;
  struct ClearOnExit {
    std::vector<WorkItem>& v;
    ~ClearOnExit() { v.clear(); }  // Keeps the capacity.
  } clear_on_exit{items};
  items.clear();
  bool requeue = false;
  bool at_limit = false;
  {
    MutexLock recv(&c->recv_mu);
    if (c->closed.load()) return;
    c->ep->SetRunning(true);
    absl::Status flushed;
    {
      MutexLock send(&c->send_mu);
      if (c->hung_up.load()) {
        c->DropRepliesLocked();  // Nobody reads them any more.
      } else if (!c->pending_replies.empty()) {
        flushed = c->FlushRepliesLocked();
      }
    }
    if (!flushed.ok()) {
      c->queued.store(false);
      CutOff(c, flushed);
      return;
    }
    uint32_t taken = 0;
    bool ring_empty = false;
    absl::Status bad;
    const size_t in_flight = c->pending_calls.load();
    while (taken < options_.batch_per_turn) {
      // (The server's queued-reply budget needs no check here: a reply
      // past it becomes a short failure.)
      if (in_flight + items.size() >= options_.max_in_flight_per_connection ||
          !internal::MayRead(c->request_bytes, budgets_.request_bytes) ||
          c->reply_bytes.Reached()) {
        at_limit = true;  // Back-pressure: the ring fills and the client
        break;            // waits; a finishing call (or the tick, for the
      }                   // server-wide budgets) reschedules us.
      absl::StatusOr<std::optional<IncomingMessage>> msg = c->ep->Receive();
      if (!msg.ok()) {
        bad = msg.status();
        break;
      }
      if (!msg->has_value()) {
        ring_empty = true;
        break;
      }
      ++taken;
      HandleMessage(c, std::move(**msg), &items);
      if (c->closed.load()) break;
    }
    c->ep->ReleaseReceived();
    if (taken > 0) c->records.fetch_add(taken, std::memory_order_relaxed);
    if (!bad.ok()) {
      c->queued.store(false);
      CutOff(c, bad);
      return;
    }
    if (c->hung_up.load() && ring_empty && items.empty() &&
        c->pending_calls.load() == 0) {
      c->queued.store(false);
      Close(c);  // Every oneway call it published has run.
      return;
    }
    if (taken == options_.batch_per_turn && !at_limit) {
      requeue = true;  // Round-robin: back of the line.
    } else if (items.empty() && !at_limit && !c->ep->PrepareToSleep()) {
      requeue = true;  // Records arrived while we looked.
    }
    // With calls to run, the doorbell stays off: every call ends in
    // AfterCall, which re-checks the ring and only then may sleep.
  }
  if (requeue) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    ready_.push_back(c);
  } else {
    c->queued.store(false, std::memory_order_seq_cst);
    if (items.empty() && !at_limit && c->ep->HasInboundHint()) {
      Schedule(c, false);
    }
  }
  if (items.empty()) return;
  // This worker runs the batch in order (unless the pool is at its
  // concurrency limit), taking turns with other clients' waiting calls.
  // No helper is woken: for short handlers a wake-up costs more than the
  // work. If a handler runs long, the poller (awake every millisecond while
  // handlers run) or the tick hands the rest of the batch to a free worker.
  c->pending_calls.fetch_add(static_cast<uint32_t>(items.size()));
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (c->closed.load()) return;  // Close cleared c->calls; these go too.
  for (size_t i = 0; i < items.size(); ++i) c->calls.push_back(std::move(items[i]));
  if (c->parked) {
    parked_calls_ += items.size();
  } else {
    queued_calls_ += items.size();
  }
  SetActiveLocked(*c, true);
  c->last_active_ns = MonotonicNowNs();
  if (!c->runnable) {
    c->runnable = true;
    runnable_.push_back(c);
  }
}

void LocalServer::HandleMessage(const std::shared_ptr<Connection>& c,
                                IncomingMessage msg,
                                std::vector<WorkItem>* items) {
  const FrameHeader& h = msg.header;
  switch (msg.type()) {
    case MessageType::kBind: {
      absl::StatusOr<BindRequest> req = DecodeBindRequest(msg.payload);
      if (!req.ok()) {
        CutOff(c, req.status());
        return;
      }
      absl::Status s = dispatcher_->CheckBinding(
          req->full_name, req->uuid, InterfaceVersion{req->major, req->minor});
      uint32_t slot = 0;
      if (s.ok()) {
        absl::StatusOr<uint32_t> bound = c->Bind(req->full_name);
        if (bound.ok()) {
          slot = *bound;
        } else {
          s = bound.status();
        }
      }
      SendReply(c, OwnedReply{MessageType::kBindReply, h.message_id,
                              static_cast<uint32_t>(s.code()), slot,
                              std::string(s.message())});
      return;
    }
    case MessageType::kCancel:
      CancelCall(*c, h.message_id, /*by_socket=*/false);
      return;
    case MessageType::kRequest:
    case MessageType::kOneway: {
      const bool oneway = msg.type() == MessageType::kOneway;
      if (!oneway && c->hung_up.load()) return;  // Its caller is gone.
      absl::Status refuse;
      if (shutting_down_.load()) {
        refuse = absl::UnavailableError("server is shutting down");
      } else if (msg.over_budget) {
        refuse = absl::ResourceExhaustedError(absl::StrCat(
            "request of ", h.payload_length,
            " bytes refused: the server's request byte budget is used up"));
      } else if (msg.oversized) {
        refuse = absl::ResourceExhaustedError(absl::StrCat(
            "request of ", h.payload_length,
            " bytes exceeds the server's maximum message size of ",
            dispatcher_->options().max_message_size, " bytes"));
      }
      WorkItem item;
      if (refuse.ok()) item.ctx = std::make_unique<CallContext>();
      const Registered r = c->Register(
          h, oneway, refuse.ok(), item,
          [this](const std::string& interface, uint32_t method_id) {
            const InterfaceDescriptor* d = dispatcher_->FindInterface(interface);
            const MethodDescriptor* m =
                d == nullptr ? nullptr : d->FindMethod(method_id);
            return m == nullptr ? std::string() : d->MethodPath(*m);
          });
      if (r == Registered::kCancelledEarly) {
        cancelled_before_read_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (r == Registered::kNotBound && refuse.ok()) {
        refuse = absl::FailedPreconditionError(absl::StrCat(
            "interface slot ", h.interface_slot, " is not bound"));
      } else if (r == Registered::kDuplicateId) {
        refuse = absl::DataLossError("duplicate message id in flight");
      }
      if (absl::IsDataLoss(refuse)) {
        CutOff(c, refuse);
        return;
      }
      if (!refuse.ok()) {
        if (!oneway) {
          SendReply(c, OwnedReply{MessageType::kReply, h.message_id,
                                  static_cast<uint32_t>(refuse.code()), 0,
                                  std::string(refuse.message())});
        }
        return;
      }
      if ((h.flags & kFlagMetadata) != 0) {
        // Decoded from the private copy; a bad block costs only its sender.
        std::string_view rest;
        absl::Status md =
            DecodeMetadata(msg.payload, &item.ctx->metadata(), &rest);
        if (!md.ok()) {
          item.registration = CallRegistration();  // Erases the entry.
          CutOff(c, md);
          return;
        }
        msg.payload.erase(0, msg.payload.size() - rest.size());
      }
      item.conn = c;
      item.ctx->set_deadline(FromMonotonicDeadlineNs(
          h.deadline_ns, absl::FromUnixNanos(wall_anchor_unix_ns_.load(
                             std::memory_order_relaxed))));
      item.ctx->set_peer_ref(&c->peer);  // As long as the item holds `c`.
      item.charge = internal::ByteCharge(
          &c->request_bytes, &budgets_.request_bytes, msg.payload.capacity());
      item.msg = std::move(msg);
      calls_started_.fetch_add(1);
      items->push_back(std::move(item));
      return;
    }
    default:
      CutOff(c, absl::DataLossError("unexpected message type"));
  }
}

// A CANCEL for call `id` of `c`: a ring record, or (`by_socket`) a control
// packet, which the I/O thread reads even while the ring is not read. A
// call in flight has its context cancelled. A control packet for an id not
// in flight may have overtaken its request, still unread in the ring: the
// id is kept (bounded, oldest evicted) and HandleMessage drops that request
// when it reads it. The id check and the request's registration share
// state_mu, so a request is either found in flight here or finds the id
// there. Anything else (a duplicate, an unknown or finished id) is counted
// and harmless.
void LocalServer::CancelCall(Connection& c, uint64_t id, bool by_socket) {
  if (!c.Cancel(id, by_socket, options_.max_in_flight_per_connection)) {
    cancels_ignored_.fetch_add(1, std::memory_order_relaxed);
  }
}

void LocalServer::RunCall(WorkItem& item) {
  const std::shared_ptr<Connection>& c = item.conn;
  const FrameHeader& h = item.msg.header;
  const bool oneway = item.msg.type() == MessageType::kOneway;
  c->ep->SetRunning(true);
  // The doorbell stays off while the handler runs (a pipelining client
  // makes no syscall); if the handler blocks, the poller's watch
  // (ScanBusyConnections) finds this client's next records (a CANCEL, say)
  // within about a millisecond.
  c->handlers.fetch_add(1, std::memory_order_relaxed);
  // A large request, or a connection whose last reply was large, gets a
  // kept buffer for its reply (buffers_): a fresh one would cost a page
  // fault per 4 KiB.
  std::string response;
  if (!oneway) {
    const uint64_t hint = std::max<uint64_t>(
        item.msg.payload.size(),
        c->last_reply_bytes.load(std::memory_order_relaxed));
    if (hint >= BufferCache::kMinCapacity) response = buffers_.Take(hint);
  }
  absl::Status s;
  if (c->closed.load() || (!oneway && c->hung_up.load())) {
    s = absl::UnavailableError("client went away");  // Nobody to answer.
  } else {
    s = dispatcher_->Dispatch(*item.interface_name, h.method_id, *item.ctx,
                              item.msg.payload, &response);
  }
  const bool answered = c->Finish(h.message_id, item.oneway_serial, oneway);
  bool woke_client = false;
  item.registration.Disarm();  // Erased above.
  if (!oneway && !answered) {
    if (HasSendableMetadata(item.ctx->response_metadata())) {
      std::string with_metadata;
      absl::Status md =
          EncodeMetadata(item.ctx->response_metadata(), &with_metadata);
      if (!md.ok()) {
        s = absl::InternalError(absl::StrCat(
            "the handler set invalid response metadata: ", md.message()));
        with_metadata.clear();
        md = EncodeMetadata({}, &with_metadata);
      }
      with_metadata += s.ok() ? response : std::string(s.message());
      response = std::move(with_metadata);
    }
    OwnedReply r{MessageType::kReply, h.message_id,
                 static_cast<uint32_t>(s.code()), 0, {}};
    if (s.ok() || HasSendableMetadata(item.ctx->response_metadata())) {
      r.payload = std::move(response);
    } else {
      r.payload = std::string(s.message());
    }
    if (HasSendableMetadata(item.ctx->response_metadata())) {
      r.flags = kFlagMetadata;
    }
    c->last_reply_bytes.store(r.payload.size(), std::memory_order_relaxed);
    woke_client = SendReply(c, std::move(r));
    buffers_.Give(std::move(r.payload));  // Empty if it was queued.
  }
  // The call's context and buffers go now, while the client is busy with
  // the reply, rather than after its next request has arrived.
  item.ctx.reset();
  buffers_.Give(std::move(item.msg.payload));
  item.charge.Release();  // Before AfterCall reads the ring again.
  c->handlers.fetch_sub(1, std::memory_order_relaxed);
  c->pending_calls.fetch_sub(1);
  AfterCall(c, woke_client);
}

// Every call ends here. The ring's doorbell was left off while calls ran
// (Drain), so this re-checks the ring before the server may sleep on it.
// After answering, the worker spins briefly for the same client's next
// request while that client runs on another CPU: a busy client then needs
// no wake-up syscall either way. InfiniteDuration is capped at
// kMaxServerSpin per idle spell.
void LocalServer::AfterCall(const std::shared_ptr<Connection>& c,
                            bool woke_client) {
  if (c->closed.load()) return;
  // A pair that shares a CPU. This reply woke a client that had last run
  // on this worker's CPU, so the kernel puts it here (its previous CPU,
  // and the waker's); the wake-up spin below may see it too. Counted when
  // AfterCall returns, whichever way (NoteWake). Only when spinning is
  // allowed: a pair that blocks on every call is faster on one CPU (a
  // futex wake of an idle CPU takes tens of microseconds here).
  const bool may_spin = options_.spin > absl::ZeroDuration();
  struct WakeNote {
    LocalServer* server;
    Connection* conn;
    bool woke;
    bool here;
    ~WakeNote() { server->NoteWake(*conn, woke, here); }
  } note{this, c.get(), woke_client && may_spin,
         woke_client && may_spin && c->ep->PeerRunning() == 0 &&
             c->ep->PeerLastCpu() == RunningValueForThisCpu()};
  if (c->hung_up.load()) {
    Schedule(c, false);  // Drain closes it once nothing is left.
    return;
  }
  if (c->ep->HasInboundHint()) {
    // At the in-flight limit the ring is read again only once a batch's
    // worth of calls has finished (or none is left), not one record per
    // finished call: a client that keeps its ring full costs one drain
    // per batch. The calls still pending end here too, and look again.
    const uint32_t limit = options_.max_in_flight_per_connection;
    const uint32_t resume = limit - std::min(options_.batch_per_turn, limit / 2);
    const uint32_t pending = c->pending_calls.load();
    if (pending <= resume || pending == 0) {
      Schedule(c, false);  // This worker picks it up next.
    }
    return;
  }
  const int64_t spin_ns = std::min(absl::ToInt64Nanoseconds(options_.spin),
                                   kMaxServerSpinNs);
  const bool spin = spin_ns > 0 && !c->queued.load() &&
                    PeerRunningElsewhere(c->ep->PeerRunning()) &&
                    NoCallMayStart();
  if (spin) {
    // One spinner per client: it watches the ring for everyone, and ends
    // with the sleep protocol below. Two workers spinning for one client
    // on two CPUs left the client itself no CPU to publish on (a pipelining
    // client stalled for the whole spin cap).
    if (c->spinning.exchange(true, std::memory_order_acq_rel)) return;
    c->ep->ClearSleeping();
    if (SpinUntil(
            spin_ns, [&] { return c->ep->HasInboundHint(); },
            [&] {
              return PeerRunningElsewhere(c->ep->PeerRunning()) &&
                     !c->closed.load(std::memory_order_relaxed) &&
                     !shutting_down_.load(std::memory_order_relaxed);
            })) {
      c->spinning.store(false, std::memory_order_release);
      Schedule(c, false);
      return;
    }
    c->ep->SetRunning(false);
    const bool arrived = !c->ep->PrepareToSleep();
    c->spinning.store(false, std::memory_order_release);
    if (arrived) Schedule(c, false);
    return;
  }
  const size_t queued_before = queued_calls_.load(std::memory_order_relaxed);
  if (woke_client && spin_ns > 0 && c->ep->PeerRunning() == 0 &&
      !c->queued.load() && NoCallMayStart() &&
      !wake_spinner_.exchange(true, std::memory_order_acq_rel)) {
    // This reply has just woken the client and no call that may start
    // waits: poll its ring with a yield between polls while it wakes, as
    // `running` (so that, once awake, it spins for the reply instead of
    // sleeping). Otherwise a pair that once fell asleep stayed in two
    // wake-ups per call: each side, finding the other asleep, slept too.
    // The first yield that gives the CPU away for long ends it (other
    // threads want the CPU), as does another call being queued; one
    // worker of the server at a time.
    c->ep->SetRunning(true);
    int64_t first_yield_ns = -1;
    const bool caught = YieldSpinUntil(
        kWakeSpinNs,
        [&] { return c->ep->HasInboundHint(); },
        [&] {
          return queued_calls_.load(std::memory_order_relaxed) <=
                     queued_before &&
                 !c->closed.load(std::memory_order_relaxed) &&
                 !shutting_down_.load(std::memory_order_relaxed);
        },
        &first_yield_ns);
    wake_spinner_.store(false, std::memory_order_release);
    // The pair seen from the yields: the first one handed the CPU to the
    // client for a few microseconds, in which it read its reply, sent the
    // next call and slept again. (Woken on another CPU, a client takes
    // 20-30 us to start, while this worker's yields return at once.)
    if (caught && first_yield_ns >= kHandOverNs) note.here = true;
    if (caught) {
      Schedule(c, false);
      return;
    }
  }
  c->ep->SetRunning(false);
  if (!c->ep->PrepareToSleep()) Schedule(c, false);  // Arrived meanwhile.
}

// The pair stays on one CPU while the other may sit idle: a futex wake and
// two context switches per call, since each wake-up puts the woken side on
// the busy CPU of the side that woke it. After a few calls in a row whose
// reply woke the client onto this worker's CPU, the worker moves to
// another CPU it may use; the client then wakes on its own CPU, and both
// spin. A call that woke nobody ends the streak (the client was awake).
void LocalServer::NoteWake(Connection& c, bool woke_client, bool here) {
  if (!woke_client || !here) {
    if (c.colocated_calls.load(std::memory_order_relaxed) != 0) {
      c.colocated_calls.store(0, std::memory_order_relaxed);
    }
    return;
  }
  if (c.colocated_calls.fetch_add(1, std::memory_order_relaxed) + 1 <
      kColocatedCallsToMove) {
    return;
  }
  c.colocated_calls.store(0, std::memory_order_relaxed);
  thread_local int64_t last_move_ns = 0;
  const int64_t now_ns = MonotonicNowNs();
  if (now_ns - last_move_ns < kColocatedMoveGapNs) return;
  last_move_ns = now_ns;
  if (MoveOffThisCpu()) colocated_moves_.fetch_add(1, std::memory_order_relaxed);
}

bool LocalServer::SendReply(const std::shared_ptr<Connection>& c,
                            OwnedReply&& reply) {
  absl::StatusOr<bool> woke =
      c->SendReply(std::move(reply), options_.max_queued_replies);
  if (woke.ok()) return *woke;
  CutOff(c, woke.status());
  return false;
}

void LocalServer::CutOff(const std::shared_ptr<Connection>& c,
                         const absl::Status& why) {
  if (c->closed.load()) return;
  cut_off_.fetch_add(1);
  std::fprintf(stderr, "lpc local %s: disconnecting client pid %d uid %u: %s\n",
               name_.c_str(), c->creds.pid, c->creds.uid,
               std::string(why.message()).c_str());
  std::string p = EncodeStatusPacket(
      ControlType::kGoodbye,
      absl::UnavailableError(absl::StrCat("server disconnected this client: ",
                                          std::string(why.message()))));
  ::send(c->sock.get(), p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  Close(c);
}

void LocalServer::Close(const std::shared_ptr<Connection>& c) {
  if (c->closed.exchange(true)) return;
  ::shutdown(c->sock.get(), SHUT_RDWR);
  StopWatchingAndCancel(*c, /*closing=*/true);
  c->DropReplies();
  std::deque<WorkItem> dropped;  // Destroyed after pool_mu_ is released.
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    dropped.swap(c->calls);
    SetActiveLocked(*c, false);
    if (c->parked) {
      parked_calls_ -= dropped.size();
      parked_.erase(std::find(parked_.begin(), parked_.end(), c));
    } else {
      queued_calls_ -= dropped.size();
      if (c->runnable) {
        runnable_.erase(std::find(runnable_.begin(), runnable_.end(), c));
      }
    }
    c->runnable = false;
    c->parked = false;
  }
  dropped.clear();
  std::lock_guard<std::mutex> lock(conns_mu_);
  if (conns_.erase(c->id) != 0) {
    auto it = conns_per_uid_.find(c->creds.uid);
    if (it != conns_per_uid_.end() && --it->second == 0) {
      conns_per_uid_.erase(it);
    }
  }
  // The section, fds and mapping go when the last call holding `c` ends.
}

void LocalServer::Shutdown(absl::Time deadline) {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (shut_down_ || !started_.load()) {
      shut_down_ = true;
      return;
    }
    shut_down_ = true;
  }
  shutting_down_.store(true);
  // Stop accepting; the port name is free for the next server at once.
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
  if (port_name_ != nullptr) port_name_->Release();
  auto snapshot = [this] {
    std::vector<std::shared_ptr<Connection>> v;
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (auto& [id, c] : conns_) v.push_back(c);
    return v;
  };
  // Let in-flight calls finish until the grace deadline.
  for (int i = 0; i < 100000; ++i) {
    size_t busy = 0;
    for (auto& c : snapshot()) busy += c->InFlight();
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      busy += queued_calls_ + parked_calls_ + running_;
    }
    if (busy == 0 || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  // Fail what is left with UNAVAILABLE and cancel its handlers.
  for (auto& c : snapshot()) {
    std::vector<std::pair<uint64_t, std::shared_ptr<::lpc::internal::CancelState>>>
        rest;
    std::vector<std::shared_ptr<::lpc::internal::CancelState>> oneway;
    c->AnswerAll(&rest, &oneway);
    for (auto& cancel : oneway) cancel->Cancel();
    for (auto& [id, cancel] : rest) {
      cancel->Cancel();
      SendReply(c, OwnedReply{MessageType::kReply, id,
                              static_cast<uint32_t>(absl::StatusCode::kUnavailable),
                              0, "server shut down before the call finished"});
    }
  }
  // Wait for running handlers (they have been cancelled).
  for (int i = 0;; ++i) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (running_ == 0) break;
    }
    if (i % 1000 == 999) {
      std::fprintf(stderr, "lpc local %s: waiting for handlers to return\n",
                   name_.c_str());
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (auto& c : snapshot()) {
    std::string p = EncodeStatusPacket(ControlType::kGoodbye,
                                       absl::UnavailableError("server shut down"));
    ::send(c->sock.get(), p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    Close(c);
  }
  stopping_.store(true);
  SignalEventFd(pool_eventfd_.get());  // The poller returns at once.
  if (io_thread_.joinable()) io_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    for (Worker* w : idle_) {
      w->signalled = true;
      w->cv.notify_one();
    }
    threads.swap(threads_);
    auto drop_calls = [](auto& conns) {
      for (auto& c : conns) {
        c->calls.clear();
        c->runnable = false;
        c->parked = false;
      }
      conns.clear();
    };
    drop_calls(runnable_);
    drop_calls(parked_);
    queued_calls_ = 0;
    parked_calls_ = 0;
    active_conns_ = 0;
    ready_.clear();
  }
  for (auto& t : threads) t.join();
  listen_fd_.Reset();
}

}  // namespace

// Test-only (internal/server_fuzz_peer.h).
namespace internal {

ServerFuzzPeer::ServerFuzzPeer(const LocalPortOptions& options,
                               Dispatcher* dispatcher) {
  auto* s = new LocalServer("fuzz", "", options);
  s->dispatcher_ = dispatcher;
  s->SetWallAnchor(absl::Now(), MonotonicNowNs());
  server_.reset(s);
}

ServerFuzzPeer::~ServerFuzzPeer() = default;

absl::StatusOr<std::shared_ptr<Connection>> ServerFuzzPeer::Accept(
    UniqueFd sock, absl::Duration memfd_wait) {
  auto* s = static_cast<LocalServer*>(server_.get());
  absl::StatusOr<PeerCredentials> creds = GetPeerCredentials(sock.get());
  if (!creds.ok()) return creds.status();
  ServerHandshakeOptions ho = s->HandshakeOptions();
  ho.memfd_wait = memfd_wait;
  absl::StatusOr<std::shared_ptr<Connection>> c =
      ServerHandshake(std::move(sock), *creds, ho);
  if (c.ok()) s->AddConnection(*c);
  return c;
}

void ServerFuzzPeer::OnSocketReadable(const std::shared_ptr<Connection>& c) {
  static_cast<LocalServer*>(server_.get())->HandleSocketEvent(c, EPOLLIN);
}

void ServerFuzzPeer::Drain(const std::shared_ptr<Connection>& c) {
  static_cast<LocalServer*>(server_.get())->Drain(c);
}

void ServerFuzzPeer::HandleMessage(const std::shared_ptr<Connection>& c,
                                   IncomingMessage msg,
                                   std::vector<WorkItem>* items) {
  static_cast<LocalServer*>(server_.get())
      ->HandleMessage(c, std::move(msg), items);
}

void ServerFuzzPeer::Close(const std::shared_ptr<Connection>& c) {
  static_cast<LocalServer*>(server_.get())->Close(c);
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<LocalServerTransport>> MakeLocalServerTransport(
    std::string name, LocalPortOptions options) {
  absl::StatusOr<std::string> path = PortPath(name, options.runtime_dir);
  if (!path.ok()) return path.status();
  if (absl::StatusOr<SectionLayout> l = ComputeLayout(options.geometry); !l.ok()) {
    return l.status();
  }
  // (Also false for NaN.)
  if (!(options.contended_cpu_share >= 0 && options.contended_cpu_share <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "contended_cpu_share must be in [0, 1], not ",
        options.contended_cpu_share));
  }
  return std::unique_ptr<LocalServerTransport>(
      new LocalServer(std::move(name), std::move(*path), std::move(options)));
}

}  // namespace lpc::local
