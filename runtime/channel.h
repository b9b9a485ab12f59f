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
#include "runtime/interface.h"

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
