// StreamCore: both flows of one in-process call, their windows, its end.
#include "runtime/internal/inprocess_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/internal/call_context_access.h"

namespace lpc::inprocess_internal {

using ::lpc::internal::CallContextAccess;

using ReadResult = absl::StatusOr<std::optional<std::string>>;

StreamCore::StreamCore(CallContext* client_ctx, const Limits& limits,
                       std::weak_ptr<StreamHost> host)
    : client_ctx_(client_ctx), limits_(limits), host_(std::move(host)) {}

StreamCore::~StreamCore() = default;

void StreamCore::WatchClientCancel() {
  std::weak_ptr<StreamCore> weak = weak_from_this();
  cancel_handle_ =
      CallContextAccess::AddTransportCancelCallback(*client_ctx_, [weak] {
        if (auto core = weak.lock()) {
          core->Abort(absl::CancelledError("call cancelled by the client"));
        }
      });
}

bool StreamCore::Fits(const Flow& flow, const StreamWindow& window) {
  if (flow.queue.size() <= 1) return true;  // Any one message fits.
  return flow.queue.size() <= std::max<uint32_t>(window.messages, 1) &&
         flow.bytes <= window.bytes;
}

std::string StreamCore::PopLocked(Flow& flow, const StreamWindow& window,
                                  Actions* actions) {
  std::string message = std::move(flow.queue.front());
  flow.queue.pop_front();
  flow.bytes -= message.size();
  if (flow.pending_write && Fits(flow, window)) {
    actions->push_back([w = std::move(flow.pending_write)] {
      w(absl::OkStatus());
    });
    flow.pending_write = nullptr;
  }
  return message;
}

void StreamCore::SendMetadataLocked() {
  if (metadata_sent_ || !client_attached_ || client_ctx_ == nullptr) return;
  metadata_sent_ = true;
  client_ctx_->response_metadata() = server_ctx_.response_metadata();
}

absl::Status StreamCore::EndedStatusLocked(bool server_side) const {
  if (aborted_) return *final_;
  if (server_side) return absl::FailedPreconditionError("the call is finished");
  if (final_->ok()) {
    return absl::FailedPreconditionError("the server finished the call");
  }
  return *final_;
}

void StreamCore::Read(ReadCallback done, bool server_side) {
  const StreamWindow& window = server_side ? limits_.client_to_server
                                           : limits_.server_to_client;
  Actions actions;
  std::optional<ReadResult> result;
  {
    MutexLock lock(&mu_);
    Flow& flow = server_side ? c2s_ : s2c_;
    if (aborted_) {
      result = ReadResult(*final_);
    } else if (!flow.queue.empty()) {
      result = ReadResult(PopLocked(flow, window, &actions));
    } else if (flow.closed) {
      result = ReadResult(std::nullopt);
    } else if (final_.has_value()) {  // The server reads after finishing.
      result = ReadResult(EndedStatusLocked(server_side));
    } else if (flow.pending_read) {
      result = ReadResult(
          absl::FailedPreconditionError("a Read is already outstanding"));
    } else {
      flow.pending_read = std::move(done);
    }
  }
  if (result.has_value()) {
    actions.push_back(
        [done = std::move(done), r = std::move(*result)]() mutable {
          done(std::move(r));
        });
  }
  RunCallbacks(std::move(actions));
}

void StreamCore::Write(std::string message, WriteCallback done,
                       bool server_side) {
  const StreamWindow& window = server_side ? limits_.server_to_client
                                           : limits_.client_to_server;
  const size_t limit =
      std::min(limits_.client_max_message, limits_.server_max_message);
  if (message.size() > limit) {
    absl::Status s = absl::ResourceExhaustedError(absl::StrCat(
        "stream message of ", message.size(), " bytes exceeds the ",
        limit == limits_.server_max_message ? "server's" : "client's",
        " maximum message size of ", limit, " bytes"));
    Abort(s);
    RunCallbacks({[done = std::move(done), s] { done(s); }});
    return;
  }
  Actions actions;
  std::optional<absl::Status> result;
  {
    MutexLock lock(&mu_);
    Flow& flow = server_side ? s2c_ : c2s_;
    if (final_.has_value()) {
      result = EndedStatusLocked(server_side);
    } else if (!server_side && flow.closed) {
      result = absl::FailedPreconditionError("Write after WritesDone");
    } else if (flow.pending_write) {
      result = absl::FailedPreconditionError("a Write is already outstanding");
    } else if (server_side && client_ctx_ == nullptr) {
      result = absl::OkStatus();  // Oneway: nobody reads.
    } else {
      if (server_side) SendMetadataLocked();
      if (flow.pending_read) {
        actions.push_back([r = std::move(flow.pending_read),
                           m = std::move(message)]() mutable {
          r(ReadResult(std::move(m)));
        });
        flow.pending_read = nullptr;
        result = absl::OkStatus();
      } else {
        flow.bytes += message.size();
        flow.queue.push_back(std::move(message));
        if (Fits(flow, window)) {
          result = absl::OkStatus();
        } else {
          flow.pending_write = std::move(done);
        }
      }
    }
  }
  if (result.has_value()) {
    actions.push_back([done = std::move(done), r = *result] { done(r); });
  }
  RunCallbacks(std::move(actions));
}

void StreamCore::ClientWrite(std::string message, WriteCallback done) {
  Write(std::move(message), std::move(done), /*server_side=*/false);
}

void StreamCore::ClientWritesDone() {
  ReadCallback reader;
  {
    MutexLock lock(&mu_);
    if (c2s_.closed || final_.has_value()) return;
    c2s_.closed = true;
    if (c2s_.queue.empty() && c2s_.pending_read) {
      reader = std::move(c2s_.pending_read);
      c2s_.pending_read = nullptr;
    }
  }
  if (reader) {
    RunCallbacks({[reader = std::move(reader)] {
      reader(ReadResult(std::nullopt));
    }});
  }
}

void StreamCore::ClientRead(ReadCallback done) {
  Read(std::move(done), /*server_side=*/false);
}

void StreamCore::ClientFinish(FinishCallback done) {
  std::optional<absl::Status> result;
  {
    MutexLock lock(&mu_);
    if (final_.has_value()) {
      result = *final_;
    } else {
      finish_waiters_.push_back(std::move(done));
    }
  }
  if (result.has_value()) {
    RunCallbacks({[done = std::move(done), r = *result] { done(r); }});
  }
}

void StreamCore::ClientGone() {
  {
    MutexLock lock(&mu_);
    client_attached_ = false;
  }
  if (cancel_handle_ != 0) client_ctx_->RemoveCancelCallback(cancel_handle_);
  Abort(absl::CancelledError("the client went away"));
}

void StreamCore::ServerRead(ReadCallback done) {
  Read(std::move(done), /*server_side=*/true);
}

void StreamCore::ServerWrite(std::string message, WriteCallback done) {
  Write(std::move(message), std::move(done), /*server_side=*/true);
}

void StreamCore::ServerFinish(absl::Status status) {
  Actions actions;
  {
    MutexLock lock(&mu_);
    if (final_.has_value()) return;
    final_ = status;
    s2c_.closed = true;
    SendMetadataLocked();
    if (s2c_.pending_read) {  // Nothing queued: the client reads the end.
      actions.push_back([r = std::move(s2c_.pending_read)] {
        r(ReadResult(std::nullopt));
      });
      s2c_.pending_read = nullptr;
    }
    if (s2c_.pending_write) {  // Queued: the client will read it.
      actions.push_back([w = std::move(s2c_.pending_write)] {
        w(absl::OkStatus());
      });
      s2c_.pending_write = nullptr;
    }
    if (c2s_.pending_write) {
      actions.push_back([w = std::move(c2s_.pending_write),
                         s = EndedStatusLocked(false)] { w(s); });
      c2s_.pending_write = nullptr;
    }
    if (c2s_.pending_read) {
      actions.push_back([r = std::move(c2s_.pending_read),
                         s = EndedStatusLocked(true)] { r(ReadResult(s)); });
      c2s_.pending_read = nullptr;
    }
    c2s_.queue.clear();
    c2s_.bytes = 0;
    for (auto& w : finish_waiters_) {
      actions.push_back([w = std::move(w), status] { w(status); });
    }
    finish_waiters_.clear();
  }
  RunCallbacks(std::move(actions));
  NotifyHost();
}

void StreamCore::Abort(absl::Status status) {
  Actions actions;
  {
    MutexLock lock(&mu_);
    if (final_.has_value()) return;
    final_ = status;
    aborted_ = true;
    for (Flow* flow : {&c2s_, &s2c_}) {
      if (flow->pending_read) {
        actions.push_back([r = std::move(flow->pending_read), status] {
          r(ReadResult(status));
        });
        flow->pending_read = nullptr;
      }
      if (flow->pending_write) {
        actions.push_back(
            [w = std::move(flow->pending_write), status] { w(status); });
        flow->pending_write = nullptr;
      }
      flow->queue.clear();
      flow->bytes = 0;
    }
    for (auto& w : finish_waiters_) {
      actions.push_back([w = std::move(w), status] { w(status); });
    }
    finish_waiters_.clear();
  }
  // The context first: a handler woken by a failed Read or Write sees
  // that it was cancelled (or, at the deadline, expired: not a cancel).
  if (absl::IsDeadlineExceeded(status)) {
    CallContextAccess::ExpireNow(server_ctx_);
  } else {
    server_ctx_.Cancel();
  }
  RunCallbacks(std::move(actions));
  NotifyHost();
}

void StreamCore::Expire() {
  Abort(absl::DeadlineExceededError("deadline exceeded"));
}

bool StreamCore::ended() const {
  MutexLock lock(&mu_);
  return final_.has_value();
}

namespace {
// How deep this thread is in stream callbacks run by StreamCore.
thread_local int t_nesting = 0;
// Deeper than this, callbacks go to the host's callback thread: two sides
// that each start their next operation from the other's callback would
// otherwise nest without bound.
constexpr int kMaxNesting = 8;
}  // namespace

void StreamCore::RunCallbacks(Actions actions) {
  if (actions.empty()) return;
  if (t_nesting >= kMaxNesting) {
    if (auto host = host_.lock()) {
      if (host->Defer([actions = std::move(actions)]() mutable {
            ++t_nesting;
            for (auto& a : actions) a();
            --t_nesting;
          })) {
        return;
      }
    }
  }
  ++t_nesting;
  for (auto& a : actions) a();
  --t_nesting;
}

void StreamCore::NotifyHost() {
  if (auto host = host_.lock()) host->StreamDone(this);
}

namespace {

class InProcessClientStream final : public ClientStream {
 public:
  explicit InProcessClientStream(std::shared_ptr<StreamCore> core)
      : core_(std::move(core)) {}
  ~InProcessClientStream() override { core_->ClientGone(); }

