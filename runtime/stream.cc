// The non-template parts of the typed streams (runtime/stream.h).
#include "runtime/stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lpc {
namespace stream_internal {
namespace {

// A value one callback sets and one blocked thread waits for.
template <typename V>
class Waiter {
 public:
  void Set(V value) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    value_ = std::move(value);
    // Under the lock: the waiter may destroy *this once it sees the value.
    cv_.SignalAll();
  }
  // Waits without a deadline of its own: every transport runs a stream's
  // callbacks by the time the call ends, and every call has a deadline.
  V Wait() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    while (!value_.has_value()) {
      cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
    }
    return std::move(*value_);
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::optional<V> value_ ABSL_GUARDED_BY(mu_);
};

using ReadResult = absl::StatusOr<std::optional<std::string>>;

// A Read and a Write on a ClientStream or a ServerStream, waited for.
template <typename Stream>
ReadResult ReadAndWait(Stream& stream) {
  Waiter<ReadResult> w;
  stream.Read([&w](ReadResult r) { w.Set(std::move(r)); });
  return w.Wait();
}

template <typename Stream>
absl::Status WriteAndWait(Stream& stream, std::string message) {
  Waiter<absl::Status> w;
  stream.Write(std::move(message), [&w](absl::Status s) { w.Set(s); });
  return w.Wait();
}

}  // namespace

std::shared_ptr<ClientCall> ClientCall::Open(std::shared_ptr<Channel> channel,
                                             const InterfaceDescriptor& iface,
                                             const MethodDescriptor& method,
                                             CallContext* ctx) {
  std::shared_ptr<ClientCall> call(new ClientCall());
  if (ctx == nullptr) {
    call->owned_ctx_ = std::make_unique<CallContext>();
    ctx = call->owned_ctx_.get();
  }
  if (channel != nullptr) {
    call->stream_ = channel->OpenStream(iface, method, ctx);
  }
  if (call->stream_ == nullptr) {
    call->stream_ = MakeEndedClientStream(
        ctx, absl::InternalError(absl::StrCat(
                 "no stream for ", iface.MethodPath(method),
                 channel == nullptr ? ": no channel" : "")));
  }
  call->channel_ = std::move(channel);
  return call;
}

ClientCall::~ClientCall() {
  // The stream goes first (it may use the context), then the context,
  // then the channel.
  stream_.reset();
}

void ClientCall::Fail(absl::Status error) {
  {
    MutexLock lock(&mu_);
    if (!error_.ok()) return;
    error_ = std::move(error);
  }
  context().Cancel();
}

absl::Status ClientCall::error() {
  MutexLock lock(&mu_);
  return error_;
}

absl::StatusOr<std::optional<std::string>> ClientCall::ReadBlocking() {
  return ReadAndWait(*stream_);
}

bool ClientCall::WriteBlocking(std::string message) {
  return WriteAndWait(*stream_, std::move(message)).ok();
}

absl::Status ClientCall::FinishBlocking() {
  Waiter<absl::Status> w;
  stream_->Finish([&w](absl::Status s) { w.Set(s); });
  absl::Status s = w.Wait();
  absl::Status local = error();
  return local.ok() ? s : local;
}

void ClientCall::FinishAsync(std::function<void(absl::Status)> done) {
  // Holds the call until the status is in, so that a local error recorded
  // meanwhile is still readable.
  std::shared_ptr<ClientCall> self = shared_from_this();
  stream_->Finish([self, done = std::move(done)](absl::Status s) {
    absl::Status local = self->error();
    done(local.ok() ? s : local);
  });
}

absl::StatusOr<std::optional<std::string>> ReadBlocking(ServerStream& call) {
  return ReadAndWait(call);
}

bool WriteBlocking(ServerStream& call, std::string message) {
  return WriteAndWait(call, std::move(message)).ok();
}

void FailDecode(ServerStream& call, const absl::Status& decode_status) {
  call.Finish(absl::InvalidArgumentError(
      absl::StrCat("a message does not decode: ", decode_status.message())));
}

void FailCall(ServerStream& call, absl::Status status) {
  if (status.ok()) status = absl::InternalError("handler failed with OK");
  call.Finish(std::move(status));
}

AsyncCall::~AsyncCall() {
  // Does nothing if the handler finished the call, or the call ended.
  call_->Finish(absl::InternalError("handler dropped the call"));
}

}  // namespace stream_internal
}  // namespace lpc
