// The client side of the local transport's streams (client_streams.h).
#include "transports/local/internal/client_streams.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/local/frame.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {
namespace {

constexpr size_t kMaxStatusMessage = 1024;

absl::Status WriteAfterEnd(bool by_server, const absl::Status& status) {
  if (by_server && status.ok()) {
    return absl::FailedPreconditionError("the server finished the call");
  }
  return status;
}

// What the caller holds: dropping it drops the call.
class ClientStreamHandle final : public ClientStream {
 public:
  explicit ClientStreamHandle(std::shared_ptr<LocalClientStream> s)
      : s_(std::move(s)) {}
  ~ClientStreamHandle() override { s_->Drop(); }
  CallContext& context() override { return s_->context(); }
  void Write(std::string message, WriteCallback done) override {
    s_->Write(std::move(message), std::move(done));
  }
  void WritesDone() override { s_->WritesDone(); }
  void Read(ReadCallback done) override { s_->Read(std::move(done)); }
  void Finish(FinishCallback done) override { s_->Finish(std::move(done)); }

 private:
  const std::shared_ptr<LocalClientStream> s_;
};

}  // namespace

std::shared_ptr<ClientStream> LocalClientStream::MakeHandle(
    std::shared_ptr<LocalClientStream> stream) {
  return std::make_shared<ClientStreamHandle>(std::move(stream));
}

LocalClientStream::LocalClientStream(CallContext* ctx, absl::Status status)
    : user_ctx_(ctx) {
  MutexLock lock(&mu_);
  ctx_ = ctx;
  ended_ = true;
  left_ = true;
  status_ = std::move(status);
}

LocalClientStream::LocalClientStream(std::shared_ptr<ClientConnection> conn,
                                     CallContext* ctx, const Config& config)
    : conn_(std::move(conn)), user_ctx_(ctx), config_(config) {
  MutexLock lock(&mu_);
  ctx_ = ctx;
}

LocalClientStream::~LocalClientStream() = default;

void LocalClientStream::Drop() {
  if (conn_ == nullptr) return;
  Todo todo;
  bool ended_here;
  {
    MutexLock lock(&mu_);
    ended_here =
        EndLocked(absl::CancelledError("stream dropped"), false, &todo);
  }
  if (ended_here) Leave(/*cancel_server=*/true);
  // Waits for a cancel callback running now; later ones never run.
  if (cancel_handle_ != 0) user_ctx_->RemoveCancelCallback(cancel_handle_);
  {
    MutexLock lock(&mu_);
    ctx_ = nullptr;
  }
  for (auto& fn : todo) fn();
}

void LocalClientStream::Open(uint32_t slot, uint32_t method_id,
                             int64_t deadline_ns) {
  {
    MutexLock lock(&mu_);
    left_ = false;  // Registered by the caller.
  }
  std::weak_ptr<LocalClientStream> weak = weak_from_this();
  // Runs on Cancel() and when the deadline passes (the runtime's timer).
  cancel_handle_ = user_ctx_->AddCancelCallback([weak] {
    if (std::shared_ptr<LocalClientStream> s = weak.lock()) {
      s->End(s->user_ctx_->WasCancelledExplicitly()
                 ? absl::CancelledError("call cancelled")
                 : absl::DeadlineExceededError("deadline exceeded"),
             /*cancel_server=*/true);
    }
  });
  std::string payload = EncodeStreamOpenBody(
      config_.in_window.messages, static_cast<uint64_t>(config_.in_window.bytes));
  uint16_t flags = 0;
  if (HasSendableMetadata(user_ctx_->metadata())) {
    std::string md;
    if (absl::Status s = EncodeMetadata(user_ctx_->metadata(), &md);
        !s.ok()) {
      End(s, /*cancel_server=*/false);
      return;
    }
    payload += md;
    flags = kFlagMetadata;
  }
  absl::Status s;
  {
    MutexLock send(&send_mu_);
    {
      MutexLock lock(&mu_);
      if (ended_) return;  // Cancelled already.
    }
    OutgoingMessage m;
    m.type = MessageType::kStreamOpen;
    m.message_id = config_.id;
    m.interface_slot = slot;
    m.method_id = method_id;
    m.deadline_ns = deadline_ns;
    m.flags = flags;
    m.payload = payload;
    s = conn_->Send(m, config_.deadline);
  }
  if (!s.ok()) End(s, /*cancel_server=*/true);
}

bool LocalClientStream::FitsLocked(uint64_t size) const {
  if (outstanding_messages_ >= out_window_.messages) return false;
  return outstanding_messages_ == 0 ||
         outstanding_bytes_ + size <= out_window_.bytes;
}

