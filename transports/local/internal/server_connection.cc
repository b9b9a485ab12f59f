// The server's per-client state: reply queue, call table, memfd stash.
#include "transports/local/internal/server_connection.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/internal/call_context_access.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/fd_closer.h"

namespace lpc::local::internal {

using ::lpc::internal::CallContextAccess;

size_t MaxStashedFds(const SectionGeometry& g) {
  return size_t{g.request_slots} + 16;
}

namespace {

// Stashed memfds of closed connections that the process still holds (the
// memfd closer's backlog): they count against max_stashed_fds.
uint64_t ClosingMemfds() { return FdCloser::Memfds().pending(); }

}  // namespace

size_t MaxEarlyCancels(const SectionGeometry& g, uint32_t max_in_flight) {
  return std::min<size_t>(size_t{g.request_slots} + max_in_flight, 1 << 16);
}

Connection::~Connection() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  FdCloser& closer = FdCloser::Get();
  closer.Close(std::move(sock));
  // Stashed payload fds and buffers were checked to be memfds.
  FdCloser& memfds = FdCloser::Memfds();
  for (Stashed& e : memfd_stash_) memfds.Close(std::move(e.fd));
  for (auto& [id, e] : handle_stash_) closer.Close(e.fds);
  for (auto& [id, e] : buffer_stash_) memfds.Close(std::move(e.fd));
  if (ep != nullptr) {
    std::vector<UniqueFd> held = ep->TakeHeldHandles();
    closer.Close(held);
  }
}

void CloseHandles(OwnedReply& r) {
  if (!r.handles.empty()) FdCloser::Get().Close(r.handles);
  r.handles.clear();
}

void PeerFds::Close() {
  if (!fds_.empty()) FdCloser::Get().Close(fds_);
  fds_.clear();
}

void CallRegistration::Forget() {
  if (conn_ == nullptr) return;
  MutexLock lock(&conn_->state_mu);
  if (oneway_) {
    conn_->oneway_calls_.erase(key_);
  } else {
    conn_->in_flight_.erase(key_);
  }
  conn_ = nullptr;
}

namespace {

// `raw` holds the handle table's descriptors for m.handles.
OutgoingMessage ToOutgoing(const OwnedReply& r, std::vector<int>* raw) {
  raw->clear();
  for (const UniqueFd& fd : r.handles) raw->push_back(fd.get());
  OutgoingMessage m;
  m.handles = *raw;
  m.type = r.type;
  m.message_id = r.message_id;
  m.status_code = r.status_code;
  m.interface_slot = r.interface_slot;
  m.flags = r.flags;
  m.payload = r.payload;
  return m;
}

}  // namespace

absl::StatusOr<bool> Connection::SendReply(OwnedReply&& reply,
                                           size_t max_queued) {
  MutexLock lock(&send_mu);
  if (closed.load() || hung_up.load()) {  // Nobody reads it.
    CloseHandles(reply);
    return false;
  }
  bytes_out.fetch_add(reply.payload.size(), std::memory_order_relaxed);
  if (pending_replies.empty()) {
    // Fast path: straight into the ring, no queue.
    std::vector<int> raw;
    absl::StatusOr<bool> sent = ep->TrySend(ToOutgoing(reply, &raw));
    if (!sent.ok()) return sent.status();
    if (*sent) {
      // In flight now (or in the outbox's duplicates): ours may be the
      // last reference once the client has closed its own.
      if (!reply.handles.empty()) FdCloser::Get().Close(reply.handles);
      return ep->Flush();
    }
  }
  if (pending_replies.size() >= max_queued) {
    return absl::ResourceExhaustedError("client does not read its replies");
  }
  // Past the queued-reply byte budgets (the connection's or the server's),
  // the call fails with RESOURCE_EXHAUSTED instead: the queue never holds
  // more than the budgets plus these short messages.
  Budget* server = budgets == nullptr ? nullptr : &budgets->reply_bytes;
  const uint64_t n = reply.payload.size();
  if (reply.type == MessageType::kReply && n > kMaxBudgetFreeReply &&
      (reply_bytes.WouldExceed(n) ||
       (server != nullptr && server->WouldExceed(n)))) {
    reply.payload = absl::StrCat("reply of ", n,
                                 " bytes exceeds the server's queued-reply "
                                 "byte budget (the client reads too slowly)");
    reply.status_code =
        static_cast<uint32_t>(absl::StatusCode::kResourceExhausted);
    reply.flags = 0;
    if (!reply.handles.empty()) FdCloser::Get().Close(reply.handles);
    reply.handles.clear();
  }
  reply.charge = ByteCharge(&reply_bytes, server, reply.payload.size());
  if (pending_replies.empty()) pending_since = absl::Now();
  pending_replies.push_back(std::move(reply));
  if (absl::Status s = FlushRepliesLocked(); !s.ok()) return s;
  return false;
}

