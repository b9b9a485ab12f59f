// The server side of the local transport: start, shutdown and the
// connection table of LocalServer (internal/local_server.h, whose I/O
// thread is internal/server_io.cc). See local_transport.h and
// docs/local-transport.md.
#include "transports/local/internal/local_server.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace lpc::local {
namespace internal {

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
  if (absl::Status s = handler_pool_->Start(); !s.ok()) return s;
  calls_->SetWallAnchor(absl::Now(), MonotonicNowNs());  // Before any request.
  io_thread_ = std::thread([this] { IoLoop(); });
  return absl::OkStatus();
}

std::shared_ptr<Connection> LocalServer::Lookup(uint64_t id) {
  MutexLock lock(&conns_mu_);
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second;
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
  ho.server_state = state_;
  ho.max_handles = options_.max_handles_per_message;
  return ho;
}

void LocalServer::AddConnection(const std::shared_ptr<Connection>& c) {
  c->id = next_conn_id_++;
  c->accepted_ns = MonotonicNowNs();
  c->connected_unix_ms = absl::ToUnixMillis(absl::Now());
  c->contexts = std::make_shared<ContextTable>(
      dispatcher_->options().max_context_handles_per_connection);
  {
    MutexLock lock(&conns_mu_);
    conns_[c->id] = c;
    ++conns_per_uid_[c->creds.uid];
  }
  accepted_.fetch_add(1);
}

void LocalServer::Report(TransportReport* report) const {
  const LocalServerStats s = stats();
  report->counters = {
      {"connections_accepted", s.connections_accepted},
      {"connections_refused", s.connections_refused},
      {"connections_open", s.connections_open},
      {"clients_cut_off", s.clients_cut_off},
      {"calls_started", s.calls_started},
      {"streams_opened", s.streams_opened},
      {"handshakes_timed_out", s.handshakes_timed_out},
      {"cancel_packets", s.cancel_packets},
      {"threads_started", s.threads_started},
      {"throttle_pauses", s.throttle_pauses},
      {"request_bytes", s.request_bytes},
      {"queued_reply_bytes", s.queued_reply_bytes},
      {"reply_memfd_bytes", s.reply_memfd_bytes},
      {"handles_received", s.handles_received},
      {"handles_sent", s.handles_sent},
  };
  for (size_t code = 0; code < s.clients_cut_off_by_code.size(); ++code) {
    if (s.clients_cut_off_by_code[code] == 0) continue;
    // "DATA_LOSS" -> "data_loss".
    report->cutoffs.emplace_back(
        absl::AsciiStrToLower(absl::StatusCodeToString(
            static_cast<absl::StatusCode>(code))),
        s.clients_cut_off_by_code[code]);
  }
  // The handle errors by their reasons (docs/local-transport.md,
  // "Handles"); also counted under data_loss above.
  for (const auto& [reason, n] :
       {std::pair<const char*, uint64_t>{"too_many_handles",
                                         s.handle_errors_too_many},
        {"unreferenced_handle", s.handle_errors_unreferenced},
        {"missing_handle", s.handle_errors_missing},
        {"refused_buffer", s.buffer_errors_refused},
        {"unreferenced_buffer", s.buffer_errors_unreferenced},
        {"missing_buffer", s.buffer_errors_missing},
        {"refused_pool", s.pool_errors_refused},
        {"bad_pool_chunk", s.pool_errors_chunk}}) {
    if (n != 0) report->cutoffs.emplace_back(reason, n);
  }
  MutexLock lock(&conns_mu_);
  report->connections.reserve(report->connections.size() + conns_.size());
  for (const auto& [id, c] : conns_) {
    ConnectionReport& r = report->connections.emplace_back();
    r.id = id;
    r.transport = "local";
    r.peer_uid = c->creds.uid;
    r.peer_pid = c->creds.pid;
    r.calls_in_flight = c->pending_calls.load(std::memory_order_relaxed);
    r.calls = c->calls.load(std::memory_order_relaxed);
    r.bytes_in = c->bytes_in.load(std::memory_order_relaxed);
    r.bytes_out = c->bytes_out.load(std::memory_order_relaxed);
    r.connected_unix_ms = c->connected_unix_ms;
    // ContextTable's lock is a leaf.
    if (c->contexts != nullptr) {
      r.context_handles = static_cast<uint32_t>(c->contexts->size());
    }
  }
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
  handler_pool_->Stop();  // New streams end UNAVAILABLE; queued ones run.
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
  // Wait for running handlers (they have been cancelled). Streams still
  // waiting for a handler thread end (already answered above).
  handler_pool_->Join();
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
  // The clients' rundowns (queued by Close) finish before the service may
  // go away.
  ::lpc::internal::DrainRundowns(std::max(deadline, absl::Now() + absl::Seconds(5)));
}


// Test-only (internal/server_fuzz_peer.h).

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
  if (options.max_stream_handler_threads < 1 ||
      options.max_stream_handler_threads > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_stream_handler_threads must be in [1, 4096], not ",
        options.max_stream_handler_threads));
  }
  if (options.max_handles_per_message > kMaxHandlesHardLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_handles_per_message must be at most ", kMaxHandlesHardLimit,
        ", not ", options.max_handles_per_message));
  }
  return std::unique_ptr<LocalServerTransport>(
      new internal::LocalServer(std::move(name), std::move(*path), std::move(options)));
}

}  // namespace lpc::local
