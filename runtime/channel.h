// Channel: the client side of lpc, independent of any transport.
//
// A Channel carries calls to one server: each call names an interface and a
// method (by ordinal) and carries the serialized request. Generated client
// stubs (foo.lpc.h) wrap a Channel with typed methods; transports implement
// it. Create channels from a target string with CreateChannel (target.h).
//
// Thread safety: all methods may be called from any number of threads.
#ifndef LPC_RUNTIME_CHANNEL_H_
#define LPC_RUNTIME_CHANNEL_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "absl/functional/function_ref.h"
#include "runtime/buffer.h"
#include "runtime/interface.h"
#include "runtime/message.h"

namespace lpc {

// Options every transport understands. Transport-specific options live in
// each transport's own options struct.
struct ChannelOptions {
  // The deadline of a call whose context has none.
  // Default: 30 seconds.
  absl::Duration default_timeout = absl::Seconds(30);
  // Requests and replies larger than this fail with RESOURCE_EXHAUSTED.
  // Default: 64 MiB.
  size_t max_message_size = size_t{64} << 20;
  // The flow-control window of each stream's server-to-client flow: how
  // much the server may send ahead of this client's reads.
  StreamWindow stream_window;
};

using ResponseCallback = std::function<void(absl::StatusOr<std::string>)>;
// Decodes a reply in place (the zero-copy path, docs/zero-copy.md). Runs
// once, on the thread that waited, before CallWith returns; the message's
// bytes are valid only while it runs unless it Retain()s them.
using ReplyDecoder = absl::FunctionRef<absl::Status(ReceivedMessage&)>;
// The asynchronous form: the reply, or the call's status.
using ReceivedCallback = std::function<void(absl::StatusOr<ReceivedMessage>)>;

class Channel {
 public:
  virtual ~Channel() = default;

  // Starts a call of a non-oneway method. `done` runs exactly once, on any
  // thread (possibly before StartCall returns), with the serialized response
  // or the call's status. `ctx` must stay alive until `done` runs; the
  // caller may Cancel() it meanwhile.
  virtual void StartCall(const InterfaceDescriptor& iface,
                         const MethodDescriptor& method, CallContext* ctx,
                         std::string request, ResponseCallback done) = 0;

  // Sends a oneway message. Returns once the transport has accepted it; OK
  // does not mean the server ran it.
  virtual absl::Status SendOneway(const InterfaceDescriptor& iface,
                                  const MethodDescriptor& method,
                                  CallContext* ctx, std::string request) = 0;

  // Makes a call and waits for it. The default waits on StartCall;
  // transports override it when the calling thread can wait more cheaply.
  virtual absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx,
                                           std::string request);

  // The zero-copy forms of Call, StartCall and SendOneway
  // (docs/zero-copy.md): the transport has `request` write itself straight
  // into its own buffer, and hands the reply to the decoder as a view of
  // its one private copy. `request` (and the Buffer its buffer field names)
  // is used only before the method returns. CallWith returns the call's
  // status, or else the status `decode` returned. The defaults serialize
  // into a std::string and use Call / StartCall / SendOneway; transports
  // override them to skip that copy.
  virtual absl::Status CallWith(const InterfaceDescriptor& iface,
                                const MethodDescriptor& method,
                                CallContext* ctx, const MessageWriter& request,
                                ReplyDecoder decode);
  virtual void StartCallWith(const InterfaceDescriptor& iface,
                             const MethodDescriptor& method, CallContext* ctx,
                             const MessageWriter& request,
                             ReceivedCallback done);
  virtual absl::Status SendOnewayWith(const InterfaceDescriptor& iface,
                                      const MethodDescriptor& method,
                                      CallContext* ctx,
                                      const MessageWriter& request);

  // A writable buffer of `size` bytes for a `buffer` argument
  // (runtime/buffer.h): shared (memfd-backed, sent without a copy) where
  // this transport can pass it so, heap otherwise. The default makes a
  // heap buffer.
  virtual absl::StatusOr<Buffer> NewBuffer(size_t size);

  // Opens a call of any method as two message flows (runtime/call.h): the
  // way to call streaming methods. `ctx` must outlive the stream; it gets
  // the default deadline if it has none. Never returns null: a call that
  // cannot start ends at once, and its Read and Finish report why. The
  // default implementation ends every call with UNIMPLEMENTED.
  virtual std::shared_ptr<ClientStream> OpenStream(
      const InterfaceDescriptor& iface, const MethodDescriptor& method,
      CallContext* ctx);

  // "inprocess", "local" or "grpc".
  virtual std::string_view transport_name() const = 0;

  const ChannelOptions& options() const { return options_; }

 protected:
  explicit Channel(ChannelOptions options) : options_(std::move(options)) {}

  // Gives `ctx` the default deadline if it has none, and checks what every
  // transport checks before sending: the request size, and a deadline or
  // cancellation that already happened. Returns the status to fail the call
  // with, or OK.
  absl::Status PrepareCall(CallContext* ctx, size_t request_size) const;
  // The same; `*now` receives the clock reading it used, for transports
  // that need the time again (one clock read per call instead of several).
  absl::Status PrepareCall(CallContext* ctx, size_t request_size,
                           absl::Time* now) const;

 private:
  ChannelOptions options_;
};

// A stream that ended before it started: Write, Read and Finish report
// `status` at once, WritesDone does nothing. What OpenStream returns for a
// call that cannot start; `ctx` must outlive it.
std::shared_ptr<ClientStream> MakeEndedClientStream(CallContext* ctx,
                                                    absl::Status status);

// Maps a status from the server or the transport to the one the caller
// sees once its own deadline or cancellation has fired: a call whose context
// was cancelled reports CANCELLED, one past its deadline DEADLINE_EXCEEDED.
absl::Status StatusForEndedCall(const CallContext& ctx);

}  // namespace lpc

#endif  // LPC_RUNTIME_CHANNEL_H_
