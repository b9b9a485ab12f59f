// The local server's I/O thread (local_server.h): accept and the access
// policy's verdict, control packets, hang-ups, the tick, cut-off and
// close.
#include "transports/local/internal/local_server.h"

#include "runtime/internal/serving_thread.h"

namespace lpc::local::internal {

void LocalServer::IoLoop() {
  // Runs deadline and cancel callbacks, which may call Server::Shutdown.
  ::lpc::internal::ServingThreadScope serving;
  struct epoll_event events[64];
  absl::Time next_tick = absl::Now();
  while (!stopping_.load()) {
    // Every millisecond while a handler runs with nobody polling.
    const int n = ::epoll_wait(epoll_fd_.get(), events, 64,
                               pool_->unpolled() ? 1 : 10);
    TimedTurn timed(&longest_io_turn_);  // Until the next epoll_wait.
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
      // Its queue may hold fds it sent before it was accepted.
      internal::FdCloser::Get().Close(std::move(sock));
      continue;  // Nothing was mapped or allocated for it.
    }
    absl::StatusOr<std::shared_ptr<Connection>> made =
        internal::ServerHandshake(std::move(sock), *creds, HandshakeOptions());
    if (!made.ok()) continue;
    std::shared_ptr<Connection> c = std::move(*made);
    // The client now holds its own reference to the memfd; ours closed.
    AddConnection(c);
    c->epoll_fd = epoll_fd_.get();
    c->epoll_tag = c->id << 1;
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->epoll_tag;
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, c->sock.get(), &ev);
    pool_->WatchDoorbell(*c);
    Schedule(c, true);  // Requests may already be there.
  }
}