std::optional<bool> Connection::TrySendReplyNow(const OutgoingMessage& m) {
  MutexLock lock(&send_mu);
  if (closed.load() || hung_up.load() || !pending_replies.empty()) {
    return std::nullopt;
  }
  absl::StatusOr<bool> sent = ep->TrySend(m);
  if (!sent.ok() || !*sent) return std::nullopt;
  bytes_out.fetch_add(PayloadLength(m), std::memory_order_relaxed);
  return ep->Flush();
}

absl::Status Connection::FlushRepliesLocked() {
  bool sent_any = false;
  std::vector<int> raw;
  while (!pending_replies.empty()) {
    const OutgoingMessage m = ToOutgoing(pending_replies.front(), &raw);
    absl::StatusOr<bool> ok = ep->TrySend(m);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      // Ring full: ask the client to ring our eventfd once it frees slots.
      ep->MarkWaitingForRoom();
      room_requests.fetch_add(1, std::memory_order_relaxed);
      ok = ep->TrySend(m);
      if (!ok.ok()) return ok.status();
      if (!*ok) break;
    }
    sent_any = true;
    if (!pending_replies.front().handles.empty()) {
      FdCloser::Get().Close(pending_replies.front().handles);
    }
    pending_replies.pop_front();
    pending_since = absl::Now();
  }
  if (pending_replies.empty()) pending_since = absl::InfiniteFuture();
  if (sent_any) ep->Flush();
  return absl::OkStatus();
}

void Connection::DropReplies() {
  MutexLock lock(&send_mu);
  DropRepliesLocked();
}

absl::StatusOr<uint32_t> Connection::Bind(const std::string& name,
                                          const BoundInterface* iface) {
  if (iface == nullptr) {
    return absl::UnimplementedError(absl::StrCat("unknown interface ", name));
  }
  MutexLock lock(&state_mu);
  auto it = std::find(bound_.begin(), bound_.end(), name);
  if (it != bound_.end()) {
    return static_cast<uint32_t>(it - bound_.begin()) + 1;
  }
  if (bound_.size() >= kMaxBoundInterfaces) {
    return absl::ResourceExhaustedError("too many bound interfaces");
  }
  bound_.push_back(name);
  bound_ifaces_.push_back(iface);
  return static_cast<uint32_t>(bound_.size());
}

// A call in flight has its context cancelled. A control packet for an id
// not in flight may have overtaken its request, still unread in the ring:
// the id is kept (bounded, oldest evicted) and Register drops that request
// when it reads it. The id check and the request's registration share
// state_mu, so a request is either found in flight here or finds the id
// there.
bool Connection::Cancel(uint64_t id, bool by_socket, uint32_t max_in_flight) {
  std::shared_ptr<::lpc::internal::CancelState> cancel;
  absl::Time deadline = absl::InfiniteFuture();
  bool ignored = false;
  {
    MutexLock lock(&state_mu);
    auto it = in_flight_.find(id);
    if (it != in_flight_.end()) {
      cancel = CallContextAccess::cancel_state(*it->second.ctx);
      deadline = it->second.ctx->deadline();
    } else if (!by_socket || early_cancels_.count(id) != 0) {
      ignored = true;
    } else {
      if (early_cancel_order_.size() >=
          MaxEarlyCancels(layout.geometry, max_in_flight)) {
        // Evicted: its request never came (or the call had finished).
        if (early_cancels_.erase(early_cancel_order_.front()) != 0) {
          ignored = true;
        }
        early_cancel_order_.pop_front();
      }
      early_cancels_.insert(id);
      early_cancel_order_.push_back(id);
    }
  }
  if (cancel != nullptr) {
    // Socket and ring both.
    if (cancel->cancelled() || cancel->expired()) ignored = true;
    // The client's cancel at its deadline (the same absolute time; the
    // clocks differ by the conversion) is the deadline: the handler and
    // its children see one, not a cancel.
    if (absl::Now() + absl::Milliseconds(1) >= deadline) {
      cancel->ExpireNow();
    } else {
      cancel->Cancel();
    }
  }
  return !ignored;
}

bool Connection::Finish(uint64_t message_id, uint64_t oneway_serial,
                        bool oneway) {
  MutexLock lock(&state_mu);
  if (oneway) {
    oneway_calls_.erase(oneway_serial);
    return false;
  }
  auto it = in_flight_.find(message_id);
  if (it == in_flight_.end()) return false;
  const bool answered = it->second.answered;
  in_flight_.erase(it);
  return answered;
}

