// Typed streams: what generated code and users see of the call model
// (docs/call-model.md) on top of the byte-level ClientStream and
// ServerStream of runtime/call.h.
//
// Serialization is injected by generated code as plain function pointers
// (EncodeFn, DecodeFn). A message that does not decode ends the call: on the
// server with INVALID_ARGUMENT (the handler's Read returns false), on the
// client with the decoder's status (Read returns false, Finish returns it).
//
// The entry points generated code calls, exactly:
//
//   Client (FooClient), one per streaming method:
//     lpc::ClientReader<T>::Start(std::shared_ptr<Channel> channel,
//         const InterfaceDescriptor& iface, const MethodDescriptor& method,
//         CallContext* ctx, absl::StatusOr<std::string> request,
//         DecodeFn<T> decode);                       // server-streaming
//     lpc::ClientWriter<Req, R>::Start(std::shared_ptr<Channel> channel,
//         const InterfaceDescriptor& iface, const MethodDescriptor& method,
//         CallContext* ctx, EncodeFn<Req> encode,
//         DecodeFn<R> decode);                       // client-streaming
//     lpc::ClientReaderWriter<Out, In>::Start(std::shared_ptr<Channel> channel,
//         const InterfaceDescriptor& iface, const MethodDescriptor& method,
//         CallContext* ctx, EncodeFn<Out> encode,
//         DecodeFn<In> decode);                      // bidi-streaming
//   (`request` is the encoded request message; an error status there ends
//   the call at once with that status.)
//
//   Server (FooService::StartCall), one per method that UsesStartCall,
//   called on the worker thread the transport calls StartCall on:
//     lpc::ServeServerStreaming<Req, Out>(call, DecodeFn<Req>, EncodeFn<Out>,
//         handler: absl::Status(CallContext&, Req&, ServerWriter<Out>&));
//     lpc::ServeClientStreaming<In, R>(call, DecodeFn<In>, EncodeFn<R>,
//         handler: absl::StatusOr<R>(CallContext&, ServerReader<In>&));
//     lpc::ServeBidiStreaming<Out, In>(call, DecodeFn<In>, EncodeFn<Out>,
//         handler: absl::Status(CallContext&, ServerReaderWriter<Out, In>&));
//     lpc::ServeAsyncUnary<Req, Result>(call, DecodeFn<Req>, EncodeFn<Result>,
//         handler: void(AsyncUnaryCall<Result>, Req&));
//     lpc::ServeAsyncServerStreaming<Req, Out>(call, DecodeFn<Req>,
//         EncodeFn<Out>, handler: void(AsyncServerStream<Out>, Req&));
//     lpc::ServeAsyncClientStreaming<In, R>(call, DecodeFn<In>, EncodeFn<R>,
//         handler: void(AsyncServerReader<In, R>));
//     lpc::ServeAsyncBidiStreaming<Out, In>(call, DecodeFn<In>,
//         EncodeFn<Out>, handler: void(AsyncServerReaderWriter<Out, In>));
//   where `call` is the std::shared_ptr<ServerStream> StartCall received
//   (moved in), Req is the type the request message decodes to, and the
//   handler is any callable (a lambda capturing the service). The
//   synchronous forms run the handler on the calling thread and finish the
//   call with its result; the asynchronous ones read the request (if any)
//   without blocking, call the handler, and return.
//
// Client handles are movable, not copyable; a moved-from handle may only be
// destroyed or assigned to. Dropping a handle before its call ended cancels
// the call. Server async handles are copyable and share one call; when the
// last copy is dropped without finishing it, the call ends with INTERNAL
// ("handler dropped the call"). Every handle stays safe to use after the
// call ended: Read and Write return false (or call back with failure),
// finishing again does nothing.
//
// Thread safety: a handle's methods may be called from any thread, with at
// most one Read and one Write outstanding at a time (call.h's rule).
// Callbacks run on any thread, possibly before the call that took them
// returns, and must not block.
#ifndef LPC_RUNTIME_STREAM_H_
#define LPC_RUNTIME_STREAM_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/interface.h"
#include "runtime/internal/stream_internal.h"
#include "runtime/server_streams.h"

namespace lpc {

// ---------------------------------------------------------------- client

// The client side of a server-streaming call.
template <typename T>
class ClientReader {
 public:
  static ClientReader Start(std::shared_ptr<Channel> channel,
                            const InterfaceDescriptor& iface,
                            const MethodDescriptor& method, CallContext* ctx,
                            absl::StatusOr<std::string> request,
                            DecodeFn<T> decode) {
    ClientReader r(stream_internal::ClientCall::Open(std::move(channel), iface,
                                                     method, ctx),
                   decode);
    if (!request.ok()) {
      r.call_->Fail(request.status());
    } else {
      r.call_->stream().Write(std::move(*request), [](absl::Status) {});
      r.call_->stream().WritesDone();
    }
    return r;
  }

  ClientReader(ClientReader&&) noexcept = default;
  ClientReader& operator=(ClientReader&&) noexcept = default;

  // The next message; false once the stream ended (Finish says why).
  bool Read(T* msg) {
    return stream_internal::ClientRead(*call_, decode_, msg);
  }
  // The same without blocking: `done` gets the message or std::nullopt.
  void ReadAsync(std::function<void(std::optional<T>)> done) {
    stream_internal::ClientReadAsync(call_, decode_, std::move(done));
  }
  // The call's final status (waits for it).
  absl::Status Finish() { return call_->FinishBlocking(); }
  void FinishAsync(std::function<void(absl::Status)> done) {
    call_->FinishAsync(std::move(done));
  }
  void Cancel() { call_->context().Cancel(); }
  CallContext& context() { return call_->context(); }

