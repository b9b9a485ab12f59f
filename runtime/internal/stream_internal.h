// The pieces of runtime/stream.h that its templates share: the encode and
// decode function types, the state of a client call, the state shared by
// copies of an async server handle, and blocking byte-level helpers.
// Include runtime/stream.h instead.
#ifndef LPC_RUNTIME_INTERNAL_STREAM_INTERNAL_H_
#define LPC_RUNTIME_INTERNAL_STREAM_INTERNAL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/interface.h"
#include "runtime/mutex.h"

namespace lpc {

// Serializes a message (generated code: the struct's protobuf encoding).
template <typename T>
using EncodeFn = void (*)(const T&, std::string*);
// Parses a message; an error status when the bytes are not a T.
template <typename T>
using DecodeFn = absl::Status (*)(std::string_view, T*);

namespace stream_internal {

// The shared state of one client call: the channel, the context the call
// owns when its caller gave none, the stream, and the first local error (a
// message from the server that did not decode).
class ClientCall : public std::enable_shared_from_this<ClientCall> {
 public:
  // Opens the call; never fails (a call that cannot start has a stream
  // that reports why).
  static std::shared_ptr<ClientCall> Open(std::shared_ptr<Channel> channel,
                                          const InterfaceDescriptor& iface,
                                          const MethodDescriptor& method,
                                          CallContext* ctx);
  ~ClientCall();

  ClientStream& stream() { return *stream_; }
  const std::shared_ptr<ClientStream>& shared_stream() { return stream_; }
  CallContext& context() { return stream_->context(); }

  // Records `error` as the call's result, unless one was recorded, and
  // cancels the call.
  void Fail(absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);
  // The recorded error, or OK.
  absl::Status error() ABSL_LOCKS_EXCLUDED(mu_);

  // Blocking byte-level operations (wait for the stream's callback).
  absl::StatusOr<std::optional<std::string>> ReadBlocking();
  bool WriteBlocking(std::string message);
  absl::Status FinishBlocking();
  // Finish's status, with a recorded local error taking precedence.
  void FinishAsync(std::function<void(absl::Status)> done);

 private:
  ClientCall() = default;

  std::shared_ptr<Channel> channel_;
  std::unique_ptr<CallContext> owned_ctx_;
  // Declared after owned_ctx_: destroyed first, since the stream may use
  // the context until then.
  std::shared_ptr<ClientStream> stream_;
  Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Typed operations of the client handles (runtime/stream.h).

// Encodes `msg` and sends it, waiting while the window is full; false once
// the call ended or after WritesDone.
template <typename T>
bool ClientWrite(ClientCall& call, EncodeFn<T> encode, const T& msg) {
  std::string bytes;
  encode(msg, &bytes);
  return call.WriteBlocking(std::move(bytes));
}

// The same without blocking: `done` (may be empty) gets whether the message
// went out.
template <typename T>
void ClientWriteAsync(ClientCall& call, EncodeFn<T> encode, const T& msg,
                      std::function<void(bool)> done) {
  std::string bytes;
  encode(msg, &bytes);
  call.stream().Write(std::move(bytes),
                      [done = std::move(done)](absl::Status s) {
                        if (done) done(s.ok());
                      });
}

// The next message decoded into *msg; false once the stream ended. A
// message that does not decode fails the call with the decoder's status.
template <typename T>
bool ClientRead(ClientCall& call, DecodeFn<T> decode, T* msg) {
  absl::StatusOr<std::optional<std::string>> r = call.ReadBlocking();
  if (!r.ok() || !r->has_value()) return false;
  absl::Status s = decode(**r, msg);
  if (!s.ok()) {
    call.Fail(s);
    return false;
  }
  return true;
}

// The same without blocking: `done` gets the message or std::nullopt. The
// callback holds the call weakly: it does not keep a dropped call alive.
template <typename T>
void ClientReadAsync(const std::shared_ptr<ClientCall>& call,
                     DecodeFn<T> decode,
                     std::function<void(std::optional<T>)> done) {
  std::weak_ptr<ClientCall> weak = call;
  call->stream().Read([weak, decode, done = std::move(done)](
                          absl::StatusOr<std::optional<std::string>> r) {
    if (!r.ok() || !r->has_value()) {
      done(std::nullopt);
      return;
    }
    T msg{};
    absl::Status s = decode(**r, &msg);
    if (!s.ok()) {
      if (auto c = weak.lock()) c->Fail(s);
      done(std::nullopt);
      return;
    }
    done(std::move(msg));
  });
}

// Blocking byte-level operations on a server call.
absl::StatusOr<std::optional<std::string>> ReadBlocking(ServerStream& call);
bool WriteBlocking(ServerStream& call, std::string message);

// Finishes `call` with INVALID_ARGUMENT for a message that did not decode.
void FailDecode(ServerStream& call, const absl::Status& decode_status);

// The decoded next message of `call`, or std::nullopt at the end of the
// client's messages or when the call ended (a message that does not decode
// ends it with INVALID_ARGUMENT).
template <typename T>
std::optional<T> DecodeServerRead(
    ServerStream& call, DecodeFn<T> decode,
    absl::StatusOr<std::optional<std::string>> read) {
  if (!read.ok() || !read->has_value()) return std::nullopt;
  T msg{};
  absl::Status s = decode(**read, &msg);
  if (!s.ok()) {
    FailDecode(call, s);
    return std::nullopt;
  }
  return msg;
}

// Reads the one request of a unary or server-streaming call; on failure
// finishes the call (INVALID_ARGUMENT when it is missing or does not
// decode) and returns false.
template <typename Req>
bool ReadRequest(ServerStream& call, DecodeFn<Req> decode, Req* out,
                 absl::StatusOr<std::optional<std::string>> read) {
  if (!read.ok()) {
    call.Finish(read.status());
    return false;
  }
  if (!read->has_value()) {
    call.Finish(absl::InvalidArgumentError("the call carried no request"));
    return false;
  }
  absl::Status s = decode(**read, out);
  if (!s.ok()) {
    FailDecode(call, s);
    return false;
  }
  return true;
}

// What copies of an async server handle share; finishes the call with
// INTERNAL when the last copy goes without having finished it.
class AsyncCall {
 public:
  explicit AsyncCall(std::shared_ptr<ServerStream> call)
      : call_(std::move(call)) {}
  ~AsyncCall();
  AsyncCall(const AsyncCall&) = delete;
  AsyncCall& operator=(const AsyncCall&) = delete;
  const std::shared_ptr<ServerStream>& call() const { return call_; }