std::vector<std::shared_ptr<::lpc::internal::CancelState>>
Connection::StopCalls(bool closing) {
  std::vector<std::shared_ptr<::lpc::internal::CancelState>> cancels;
  MutexLock lock(&state_mu);
  for (auto& [id, rec] : in_flight_) {
    cancels.push_back(CallContextAccess::cancel_state(*rec.ctx));
  }
  if (closing) {
    for (auto& [serial, ctx] : oneway_calls_) {
      cancels.push_back(CallContextAccess::cancel_state(*ctx));
    }
    // Stashed payload fds and buffers were checked to be memfds.
    FdCloser& memfds = FdCloser::Memfds();
    for (Stashed& e : memfd_stash_) memfds.Close(std::move(e.fd));
    memfd_stash_.clear();
    for (auto& [hid, e] : handle_stash_) FdCloser::Get().Close(e.fds);
    handle_stash_.clear();
    for (auto& [bid, e] : buffer_stash_) memfds.Close(std::move(e.fd));
    buffer_stash_.clear();
    handle_stash_size_.store(0, std::memory_order_relaxed);
  }
  return cancels;
}

void Connection::AnswerAll(
    std::vector<std::pair<uint64_t,
                          std::shared_ptr<::lpc::internal::CancelState>>>*
        unanswered,
    std::vector<std::shared_ptr<::lpc::internal::CancelState>>* oneway) {
  MutexLock lock(&state_mu);
  for (auto& [id, rec] : in_flight_) {
    if (!rec.answered) {
      rec.answered = true;
      unanswered->emplace_back(id, CallContextAccess::cancel_state(*rec.ctx));
    }
  }
  for (auto& [serial, ctx] : oneway_calls_) {
    oneway->push_back(CallContextAccess::cancel_state(*ctx));
  }
}

size_t Connection::InFlight() {
  MutexLock lock(&state_mu);
  return in_flight_.size();
}

bool Connection::StashPayloadFd(uint32_t number, UniqueFd fd,
                                int64_t now_ns) {
  Budget* server = budgets == nullptr ? nullptr : &budgets->stashed_fds;
  MutexLock lock(&state_mu);
  if (memfd_stash_.size() >= MaxStashedFds(layout.geometry)) return false;
  if (server != nullptr && server->WouldExceed(1 + ClosingMemfds())) {
    return false;
  }
  memfd_stash_.push_back(
      Stashed{number, std::move(fd), now_ns, ByteCharge(nullptr, server, 1)});
  return true;
}

bool Connection::HasStashedFd() {
  MutexLock lock(&state_mu);
  return !memfd_stash_.empty() || !handle_stash_.empty() ||
         !buffer_stash_.empty();
}

int64_t Connection::OldestStashedNs(bool* handles, bool* buffer) {
  MutexLock lock(&state_mu);
  int64_t oldest = memfd_stash_.empty() ? 0 : memfd_stash_.front().arrived_ns;
  if (handles != nullptr) *handles = false;
  if (buffer != nullptr) *buffer = false;
  for (const auto& [id, e] : handle_stash_) {
    if (oldest == 0 || e.arrived_ns < oldest) {
      oldest = e.arrived_ns;
      if (handles != nullptr) *handles = true;
    }
  }
  for (const auto& [id, e] : buffer_stash_) {
    if (oldest == 0 || e.arrived_ns < oldest) {
      oldest = e.arrived_ns;
      if (handles != nullptr) *handles = false;
      if (buffer != nullptr) *buffer = true;
    }
  }
  return oldest;
}

absl::Status Connection::StashBuffer(const BufferBody& body, UniqueFd* fd,
                                     int64_t now_ns) {
  Budget* server = budgets == nullptr ? nullptr : &budgets->stashed_fds;
  MutexLock lock(&state_mu);
  if (buffer_stash_.contains(body.message_id)) {
    return MakeHandleError(
        HandleError::kBufferUnreferenced, body.message_id,
        absl::StrCat("a second BUFFER packet for message ", body.message_id));
  }
  // An honest client has at most one buffer per unread request record.
  if (buffer_stash_.size() >= MaxStashedFds(layout.geometry) ||
      (server != nullptr && server->WouldExceed(1 + ClosingMemfds()))) {
    return absl::ResourceExhaustedError("too many unclaimed buffers");
  }
  StashedBuffer e;
  e.body = body;
  e.fd = std::move(*fd);
  e.arrived_ns = now_ns;
  e.charge = ByteCharge(nullptr, server, 1);
  buffer_stash_.emplace(body.message_id, std::move(e));
  return absl::OkStatus();
}

