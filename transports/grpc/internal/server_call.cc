// See server_call.h.
#include "transports/grpc/internal/server_call.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "transports/grpc/mapping.h"

namespace lpc::grpc_transport {

void ServerCall::StartStream(const StreamWindow& window,
                             size_t max_message_size) {
  {
    MutexLock lock(&mu_);
    window_ = window;
    if (window_.messages == 0) window_.messages = 1;
    max_message_size_ = max_message_size;
    if (method->descriptor->client_streams()) {
      reading_ahead_ = true;
    } else if (!ended_) {
      // The one request, already read; the client sends nothing more.
      std::string message;
      absl::Status s = FromByteBuffer(request, &message);
      request.Clear();
      if (!s.ok()) {
        std::vector<ReadCallback> reads;
        std::vector<WriteCallback> writes;
        EndLocked(s, s, &reads, &writes);
      } else {
        buffered_bytes_ = message.size();
        buffered_.push_back(std::move(message));
      }
      input_ended_ = true;
    }
  }
  Pump();
}

void ServerCall::SetDeadline(absl::Time deadline) {
  ctx.set_deadline(deadline);
  if (deadline == absl::InfiniteFuture()) return;
  // The client gives up at its own deadline, which comes before this one
  // by gRPC's rounding of the timeout (up to about 1%) and the request's
  // transit: its cancel that close to the deadline is the deadline.
  const absl::Duration timeout = deadline - absl::Now();
  expiry_from_ = deadline - (absl::Milliseconds(10) + timeout / 100);
}

bool ServerCall::DeadlinePassed() const {
  return absl::Now() >= expiry_from_;
}

void ServerCall::EndContext(bool deadline_passed) {
  if (deadline_passed) {
    ::lpc::internal::CallContextAccess::ExpireNow(ctx);
  } else {
    ctx.Cancel();
  }
}

absl::Status ServerCall::AnswerFor(absl::Status status) const {
  if (ctx.has_deadline() && absl::Now() >= ctx.deadline()) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return status;
}

absl::Status ServerCall::EndedStatus() const {
  return EndedStatus(DeadlinePassed());
}

absl::Status ServerCall::EndedStatus(bool deadline_passed) {
  if (deadline_passed) return absl::DeadlineExceededError("deadline exceeded");
  return absl::CancelledError("the client cancelled the call or went away");
}

void ServerCall::EndLocked(const absl::Status& ops_status,
                           const absl::Status& finish_status,
                           std::vector<ReadCallback>* reads,
                           std::vector<WriteCallback>* writes) {
  if (!ended_) {
    ended_ = true;
    ops_status_ = ops_status;
    finish_status_ = finish_status;
    finished.store(true);
  }
  buffered_.clear();
  buffered_bytes_ = 0;
  if (pending_read_) reads->push_back(std::move(pending_read_));
  pending_read_ = nullptr;
  if (queued_write_) writes->push_back(std::move(queued_write_->done));
  queued_write_.reset();
}

bool ServerCall::ReadWantedLocked() const {
  if (!reading_ahead_ || ended_ || input_ended_ || read_in_flight_ ||
      finish_sent_) {
    return false;
  }
  if (pending_read_) return true;
  return buffered_.size() < window_.messages &&
         buffered_bytes_ < window_.bytes;
}

std::vector<std::pair<std::string, std::string>> SendableResponseMetadata(
    const CallContext& ctx) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : ctx.response_metadata()) {
    if (IsReservedMetadataKey(key)) continue;
    absl::Status valid = ValidateMetadataEntry(key, value);
    if (!valid.ok()) {
      fprintf(stderr, "lpc grpc: %s: dropping response metadata: %s\n",
              ctx.method_path().c_str(), std::string(valid.message()).c_str());
      continue;
    }
    out.emplace_back(key, value);
  }
  return out;
}

void ServerCall::SnapshotMetadataLocked() {
  metadata_taken_ = true;
  metadata_ = SendableResponseMetadata(ctx);
}

