// See client_stream.h.
//
// The reactor (StreamCore) lives until gRPC's OnDone; the handle the caller
// holds (GrpcClientStream) cancels the call when dropped early. gRPC's
// operations are issued by one "pump" at a time with no lock held, and a
// hold on the reactor keeps OnDone back while the pump may still start
// operations: it is removed once the server's messages ended (a failed
// read) or the call was cancelled from this side, after which nothing is
// started any more.
#include "transports/grpc/internal/client_stream.h"

#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/client_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/mutex.h"
#include "transports/grpc/internal/client_call.h"
#include "transports/grpc/mapping.h"

namespace lpc::grpc_transport {
namespace {

StreamWindow AtLeastOneMessage(StreamWindow w) {
  if (w.messages == 0) w.messages = 1;
  return w;
}

class StreamCore final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCore(std::shared_ptr<GrpcChannel::CallTracker> tracker,
             const ChannelOptions& options, CallContext* ctx)
      : token_(std::make_unique<CallToken>(std::move(tracker),
                                           ctx->deadline())),
        grpc_ctx_(std::make_unique<grpc::ClientContext>()),
        ctx_(ctx),
        deadline_(ctx->deadline()),
        window_(AtLeastOneMessage(options.stream_window)),
        max_message_size_(options.max_message_size) {}

  // Before Start only, on the opening thread.
  grpc::ClientContext& grpc_ctx() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return *grpc_ctx_;
  }