absl::Status Connection::StashPoolBuffer(const PoolBufferBody& body,
                                         BufferView view, int64_t now_ns) {
  MutexLock lock(&state_mu);
  if (buffer_stash_.contains(body.message_id)) {
    return MakeHandleError(
        HandleError::kBufferUnreferenced, body.message_id,
        absl::StrCat("a second buffer packet for message ", body.message_id));
  }
  if (buffer_stash_.size() >= MaxStashedFds(layout.geometry)) {
    return absl::ResourceExhaustedError("too many unclaimed buffers");
  }
  StashedBuffer e;
  e.body.message_id = body.message_id;
  e.body.field_number = body.field_number;
  e.body.length = body.length;
  e.pooled = std::move(view);
  e.arrived_ns = now_ns;
  buffer_stash_.emplace(body.message_id, std::move(e));
  return absl::OkStatus();
}

absl::Status Connection::SendPoolBuffer(uint64_t message_id,
                                        uint32_t field_number, Buffer* chunk) {
  BufferPool* p = pool();
  std::optional<uint32_t> index;
  if (p != nullptr) index = p->ChunkOf(*chunk);
  if (!index.has_value()) {
    return absl::FailedPreconditionError("not a chunk of this connection's pool");
  }
  const PoolBufferBody b{message_id, field_number, *index, chunk->size()};
  // On loan before the packet can reach the client (which may return it
  // at once); undone if it did not go.
  p->Lend(*chunk);
  absl::Status s = SendControl(EncodePoolBufferPacket(b), -1);
  if (!s.ok()) p->Unlend(*chunk);
  return s;
}

absl::Status Connection::SendBuffer(const BufferBody& body, int fd) {
  const int fds[1] = {fd};
  return SendControl(EncodeBufferPacket(body), fds);
}

absl::StatusOr<ReceivedBuffer> Connection::TakeBuffer(uint64_t message_id,
                                                      absl::Time) {
  MutexLock lock(&state_mu);
  auto it = buffer_stash_.find(message_id);
  if (it == buffer_stash_.end()) {
    if (closed.load()) return absl::UnavailableError("connection closed");
    return absl::DeadlineExceededError(absl::StrCat(
        "the buffer of message ", message_id, " has not arrived"));
  }
  ReceivedBuffer r{it->second.body, std::move(it->second.fd),
                   std::move(it->second.pooled)};
  buffer_stash_.erase(it);
  return r;
}

absl::Status Connection::StashHandles(uint64_t message_id,
                                      std::vector<UniqueFd>* fds,
                                      int64_t now_ns) {
  Budget* server = budgets == nullptr ? nullptr : &budgets->stashed_fds;
  MutexLock lock(&state_mu);
  if (handle_stash_.contains(message_id)) {
    return MakeHandleError(
        HandleError::kUnreferenced, message_id,
        absl::StrCat("a second HANDLES packet for message ", message_id));
  }
  // An honest client has at most one table per unread request record.
  if (handle_stash_.size() >= MaxStashedFds(layout.geometry) ||
      (server != nullptr &&
       server->WouldExceed(fds->size() + ClosingMemfds()))) {
    return absl::ResourceExhaustedError("too many unclaimed handles");
  }
  StashedHandles e;
  e.arrived_ns = now_ns;
  e.charge = ByteCharge(nullptr, server, fds->size());
  e.fds = std::move(*fds);
  fds->clear();
  handle_stash_.emplace(message_id, std::move(e));
  handle_stash_size_.store(handle_stash_.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Connection::SendHandles(uint64_t message_id,
                                     absl::Span<const int> fds) {
  return SendControl(
      EncodeHandlesPacket(message_id, static_cast<uint32_t>(fds.size())), fds);
}

absl::StatusOr<std::vector<UniqueFd>> Connection::TakeHandles(
    uint64_t message_id, uint32_t count, absl::Time) {
  if (count == 0 && handle_stash_size_.load(std::memory_order_relaxed) == 0) {
    return std::vector<UniqueFd>();
  }
  StashedHandles e;
  {
    MutexLock lock(&state_mu);
    auto it = handle_stash_.find(message_id);
    if (it == handle_stash_.end()) {
      if (count == 0) return std::vector<UniqueFd>();
      if (closed.load()) return absl::UnavailableError("connection closed");
      return absl::DeadlineExceededError(absl::StrCat(
          "the descriptors of message ", message_id, " have not arrived"));
    }
    e = std::move(it->second);
    handle_stash_.erase(it);
    handle_stash_size_.store(handle_stash_.size(), std::memory_order_relaxed);
  }
  const size_t got = e.fds.size();
  if (got == count) return std::move(e.fds);
  FdCloser::Get().Close(e.fds);  // Never on this (a worker's) thread.
  if (got < count) {
    return MakeHandleError(
        HandleError::kMissing, message_id,
        absl::StrCat("message ", message_id, " announces ", count,
                     " descriptors and ", got, " came"));
  }
  return MakeHandleError(
      HandleError::kUnreferenced, message_id,
      absl::StrCat("message ", message_id, " announces ", count,
                   " descriptors and ", got, " came"));
}

absl::Status Connection::SendPayloadFd(uint32_t number, uint64_t length,
                                       int fd) {
  PayloadFdBody body{number, 0, length};
  return SendControl(
      EncodeControl(ControlType::kPayloadFd, &body, sizeof(body)), fd);
}

absl::StatusOr<UniqueFd> Connection::TakePayloadFd(uint32_t number, uint64_t,
                                                   absl::Time) {
  MutexLock lock(&state_mu);
  if (memfd_stash_.empty()) {
    if (closed.load()) return absl::UnavailableError("connection closed");
    return absl::DeadlineExceededError(
        absl::StrCat("payload memfd #", number, " has not arrived"));
  }
  Stashed entry = std::move(memfd_stash_.front());
  memfd_stash_.pop_front();
  if (entry.number != number) {
    return absl::DataLossError(absl::StrCat(
        "payload memfd #", entry.number, " arrived, expected #", number));
  }
  return std::move(entry.fd);
}

void Connection::WatchWritableLocked(bool writable) {
  if (epoll_fd < 0) return;
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0u);
  ev.data.u64 = epoll_tag;
  // ENOENT once the connection is closed (no longer watched): harmless.
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, sock.get(), &ev);
}

