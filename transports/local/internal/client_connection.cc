// ClientConnection's call table, sending and control packets; the waiting
// half (leader/follower, the pump) is in client_wait.cc.
#include "transports/local/internal/client_connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/section.h"
#include "transports/local/shared_word.h"

namespace lpc::local::internal {
namespace {

constexpr uint64_t kHardPayloadCap = uint64_t{1} << 30;

}  // namespace

ClientConnection::ClientConnection(ClientHandshake handshake,
                                   const LocalChannelOptions& o,
                                   const ChannelOptions& co)
    : sock_(std::move(handshake.sock)),
      doorbell_(std::move(handshake.eventfd)),
      map_(std::move(handshake.map)),
      layout_(handshake.layout),
      options_(o),
      spin_ns_(absl::ToInt64Nanoseconds(o.spin)),
      spin_callers_(SpinCallersFor(o.spinning_callers)) {
  EndpointOptions eo;
  eo.max_inline_record = o.max_inline_record;
  eo.max_payload = kHardPayloadCap;
  eo.accept_payload = co.max_message_size;
  eo.peer_doorbell = &doorbell_;
  eo.buffers = &buffers_;
  eo.memfd_pool = &memfd_pool_;
  eo.memfd_keep_idle = o.payload_cache_idle;
  eo.max_handles = o.max_handles_per_message;
  ep_ = std::make_unique<Endpoint>(Side::kClient, map_.data(), layout_, this,
                                   eo);
}

ClientConnection::~ClientConnection() {
  {
    MutexLock lock(&mu_);
    stop_pump_ = true;
    cv_.SignalAll();
  }
  if (pump_.joinable()) {
    if (pump_.get_id() == std::this_thread::get_id()) {
      pump_.detach();
    } else {
      pump_.join();
    }
  }
  // Async calls still registered (their channel went away): they never
  // complete, as before; their contexts are alive (their callbacks have
  // not run), so their cancel callbacks, which point at this connection,
  // are removed, waiting for one that is running right now (it finds its
  // call gone). Sync calls cannot be left: their callers hold a reference
  // to this connection.
  std::vector<PendingCall*> left;
  {
    MutexLock lock(&mu_);
    for (auto& [id, call] : calls_) left.push_back(call);
    calls_.clear();
  }
  for (PendingCall* call : left) {
    if (!call->callback) continue;
    if (call->cancel_handle != 0) {
      call->ctx->RemoveCancelCallback(call->cancel_handle);
    }
    delete call;
  }
  // The server's descriptors may block in close(): not on this thread.
  MutexLock lock(&reader_mu_);
  for (auto& [id, fds] : handle_stash_) FdCloser::Get().Close(fds);
  handle_stash_.clear();
  for (auto& [id, b] : buffer_stash_) FdCloser::Get().Close(std::move(b.fd));
  buffer_stash_.clear();
  std::vector<UniqueFd> held = ep_->TakeHeldHandles();
  FdCloser::Get().Close(held);
}

bool ClientConnection::HungUp() { return PeerHungUp(sock_.get()); }

absl::StatusOr<uint32_t> ClientConnection::Register(
    PendingCall* call, const InterfaceDescriptor* iface) {
  MutexLock lock(&mu_);
  if (dead_) return dead_status_;
  uint32_t slot = 0;
  if (iface != nullptr) {
    if (iface == last_iface_) {  // Descriptors are static data.
      slot = last_slot_;
    } else {
      auto it = bound_.find(iface->full_name);  // No allocation.
      if (it == bound_.end()) return absl::NotFoundError("not bound");
      slot = it->second;
      last_iface_ = iface;
      last_slot_ = slot;
    }
  }
  if (calls_.size() >= options_.max_in_flight) {
    return absl::ResourceExhaustedError("too many calls in flight");
  }
  if (call->callback && call->ctx != nullptr &&
      call->ctx->WasCancelledExplicitly()) {
    // Its cancel callback ran before it was registered (and found
    // nothing); refusing it here is what makes that cancel count.
    return absl::CancelledError("call cancelled");
  }
  if (call->id == 0) call->id = NextId();
  calls_.emplace(call->id, call);
  if (call->callback) {
    StartPumpLocked();
    if (async_pending_.fetch_add(1) == 0) cv_.SignalAll();  // Pump.
  }
  return slot;
}

void ClientConnection::SetBound(const std::string& iface, uint32_t slot) {
  MutexLock lock(&mu_);
  bound_[iface] = slot;
}

std::optional<uint32_t> ClientConnection::BoundSlot(std::string_view iface) {
  MutexLock lock(&mu_);
  auto it = bound_.find(iface);
  if (it == bound_.end()) return std::nullopt;
  return it->second;
}

absl::Status ClientConnection::Send(const OutgoingMessage& m,
                                    absl::Time deadline) {
  MutexLock lock(&send_mu_);
  send_deadline_ = deadline;  // For SendPayloadFd.
  ep_->SetRunning(true);
  for (;;) {
    absl::StatusOr<bool> ok = ep_->TrySend(m);
    if (!ok.ok()) {
      if (absl::IsResourceExhausted(ok.status())) return ok.status();
      MarkDead(absl::UnavailableError(
          absl::StrCat("local transport broken: ", ok.status().message())));
      return absl::UnavailableError(ok.status().message());
    }
    if (*ok) break;
    ep_->Flush();
    if (dead()) return dead_status();
    if (HungUp()) {
      MarkDead(absl::UnavailableError("server closed the connection"));
      return dead_status();
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("request ring stayed full");
    }
    ep_->WaitForRoom(std::min(left, kClientSleepChunk));
  }
  ep_->Flush();
  // A doorbell the server wedged (internal/client_doorbell.h) ends the
  // connection once the ring that met it is over.
  if (doorbell_.wedged() && !dead()) {
    MarkDead(absl::UnavailableError(
        "server wedged its doorbell (a blocking eventfd with a full counter)"));
  }
  return absl::OkStatus();
}

// First as a control packet: the server's I/O thread always reads the
// socket, even while it has stopped reading this client's ring
// (back-pressure at its in-flight limit), when a ring CANCEL would wait
// behind unread requests. The packet is sent without waiting and without
// send_mu_ (a Send waiting for ring room may hold it), so this may run in a
// cancel callback; one SOCK_SEQPACKET packet is atomic, so it cannot tear a
// PAYLOAD_FD packet that a thread under send_mu_ sends meanwhile, and the
// server needs no order between the two. Only if the socket's buffer is
// full does it go by the ring.
void ClientConnection::SendCancel(uint64_t id) {
  const absl::Status sent =
      TrySendPacket(sock_.get(), EncodeCancelPacket(id));
  if (sent.ok() || absl::IsUnavailable(sent)) return;  // Sent, or gone.
  OutgoingMessage m;
  m.type = MessageType::kCancel;
  m.message_id = id;
  Send(m, absl::Now() + absl::Milliseconds(100)).IgnoreError();
}

bool ClientConnection::Complete(uint64_t id,
                                absl::StatusOr<std::string> result) {
  Completion done;
  {
    MutexLock lock(&mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    PendingCall* call = it->second;
    calls_.erase(it);
    CompleteLocked(call, std::move(result), &done);
    cv_.SignalAll();
  }
  done.Run();
  return true;
}

bool ClientConnection::CompleteAndCancel(uint64_t id, const absl::Status& why) {
  Completion done;
  {
    MutexLock lock(&mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    PendingCall* call = it->second;
    calls_.erase(it);
    CompleteLocked(call, why, &done);
    cv_.SignalAll();
  }
  SendCancel(id);  // Before the callback, which may run long.
  done.Run();
  return true;
}

void ClientConnection::MarkDead(const absl::Status& status) {
  std::vector<Completion> callbacks;
  std::vector<std::shared_ptr<ClientStreamSink>> streams;
  absl::Status ended;
  {
    MutexLock lock(&mu_);
    for (auto& [id, weak] : streams_) {
      if (auto s = weak.lock()) streams.push_back(std::move(s));
    }
    if (!dead_) {
      dead_ = true;
      dead_flag_.store(true, std::memory_order_release);
      dead_status_ = status;
    }
    for (auto& [id, call] : calls_) {
      Completion done;
      CompleteLocked(call, dead_status_, &done);
      if (done.callback) callbacks.push_back(std::move(done));
    }
    calls_.clear();
    ended = dead_status_;
    cv_.SignalAll();
  }
  WakeLeader();
  for (Completion& c : callbacks) c.Run();
  for (auto& s : streams) s->OnConnectionEnd(ended);  // They unregister.
}

void ClientConnection::FailForHandles(const absl::Status& why) {
  const std::string reason =
      absl::StrCat("bad reply from server: ", std::string(why.message()));
  if (const uint64_t id = HandleErrorMessageId(why); id != 0) {
    Complete(id, absl::InternalError(reason));
  }
  MarkDead(absl::UnavailableError(reason));
  ::shutdown(sock_.get(), SHUT_RDWR);
}

absl::Status ClientConnection::dead_status() {
  MutexLock lock(&mu_);
  return dead_status_;
}

void ClientConnection::WakeLeader() {
  uint32_t* word = &ControlOf(map_.data(), layout_)->reply.consumer_sleeping;
  SharedStore<uint32_t>(*word, 0, std::memory_order_seq_cst);
  FutexWake(word, INT32_MAX);
}

void ClientConnection::Expire(uint64_t id) {
  CompleteAndCancel(id, absl::DeadlineExceededError("deadline exceeded"));
}

absl::Status ClientConnection::SendPayloadFd(uint32_t number, uint64_t length,
                                             int fd)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under send_mu_.
  PayloadFdBody body{number, 0, length};
  const int fds[1] = {fd};
  return SendPacket(sock_.get(),
                    EncodeControl(ControlType::kPayloadFd, &body, sizeof(body)),
                    fds, send_deadline_);
}

absl::Status ClientConnection::SendHandles(uint64_t message_id,
                                           absl::Span<const int> fds)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under send_mu_.
  return SendPacket(
      sock_.get(),
      EncodeHandlesPacket(message_id, static_cast<uint32_t>(fds.size())), fds,
      send_deadline_);
}

absl::StatusOr<std::vector<UniqueFd>> ClientConnection::TakeHandles(
    uint64_t message_id, uint32_t count, absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under reader_mu_.
  // A table for a reply that announces none: only if it came already.
  for (int i = 0; i < 64; ++i) {
    auto it = handle_stash_.find(message_id);
    if (it != handle_stash_.end()) {
      std::vector<UniqueFd> fds = std::move(it->second);
      handle_stash_.erase(it);
      if (fds.size() == count) return fds;
      const size_t got = fds.size();
      FdCloser::Get().Close(fds);
      return MakeHandleError(
          got < count ? HandleError::kMissing : HandleError::kUnreferenced,
          message_id,
          absl::StrCat("reply ", message_id, " announces ", count,
                       " descriptors and ", got, " came"));
    }
    if (count == 0) return std::vector<UniqueFd>();
    absl::Status s = ReadOnePacket(deadline);
    if (!s.ok()) return s;
  }
  return MakeHandleError(HandleError::kMissing, message_id,
                         "the reply's descriptors did not arrive");
}

absl::Status ClientConnection::SendBuffer(const BufferBody& body, int fd)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under send_mu_.
  const int fds[1] = {fd};
  return SendPacket(sock_.get(), EncodeBufferPacket(body), fds,
                    send_deadline_);
}

