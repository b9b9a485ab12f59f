// The parts of Channel shared by every transport.
#include "runtime/channel.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lpc {
namespace {

// The stream OpenStream returns when the call cannot start: every
// operation reports `status`.
class EndedClientStream final : public ClientStream {
 public:
  EndedClientStream(CallContext* ctx, absl::Status status)
      : ctx_(ctx), status_(std::move(status)) {}
  CallContext& context() override { return *ctx_; }
  void Write(std::string, WriteCallback done) override { done(status_); }
  void WritesDone() override {}
  void Read(ReadCallback done) override { done(status_); }
  void Finish(FinishCallback done) override { done(status_); }

 private:
  CallContext* const ctx_;
  const absl::Status status_;
};

}  // namespace

std::shared_ptr<ClientStream> MakeEndedClientStream(CallContext* ctx,
                                                    absl::Status status) {
  return std::make_shared<EndedClientStream>(ctx, std::move(status));
}

std::shared_ptr<ClientStream> Channel::OpenStream(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx) {
  return MakeEndedClientStream(
      ctx, absl::UnimplementedError(absl::StrCat(
               "the ", std::string(transport_name()), " transport cannot carry ",
               std::string(MethodKindName(method.kind)), " method ",
               iface.MethodPath(method))));
}

absl::Status Channel::PrepareCall(CallContext* ctx, size_t request_size) const {
  absl::Time now;
  return PrepareCall(ctx, request_size, &now);
}

absl::Status Channel::PrepareCall(CallContext* ctx, size_t request_size,
                                  absl::Time* now_out) const {
  const absl::Time now = absl::Now();  // One clock read per call.
  *now_out = now;
  if (!ctx->has_deadline()) ctx->set_deadline(now + options_.default_timeout);
  if (request_size > options_.max_message_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request of ", request_size,
                     " bytes exceeds the maximum message size of ",
                     options_.max_message_size, " bytes"));
  }
  if (ctx->WasCancelledExplicitly()) {
    return absl::CancelledError("call cancelled before it started");
  }
  if (now >= ctx->deadline()) {
    return absl::DeadlineExceededError("deadline passed before the call started");
  }
  return absl::OkStatus();
}

absl::Status StatusForEndedCall(const CallContext& ctx) {
  if (ctx.WasCancelledExplicitly()) return absl::CancelledError("call cancelled");
  return absl::DeadlineExceededError("deadline exceeded");
}

absl::StatusOr<std::string> Channel::Call(const InterfaceDescriptor& iface,
                                          const MethodDescriptor& method,
                                          CallContext* ctx,
                                          std::string request) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::StatusOr<std::string>> result;
  };
  auto waiter = std::make_shared<Waiter>();
  StartCall(iface, method, ctx, std::move(request),
            [waiter](absl::StatusOr<std::string> r) {
              std::lock_guard<std::mutex> lock(waiter->mu);
              waiter->result = std::move(r);
              waiter->cv.notify_all();
            });
  // The transport guarantees `done` runs by the deadline (it enforces it);
  // the wait itself has no timeout of its own so that no result is lost.
  std::unique_lock<std::mutex> lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->result.has_value(); });
  return std::move(*waiter->result);
}

absl::Status Channel::CallWith(const InterfaceDescriptor& iface,
                               const MethodDescriptor& method,
                               CallContext* ctx, const MessageWriter& request,
                               ReplyDecoder decode) {
  absl::StatusOr<std::string> reply =
      Call(iface, method, ctx, SerializeToString(request));
  if (!reply.ok()) return reply.status();
  ReceivedMessage message(std::move(*reply));
  return decode(message);
}

void Channel::StartCallWith(const InterfaceDescriptor& iface,
                            const MethodDescriptor& method, CallContext* ctx,
                            const MessageWriter& request,
                            ReceivedCallback done) {
  StartCall(iface, method, ctx, SerializeToString(request),
            [done = std::move(done)](absl::StatusOr<std::string> reply) {
              if (!reply.ok()) {
                done(reply.status());
              } else {
                done(ReceivedMessage(std::move(*reply)));
              }
            });
}

absl::Status Channel::SendOnewayWith(const InterfaceDescriptor& iface,
                                     const MethodDescriptor& method,
                                     CallContext* ctx,
                                     const MessageWriter& request) {
  return SendOneway(iface, method, ctx, SerializeToString(request));
}

absl::StatusOr<Buffer> Channel::NewBuffer(size_t size) {
  return Buffer::Heap(size);
}

}  // namespace lpc