absl::Status Connection::SendControl(std::string_view bytes, int fd) {
  return SendControl(bytes, fd >= 0 ? absl::MakeConstSpan(&fd, 1)
                                    : absl::Span<const int>());
}

absl::Status Connection::SendControl(std::string_view bytes,
                                     absl::Span<const int> fds) {
  MutexLock lock(&outbox_mu);
  if (outbox_.empty()) {
    absl::Status s = TrySendPacket(sock.get(), bytes, fds);
    if (!absl::IsResourceExhausted(s)) return s;  // Sent, or failed.
  }
  // The socket is full, or packets wait before this one (order matters:
  // payload memfds are numbered).
  if (outbox_.size() >= MaxOutbox()) {
    return absl::ResourceExhaustedError(
        "client does not read its control socket");
  }
  Budget* server = budgets == nullptr ? nullptr : &budgets->outbox_fds;
  OutboxPacket p;
  p.bytes.assign(bytes.data(), bytes.size());
  if (!fds.empty()) {
    if (server != nullptr && server->WouldExceed(fds.size())) {
      return absl::ResourceExhaustedError(
          "too many control packets wait for clients that do not read them");
    }
    for (int fd : fds) {
      UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
      if (!dup) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "control: cannot keep a descriptor: ", std::strerror(errno)));
      }
      p.fds.push_back(std::move(dup));
    }
    p.charge = ByteCharge(nullptr, server, fds.size());
  }
  if (outbox_.empty()) {
    outbox_progress_ns_ = MonotonicNowNs();
    WatchWritableLocked(true);
  }
  outbox_.push_back(std::move(p));
  return absl::OkStatus();
}

absl::Status Connection::FlushOutbox() {
  MutexLock lock(&outbox_mu);
  while (!outbox_.empty()) {
    OutboxPacket& p = outbox_.front();
    std::vector<int> fds;
    fds.reserve(p.fds.size());
    for (const UniqueFd& fd : p.fds) fds.push_back(fd.get());
    absl::Status s = TrySendPacket(sock.get(), p.bytes, fds);
    if (absl::IsResourceExhausted(s)) return absl::OkStatus();  // Still full.
    if (!s.ok()) return s;
    // Sent: the kernel holds its own references until the client reads
    // them, but ours may be the last once it has closed its copies.
    if (!p.fds.empty()) FdCloser::Get().Close(p.fds);
    outbox_.pop_front();
    outbox_progress_ns_ = MonotonicNowNs();
  }
  WatchWritableLocked(false);
  return absl::OkStatus();
}

int64_t Connection::OutboxStalledSinceNs() {
  MutexLock lock(&outbox_mu);
  return outbox_.empty() ? 0 : outbox_progress_ns_;
}

}  // namespace lpc::local::internal