  // Starts the call; `self` keeps the core alive until OnDone.
  // On the opening thread, before anything else can run.
  void Start(std::shared_ptr<StreamCore> self, grpc::GenericStub& stub,
             const std::string& path) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::weak_ptr<StreamCore> weak = self;
    {
      MutexLock lock(&mu_);
      self_ = std::move(self);
    }
    stub.PrepareBidiStreamingCall(grpc_ctx_.get(), path, grpc::StubOptions(),
                                  this);
    AddHold();
    StartCall();
    // The caller's thread: the context is alive, and only Abandon (on the
    // caller's side too) clears it. A plain cancel callback, which also
    // runs when the deadline passes: a stream whose reads are held back by
    // its window has no gRPC operation outstanding to notice the deadline,
    // and the hold keeps OnDone back until something starts one.
    CallContext* ctx;
    {
      MutexLock lock(&mu_);
      ctx = ctx_;
    }
    uint64_t handle = ctx->AddCancelCallback([weak] {
      if (std::shared_ptr<StreamCore> core = weak.lock()) {
        core->CancelLocally(absl::OkStatus());
      }
    });
    {
      MutexLock lock(&mu_);
      cancel_handle_ = handle;
    }
    Pump();
  }

  // The handle went away: cancel if still running, and never touch the
  // caller's context again.
  void Abandon() {
    uint64_t handle;
    CallContext* ctx;
    {
      MutexLock lock(&mu_);
      handle = cancel_handle_;
      cancel_handle_ = 0;
      ctx = ctx_;
    }
    // Outside the lock: it waits for a running cancel callback, which
    // takes the lock.
    if (handle != 0) ctx->RemoveCancelCallback(handle);
    {
      MutexLock lock(&mu_);
      ctx_ = nullptr;
    }
    CancelLocally(absl::CancelledError("the stream was dropped"));
  }

  void Write(std::string message, WriteCallback done) {
    absl::Status refused;
    {
      MutexLock lock(&mu_);
      if (done_) {
        refused = final_status_.ok()
                      ? absl::FailedPreconditionError("the call has ended")
                      : final_status_;
      } else if (writes_done_wanted_) {
        refused = absl::FailedPreconditionError("Write after WritesDone");
      } else if (write_failed_ || cancel_wanted_) {
        refused = EndingStatusLocked();
      } else if (queued_write_) {
        refused =
            absl::FailedPreconditionError("a Write is already outstanding");
      } else if (message.size() > max_message_size_) {
        refused = absl::ResourceExhaustedError(absl::StrCat(
            "message of ", message.size(),
            " bytes exceeds the maximum message size of ", max_message_size_,
            " bytes"));
      } else {
        queued_write_ = PendingWrite{std::move(message), std::move(done)};
        done = nullptr;
      }
    }
    if (done) {
      if (refused.code() == absl::StatusCode::kResourceExhausted) {
        CancelLocally(refused);
      }
      done(refused);
    }
    Pump();
  }

  void WritesDone() {
    {
      MutexLock lock(&mu_);
      writes_done_wanted_ = true;
    }
    Pump();
  }

  void Read(ReadCallback done) {
    absl::StatusOr<std::optional<std::string>> result;
    {
      MutexLock lock(&mu_);
      if (!buffered_.empty()) {
        buffered_bytes_ -= buffered_.front().size();
        result = std::move(buffered_.front());
        buffered_.pop_front();
      } else if (done_) {
        result = ReadEndLocked();
      } else if (pending_read_) {
        result =
            absl::FailedPreconditionError("a Read is already outstanding");
      } else {
        pending_read_ = std::move(done);
        done = nullptr;
      }
    }
    if (done) done(std::move(result));
    Pump();
  }

  void Finish(FinishCallback done) {
    absl::Status status;
    {
      MutexLock lock(&mu_);
      if (done_) {
        status = final_status_;
      } else {
        finish_waiters_.push_back(std::move(done));
        finish_requested_ = true;
        done = nullptr;
      }
    }
    if (done) done(status);
    Pump();
  }

  // Ends the call from this side; `status` (if not OK) becomes its final
  // status, otherwise the context's cancellation decides it.
  void CancelLocally(const absl::Status& status) {
    {
      MutexLock lock(&mu_);
      if (done_ || cancel_wanted_) return;
      cancel_wanted_ = true;
      local_status_ = status;
    }
    Pump();
  }

  // gRPC reactions.
  void OnReadDone(bool ok) override {
    CallbackScope scope;
    std::string message;
    absl::Status converted;
    if (ok) converted = FromByteBuffer(read_buf_, &message);
    read_buf_.Clear();
    ReadCallback deliver;
    absl::Status failed;
    {
      MutexLock lock(&mu_);
      read_in_flight_ = false;
      if (!ok) {
        reads_ended_ = true;  // The pending read is answered by OnDone.
      } else if (!converted.ok()) {
        failed = converted;
      } else if (message.size() > max_message_size_) {
        failed = absl::ResourceExhaustedError(absl::StrCat(
            "server message of ", message.size(),
            " bytes exceeds the maximum message size of ", max_message_size_,
            " bytes"));
      } else {
        if (!initial_metadata_copied_ && ctx_ != nullptr) {
          initial_metadata_copied_ = true;
          CopyResponseMetadata(grpc_ctx_->GetServerInitialMetadata(),
                               &ctx_->response_metadata());
        }
        if (pending_read_) {
          deliver = std::move(pending_read_);
          pending_read_ = nullptr;
        } else if (finish_requested_ && !WindowOpenLocked()) {
          // The caller asked for the status, not for more messages: ones
          // beyond the window are dropped so that the status can arrive.
        } else {
          buffered_bytes_ += message.size();
          buffered_.push_back(std::move(message));
        }
      }
    }
    if (!failed.ok()) CancelLocally(failed);
    if (deliver) deliver(std::move(message));
    Pump();
  }

  void OnWriteDone(bool ok) override {
    CallbackScope scope;
    WriteCallback failed;
    absl::Status status;
    {
      MutexLock lock(&mu_);
      write_in_flight_ = false;
      write_buf_.Clear();
      if (!ok) {
        write_failed_ = true;
        if (queued_write_) {
          failed = std::move(queued_write_->done);
          queued_write_.reset();
          status = EndingStatusLocked();
        }
      }
    }
    if (failed) failed(status);
    Pump();
  }

  void OnWritesDoneDone(bool) override {
    CallbackScope scope;
    Pump();
  }

  void OnDone(const grpc::Status& grpc_status) override {
    CallbackScope scope;
    ReadCallback read;
    absl::StatusOr<std::optional<std::string>> read_result;
    WriteCallback write;
    std::vector<FinishCallback> waiters;
    absl::Status status;
    std::shared_ptr<StreamCore> self;
    // Destroyed in reverse order: the gRPC context, then the token.
    std::unique_ptr<CallToken> token;
    std::unique_ptr<grpc::ClientContext> grpc_ctx;
    {
      MutexLock lock(&mu_);
      done_ = true;
      if (!local_status_.ok()) {
        status = local_status_;
      } else if (ctx_ != nullptr && ctx_->WasCancelledExplicitly()) {
        status = absl::CancelledError("call cancelled");
      } else if (!grpc_status.ok() && absl::Now() >= deadline_) {
        status = absl::DeadlineExceededError("deadline exceeded");
      } else {
        status = FromGrpcStatus(grpc_status);
      }
      final_status_ = status;
      if (ctx_ != nullptr) {
        if (!initial_metadata_copied_) {
          CopyResponseMetadata(grpc_ctx_->GetServerInitialMetadata(),
                               &ctx_->response_metadata());
        }
        CopyResponseMetadata(grpc_ctx_->GetServerTrailingMetadata(),
                             &ctx_->response_metadata());
      }
      initial_metadata_copied_ = true;
      if (pending_read_ && buffered_.empty()) {
        read = std::move(pending_read_);
        pending_read_ = nullptr;
        read_result = ReadEndLocked();
      }
      if (queued_write_) {
        write = std::move(queued_write_->done);
        queued_write_.reset();
      }
      waiters.swap(finish_waiters_);
      self = std::move(self_);
      // Nothing uses the gRPC context after OnDone: the pump starts no
      // operation once the hold is gone, and gRPC calls nothing after this.
      token = std::move(token_);
      grpc_ctx = std::move(grpc_ctx_);
    }
    if (read) read(std::move(read_result));
    if (write) {
      write(status.ok() ? absl::FailedPreconditionError("the call has ended")
                        : status);
    }
    for (auto& w : waiters) w(status);
    // `self` goes last, inside the callback scope: it may end the core.
  }

 private:
  struct PendingWrite {
    std::string message;
    WriteCallback done;
  };

  bool WindowOpenLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return buffered_.size() < window_.messages &&
           buffered_bytes_ < window_.bytes;
  }

  bool ReadWantedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reads_ended_ || read_in_flight_) return false;
    return pending_read_ != nullptr || finish_requested_ || WindowOpenLocked();
  }

  // What a read returns once the call is over: end of stream if it ended
  // well, else why it did not.
  absl::StatusOr<std::optional<std::string>> ReadEndLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (final_status_.ok()) return std::nullopt;
    return final_status_;
  }

  // Why a write fails while the call is ending and its status is not known
  // yet.
  absl::Status EndingStatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!local_status_.ok()) return local_status_;
    return absl::AbortedError(
        "the call ended before the message was sent; Finish gives its status");
  }

  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    if (pumping_) {
      repump_ = true;
      mu_.Unlock();
      return;
    }
    pumping_ = true;
    while (true) {
      repump_ = false;
      bool do_read = false, do_write = false, do_writes_done = false;
      bool do_cancel = false, do_release = false;
      grpc::ClientContext* cancel_ctx = nullptr;
      WriteCallback write_done;
      if (!hold_released_) {
        if (cancel_wanted_ && !cancel_sent_) {
          cancel_sent_ = true;
          do_cancel = true;
          // Alive until OnDone, which waits for the hold released below.
          cancel_ctx = grpc_ctx_.get();
        }
        if (!cancel_sent_) {
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
          } else if (writes_done_wanted_ && !writes_done_sent_ &&
                     !write_in_flight_ && !queued_write_ && !write_failed_) {
            writes_done_sent_ = true;
            do_writes_done = true;
          }
        }
        if (reads_ended_ || cancel_sent_) {
          hold_released_ = true;
          do_release = true;
        }
      }
      mu_.Unlock();
      if (do_cancel) cancel_ctx->TryCancel();
      if (do_read) StartRead(&read_buf_);
      if (do_write) {
        StartWrite(&write_buf_);
        if (write_done) write_done(absl::OkStatus());
        // Destroyed before mu_ is taken again: it may hold the last
        // reference to a handle whose destructor takes mu_.
        write_done = nullptr;
      }
      if (do_writes_done) StartWritesDone();
      // From here on gRPC may run OnDone at any time.
      if (do_release) RemoveHold();
      mu_.Lock();
      if (!repump_) break;
    }
    pumping_ = false;
    mu_.Unlock();
  }

  // Both released at OnDone, the context first (it holds a reference to the
  // gRPC channel), so that a finished stream whose handle is still held does
  // not count as a call in flight for its channel.
  std::unique_ptr<CallToken> token_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::ClientContext> grpc_ctx_ ABSL_GUARDED_BY(mu_);
  Mutex mu_;
  uint64_t cancel_handle_ ABSL_GUARDED_BY(mu_) = 0;
  // The caller's context, until the handle is dropped.
  CallContext* ctx_ ABSL_GUARDED_BY(mu_);
  const absl::Time deadline_;
  const StreamWindow window_;
  const size_t max_message_size_;
  std::shared_ptr<StreamCore> self_ ABSL_GUARDED_BY(mu_);
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool repump_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  // Read side.
  std::list<std::string> buffered_ ABSL_GUARDED_BY(mu_);
  size_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool initial_metadata_copied_ ABSL_GUARDED_BY(mu_) = false;
  ReadCallback pending_read_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer read_buf_;  // Owned by the read in flight.
  // Write side.
  std::optional<PendingWrite> queued_write_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_sent_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer write_buf_;  // Owned by the write in flight.
  // Ending.
  bool cancel_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_sent_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status local_status_ ABSL_GUARDED_BY(mu_);
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<FinishCallback> finish_waiters_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// What the caller holds. Dropping it before the call ended cancels it.
class GrpcClientStream final : public ClientStream {
 public:
  GrpcClientStream(std::shared_ptr<StreamCore> core, CallContext* ctx)
      : core_(std::move(core)), ctx_(ctx) {}
  ~GrpcClientStream() override { core_->Abandon(); }