void LocalServer::HandleSocketEvent(const std::shared_ptr<Connection>& c,
                                    uint32_t events) {
  if ((events & EPOLLOUT) != 0) {
    // Room again for the control packets the outbox holds.
    if (absl::Status s = c->FlushOutbox(); !s.ok()) {
      CutOff(c, s);
      return;
    }
  }
  for (int i = 0; i < 32; ++i) {
    // Peer fds never close here (one may block in close()): every fd a
    // packet carried that is not kept goes to the closer's thread.
    std::vector<UniqueFd> refused;
    absl::StatusOr<Packet> p =
        RecvPacket(c->sock.get(), absl::InfinitePast(), &refused);
    internal::FdCloser::Get().Close(refused);
    if (absl::IsDeadlineExceeded(p.status())) break;
    if (!p.ok()) {
      HangUp(c);  // The client is gone.
      return;
    }
    struct CloseUnkept {
      std::vector<UniqueFd>& fds;
      ~CloseUnkept() { internal::FdCloser::Get().Close(fds); }
    } close_unkept{p->fds};
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
    if (*type == ControlType::kHandles) {
      // Nothing touches them (no fstat, no I/O): the generated decoder
      // checks kinds where the IDL names one.
      if (p->fds.size() > options_.max_handles_per_message) {
        CutOff(c, MakeHandleError(
                      HandleError::kTooMany, 0,
                      absl::StrCat("a HANDLES packet with ", p->fds.size(),
                                   " descriptors, more than the limit of ",
                                   options_.max_handles_per_message)));
        return;
      }
      absl::StatusOr<HandlesBody> hb = DecodeHandlesBody(body, p->fds.size());
      if (!hb.ok()) {
        CutOff(c, hb.status());
        return;
      }
      handles_received_.fetch_add(p->fds.size(), std::memory_order_relaxed);
      if (absl::Status s =
              c->StashHandles(hb->message_id, &p->fds, MonotonicNowNs());
          !s.ok()) {
        CutOff(c, s);
        return;
      }
      // A record parked for it can be read now.
      if (c->memfd_parked_ns.load(std::memory_order_seq_cst) != 0) {
        Schedule(c, /*wake=*/true);
      }
      continue;
    }
    if (*type == ControlType::kBuffer) {
      absl::StatusOr<BufferBody> bb = DecodeBufferBody(body, p->fds.size());
      if (!bb.ok()) {
        CutOff(c, bb.status());
        return;
      }
      // Its kind first, by a call that does no I/O: F_GET_SEALS answers
      // only for a memfd. The rest of the checks (seals, size, holes) and
      // the mapping are the worker's, when the record is read.
      if (::fcntl(p->fds[0].get(), F_GET_SEALS) < 0) {
        CutOff(c, MakeHandleError(HandleError::kBufferRefused, bb->message_id,
                                  "a BUFFER packet's descriptor is not a "
                                  "memfd"));
        return;
      }
      if (absl::Status s =
              c->StashBuffer(*bb, &p->fds[0], MonotonicNowNs());
          !s.ok()) {
        CutOff(c, s);
        return;
      }
      buffers_received_.fetch_add(1, std::memory_order_relaxed);
      // A record parked for it can be read now.
      if (c->memfd_parked_ns.load(std::memory_order_seq_cst) != 0) {
        Schedule(c, /*wake=*/true);
      }
      continue;
    }
    if (*type == ControlType::kPool || *type == ControlType::kPoolBuffer ||
        *type == ControlType::kPoolReturn) {
      if (absl::Status s = HandlePoolPacket(c, *type, body, p->fds);
          !s.ok()) {
        CutOff(c, s);
        return;
      }
      continue;
    }
    PayloadFdBody b;
    if (*type != ControlType::kPayloadFd || body.size() != sizeof(b) ||
        p->fds.size() != 1) {
      CutOff(c, absl::DataLossError("unexpected control packet"));
      return;
    }
    std::memcpy(&b, body.data(), sizeof(b));
    // Its kind first, by a call that does no I/O: F_GET_SEALS answers only
    // for a memfd (an fstat could wait on a FUSE daemon).
    if (::fcntl(p->fds[0].get(), F_GET_SEALS) < 0) {
      CutOff(c, absl::DataLossError("control: PAYLOAD_FD is not a memfd"));
      return;
    }
    if (c->StashPayloadFd(b.memfd_number, std::move(p->fds[0]),
                          MonotonicNowNs())) {
      // A record parked for it (or for an earlier one) can be read now.
      if (c->memfd_parked_ns.load(std::memory_order_seq_cst) != 0) {
        Schedule(c, /*wake=*/true);
      }
      continue;
    }
    CutOff(c, absl::ResourceExhaustedError("too many unclaimed payload memfds"));
    return;
  }
  if ((events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) HangUp(c);
}

// The same-uid buffer pool's packets (docs/local-transport.md, "The
// same-uid buffer pool"); an error cuts the client off.
absl::Status LocalServer::HandlePoolPacket(
    const std::shared_ptr<Connection>& c, ControlType type,
    absl::Span<const std::byte> body, std::vector<UniqueFd>& fds) {
  if (type == ControlType::kPool) {
    absl::StatusOr<PoolBody> pb = DecodePoolBody(body, fds.size(), 1);
    if (!pb.ok()) {
      return MakeHandleError(HandleError::kPoolRefused, 0,
                             std::string(pb.status().message()));
    }
    if (c->pool_offered) {
      return MakeHandleError(HandleError::kPoolRefused, 0,
                             "a second POOL packet");
    }
    c->pool_offered = true;
    // Only between the same uid, both opted in; otherwise declined
    // silently (the descriptor closes on the closer thread).
    if (!options_.same_uid_buffer_pool ||
        c->creds.uid != static_cast<uint32_t>(::geteuid())) {
      pools_declined_.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    absl::StatusOr<std::shared_ptr<BufferPool>> pool = BufferPool::Adopt(
        fds[0].get(), *pb, options_.max_buffer_pool_bytes);
    if (!pool.ok()) return pool.status();
    std::weak_ptr<Connection> weak = c;
    (*pool)->SetReturnSender([weak](std::string_view packet) {
      std::shared_ptr<Connection> conn = weak.lock();
      return conn != nullptr && !conn->closed.load() &&
             conn->SendControl(packet, -1).ok();
    });
    // The answer goes before any POOL_BUFFER of ours (the outbox keeps
    // the order), so the client knows the pool when the first comes.
    if (absl::Status s = c->SendControl(EncodePoolPacket(*pb), -1); !s.ok()) {
      return s;
    }
    c->SetPool(*std::move(pool));
    pools_accepted_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  BufferPool* pool = c->pool();
  if (type == ControlType::kPoolBuffer) {
    absl::StatusOr<PoolBufferBody> pb = DecodePoolBufferBody(body, fds.size());
    if (!pb.ok()) return pb.status();
    if (pool == nullptr) {
      return MakeHandleError(HandleError::kPoolChunk, pb->message_id,
                             "a POOL_BUFFER without a pool");
    }
    absl::StatusOr<BufferView> view = pool->Borrow(pb->chunk, pb->length);
    if (!view.ok()) {
      return MakeHandleError(
          HandleError::kPoolChunk, pb->message_id,
          absl::StrCat("message ", pb->message_id, ": ",
                       view.status().message()));
    }
    // Counted before its record can be read (and answered).
    buffers_received_.fetch_add(1, std::memory_order_relaxed);
    pool_buffers_received_.fetch_add(1, std::memory_order_relaxed);
    if (absl::Status s =
            c->StashPoolBuffer(*pb, *std::move(view), MonotonicNowNs());
        !s.ok()) {
      return s;
    }
    // A record parked for it can be read now.
    if (c->memfd_parked_ns.load(std::memory_order_seq_cst) != 0) {
      Schedule(c, /*wake=*/true);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<uint32_t>> chunks =
      DecodePoolReturnBody(body, fds.size());
  if (!chunks.ok()) return chunks.status();
  if (pool == nullptr) {
    return MakeHandleError(HandleError::kPoolChunk, 0,
                           "a POOL_RETURN without a pool");
  }
  return pool->Returned(*chunks);
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
    calls_->PollStreams(*c, now);  // Deadlines, held-back writes.
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
    const int64_t outbox_since = c->OutboxStalledSinceNs();
    if (outbox_since != 0 &&
        now_ns - outbox_since >
            absl::ToInt64Nanoseconds(options_.reply_stall_timeout)) {
      stalled = true;  // Nor its control socket.
    }
    const bool parked =
        c->memfd_parked_ns.load(std::memory_order_relaxed) != 0;
    if (stalled) {
      CutOff(c, absl::ResourceExhaustedError("client does not read its replies"));
    } else if (pending || c->hung_up.load() ||
               (!parked && c->ep->HasInboundHint())) {
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
  // A memfd-mode record at the head of its ring whose memfd never came.
  const int64_t parked = c->memfd_parked_ns.load(std::memory_order_relaxed);
  if (parked != 0 && now_ns - parked > c->memfd_wait_ns) {
    if (c->parked_on_buffer.load(std::memory_order_relaxed)) {
      CutOff(c, MakeHandleError(
                    HandleError::kBufferMissing, 0,
                    absl::StrCat("a record waited ", (now_ns - parked) / 1000000,
                                 " ms for the buffer it announces")));
      return;
    }
    if (c->parked_on_handles.load(std::memory_order_relaxed)) {
      CutOff(c, MakeHandleError(
                    HandleError::kMissing, 0,
                    absl::StrCat("a record waited ", (now_ns - parked) / 1000000,
                                 " ms for the descriptors it announces")));
      return;
    }
    CutOff(c, absl::DataLossError(absl::StrCat(
                  "a memfd-mode record waited ", (now_ns - parked) / 1000000,
                  " ms for its payload memfd")));
    return;
  }
  bool handles = false;
  bool buffer = false;
  const int64_t oldest = c->OldestStashedNs(&handles, &buffer);
  if (oldest != 0 &&
      now_ns - oldest > absl::ToInt64Nanoseconds(options_.stashed_fd_timeout) &&
      !c->ep->HasInboundHint()) {
    if (buffer) {
      CutOff(c, MakeHandleError(
                    HandleError::kBufferUnreferenced, 0,
                    absl::StrCat("a buffer waited ",
                                 (now_ns - oldest) / 1000000,
                                 " ms with no record to claim it")));
      return;
    }
    if (handles) {
      CutOff(c, MakeHandleError(
                    HandleError::kUnreferenced, 0,
                    absl::StrCat("descriptors waited ",
                                 (now_ns - oldest) / 1000000,
                                 " ms with no record to claim them")));
      return;
    }
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
    internal::FdCloser::Get().Close(std::move(sock));
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
          c->memfd_parked_ns.load(std::memory_order_relaxed) == 0 &&
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
  if (std::optional<HandleError> e = GetHandleError(why); e.has_value()) {
    handle_errors_[static_cast<size_t>(*e)].fetch_add(1);
  }
  const size_t code = static_cast<size_t>(why.code());
  if (code < cut_off_by_code_.size()) {
    cut_off_by_code_[code].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t left_out = 0;
  bool log;
  {
    MutexLock lock(&log_mu_);
    log = cut_off_log_.Admit(MonotonicNowNs(), &left_out);
  }
  if (log) {
    const std::string earlier =
        left_out == 0 ? std::string()
                      : absl::StrCat(" (", left_out,
                                     " earlier cut-offs not logged)");
    std::fprintf(stderr,
                 "lpc local %s: disconnecting client pid %d uid %u: %s%s\n",
                 name_.c_str(), c->creds.pid, c->creds.uid,
                 std::string(why.message()).c_str(), earlier.c_str());
  }
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
  // Every context of this client runs down, exactly once, on the runtime's
  // rundown thread (never this one).
  if (c->contexts != nullptr) c->contexts->RundownAll();
  // Destroyed here, without the pool's lock.
  FifoQueue<WorkItem> dropped = pool_->Remove(*c);
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

}  // namespace lpc::local::internal