absl::Status ClientConnection::SendPoolBuffer(uint64_t message_id,
                                              uint32_t field_number,
                                              Buffer* chunk)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under send_mu_.
  BufferPool* p = pool();
  std::optional<uint32_t> index;
  if (p != nullptr) index = p->ChunkOf(*chunk);
  if (!index.has_value()) {
    return absl::FailedPreconditionError("not a chunk of this connection's pool");
  }
  const PoolBufferBody b{message_id, field_number, *index, chunk->size()};
  // On loan before the server can see it (it may return it at once).
  p->Lend(*chunk);
  absl::Status s =
      SendPacket(sock_.get(), EncodePoolBufferPacket(b), {}, send_deadline_);
  if (!s.ok()) p->Unlend(*chunk);
  return s;
}

void ClientConnection::OfferPool(std::weak_ptr<ClientConnection> self) {
  if (!options_.same_uid_buffer_pool) return;
  absl::StatusOr<PeerCredentials> creds = GetPeerCredentials(sock_.get());
  if (!creds.ok() || creds->uid != static_cast<uint32_t>(::geteuid())) return;
  UniqueFd memfd;
  absl::StatusOr<std::shared_ptr<BufferPool>> made = BufferPool::Create(
      options_.buffer_pool_chunk_bytes, options_.buffer_pool_chunks, &memfd);
  if (!made.ok()) return;  // Sealed memfds, as without the option.
  (*made)->SetReturnSender([self](std::string_view packet) {
    std::shared_ptr<ClientConnection> c = self.lock();
    return c != nullptr && TrySendPacket(c->sock_.get(), packet).ok();
  });
  {
    MutexLock lock(&reader_mu_);
    pool_offered_ = *made;
  }
  const int fds[1] = {memfd.get()};
  if (!SendPacket(sock_.get(), EncodePoolPacket((*made)->layout()), fds,
                  absl::Now() + absl::Seconds(1))
           .ok()) {
    MutexLock lock(&reader_mu_);
    pool_offered_.reset();
  }
}