void ServerCall::Pump() {
  mu_.Lock();
  if (pumping_) {
    repump_ = true;
    mu_.Unlock();
    return;
  }
  pumping_ = true;
  while (true) {
    repump_ = false;
    bool do_read = false;
    bool do_write = false;
    bool do_finish = false;
    bool metadata_initial = false;
    std::vector<std::pair<std::string, std::string>> metadata;
    WriteCallback write_done;
    grpc::Status finish_status;
    if (!finish_sent_) {
      if (ReadWantedLocked()) {
        read_in_flight_ = true;
        do_read = true;
      }
      if (queued_write_ && !write_in_flight_ && !write_failed_) {
        write_buf_ = ToByteBuffer(std::move(queued_write_->message));
        write_done = std::move(queued_write_->done);
        queued_write_.reset();
        write_in_flight_ = true;
        do_write = true;
        if (!metadata_sent_) {
          metadata_sent_ = true;
          metadata_initial = true;
          metadata.swap(metadata_);
        }
      } else if (ended_ && !write_in_flight_ && !queued_write_) {
        finish_sent_ = true;
        do_finish = true;
        finish_status = ToGrpcStatus(finish_status_);
        if (!metadata_sent_) {
          metadata_sent_ = true;
          metadata.swap(metadata_);
        }
      }
    }
    mu_.Unlock();
    if (do_read) reactor_->StartRead(&read_buf_);
    if (do_write) {
      if (metadata_initial) {
        for (auto& [k, v] : metadata) grpc_ctx_->AddInitialMetadata(k, v);
      }
      reactor_->StartWrite(&write_buf_);
      if (write_done) write_done(absl::OkStatus());
      // Destroyed before mu_ is taken again: it may hold the last reference
      // to the handler's call, whose destructor finishes it (takes mu_).
      write_done = nullptr;
    }
    if (do_finish) {
      for (auto& [k, v] : metadata) grpc_ctx_->AddTrailingMetadata(k, v);
      owner_->OnAnswered();
      // From here on gRPC may run OnDone and delete the reactor.
      reactor_->Finish(std::move(finish_status));
    }
    mu_.Lock();
    if (!repump_) break;
  }
  pumping_ = false;
  mu_.Unlock();
}

void ServerCall::Read(ReadCallback done) {
  absl::StatusOr<std::optional<std::string>> result;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      result = ops_status_;
    } else if (!buffered_.empty()) {
      buffered_bytes_ -= buffered_.front().size();
      result = std::move(buffered_.front());
      buffered_.pop_front();
    } else if (input_ended_) {
      result = std::nullopt;
    } else if (pending_read_) {
      result = absl::FailedPreconditionError("a Read is already outstanding");
    } else {
      pending_read_ = std::move(done);
      done = nullptr;
    }
  }
  if (done) done(std::move(result));
  Pump();
}

void ServerCall::OnStreamReadDone(bool ok) {
  std::string message;
  absl::Status converted;
  if (ok) converted = FromByteBuffer(read_buf_, &message);
  read_buf_.Clear();
  // A failed read is the client's half-close, or the call's end.
  const bool cancelled = !ok && grpc_ctx_->IsCancelled();
  const bool expired = cancelled && DeadlinePassed();
  ReadCallback deliver;
  absl::StatusOr<std::optional<std::string>> value;
  std::vector<ReadCallback> reads;
  std::vector<WriteCallback> writes;
  absl::Status failed;
  {
    MutexLock lock(&mu_);
    read_in_flight_ = false;
    if (ended_) {
      // Dropped: the call is over.
    } else if (cancelled) {
      failed = EndedStatus(expired);
      EndLocked(failed, failed, &reads, &writes);
    } else if (!ok) {
      input_ended_ = true;
      if (pending_read_) {
        deliver = std::move(pending_read_);
        pending_read_ = nullptr;
        value = std::nullopt;
      }
    } else if (!converted.ok()) {
      failed = converted;
      EndLocked(failed, failed, &reads, &writes);
    } else if (pending_read_) {
      deliver = std::move(pending_read_);
      pending_read_ = nullptr;
      value = std::move(message);
    } else {
      buffered_bytes_ += message.size();
      buffered_.push_back(std::move(message));
    }
  }
  if (cancelled) EndContext(expired);
  if (deliver) deliver(std::move(value));
  for (auto& r : reads) r(failed);
  for (auto& w : writes) w(failed);
  Pump();
}

