// The call model: what every transport implements for calls that are not a
// plain synchronous unary call, that is, for streaming methods and for
// asynchronous handlers. docs/call-model.md explains the model; this header
// is its contract.
//
// A call is two ordered message flows (client to server, server to client)
// plus request metadata, response metadata and a final status. A unary call
// is the case of one message each way; transports keep a fast path for it
// (Channel::StartCall, Dispatcher::Dispatch) that is observably the same.
//
// Both interfaces here are byte-level: messages are serialized. The typed
// wrappers that generated code uses are in runtime/stream.h.
//
// Callbacks ("done") run exactly once each, on any thread, possibly before
// the method that took them returns. They must not block. At most one Read
// and one Write may be outstanding on a stream at a time.
//
// Thread safety: every method is safe from any thread, subject to the
// one-outstanding-Read and one-outstanding-Write rule.
#ifndef LPC_RUNTIME_CALL_H_
#define LPC_RUNTIME_CALL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/call_context.h"
#include "runtime/interface.h"

namespace lpc {

// The flow-control window of one direction of one stream: how much a writer
// may have sent that the reading application has not yet taken with Read.
// A writer whose next message does not fit waits (its Write's `done` is held
// back) until the reader takes messages, or until the call ends. A single
// message larger than `bytes` is allowed when nothing else is in the window.
struct StreamWindow {
  // Default: 64 messages.
  uint32_t messages = 64;
  // Default: 1 MiB.
  size_t bytes = size_t{1} << 20;
};

// Called with the next message; std::nullopt once the other side has
// half-closed (client to server) or finished (server to client). An error
// status when the call ended first (cancelled, deadline, connection lost,
// protocol error); the message says which.
using ReadCallback =
    std::function<void(absl::StatusOr<std::optional<std::string>>)>;
// OK once the message is within the window (buffered or sent); an error
// status when the call ended before that.
using WriteCallback = std::function<void(absl::Status)>;
using FinishCallback = std::function<void(absl::Status)>;

// The client side of one call that the client opened with
// Channel::OpenStream. Owned by the caller through a shared_ptr; dropping
// the last reference before the call ended cancels it. Once the last
// reference is gone, the transport no longer touches the caller's
// CallContext (so a handle that owns the context may destroy it right after
// the stream).
class ClientStream {
 public:
  virtual ~ClientStream() = default;

  // The context given to OpenStream: deadline, metadata, cancellation.
  // response_metadata() is filled once the first server message or the
  // final status arrived.
  virtual CallContext& context() = 0;

  // Sends one message to the server. Fails with FAILED_PRECONDITION after
  // WritesDone, and with the call's status after it ended.
  virtual void Write(std::string message, WriteCallback done) = 0;
  // Half-closes: the server reads end-of-stream after the messages already
  // written. Idempotent.
  virtual void WritesDone() = 0;
  // Takes the next server message.
  virtual void Read(ReadCallback done) = 0;
  // The call's final status, once the server finished it or it ended
  // otherwise. May be called at any time; `done` runs after the end.
  virtual void Finish(FinishCallback done) = 0;
};

// The server side of one call. A transport makes one per call that the
// dispatcher routes through Dispatcher::StartCall, and keeps it alive until
// Finish was called and the call's callbacks have run. After the client
// goes away (cancel, deadline, disconnect), context() is cancelled, Reads
// and Writes fail, and Finish does nothing harmful: the object stays valid
// for as long as a shared_ptr to it is held.
class ServerStream {
 public:
  virtual ~ServerStream() = default;

  // The call's context: deadline, request metadata, peer, cancellation.
  // Response metadata added before the first Write or Finish is sent.
  virtual CallContext& context() = 0;

  // Takes the next client message; std::nullopt after the client
  // half-closed. For a method whose client sends one message (unary and
  // server-streaming), the first Read returns the request and the second
  // std::nullopt.
  virtual void Read(ReadCallback done) = 0;
  // Sends one message to the client.
  virtual void Write(std::string message, WriteCallback done) = 0;
  // Ends the call with `status` after the messages already written. Only
  // the first call counts; later ones and calls after the client went away
  // do nothing.
  virtual void Finish(absl::Status status) = 0;
};

}  // namespace lpc

#endif  // LPC_RUNTIME_CALL_H_