  CallContext& context() override { return *ctx_; }
  void Write(std::string message, WriteCallback done) override {
    core_->Write(std::move(message), std::move(done));
  }
  void WritesDone() override { core_->WritesDone(); }
  void Read(ReadCallback done) override { core_->Read(std::move(done)); }
  void Finish(FinishCallback done) override { core_->Finish(std::move(done)); }

 private:
  const std::shared_ptr<StreamCore> core_;
  CallContext* const ctx_;
};

}  // namespace


std::shared_ptr<ClientStream> OpenGrpcStream(
    std::shared_ptr<grpc::Channel> channel,
    std::shared_ptr<GrpcChannel::CallTracker> tracker,
    const ChannelOptions& options, const InterfaceDescriptor& iface,
    const MethodDescriptor& method, CallContext* ctx) {
  const std::string lease = tracker->lease;
  auto core = std::make_shared<StreamCore>(std::move(tracker), options, ctx);
  absl::Status s = SetUpContext(iface, *ctx, lease, &core->grpc_ctx());
  if (!s.ok()) return MakeEndedClientStream(ctx, std::move(s));
  grpc::GenericStub stub(std::move(channel));
  core->Start(core, stub, iface.MethodPath(method));
  return std::make_shared<GrpcClientStream>(std::move(core), ctx);
}

}  // namespace lpc::grpc_transport
