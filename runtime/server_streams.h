// The server side of runtime/stream.h: the handles handlers get, and the
// Serve* entry points a generated FooService::StartCall calls. Include
// runtime/stream.h; its header comment is the contract.
#ifndef LPC_RUNTIME_SERVER_STREAMS_H_
#define LPC_RUNTIME_SERVER_STREAMS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/internal/stream_internal.h"

namespace lpc {

// ---------------------------------------------------------- server, sync

// Blocking server-side handles, for synchronous handlers running on a
// worker. They do not own the call: the Serve* function that made them
// finishes it when the handler returns.

// Reads a client's stream of T.
template <typename T>
class ServerReader {
 public:
  ServerReader(std::shared_ptr<ServerStream> call, DecodeFn<T> decode)
      : call_(std::move(call)), decode_(decode) {}

  // The next message; false at the end of the client's messages or once
  // the call ended (context().IsCancelled() tells which). A message that
  // does not decode ends the call with INVALID_ARGUMENT.
  bool Read(T* msg) {
    std::optional<T> m = stream_internal::DecodeServerRead<T>(
        *call_, decode_, stream_internal::ReadBlocking(*call_));
    if (!m.has_value()) return false;
    *msg = std::move(*m);
    return true;
  }
  CallContext& context() { return call_->context(); }

 private:
  std::shared_ptr<ServerStream> call_;
  DecodeFn<T> decode_;
};

// Writes a stream of T to the client.
template <typename T>
class ServerWriter {
 public:
  ServerWriter(std::shared_ptr<ServerStream> call, EncodeFn<T> encode)
      : call_(std::move(call)), encode_(encode) {}

  // Sends one message, waiting while the client's window is full; false
  // once the call ended (the client went away, cancelled, or the deadline
  // passed).
  bool Write(const T& msg) {
    std::string bytes;
    encode_(msg, &bytes);
    return stream_internal::WriteBlocking(*call_, std::move(bytes));
  }
  CallContext& context() { return call_->context(); }

 private:
  std::shared_ptr<ServerStream> call_;
  EncodeFn<T> encode_;
};

// Both: reads In, writes Out.
template <typename Out, typename In>
class ServerReaderWriter {
 public:
  ServerReaderWriter(std::shared_ptr<ServerStream> call, EncodeFn<Out> encode,
                     DecodeFn<In> decode)
      : reader_(call, decode), writer_(std::move(call), encode) {}

  bool Read(In* msg) { return reader_.Read(msg); }
  bool Write(const Out& msg) { return writer_.Write(msg); }
  CallContext& context() { return reader_.context(); }

 private:
  ServerReader<In> reader_;
  ServerWriter<Out> writer_;
};

// Synchronous server-streaming: reads the request, runs `handler`, and
// finishes the call with its status.
template <typename Req, typename Out>
void ServeServerStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<Req> decode_request,
    EncodeFn<Out> encode,
    std::type_identity_t<
        absl::FunctionRef<absl::Status(CallContext&, Req&, ServerWriter<Out>&)>>
        handler) {
  Req request{};
  if (!stream_internal::ReadRequest<Req>(*call, decode_request, &request,
                                         stream_internal::ReadBlocking(*call))) {
    return;
  }
  ServerWriter<Out> writer(call, encode);
  call->Finish(handler(call->context(), request, writer));
}

// Synchronous client-streaming: runs `handler`, then replies with its
// result or fails with its status.
template <typename In, typename R>
void ServeClientStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<In> decode,
    EncodeFn<R> encode_reply,
    std::type_identity_t<
        absl::FunctionRef<absl::StatusOr<R>(CallContext&, ServerReader<In>&)>>
        handler) {
  ServerReader<In> reader(call, decode);
  absl::StatusOr<R> result = handler(call->context(), reader);
  if (!result.ok()) {
    call->Finish(result.status());
    return;
  }
  stream_internal::ReplyAndFinish<R>(*call, encode_reply, *result);
}

// Synchronous bidi-streaming: runs `handler` and finishes the call with
// its status.
template <typename Out, typename In>
void ServeBidiStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<In> decode,
    EncodeFn<Out> encode,
    std::type_identity_t<absl::FunctionRef<absl::Status(
        CallContext&, ServerReaderWriter<Out, In>&)>>
        handler) {
  ServerReaderWriter<Out, In> stream(call, encode, decode);
  call->Finish(handler(call->context(), stream));
}

// --------------------------------------------------------- server, async

// Asynchronous handles: copyable, every copy shares one call, usable from
// any thread until and after the call ends.

// An [async] unary call: finish it with Reply or Fail.
template <typename Result>
class AsyncUnaryCall {
 public:
  AsyncUnaryCall(std::shared_ptr<ServerStream> call, EncodeFn<Result> encode)
      : state_(std::make_shared<stream_internal::AsyncCall>(std::move(call))),
        encode_(encode) {}

  CallContext& context() const { return state_->call()->context(); }
  // Sends `result` and ends the call with OK.
  void Reply(const Result& result) const {
    stream_internal::ReplyAndFinish<Result>(*state_->call(), encode_, result);
  }
  // Ends the call with `status` (an OK status is taken as INTERNAL).
  void Fail(absl::Status status) const {
    stream_internal::FailCall(*state_->call(), std::move(status));
  }

