// The server side of the local transport's streams (server_streams.h).
#include "transports/local/internal/server_streams.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {

const char* StreamErrorReason(StreamError e) {
  switch (e) {
    case StreamError::kNone:
      return "none";
    case StreamError::kAfterHalfClose:
      return "message after half-close";
    case StreamError::kUnknownStream:
      return "unknown stream";
    case StreamError::kWindowExceeded:
      return "window exceeded";
    case StreamError::kBadWindowUpdate:
      return "bad window update";
    case StreamError::kBadOpen:
      return "bad stream open";
  }
  return "stream protocol error";
}

void StreamHost::Detach() {
  detached_.store(true, std::memory_order_seq_cst);
  while (users_.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
}

LocalServerStream::LocalServerStream(std::shared_ptr<Connection> conn,
                                     std::shared_ptr<StreamHost> host,
                                     const Config& config,
                                     std::unique_ptr<CallContext> ctx,
                                     CallRegistration registration)
    : conn_(std::move(conn)),
      host_(std::move(host)),
      config_(config),
      ctx_(std::move(ctx)),
      registration_(std::move(registration)) {}

LocalServerStream::~LocalServerStream() {
  Todo todo;
  absl::Status bad;
  {
    MutexLock lock(&mu_);
    if (!ended_) {
      finish_called_ = true;
      bad = FinishLocked(absl::InternalError("handler dropped the call"),
                         &todo);
    }
  }
  // (No cancel: nobody holds the context any more.)
  After(todo, bad, /*cancel_ctx=*/false);
}

void LocalServerStream::Arm() {
  std::weak_ptr<LocalServerStream> weak = weak_from_this();
  ctx_->AddCancelCallback([weak] {
    std::shared_ptr<LocalServerStream> s = weak.lock();
    if (s == nullptr) return;
    // The client cancelled or went away, the server shuts down, or the
    // handler cancelled its own context: the stream ends, and its final
    // status goes to a client that still listens.
    // (A cancel within a millisecond of the deadline is the client's
    // reaction to it: its clock and ours differ by the conversion.)
    const bool late =
        absl::Now() + absl::Milliseconds(1) >= s->ctx_->deadline();
    s->End(late ? absl::DeadlineExceededError("deadline exceeded")
                : absl::CancelledError("call cancelled"),
           /*send=*/true);
  });
}

void LocalServerStream::SetRequest(std::string request, ByteCharge charge) {
  MutexLock lock(&mu_);
  buffered_bytes_ += request.size();
  inbound_.push_back(Message{std::move(request), std::move(charge)});
  half_closed_ = true;
}

void LocalServerStream::After(Todo& todo, const absl::Status& bad,
                              bool cancel_ctx) {
  for (auto& fn : todo) fn();
  if (!bad.ok()) {
    host_->With([&](StreamOwner& o) { o.CutOffForStream(conn_, bad); });
  }
  if (cancel_ctx) ctx_->Cancel();
}

bool LocalServerStream::FitsLocked(uint64_t size) const {
  if (outstanding_messages_ >= config_.out_window.messages) return false;
  return outstanding_messages_ == 0 ||
         outstanding_bytes_ + size <= config_.out_window.bytes;
}

bool LocalServerStream::ReplyQueueLong() {
  MutexLock lock(&conn_->send_mu);
  return conn_->pending_replies.size() >= config_.hold_writes_at_queued;
}

absl::Status LocalServerStream::SendLocked(OwnedReply&& r) {
  absl::StatusOr<bool> sent =
      conn_->SendReply(std::move(r), config_.queue_limit);
  return sent.status();
}

absl::StatusOr<uint16_t> LocalServerStream::WithMetadataLocked(
    std::string* bytes) {
  if (metadata_sent_) return uint16_t{0};
  metadata_sent_ = true;
  if (!HasSendableMetadata(ctx_->response_metadata())) return uint16_t{0};
  std::string out;
  if (absl::Status s = EncodeMetadata(ctx_->response_metadata(), &out);
      !s.ok()) {
    return absl::InternalError(absl::StrCat(
        "the handler set invalid response metadata: ", s.message()));
  }
  out += *bytes;
  *bytes = std::move(out);
  return kFlagMetadata;
}

absl::Status LocalServerStream::SendMessageLocked(std::string bytes) {
  const uint64_t size = bytes.size();
  // Queued for a full reply ring, a stream's messages count against the
  // queued-reply budgets like replies; past them the stream ends.
  Budget* server =
      conn_->budgets == nullptr ? nullptr : &conn_->budgets->reply_bytes;
  if (size > kMaxBudgetFreeReply &&
      (conn_->reply_bytes.WouldExceed(size) ||
       (server != nullptr && server->WouldExceed(size)))) {
    return absl::ResourceExhaustedError(
        "stream message exceeds the server's queued-reply byte budget (the "
        "client reads too slowly)");
  }
  absl::StatusOr<uint16_t> flags = WithMetadataLocked(&bytes);
  if (!flags.ok()) return flags.status();
  ++outstanding_messages_;
  outstanding_bytes_ += size;
  return SendLocked(OwnedReply{MessageType::kStreamMessage, config_.id, 0, 0,
                               std::move(bytes), *flags});
}

absl::Status LocalServerStream::MaybeReturnCreditsLocked() {
  if (config_.unary || ended_ || unreturned_messages_ == 0) {
    return absl::OkStatus();
  }
  if (!inbound_.empty() &&
      uint64_t{unreturned_messages_} * 2 < config_.in_window.messages &&
      unreturned_bytes_ * 2 < config_.in_window.bytes) {
    return absl::OkStatus();
  }
  OwnedReply r{MessageType::kWindowUpdate, config_.id, 0, 0,
               EncodeWindowBody(kWindowCredits, unreturned_messages_,
                                unreturned_bytes_)};
  unreturned_messages_ = 0;
  unreturned_bytes_ = 0;
  return SendLocked(std::move(r));
}

void LocalServerStream::Read(ReadCallback done) {
  Todo todo;
  absl::Status bad;
  bool schedule = false;
  {
    MutexLock lock(&mu_);
    if (!inbound_.empty()) {
      Message m = std::move(inbound_.front());
      inbound_.pop_front();
      buffered_bytes_ -= m.bytes.size();
      ++unreturned_messages_;
      unreturned_bytes_ += m.bytes.size();
      bad = MaybeReturnCreditsLocked();
      // A drain held back by the request budget may go on now.
      schedule = conn_->budgets != nullptr &&
                 !MayRead(conn_->request_bytes, conn_->budgets->request_bytes);
      m.charge.Release();
      todo.push_back([done = std::move(done), bytes = std::move(m.bytes)]() mutable {
        done(std::optional<std::string>(std::move(bytes)));
      });
    } else if (half_closed_) {
      todo.push_back([done = std::move(done)] {
        done(std::optional<std::string>());
      });
    } else if (ended_) {
      todo.push_back([done = std::move(done), s = end_status_] { done(s); });
    } else if (pending_read_) {
      todo.push_back([done = std::move(done)] {
        done(absl::FailedPreconditionError("a Read is already outstanding"));
      });
    } else {
      pending_read_ = std::move(done);
    }
  }
  After(todo, bad, false);
  if (schedule) {
    host_->With([&](StreamOwner& o) { o.ScheduleForStream(conn_); });
  }
}

void LocalServerStream::Write(std::string message, WriteCallback done) {
  Todo todo;
  absl::Status bad;
  bool cancel = false;
  {
    MutexLock lock(&mu_);
    absl::Status refuse;
    if (ended_) {
      refuse = end_status_;
    } else if (finish_called_) {
      refuse = absl::FailedPreconditionError("Write after Finish");
    } else if (held_write_.has_value()) {
      refuse = absl::FailedPreconditionError("a Write is already outstanding");
    } else if (message.size() > config_.max_message_size) {
      refuse = absl::ResourceExhaustedError(absl::StrCat(
          "message of ", message.size(),
          " bytes exceeds the server's maximum message size of ",
          config_.max_message_size, " bytes"));
      // The call ends with it, as on every transport.
      cancel = true;
      FinishLocked(refuse, &todo).IgnoreError();
    } else if (config_.unary && reply_.has_value()) {
      refuse = absl::FailedPreconditionError("a unary call has one reply");
    }
    if (!refuse.ok()) {
      todo.push_back([done = std::move(done), refuse] { done(refuse); });
    } else if (config_.unary) {
      reply_ = std::move(message);
      todo.push_back([done = std::move(done)] { done(absl::OkStatus()); });
    } else if (!FitsLocked(message.size()) || ReplyQueueLong()) {
      held_write_ = std::move(message);  // Sent when credits come back.
      held_done_ = std::move(done);
    } else {
      absl::Status s = SendMessageLocked(std::move(message));
      if (absl::IsResourceExhausted(s) || absl::IsInternal(s)) {
        cancel = true;
        FinishLocked(s, &todo).IgnoreError();
      } else if (!s.ok()) {
        bad = s;
      }
      todo.push_back([done = std::move(done), s] { done(s); });
    }
  }
  After(todo, bad, cancel);
}

void LocalServerStream::Finish(absl::Status status) {
  Todo todo;
  absl::Status bad;
  {
    MutexLock lock(&mu_);
    if (ended_ || finish_called_) return;
    finish_called_ = true;
    if (held_write_.has_value()) {
      held_finish_ = std::move(status);  // After the held-back message.
      return;
    }
    bad = FinishLocked(status, &todo);
  }
  After(todo, bad, false);
}

absl::Status LocalServerStream::FinishLocked(const absl::Status& status,
                                             Todo* todo) {
  absl::Status final_status = status;
  std::string payload;
  // A unary call's handle tables (docs/local-transport.md, "Handles"): the
  // request's leftovers and a reply table that does not go close on the
  // closer's thread; a failed reference check cuts the client off.
  std::vector<UniqueFd> reply_handles;
  if (config_.unary) {
    std::vector<UniqueFd> left = TakeRequestHandles(*ctx_);
    FdCloser::Get().Close(left);
    reply_handles = TakeReplyHandles(*ctx_);
    if (std::optional<HandleError> e = HandleProtocolErrorOf(status)) {
      FdCloser::Get().Close(reply_handles);
      EndLocked(status, todo);
      return MakeHandleError(*e, config_.id, std::string(status.message()));
    }
    if (status.ok() && reply_handles.size() > config_.max_handles) {
      final_status = absl::InternalError(absl::StrCat(
          "the handler's reply carries ", reply_handles.size(),
          " descriptors, more than max_handles_per_message (",
          config_.max_handles, ")"));
    }
  }
  if (config_.unary && final_status.ok()) {
    if (reply_.has_value()) {
      payload = std::move(*reply_);
    } else {
      final_status = absl::InternalError("the handler finished without a reply");
    }
  }
  if (!final_status.ok()) {
    payload = std::string(final_status.message().substr(0, 1024));
    FdCloser::Get().Close(reply_handles);
  }
  absl::StatusOr<uint16_t> flags = WithMetadataLocked(&payload);
  if (!flags.ok()) {
    final_status = flags.status();
    payload = std::string(final_status.message());
    flags = uint16_t{0};
  }
  if (EndLocked(final_status.ok() ? absl::FailedPreconditionError(
                                        "the call has finished")
                                  : final_status,
                todo)) {
    FdCloser::Get().Close(reply_handles);
    return absl::OkStatus();  // Shutdown answered it.
  }
  OwnedReply r{config_.unary ? MessageType::kReply : MessageType::kStreamFinish,
               config_.id, static_cast<uint32_t>(final_status.code()), 0,
               std::move(payload), *flags};
  r.handles = std::move(reply_handles);
  return SendLocked(std::move(r));
}

bool LocalServerStream::EndLocked(const absl::Status& why, Todo* todo) {
  ended_ = true;
  end_status_ = why;
  finish_called_ = true;
  inbound_.clear();  // Their budget goes back.
  buffered_bytes_ = 0;
  if (pending_read_) {
    todo->push_back([done = std::move(pending_read_), why] { done(why); });
    pending_read_ = nullptr;
  }
  if (held_write_.has_value()) {
    held_write_.reset();
    todo->push_back([done = std::move(held_done_), why] { done(why); });
    held_done_ = nullptr;
  }
  held_finish_.reset();
  conn_->streams.Remove(config_.id, this);
  const bool answered = conn_->Finish(config_.id, 0, /*oneway=*/false);
  registration_.Disarm();  // Erased just now.
  return answered;
}

void LocalServerStream::End(const absl::Status& why, bool send) {
  Todo todo;
  absl::Status bad;
  {
    MutexLock lock(&mu_);
    if (ended_) return;
    if (send) {
      // Buffered messages are dropped; a held-back write fails.
      bad = FinishLocked(why, &todo);
      // (FinishLocked recorded "finished" for an OK status; an ended
      // stream reports why it ended.)
      end_status_ = why;
    } else {
      EndLocked(why, &todo);
    }
  }
  // The context shows why first, so that a handler whose pending Read or
  // Write fails now finds it expired or cancelled. At the deadline it is
  // marked expired, not cancelled: the handler and its children see a
  // deadline.
  if (absl::IsDeadlineExceeded(why)) {
    ::lpc::internal::CallContextAccess::ExpireNow(*ctx_);
  } else {
    ctx_->Cancel();
  }
  After(todo, bad, /*cancel_ctx=*/false);
}

void LocalServerStream::Poll(absl::Time now) {
  if (now >= ctx_->deadline()) {
    End(absl::DeadlineExceededError("deadline exceeded"), /*send=*/true);
    return;
  }
  Todo todo;
  absl::Status bad;
  {
    MutexLock lock(&mu_);
    if (ended_ || !held_write_.has_value()) return;
    bad = FlushHeldLocked(&todo);
  }
  After(todo, bad, false);
}

absl::Status LocalServerStream::FlushHeldLocked(Todo* todo) {
  if (ended_ || !held_write_.has_value() ||
      !FitsLocked(held_write_->size()) || ReplyQueueLong()) {
    return absl::OkStatus();
  }
  std::string bytes = std::move(*held_write_);
  held_write_.reset();
  WriteCallback done = std::move(held_done_);
  held_done_ = nullptr;
  absl::Status s = SendMessageLocked(std::move(bytes));
  absl::Status bad;
  if (absl::IsResourceExhausted(s) || absl::IsInternal(s)) {
    FinishLocked(s, todo).IgnoreError();
  } else if (!s.ok()) {
    bad = s;
  }
  todo->push_back([done = std::move(done), s] { done(s); });
  if (bad.ok() && !ended_ && held_finish_.has_value()) {
    const absl::Status f = *held_finish_;
    held_finish_.reset();
    bad = FinishLocked(f, todo);
  }
  return bad;
}

StreamError LocalServerStream::OnMessage(IncomingMessage& msg) {
  Todo todo;
  absl::Status bad;
  bool cancel = false;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      host_->dropped_records.fetch_add(1, std::memory_order_relaxed);
      return StreamError::kNone;
    }
    if (half_closed_) return StreamError::kAfterHalfClose;
    const uint64_t size = msg.header.payload_length;
    // The receiver's rule: what it buffers never passes its window.
    const size_t buffered = inbound_.size();
    if (buffered >= config_.in_window.messages ||
        (buffered != 0 && buffered_bytes_ + size > config_.in_window.bytes)) {
      return StreamError::kWindowExceeded;
    }
    if (msg.oversized) {
      const absl::Status s = absl::ResourceExhaustedError(
          msg.over_budget
              ? absl::StrCat("stream message of ", size,
                             " bytes refused: the server's request byte "
                             "budget is used up")
              : absl::StrCat("stream message of ", size,
                             " bytes exceeds the server's maximum message "
                             "size of ",
                             config_.max_message_size, " bytes"));
      cancel = true;
      bad = FinishLocked(s, &todo);
      end_status_ = s;
    } else if (pending_read_) {
      // Taken at once: it counts as read.
      ++unreturned_messages_;
      unreturned_bytes_ += size;
      todo.push_back([done = std::move(pending_read_),
                      bytes = std::move(msg.payload)]() mutable {
        done(std::optional<std::string>(std::move(bytes)));
      });
      pending_read_ = nullptr;
      bad = MaybeReturnCreditsLocked();
    } else {
      Budget* server =
          conn_->budgets == nullptr ? nullptr : &conn_->budgets->request_bytes;
      ByteCharge charge(&conn_->request_bytes, server, msg.payload.capacity());
      buffered_bytes_ += size;
      inbound_.push_back(Message{std::move(msg.payload), std::move(charge)});
    }
  }
  After(todo, bad, cancel);
  return StreamError::kNone;
}

StreamError LocalServerStream::OnHalfClose() {
  Todo todo;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      host_->dropped_records.fetch_add(1, std::memory_order_relaxed);
      return StreamError::kNone;
    }
    if (half_closed_) return StreamError::kAfterHalfClose;
    half_closed_ = true;
    if (pending_read_ && inbound_.empty()) {
      todo.push_back([done = std::move(pending_read_)] {
        done(std::optional<std::string>());
      });
      pending_read_ = nullptr;
    }
  }
  After(todo, absl::OkStatus(), false);
  return StreamError::kNone;
}

StreamError LocalServerStream::OnWindowUpdate(const WindowBody& w) {
  Todo todo;
  absl::Status bad;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      host_->dropped_records.fetch_add(1, std::memory_order_relaxed);
      return StreamError::kNone;
    }
    if (w.kind != kWindowCredits || w.messages > outstanding_messages_ ||
        w.bytes > outstanding_bytes_) {
      return StreamError::kBadWindowUpdate;
    }
    outstanding_messages_ -= w.messages;
    outstanding_bytes_ -= w.bytes;
    bad = FlushHeldLocked(&todo);
  }
  After(todo, bad, false);
  return StreamError::kNone;
}

}  // namespace lpc::local::internal