  CallContext& context() override { return *core_->client_ctx(); }
  void Write(std::string message, WriteCallback done) override {
    core_->ClientWrite(std::move(message), std::move(done));
  }
  void WritesDone() override { core_->ClientWritesDone(); }
  void Read(ReadCallback done) override { core_->ClientRead(std::move(done)); }
  void Finish(FinishCallback done) override {
    core_->ClientFinish(std::move(done));
  }

 private:
  const std::shared_ptr<StreamCore> core_;
};

class InProcessServerStream final : public ServerStream {
 public:
  explicit InProcessServerStream(std::shared_ptr<StreamCore> core)
      : core_(std::move(core)) {}
  ~InProcessServerStream() override {
    core_->Abort(absl::InternalError(
        "the handler dropped the call without finishing it"));
  }

  CallContext& context() override { return core_->server_ctx(); }
  void Read(ReadCallback done) override { core_->ServerRead(std::move(done)); }
  void Write(std::string message, WriteCallback done) override {
    core_->ServerWrite(std::move(message), std::move(done));
  }
  void Finish(absl::Status status) override {
    core_->ServerFinish(std::move(status));
  }

 private:
  const std::shared_ptr<StreamCore> core_;
};

}  // namespace

std::shared_ptr<ClientStream> MakeClientStream(
    std::shared_ptr<StreamCore> core) {
  return std::make_shared<InProcessClientStream>(std::move(core));
}

std::shared_ptr<ServerStream> MakeServerStream(
    std::shared_ptr<StreamCore> core) {
  return std::make_shared<InProcessServerStream>(std::move(core));
}

}  // namespace lpc::inprocess_internal