 private:
  std::shared_ptr<stream_internal::AsyncCall> state_;
  EncodeFn<Result> encode_;
};

// An asynchronous server-streaming call: Write messages, then Finish.
template <typename Out>
class AsyncServerStream {
 public:
  AsyncServerStream(std::shared_ptr<ServerStream> call, EncodeFn<Out> encode)
      : state_(std::make_shared<stream_internal::AsyncCall>(std::move(call))),
        encode_(encode) {}

  CallContext& context() const { return state_->call()->context(); }
  // Sends one message; `done` (may be empty) runs with true once it is
  // within the client's window, false if the call ended first.
  void Write(const Out& msg, std::function<void(bool)> done = nullptr) const {
    stream_internal::AsyncWrite<Out>(state_, encode_, msg,
                                     std::move(done));
  }
  // Ends the call with `status` after the messages written.
  void Finish(absl::Status status) const {
    state_->call()->Finish(std::move(status));
  }

 private:
  std::shared_ptr<stream_internal::AsyncCall> state_;
  EncodeFn<Out> encode_;
};

// An asynchronous client-streaming call: Read the client's messages, then
// Reply or Fail.
template <typename In, typename R>
class AsyncServerReader {
 public:
  AsyncServerReader(std::shared_ptr<ServerStream> call, DecodeFn<In> decode,
                    EncodeFn<R> encode_reply)
      : state_(std::make_shared<stream_internal::AsyncCall>(std::move(call))),
        decode_(decode),
        encode_(encode_reply) {}

  CallContext& context() const { return state_->call()->context(); }
  // `done` gets the next message, or std::nullopt at the end of the
  // client's messages or once the call ended (context().IsCancelled()
  // tells which). A message that does not decode ends the call with
  // INVALID_ARGUMENT.
  void Read(std::function<void(std::optional<In>)> done) const {
    stream_internal::AsyncRead<In>(state_, decode_, std::move(done));
  }
  // Reply and Fail as AsyncUnaryCall's.
  void Reply(const R& reply) const {
    stream_internal::ReplyAndFinish<R>(*state_->call(), encode_, reply);
  }
  void Fail(absl::Status status) const {
    stream_internal::FailCall(*state_->call(), std::move(status));
  }

 private:
  std::shared_ptr<stream_internal::AsyncCall> state_;
  DecodeFn<In> decode_;
  EncodeFn<R> encode_;
};

// An asynchronous bidi-streaming call: Read, Write, then Finish.
template <typename Out, typename In>
class AsyncServerReaderWriter {
 public:
  AsyncServerReaderWriter(std::shared_ptr<ServerStream> call,
                          EncodeFn<Out> encode, DecodeFn<In> decode)
      : state_(std::make_shared<stream_internal::AsyncCall>(std::move(call))),
        encode_(encode),
        decode_(decode) {}

  CallContext& context() const { return state_->call()->context(); }
  void Read(std::function<void(std::optional<In>)> done) const {
    stream_internal::AsyncRead<In>(state_, decode_, std::move(done));
  }
  void Write(const Out& msg, std::function<void(bool)> done = nullptr) const {
    stream_internal::AsyncWrite<Out>(state_, encode_, msg,
                                     std::move(done));
  }
  void Finish(absl::Status status) const {
    state_->call()->Finish(std::move(status));
  }

 private:
  std::shared_ptr<stream_internal::AsyncCall> state_;
  EncodeFn<Out> encode_;
  DecodeFn<In> decode_;
};

// Asynchronous unary: reads and decodes the request without blocking, then
// calls `handler` (on whichever thread the request arrived).
template <typename Req, typename Result>
void ServeAsyncUnary(
    std::shared_ptr<ServerStream> call, DecodeFn<Req> decode_request,
    EncodeFn<Result> encode,
    std::type_identity_t<std::function<void(AsyncUnaryCall<Result>, Req&)>>
        handler) {
  stream_internal::ReadRequestThen<AsyncUnaryCall<Result>>(
      std::move(call), decode_request, encode, std::move(handler));
}

// Asynchronous server-streaming: like ServeAsyncUnary.
template <typename Req, typename Out>
void ServeAsyncServerStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<Req> decode_request,
    EncodeFn<Out> encode,
    std::type_identity_t<std::function<void(AsyncServerStream<Out>, Req&)>>
        handler) {
  stream_internal::ReadRequestThen<AsyncServerStream<Out>>(
      std::move(call), decode_request, encode, std::move(handler));
}

// Asynchronous client-streaming: calls `handler` at once.
template <typename In, typename R>
void ServeAsyncClientStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<In> decode,
    EncodeFn<R> encode_reply,
    std::type_identity_t<std::function<void(AsyncServerReader<In, R>)>>
        handler) {
  handler(AsyncServerReader<In, R>(std::move(call), decode, encode_reply));
}

// Asynchronous bidi-streaming: calls `handler` at once.
template <typename Out, typename In>
void ServeAsyncBidiStreaming(
    std::shared_ptr<ServerStream> call, DecodeFn<In> decode,
    EncodeFn<Out> encode,
    std::type_identity_t<
        std::function<void(AsyncServerReaderWriter<Out, In>)>>
        handler) {
  handler(AsyncServerReaderWriter<Out, In>(std::move(call), encode, decode));
}

}  // namespace lpc

#endif  // LPC_RUNTIME_SERVER_STREAMS_H_