absl::Status LocalClientStream::SendRecord(MessageType type,
                                           std::string_view payload) {
  OutgoingMessage m;
  m.type = type;
  m.message_id = config_.id;
  m.payload = payload;
  return conn_->Send(m, config_.deadline);
}

void LocalClientStream::Write(std::string message, WriteCallback done) {
  send_mu_.Lock();
  absl::Status refuse;
  bool oversized = false;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      refuse = WriteAfterEnd(by_server_, status_);
    } else if (writes_done_) {
      refuse = absl::FailedPreconditionError("Write after WritesDone");
    } else if (held_write_.has_value() || send_deferred_) {
      refuse = absl::FailedPreconditionError("a Write is already outstanding");
    } else if (message.size() > config_.max_message_size) {
      refuse = absl::ResourceExhaustedError(absl::StrCat(
          "message of ", message.size(),
          " bytes exceeds the maximum message size of ",
          config_.max_message_size, " bytes"));
      oversized = true;
    } else if (!FitsLocked(message.size())) {
      // Held back until the server returns credits (OnWindowLocked).
      held_write_ = std::move(message);
      held_done_ = std::move(done);
      send_mu_.Unlock();
      return;
    } else {
      ++outstanding_messages_;
      outstanding_bytes_ += message.size();
    }
  }
  if (!refuse.ok()) {
    send_mu_.Unlock();
    // An oversized message ends the call with RESOURCE_EXHAUSTED, as on
    // every transport (the server's handler is cancelled).
    if (oversized) End(refuse, /*cancel_server=*/true);
    done(refuse);
    return;
  }
  absl::Status s = SendRecord(MessageType::kStreamMessage, message);
  send_mu_.Unlock();
  if (!s.ok()) End(s, /*cancel_server=*/true);
  done(s);
}

void LocalClientStream::SendHeld(std::string bytes, WriteCallback done) {
  send_mu_.Lock();
  absl::Status s;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      send_deferred_ = false;
      s = WriteAfterEnd(by_server_, status_);
    }
  }
  if (!s.ok()) {
    send_mu_.Unlock();
    done(s);
    return;
  }
  s = SendRecord(MessageType::kStreamMessage, bytes);
  bool half_close = false;
  {
    MutexLock lock(&mu_);
    send_deferred_ = false;
    if (half_close_pending_ && !ended_) {
      half_close_pending_ = false;
      half_close = true;
    }
  }
  if (s.ok() && half_close) s = SendRecord(MessageType::kHalfClose, {});
  send_mu_.Unlock();
  if (!s.ok()) End(s, /*cancel_server=*/true);
  done(s);
}

void LocalClientStream::WritesDone() {
  if (conn_ == nullptr) return;
  MutexLock send(&send_mu_);
  {
    MutexLock lock(&mu_);
    if (writes_done_ || ended_) return;
    writes_done_ = true;
    if (held_write_.has_value() || send_deferred_) {
      half_close_pending_ = true;  // After the held-back message.
      return;
    }
  }
  absl::Status s = SendRecord(MessageType::kHalfClose, {});
  if (!s.ok()) {
    // (End takes no send_mu_; it only ends the stream here.)
    End(s, /*cancel_server=*/true);
  }
}

void LocalClientStream::Read(ReadCallback done) {
  Todo todo;
  bool took = false;
  {
    MutexLock lock(&mu_);
    if (!inbound_.empty()) {
      std::string m = std::move(inbound_.front());
      inbound_.pop_front();
      buffered_bytes_ -= m.size();
      ++unreturned_messages_;
      unreturned_bytes_ += m.size();
      took = true;
      todo.push_back([done = std::move(done), m = std::move(m)]() mutable {
        done(std::optional<std::string>(std::move(m)));
      });
    } else if (ended_) {
      if (by_server_) {
        todo.push_back([done = std::move(done)] {
          done(std::optional<std::string>());
        });
      } else {
        todo.push_back([done = std::move(done), s = status_] { done(s); });
      }
    } else if (pending_read_) {
      todo.push_back([done = std::move(done)] {
        done(absl::FailedPreconditionError("a Read is already outstanding"));
      });
    } else {
      pending_read_ = std::move(done);
    }
  }
  if (took) MaybeReturnCredits();
  for (auto& fn : todo) fn();
}