 private:
  ClientReader(std::shared_ptr<stream_internal::ClientCall> call,
               DecodeFn<T> decode)
      : call_(std::move(call)), decode_(decode) {}

  std::shared_ptr<stream_internal::ClientCall> call_;
  DecodeFn<T> decode_;
};

// The client side of a bidi-streaming call: writes Out, reads In.
template <typename Out, typename In>
class ClientReaderWriter {
 public:
  static ClientReaderWriter Start(std::shared_ptr<Channel> channel,
                                  const InterfaceDescriptor& iface,
                                  const MethodDescriptor& method,
                                  CallContext* ctx, EncodeFn<Out> encode,
                                  DecodeFn<In> decode) {
    return ClientReaderWriter(stream_internal::ClientCall::Open(
                                  std::move(channel), iface, method, ctx),
                              encode, decode);
  }

  ClientReaderWriter(ClientReaderWriter&&) noexcept = default;
  ClientReaderWriter& operator=(ClientReaderWriter&&) noexcept = default;

  // Sends one message, waiting while the server's window is full; false
  // once the call ended or after WritesDone.
  bool Write(const Out& msg) {
    return stream_internal::ClientWrite(*call_, encode_, msg);
  }
  // The same without blocking: `done` (may be empty) gets whether it went.
  void WriteAsync(const Out& msg, std::function<void(bool)> done) {
    stream_internal::ClientWriteAsync(*call_, encode_, msg, std::move(done));
  }
  // Half-closes: the server reads the end of the stream. Idempotent.
  void WritesDone() { call_->stream().WritesDone(); }
  bool Read(In* msg) {
    return stream_internal::ClientRead(*call_, decode_, msg);
  }
  void ReadAsync(std::function<void(std::optional<In>)> done) {
    stream_internal::ClientReadAsync(call_, decode_, std::move(done));
  }
  absl::Status Finish() { return call_->FinishBlocking(); }
  void FinishAsync(std::function<void(absl::Status)> done) {
    call_->FinishAsync(std::move(done));
  }
  void Cancel() { call_->context().Cancel(); }
  CallContext& context() { return call_->context(); }

 private:
  ClientReaderWriter(std::shared_ptr<stream_internal::ClientCall> call,
                     EncodeFn<Out> encode, DecodeFn<In> decode)
      : call_(std::move(call)), encode_(encode), decode_(decode) {}

  std::shared_ptr<stream_internal::ClientCall> call_;
  EncodeFn<Out> encode_;
  DecodeFn<In> decode_;
};

// The client side of a client-streaming call: writes Req, then Finish
// half-closes and returns the server's one reply R.
template <typename Req, typename R>
class ClientWriter {
 public:
  static ClientWriter Start(std::shared_ptr<Channel> channel,
                            const InterfaceDescriptor& iface,
                            const MethodDescriptor& method, CallContext* ctx,
                            EncodeFn<Req> encode, DecodeFn<R> decode) {
    return ClientWriter(stream_internal::ClientCall::Open(std::move(channel),
                                                          iface, method, ctx),
                        encode, decode);
  }

  ClientWriter(ClientWriter&&) noexcept = default;
  ClientWriter& operator=(ClientWriter&&) noexcept = default;

  // Write, WriteAsync and WritesDone as ClientReaderWriter's.
  bool Write(const Req& msg) {
    return stream_internal::ClientWrite(*call_, encode_, msg);
  }
  void WriteAsync(const Req& msg, std::function<void(bool)> done) {
    stream_internal::ClientWriteAsync(*call_, encode_, msg, std::move(done));
  }
  void WritesDone() { call_->stream().WritesDone(); }
  // Half-closes (if not done yet) and waits for the reply. A call that
  // ended OK without a reply is INTERNAL.
  absl::StatusOr<R> Finish() {
    call_->stream().WritesDone();
    R reply{};
    const bool got = stream_internal::ClientRead(*call_, decode_, &reply);
    absl::Status s = call_->FinishBlocking();
    if (!s.ok()) return s;
    if (!got) return absl::InternalError("the server sent no reply");
    return reply;
  }
  void FinishAsync(std::function<void(absl::StatusOr<R>)> done) {
    call_->stream().WritesDone();
    std::shared_ptr<stream_internal::ClientCall> call = call_;
    // The callback holds the call until the reply and the status are in;
    // the transport runs it at the latest when the call ends.
    stream_internal::ClientReadAsync<R>(
        call_, decode_,
        [call, done = std::move(done)](std::optional<R> reply) mutable {
          call->FinishAsync([reply = std::move(reply),
                             done = std::move(done)](absl::Status s) mutable {
            if (!s.ok()) {
              done(s);
            } else if (!reply.has_value()) {
              done(absl::InternalError("the server sent no reply"));
            } else {
              done(std::move(*reply));
            }
          });
        });
  }
  void Cancel() { call_->context().Cancel(); }
  CallContext& context() { return call_->context(); }

 private:
  ClientWriter(std::shared_ptr<stream_internal::ClientCall> call,
               EncodeFn<Req> encode, DecodeFn<R> decode)
      : call_(std::move(call)), encode_(encode), decode_(decode) {}

  std::shared_ptr<stream_internal::ClientCall> call_;
  EncodeFn<Req> encode_;
  DecodeFn<R> decode_;
};

}  // namespace lpc

#endif  // LPC_RUNTIME_STREAM_H_
