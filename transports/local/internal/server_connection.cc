// The server's per-client state: reply queue, call table, memfd stash.
#include "transports/local/internal/server_connection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "transports/local/control_socket.h"
#include "transports/local/internal/fd_closer.h"

namespace lpc::local::internal {

size_t MaxStashedFds(const SectionGeometry& g) {
  return size_t{g.request_slots} + 16;
}

size_t MaxEarlyCancels(const SectionGeometry& g, uint32_t max_in_flight) {
  return std::min<size_t>(size_t{g.request_slots} + max_in_flight, 1 << 16);
}

Connection::~Connection() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  FdCloser& closer = FdCloser::Get();
  closer.Close(std::move(sock));
  for (Stashed& e : memfd_stash_) closer.Close(std::move(e.fd));
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

OutgoingMessage ToOutgoing(const OwnedReply& r) {
  OutgoingMessage m;
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
  if (closed.load() || hung_up.load()) return false;  // Nobody reads it.
  if (pending_replies.empty()) {
    // Fast path: straight into the ring, no queue.
    absl::StatusOr<bool> sent = ep->TrySend(ToOutgoing(reply));
    if (!sent.ok()) return sent.status();
    if (*sent) return ep->Flush();
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
  }
  reply.charge = ByteCharge(&reply_bytes, server, reply.payload.size());
  if (pending_replies.empty()) pending_since = absl::Now();
  pending_replies.push_back(std::move(reply));
  if (absl::Status s = FlushRepliesLocked(); !s.ok()) return s;
  return false;
}

absl::Status Connection::FlushRepliesLocked() {
  bool sent_any = false;
  while (!pending_replies.empty()) {
    const OutgoingMessage m = ToOutgoing(pending_replies.front());
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

absl::StatusOr<uint32_t> Connection::Bind(const std::string& name) {
  MutexLock lock(&state_mu);
  auto it = std::find(bound_.begin(), bound_.end(), name);
  if (it != bound_.end()) {
    return static_cast<uint32_t>(it - bound_.begin()) + 1;
  }
  if (bound_.size() >= kMaxBoundInterfaces) {
    return absl::ResourceExhaustedError("too many bound interfaces");
  }
  bound_.push_back(name);
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
  bool ignored = false;
  {
    MutexLock lock(&state_mu);
    auto it = in_flight_.find(id);
    if (it != in_flight_.end()) {
      cancel = it->second.ctx->cancel_state();
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
    if (cancel->cancelled()) ignored = true;  // Socket and ring both.
    cancel->Cancel();
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
    cancels.push_back(rec.ctx->cancel_state());
  }
  if (closing) {
    for (auto& [serial, ctx] : oneway_calls_) {
      cancels.push_back(ctx->cancel_state());
    }
    for (Stashed& e : memfd_stash_) FdCloser::Get().Close(std::move(e.fd));
    memfd_stash_.clear();
  }
  memfd_cv_.SignalAll();
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
      unanswered->emplace_back(id, rec.ctx->cancel_state());
    }
  }
  for (auto& [serial, ctx] : oneway_calls_) {
    oneway->push_back(ctx->cancel_state());
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
  if (server != nullptr && server->WouldExceed(1)) return false;
  memfd_stash_.push_back(
      Stashed{number, std::move(fd), now_ns, ByteCharge(nullptr, server, 1)});
  memfd_cv_.SignalAll();
  return true;
}

int64_t Connection::OldestStashedNs() {
  MutexLock lock(&state_mu);
  return memfd_stash_.empty() ? 0 : memfd_stash_.front().arrived_ns;
}

absl::Status Connection::SendPayloadFd(uint32_t number, uint64_t length,
                                       int fd) {
  PayloadFdBody body{number, 0, length};
  const int fds[1] = {fd};
  return SendPacket(sock.get(),
                    EncodeControl(ControlType::kPayloadFd, &body, sizeof(body)),
                    fds);
}

absl::StatusOr<UniqueFd> Connection::TakePayloadFd(uint32_t number, uint64_t,
                                                   absl::Time deadline) {
  MutexLock lock(&state_mu);
  for (;;) {
    if (!memfd_stash_.empty()) {
      Stashed entry = std::move(memfd_stash_.front());
      memfd_stash_.pop_front();
      if (entry.number != number) {
        return absl::DataLossError(absl::StrCat(
            "payload memfd #", entry.number, " arrived, expected #", number));
      }
      return std::move(entry.fd);
    }
    if (closed.load()) return absl::UnavailableError("connection closed");
    if (!memfd_cv_.WaitWithDeadline(&state_mu, deadline) &&
        memfd_stash_.empty()) {
      return absl::DeadlineExceededError("payload memfd did not arrive");
    }
  }
}

}  // namespace lpc::local::internal