void LocalClientStream::MaybeReturnCredits() {
  uint32_t messages;
  uint64_t bytes;
  {
    MutexLock lock(&mu_);
    if (ended_ || unreturned_messages_ == 0) return;
    if (!inbound_.empty() &&
        uint64_t{unreturned_messages_} * 2 < config_.in_window.messages &&
        unreturned_bytes_ * 2 < config_.in_window.bytes) {
      return;
    }
    messages = std::exchange(unreturned_messages_, 0);
    bytes = std::exchange(unreturned_bytes_, 0);
  }
  SendCredits(messages, bytes, /*may_wait=*/!InLeaderDrain());
}

void LocalClientStream::SendCredits(uint32_t messages, uint64_t bytes,
                                    bool may_wait) {
  // Unordered with the stream's messages: no send_mu_.
  OutgoingMessage m;
  m.type = MessageType::kWindowUpdate;
  m.message_id = config_.id;
  const std::string body = EncodeWindowBody(kWindowCredits, messages, bytes);
  m.payload = body;
  absl::Status s = may_wait ? conn_->Send(m, config_.deadline)
                            : conn_->SendWithoutWaiting(m);
  if (!may_wait && absl::IsDeadlineExceeded(s)) {
    // The leader never waits for ring room: it would stop draining the
    // replies, and a server whose reply queue is full stops reading our
    // ring. The pump sends it instead.
    std::shared_ptr<LocalClientStream> self = shared_from_this();
    conn_->Defer([self, messages, bytes] {
      self->SendCredits(messages, bytes, /*may_wait=*/true);
    });
    return;
  }
  if (!s.ok()) End(s, /*cancel_server=*/true);
}

void LocalClientStream::Finish(FinishCallback done) {
  absl::Status s;
  {
    MutexLock lock(&mu_);
    if (!ended_) {
      finish_waiters_.push_back(std::move(done));
      return;
    }
    s = status_;
  }
  done(s);
}

bool LocalClientStream::EndLocked(const absl::Status& status, bool by_server,
                                  Todo* todo) {
  if (ended_) return false;
  ended_ = true;
  by_server_ = by_server;
  status_ = status;
  if (!by_server) {
    inbound_.clear();  // Taken by nobody now.
    buffered_bytes_ = 0;
  }
  if (pending_read_) {
    if (by_server) {
      todo->push_back([done = std::move(pending_read_)] {
        done(std::optional<std::string>());
      });
    } else {
      todo->push_back([done = std::move(pending_read_), status] {
        done(status);
      });
    }
    pending_read_ = nullptr;
  }
  if (held_write_.has_value()) {
    held_write_.reset();
    todo->push_back([done = std::move(held_done_),
                     s = WriteAfterEnd(by_server, status)] { done(s); });
    held_done_ = nullptr;
  }
  half_close_pending_ = false;
  for (FinishCallback& f : finish_waiters_) {
    todo->push_back([f = std::move(f), status] { f(status); });
  }
  finish_waiters_.clear();
  return true;
}

void LocalClientStream::Leave(bool cancel_server) {
  {
    MutexLock lock(&mu_);
    if (left_) return;
    left_ = true;
  }
  conn_->UnregisterStream(config_.id);
  if (cancel_server) conn_->SendCancel(config_.id);
}

void LocalClientStream::End(const absl::Status& status, bool cancel_server) {
  if (conn_ == nullptr) return;
  Todo todo;
  {
    MutexLock lock(&mu_);
    if (!EndLocked(status, false, &todo)) return;
  }
  Leave(cancel_server);
  for (auto& fn : todo) fn();
}

void LocalClientStream::OnConnectionEnd(const absl::Status& status) {
  End(status, /*cancel_server=*/false);
}

void LocalClientStream::CheckDeadline(absl::Time now) {
  if (now >= config_.deadline) {
    End(absl::DeadlineExceededError("deadline exceeded"),
        /*cancel_server=*/true);
  }
}

absl::Status LocalClientStream::OnRecord(IncomingMessage& m) {
  Todo todo;
  absl::Status bad;
  bool ended_before, ended_after, cancel_server = false, credits = false;
  {
    MutexLock lock(&mu_);
    ended_before = ended_;
    if (ended_) return absl::OkStatus();  // Dropped.
    switch (m.type()) {
      case MessageType::kStreamMessage: {
        const bool had_read = static_cast<bool>(pending_read_);
        bad = OnMessageLocked(m, &todo);
        credits = had_read && bad.ok() && !ended_;
        cancel_server = ended_;  // Only an oversized message ends it here.
        break;
      }
      case MessageType::kStreamFinish:
      case MessageType::kReply:
        bad = OnFinishLocked(m, &todo);
        break;
      case MessageType::kWindowUpdate:
        bad = OnWindowLocked(m, &todo);
        break;
      default:
        bad = absl::DataLossError("unexpected record on a stream");
    }
    ended_after = ended_;
  }
  if (!ended_before && ended_after) Leave(cancel_server);
  if (credits) MaybeReturnCredits();
  for (auto& fn : todo) fn();
  return bad;
}