void ServerCall::Write(std::string message, WriteCallback done) {
  absl::Status refused;
  std::vector<ReadCallback> reads;
  std::vector<WriteCallback> writes;
  {
    MutexLock lock(&mu_);
    if (ended_) {
      refused = ops_status_;
    } else if (write_failed_) {
      refused = EndedStatus();
    } else if (queued_write_) {
      refused = absl::FailedPreconditionError("a Write is already outstanding");
    } else if (message.size() > max_message_size_) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "reply message of ", message.size(),
          " bytes exceeds the server's maximum message size of ",
          max_message_size_, " bytes"));
      EndLocked(refused, refused, &reads, &writes);
    } else {
      if (!metadata_taken_) SnapshotMetadataLocked();
      queued_write_ = PendingWrite{std::move(message), std::move(done)};
      done = nullptr;
    }
  }
  if (done) done(refused);
  for (auto& r : reads) r(refused);
  for (auto& w : writes) w(refused);
  Pump();
}

void ServerCall::OnWriteDone(bool ok) {
  {
    MutexLock lock(&mu_);
    write_in_flight_ = false;
    write_buf_.Clear();
    if (!ok) write_failed_ = true;
  }
  // A server write fails only when the call is dead (cancelled, past its
  // deadline, connection lost), possibly a moment before gRPC's OnCancel:
  // end it the same way now, so that the handler sees its context
  // cancelled before its operations fail.
  if (!ok) return OnCancel();
  Pump();
}

void ServerCall::Finish(absl::Status status) {
  std::vector<ReadCallback> reads;
  absl::Status ops_status =
      absl::FailedPreconditionError("the handler has finished the call");
  {
    MutexLock lock(&mu_);
    if (ended_) return;
    if (!metadata_taken_) SnapshotMetadataLocked();
    ended_ = true;
    ops_status_ = ops_status;
    finish_status_ = AnswerFor(std::move(status));
    finished.store(true);
    buffered_.clear();
    buffered_bytes_ = 0;
    if (pending_read_) reads.push_back(std::move(pending_read_));
    pending_read_ = nullptr;
    // A queued write still goes out, before the status.
  }
  for (auto& r : reads) r(ops_status);
  Pump();
}

void ServerCall::OnCancel() {
  const bool expired = DeadlinePassed();
  const absl::Status status = EndedStatus(expired);
  std::vector<ReadCallback> reads;
  std::vector<WriteCallback> writes;
  {
    MutexLock lock(&mu_);
    EndLocked(status, status, &reads, &writes);
    // Operations after this fail with why the call ended, even if the
    // handler finished it first.
    ops_status_ = status;
  }
  // The handler sees the cancellation before its operations fail.
  EndContext(expired);
  for (auto& r : reads) r(status);
  for (auto& w : writes) w(status);
  Pump();
}

void ServerCall::Abort(const absl::Status& status) {
  std::vector<ReadCallback> reads;
  std::vector<WriteCallback> writes;
  {
    MutexLock lock(&mu_);
    EndLocked(status, status, &reads, &writes);
  }
  // The call has its answer, so the handler cannot answer instead; it sees
  // the cancellation before its operations fail.
  ctx.Cancel();
  for (auto& r : reads) r(status);
  for (auto& w : writes) w(status);
  Pump();
}

}  // namespace lpc::grpc_transport