std::optional<Buffer> ClientConnection::TryNewPoolBuffer(size_t size) {
  if (!options_.same_uid_buffer_pool) return std::nullopt;
  BufferPool* p = pool();
  if (p != nullptr) {
    if (std::optional<Buffer> b = p->TryNewBuffer(size); b.has_value()) {
      return b;
    }
    if (size > p->chunk_bytes()) return std::nullopt;
  }
  // The server's answer or returns may wait in the socket: read what is
  // there, if no other thread is reading.
  if (!reader_mu_.TryLock()) return std::nullopt;
  for (int i = 0; i < 64 && ReadOnePacket(absl::InfinitePast()).ok(); ++i) {
  }
  reader_mu_.Unlock();
  p = pool();
  if (p == nullptr) return std::nullopt;
  return p->TryNewBuffer(size);
}

absl::Status ClientConnection::HandlePoolPacket(ControlType type,
                                                absl::Span<const std::byte> body,
                                                size_t fds) {
  if (type == ControlType::kPool) {
    absl::StatusOr<PoolBody> pb = DecodePoolBody(body, fds, 0);
    if (!pb.ok()) return pb.status();
    if (pool_offered_ == nullptr ||
        pb->chunk_bytes != pool_offered_->chunk_bytes() ||
        pb->chunk_count != pool_offered_->chunk_count()) {
      return MakeHandleError(HandleError::kPoolRefused, 0,
                             "a POOL answer to no offer");
    }
    pool_owner_ = std::move(pool_offered_);
    pool_.store(pool_owner_.get(), std::memory_order_release);
    return absl::OkStatus();
  }
  BufferPool* p = pool();
  if (type == ControlType::kPoolBuffer) {
    absl::StatusOr<PoolBufferBody> pb = DecodePoolBufferBody(body, fds);
    if (!pb.ok()) return pb.status();
    if (p == nullptr) {
      return MakeHandleError(HandleError::kPoolChunk, pb->message_id,
                             "a POOL_BUFFER without a pool");
    }
    if (buffer_stash_.contains(pb->message_id) ||
        buffer_stash_.size() >= size_t{layout_.geometry.reply_slots} + 16) {
      return MakeHandleError(HandleError::kBufferUnreferenced, pb->message_id,
                             "a buffer no reply claims");
    }
    absl::StatusOr<BufferView> view = p->Borrow(pb->chunk, pb->length);
    if (!view.ok()) {
      return MakeHandleError(HandleError::kPoolChunk, pb->message_id,
                             std::string(view.status().message()));
    }
    ReceivedBuffer r;
    r.body.message_id = pb->message_id;
    r.body.field_number = pb->field_number;
    r.body.length = pb->length;
    r.pooled = *std::move(view);
    buffer_stash_.emplace(pb->message_id, std::move(r));
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<uint32_t>> chunks = DecodePoolReturnBody(body, fds);
  if (!chunks.ok()) return chunks.status();
  if (p == nullptr) {
    return MakeHandleError(HandleError::kPoolChunk, 0,
                           "a POOL_RETURN without a pool");
  }
  return p->Returned(*chunks);
}

absl::StatusOr<ReceivedBuffer> ClientConnection::TakeBuffer(
    uint64_t message_id, absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under reader_mu_.
  for (int i = 0; i < 64; ++i) {
    auto it = buffer_stash_.find(message_id);
    if (it != buffer_stash_.end()) {
      ReceivedBuffer b = std::move(it->second);
      buffer_stash_.erase(it);
      return b;
    }
    absl::Status s = ReadOnePacket(deadline);
    if (absl::IsDeadlineExceeded(s)) {
      return MakeHandleError(HandleError::kBufferMissing, message_id,
                             "the reply's buffer did not arrive");
    }
    if (!s.ok()) return s;
  }
  return MakeHandleError(HandleError::kBufferMissing, message_id,
                         "the reply's buffer did not arrive");
}

absl::StatusOr<UniqueFd> ClientConnection::TakePayloadFd(uint32_t number,
                                                         uint64_t,
                                                         absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Called by ep_ under reader_mu_.
  for (int i = 0; i < 64; ++i) {
    if (!stash_.empty()) {
      auto entry = std::move(stash_.front());
      stash_.pop_front();
      if (entry.first != number) {
        return absl::DataLossError("payload memfd out of order");
      }
      return std::move(entry.second);
    }
    absl::Status s = ReadOnePacket(deadline);
    if (!s.ok()) return s;
  }
  return absl::DataLossError("payload memfd did not arrive");
}

absl::Status ClientConnection::ReadOnePacket(absl::Time deadline) {
  std::vector<UniqueFd> refused;  // Closed on the closer's thread.
  absl::StatusOr<Packet> p = RecvPacket(sock_.get(), deadline, &refused);
  FdCloser::Get().Close(refused);
  if (absl::IsDeadlineExceeded(p.status())) return p.status();
  if (!p.ok()) {
    MarkDead(absl::UnavailableError("server closed the connection"));
    return dead_status();
  }
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                          p->bytes.size()),
      &body);
  if (type.ok() && *type == ControlType::kGoodbye) {
    absl::Status why = DecodeStatusBody(body);
    MarkDead(absl::UnavailableError(why.message()));
    return dead_status();
  }
  if (type.ok() && *type == ControlType::kHandles) {
    absl::StatusOr<HandlesBody> hb = DecodeHandlesBody(body, p->fds.size());
    absl::Status bad = hb.status();
    if (hb.ok() && hb->count > options_.max_handles_per_message) {
      bad = MakeHandleError(
          HandleError::kTooMany, hb->message_id,
          absl::StrCat("a reply with ", hb->count,
                       " descriptors, more than the limit of ",
                       options_.max_handles_per_message));
    } else if (hb.ok() && (handle_stash_.contains(hb->message_id) ||
                           handle_stash_.size() >=
                               size_t{layout_.geometry.reply_slots} + 16)) {
      bad = MakeHandleError(HandleError::kUnreferenced, hb->message_id,
                            "descriptors no reply claims");
    }
    if (!bad.ok()) {
      FdCloser::Get().Close(p->fds);
      FailForHandles(bad);
      return dead_status();
    }
    handle_stash_.emplace(hb->message_id, std::move(p->fds));
    return absl::OkStatus();
  }
  if (type.ok() && *type == ControlType::kBuffer) {
    absl::StatusOr<BufferBody> bb = DecodeBufferBody(body, p->fds.size());
    absl::Status bad = bb.status();
    // Its kind first, by a call that does no I/O (F_GET_SEALS answers
    // only for a memfd); the rest is checked when its reply is read.
    if (bb.ok() && ::fcntl(p->fds[0].get(), F_GET_SEALS) < 0) {
      bad = MakeHandleError(HandleError::kBufferRefused, bb->message_id,
                            "a reply's buffer is not a memfd");
    } else if (bb.ok() && (buffer_stash_.contains(bb->message_id) ||
                           buffer_stash_.size() >=
                               size_t{layout_.geometry.reply_slots} + 16)) {
      bad = MakeHandleError(HandleError::kBufferUnreferenced, bb->message_id,
                            "a buffer no reply claims");
    }
    if (!bad.ok()) {
      FdCloser::Get().Close(p->fds);
      FailForHandles(bad);
      return dead_status();
    }
    buffer_stash_.emplace(bb->message_id,
                          ReceivedBuffer{*bb, std::move(p->fds[0])});
    return absl::OkStatus();
  }
  if (type.ok() && (*type == ControlType::kPool ||
                    *type == ControlType::kPoolBuffer ||
                    *type == ControlType::kPoolReturn)) {
    absl::Status bad = HandlePoolPacket(*type, body, p->fds.size());
    if (!bad.ok()) {
      FdCloser::Get().Close(p->fds);
      FailForHandles(bad);
      return dead_status();
    }
    return absl::OkStatus();
  }
  PayloadFdBody b;
  if (!type.ok() || *type != ControlType::kPayloadFd ||
      body.size() != sizeof(b) || p->fds.size() != 1 || stash_.size() > 16) {
    FdCloser::Get().Close(p->fds);
    MarkDead(absl::UnavailableError("protocol error on the control socket"));
    return dead_status();
  }
  std::memcpy(&b, body.data(), sizeof(b));
  stash_.emplace_back(b.memfd_number, std::move(p->fds[0]));
  return absl::OkStatus();
}

void ClientConnection::CompleteLocked(PendingCall* call,
                                      absl::StatusOr<std::string> result,
                                      Completion* out) {
  if (call->callback) {
    async_pending_.fetch_sub(1, std::memory_order_release);
    out->callback = std::move(call->callback);
    out->ctx = call->ctx;
    out->deadline_ns = call->deadline_ns;
    out->cancel_handle = call->cancel_handle;
    out->result = std::move(result);
    out->attached = std::move(call->attached);
    delete call;
    return;
  }
  // Its caller, if asleep, cannot leave before we release mu_.
  FollowerWait* const follower = call->follower;
  call->result = std::move(result);
  call->done.store(true, std::memory_order_release);  // Last touch.
  if (follower != nullptr && follower->queued) {
    UnlinkSleeperLocked(follower);
    follower->cv.Signal();
  }
}

bool ClientConnection::SocketCheckDue(int64_t now_ns) {
  int64_t last = last_socket_check_ns_.load(std::memory_order_relaxed);
  if (now_ns - last < kSocketCheckNs) return false;
  return last_socket_check_ns_.compare_exchange_strong(
      last, now_ns, std::memory_order_relaxed);
}

}  // namespace lpc::local::internal
