// The server side of the local transport: the named connection port, the
// access policy, per-client sections, and one completion-port-style worker
// pool for every connection. See local_transport.h and
// docs/local-transport.md.
//
// Threads:
//  - the I/O thread: epoll over the listening socket and every client's
//    control socket (packets, hang-up); a 10 ms tick for housekeeping
//    (stalled replies, pool growth, missed doorbells);
//  - the workers of internal/worker_pool.h, which drain clients' rings
//    (Drain, HandleMessage) and run their calls (RunCall, AfterCall) in the
//    order of internal/fair_scheduler.h.
//
// Locks, in the order they may nest: Connection::recv_mu, then
// Connection::send_mu, then Connection::state_mu; the pool's mutex and
// conns_mu_ are leaves (never held while taking another lock).
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
#include "runtime/call_context.h"
#include "runtime/mutex.h"
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
#include "transports/local/internal/server_calls.h"
#include "transports/local/internal/server_handshake.h"
#include "transports/local/internal/worker_pool.h"
#include "transports/local/local_transport.h"
#include "transports/local/metadata.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"

namespace lpc::local {
namespace {

using internal::Connection;
using internal::OwnedReply;
using internal::WorkItem;

constexpr uint64_t kListenTag = ~uint64_t{0};

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
    pool_ = std::make_unique<internal::WorkerPool>(po, this);
    calls_ = std::make_unique<internal::ServerCalls>(
        options_, &buffers_, &budgets_, pool_.get(), this);
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
  void CutOff(const std::shared_ptr<Connection>& c,
              const absl::Status& why) override;
  void Close(const std::shared_ptr<Connection>& c) override;

  void HangUp(const std::shared_ptr<Connection>& c);
  void StopWatchingAndCancel(Connection& c, bool closing);

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
  std::unique_ptr<internal::ServerCalls> calls_;  // Uses pool_.

  std::atomic<uint64_t> accepted_{0}, refused_{0}, cut_off_{0};
  std::atomic<uint64_t> cancel_packets_{0}, handshakes_timed_out_{0},
      accept_fd_exhausted_{0};
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
  calls_->set_dispatcher(dispatcher);
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
  if (absl::Status s = pool_->Start(); !s.ok()) return s;
  calls_->SetWallAnchor(absl::Now(), MonotonicNowNs());  // Before any request.
  io_thread_ = std::thread([this] { IoLoop(); });
  return absl::OkStatus();
}

std::shared_ptr<Connection> LocalServer::Lookup(uint64_t id) {
  MutexLock lock(&conns_mu_);
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second;
}

void LocalServer::IoLoop() {
  struct epoll_event events[64];
  absl::Time next_tick = absl::Now();
  while (!stopping_.load()) {
    // Every millisecond while a handler runs with nobody polling.
    const int n = ::epoll_wait(epoll_fd_.get(), events, 64,
                               pool_->unpolled() ? 1 : 10);
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
    if (pool_->unpolled()) pool_->PromoteLazyPoller();
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
  c->accepted_ns = MonotonicNowNs();
  {
    MutexLock lock(&conns_mu_);
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
    if (verdict.ok() && calls_->shutting_down()) {
      verdict = absl::UnavailableError("server is shutting down");
    }
    if (verdict.ok()) verdict = internal::CheckAccess(options_, name_, *creds);
    if (creds.ok()) creds->pidfd.reset();  // The callback may keep a copy.
    if (verdict.ok()) {
      MutexLock lock(&conns_mu_);
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
    pool_->WatchDoorbell(*c);
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
      calls_->CancelCall(*c, *id, /*by_socket=*/true);
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
  pool_->UnwatchDoorbell(c);
  for (auto& cancel : c.StopCalls(closing)) cancel->Cancel();
}

void LocalServer::Tick() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    MutexLock lock(&conns_mu_);
    for (auto& [id, c] : conns_) conns.push_back(c);
  }
  const absl::Time now = absl::Now();
  const int64_t now_ns = MonotonicNowNs();
  calls_->SetWallAnchor(now, now_ns);
  buffers_.Trim(now_ns);  // Large buffers unused for a second go.
  if (accept_paused_until_ns_ != 0 && now_ns >= accept_paused_until_ns_ &&
      !calls_->shutting_down()) {
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
  // The scheduler's shares and buckets, and the pool's growth.
  pool_->Tick(conns, now_ns);
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

// Queues every client that has a handler running and records waiting.
void LocalServer::ScanBusyConnections() {
  std::vector<std::shared_ptr<Connection>> found;
  {
    MutexLock lock(&conns_mu_);
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
  // Destroyed here, without the pool's lock.
  std::deque<WorkItem> dropped = pool_->Remove(*c);
  dropped.clear();
  MutexLock lock(&conns_mu_);
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
    MutexLock lock(&shutdown_mu_);
    if (shut_down_ || !started_.load()) {
      shut_down_ = true;
      return;
    }
    shut_down_ = true;
  }
  calls_->BeginShutdown();
  // Stop accepting; the port name is free for the next server at once.
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
  if (port_name_ != nullptr) port_name_->Release();
  auto snapshot = [this] {
    std::vector<std::shared_ptr<Connection>> v;
    MutexLock lock(&conns_mu_);
    for (auto& [id, c] : conns_) v.push_back(c);
    return v;
  };
  // Let in-flight calls finish until the grace deadline.
  for (int i = 0; i < 100000; ++i) {
    size_t busy = 0;
    for (auto& c : snapshot()) busy += c->InFlight();
    busy += pool_->Busy();
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
      calls_->SendReply(
          c, OwnedReply{MessageType::kReply, id,
                        static_cast<uint32_t>(absl::StatusCode::kUnavailable),
                        0, "server shut down before the call finished"});
    }
  }
  // Wait for running handlers (they have been cancelled).
  for (int i = 0;; ++i) {
    if (pool_->Running() == 0) break;
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
  pool_->Stop();  // The poller returns at once.
  if (io_thread_.joinable()) io_thread_.join();  // No tick after this.
  pool_->Join();
  listen_fd_.Reset();
}

}  // namespace

// Test-only (internal/server_fuzz_peer.h).
namespace internal {

ServerFuzzPeer::ServerFuzzPeer(const LocalPortOptions& options,
                               Dispatcher* dispatcher) {
  auto* s = new LocalServer("fuzz", "", options);
  s->dispatcher_ = dispatcher;
  s->calls_->set_dispatcher(dispatcher);
  s->calls_->SetWallAnchor(absl::Now(), MonotonicNowNs());
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
  static_cast<LocalServer*>(server_.get())->calls_->Drain(c);
}

void ServerFuzzPeer::HandleMessage(const std::shared_ptr<Connection>& c,
                                   IncomingMessage msg,
                                   std::vector<WorkItem>* items) {
  static_cast<LocalServer*>(server_.get())
      ->calls_->HandleMessage(c, std::move(msg), items);
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