absl::Status LocalClientStream::OnMessageLocked(IncomingMessage& m,
                                                Todo* todo) {
  if ((m.header.flags & kFlagMetadata) != 0) {
    if (metadata_seen_) {
      return absl::DataLossError("stream: metadata on a later message");
    }
    if (!m.oversized) {
      Metadata md;
      std::string_view rest;
      if (absl::Status s = DecodeMetadata(m.payload, &md, &rest); !s.ok()) {
        return s;
      }
      m.payload.erase(0, m.payload.size() - rest.size());
      if (ctx_ != nullptr) ctx_->response_metadata().merge(md);
    }
  }
  metadata_seen_ = true;
  const uint64_t size = m.oversized ? m.header.payload_length : m.payload.size();
  if (inbound_.size() >= config_.in_window.messages ||
      (!inbound_.empty() && buffered_bytes_ + size > config_.in_window.bytes)) {
    return absl::DataLossError("stream: the server exceeded the window");
  }
  if (m.oversized) {
    EndLocked(absl::ResourceExhaustedError(absl::StrCat(
                  "stream message of ", size,
                  " bytes exceeds the channel's maximum message size of ",
                  config_.max_message_size, " bytes")),
              false, todo);
    return absl::OkStatus();
  }
  if (pending_read_) {
    ++unreturned_messages_;
    unreturned_bytes_ += size;
    todo->push_back([done = std::move(pending_read_),
                     bytes = std::move(m.payload)]() mutable {
      done(std::optional<std::string>(std::move(bytes)));
    });
    pending_read_ = nullptr;
    return absl::OkStatus();
  }
  buffered_bytes_ += size;
  inbound_.push_back(std::move(m.payload));
  return absl::OkStatus();
}

absl::Status LocalClientStream::OnFinishLocked(IncomingMessage& m,
                                               Todo* todo) {
  if ((m.header.flags & kFlagMetadata) != 0) {
    Metadata md;
    std::string_view rest;
    if (absl::Status s = DecodeMetadata(m.payload, &md, &rest); !s.ok()) {
      return s;
    }
    m.payload.erase(0, m.payload.size() - rest.size());
    if (ctx_ != nullptr) ctx_->response_metadata().merge(md);
  }
  if (m.payload.size() > kMaxStatusMessage) {
    return absl::DataLossError("stream: status message too long");
  }
  absl::Status status;
  if (m.header.status_code != 0) {
    status = absl::Status(static_cast<absl::StatusCode>(m.header.status_code),
                          m.payload);
  }
  EndLocked(status, /*by_server=*/true, todo);
  return absl::OkStatus();
}

absl::Status LocalClientStream::OnWindowLocked(IncomingMessage& m,
                                               Todo* todo) {
  absl::StatusOr<WindowBody> w = DecodeWindowBody(m.payload);
  if (!w.ok()) return w.status();
  if (w->kind == kWindowAnnounce) {
    if (announced_ || w->messages == 0 || w->bytes == 0) {
      return absl::DataLossError("stream: bad window announcement");
    }
    announced_ = true;
    out_window_.messages = w->messages;
    out_window_.bytes = static_cast<size_t>(w->bytes);
  } else {
    if (w->messages > outstanding_messages_ || w->bytes > outstanding_bytes_) {
      return absl::DataLossError("stream: credits for messages not sent");
    }
    outstanding_messages_ -= w->messages;
    outstanding_bytes_ -= w->bytes;
  }
  if (held_write_.has_value() && FitsLocked(held_write_->size())) {
    // Sent by the pump, outside the leader's locks.
    ++outstanding_messages_;
    outstanding_bytes_ += held_write_->size();
    send_deferred_ = true;
    std::string bytes = std::move(*held_write_);
    held_write_.reset();
    WriteCallback done = std::move(held_done_);
    held_done_ = nullptr;
    std::shared_ptr<LocalClientStream> self = shared_from_this();
    todo->push_back([self, bytes = std::move(bytes),
                     done = std::move(done)]() mutable {
      self->conn_->Defer([self, bytes = std::move(bytes),
                          done = std::move(done)]() mutable {
        self->SendHeld(std::move(bytes), std::move(done));
      });
    });
  }
  return absl::OkStatus();
}

}  // namespace lpc::local::internal