 private:
  const std::shared_ptr<ServerStream> call_;
};

// A pending Read or Write holds the call's shared state: the call is in
// use until its callback has run.
template <typename T>
void AsyncRead(const std::shared_ptr<AsyncCall>& state, DecodeFn<T> decode,
               std::function<void(std::optional<T>)> done) {
  ServerStream& call = *state->call();
  call.Read([state, decode, done = std::move(done)](
                absl::StatusOr<std::optional<std::string>> read) {
    done(DecodeServerRead<T>(*state->call(), decode, std::move(read)));
  });
}

template <typename T>
void AsyncWrite(const std::shared_ptr<AsyncCall>& state, EncodeFn<T> encode,
                const T& msg, std::function<void(bool)> done) {
  std::string bytes;
  encode(msg, &bytes);
  if (!done) {
    state->call()->Write(std::move(bytes), [](absl::Status) {});
    return;
  }
  state->call()->Write(std::move(bytes),
                       [state, done = std::move(done)](absl::Status s) {
                         done(s.ok());
                       });
}

// Sends `msg` without waiting for the window (the one reply of a call).
template <typename T>
void WriteAndForget(ServerStream& call, EncodeFn<T> encode, const T& msg) {
  std::string bytes;
  encode(msg, &bytes);
  call.Write(std::move(bytes), [](absl::Status) {});
}

// Sends the one reply of a call and ends it with OK.
template <typename R>
void ReplyAndFinish(ServerStream& call, EncodeFn<R> encode, const R& reply) {
  WriteAndForget<R>(call, encode, reply);
  call.Finish(absl::OkStatus());
}

// Ends `call` with a handler's failure `status` (an OK status is taken as
// INTERNAL).
void FailCall(ServerStream& call, absl::Status status);

// Reads and decodes the one request of `call` without blocking, then calls
// `handler` with a Handle(call, encode) and the request, on whichever
// thread the request arrived. A missing or undecodable request finishes
// the call (ReadRequest) and the handler does not run.
template <typename Handle, typename Req, typename Enc>
void ReadRequestThen(std::shared_ptr<ServerStream> call,
                     DecodeFn<Req> decode_request, EncodeFn<Enc> encode,
                     std::function<void(Handle, Req&)> handler) {
  ServerStream& s = *call;
  s.Read([call = std::move(call), decode_request, encode,
          handler = std::move(handler)](
             absl::StatusOr<std::optional<std::string>> read) mutable {
    Req request{};
    if (!ReadRequest<Req>(*call, decode_request, &request, std::move(read))) {
      return;
    }
    handler(Handle(std::move(call), encode), request);
  });
}

}  // namespace stream_internal

}  // namespace lpc

#endif  // LPC_RUNTIME_INTERNAL_STREAM_INTERNAL_H_
