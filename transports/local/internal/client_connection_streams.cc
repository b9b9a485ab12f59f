// ClientConnection's table of streams (client_connection.h); the streams
// themselves are client_streams.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/local/internal/client_connection.h"

namespace lpc::local::internal {
namespace {
thread_local bool in_leader_drain = false;
}  // namespace

bool InLeaderDrain() { return in_leader_drain; }

absl::StatusOr<uint32_t> ClientConnection::RegisterStream(
    uint64_t id, std::weak_ptr<ClientStreamSink> stream,
    const InterfaceDescriptor* iface) {
  MutexLock lock(&mu_);
  if (dead_) return dead_status_;
  uint32_t slot = 0;
  if (iface == last_iface_) {
    slot = last_slot_;
  } else {
    auto it = bound_.find(iface->full_name);
    if (it == bound_.end()) return absl::NotFoundError("not bound");
    slot = it->second;
  }
  if (!streams_.emplace(id, std::move(stream)).second) {
    return absl::InternalError("stream id in use");
  }
  StartPumpLocked();
  if (async_pending_.fetch_add(1) == 0) cv_.SignalAll();  // The pump leads.
  return slot;
}

void ClientConnection::UnregisterStream(uint64_t id) {
  MutexLock lock(&mu_);
  if (streams_.erase(id) != 0) {
    async_pending_.fetch_sub(1, std::memory_order_release);
  }
}

void ClientConnection::Defer(std::function<void()> fn) {
  MutexLock lock(&mu_);
  deferred_.push_back(std::move(fn));
  deferred_count_.store(static_cast<int>(deferred_.size()),
                        std::memory_order_release);
  StartPumpLocked();
  cv_.SignalAll();
  // A pump that leads stops at its next look at deferred_count_; one asleep
  // on the reply futex wakes now.
  WakeLeader();
}

absl::Status ClientConnection::SendWithoutWaiting(const OutgoingMessage& m) {
  if (!send_mu_.TryLock()) {
    return absl::DeadlineExceededError("another thread is sending");
  }
  send_deadline_ = absl::InfinitePast();
  ep_->SetRunning(true);
  absl::StatusOr<bool> ok = ep_->TrySend(m);
  if (ok.ok() && *ok) ep_->Flush();
  send_mu_.Unlock();
  if (!ok.ok()) {
    if (absl::IsResourceExhausted(ok.status())) return ok.status();
    MarkDead(absl::UnavailableError(
        absl::StrCat("local transport broken: ", ok.status().message())));
    return dead_status();
  }
  if (!*ok) return absl::DeadlineExceededError("request ring full");
  return absl::OkStatus();
}

bool ClientConnection::RouteStreamRecord(IncomingMessage& m) {
  std::shared_ptr<ClientStreamSink> stream;
  {
    MutexLock lock(&mu_);
    auto it = streams_.find(m.header.message_id);
    if (it != streams_.end()) stream = it->second.lock();
  }
  if (stream == nullptr) {
    // A stream this client has ended (cancelled, expired, dropped): what
    // the server sent before it learned of that is dropped.
    stray_replies_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  in_leader_drain = true;
  absl::Status s = stream->OnRecord(m);
  in_leader_drain = false;
  if (s.ok()) return true;
  MarkDead(absl::UnavailableError(
      absl::StrCat("bad reply from server: ", s.message())));
  return false;
}

}  // namespace lpc::local::internal
