// The in-process transport: client and server in one process, no bytes on a
// wire. It follows the same call semantics as the real transports: requests
// and replies are copied, deadlines and cancellation reach the handler
// through its context, and shutdown drains then fails the rest. An
// interface is resolved once per channel (Dispatcher::Bind) and calls are
// dispatched by method id.
//
// Where handlers run:
//  - A synchronous call of a plain unary method (Channel::Call, what the
//    generated blocking stubs use) runs its handler on the calling thread,
//    like a function call: no hand-off, no wake-up. The caller's Cancel()
//    reaches the handler's context, which has the caller's deadline; the
//    call returns when the handler does (DEADLINE_EXCEEDED or CANCELLED if
//    that came first: the deadline cannot preempt the caller's thread). It
//    is in flight for Shutdown like any other call. A handler may call the
//    same channel again; that call runs inline too.
//  - Everything else runs on the runtime's handler pool: StartCall and
//    SendOneway (the caller does not wait for the handler; deadlines and
//    cancellation end the call on the client at once), methods whose
//    handler takes the call ([async]), and streams, which go through the
//    call model (runtime/call.h): each direction of a stream is a queue
//    bounded by the reader's StreamWindow; a client that drops its stream
//    cancels the call.
//
//   auto transport = std::make_unique<lpc::InProcessTransport>("calc");
//   lpc::InProcessTransport* t = transport.get();
//   server.AddTransport(std::move(transport));
//   server.Start();
//   auto channel = t->NewChannel();         // or CreateChannel("inprocess:calc")
//
// Thread safety: all methods are thread-safe.
#ifndef LPC_RUNTIME_INPROCESS_H_
#define LPC_RUNTIME_INPROCESS_H_

#include <memory>
#include <string>

#include "runtime/channel.h"
#include "runtime/server.h"

namespace lpc {

struct InProcessOptions {
  // Worker threads that run the handlers that do not run on their
  // caller's thread (see above). More are started, up to max_workers,
  // while every worker is busy in a handler. Default: 2 and 32.
  int min_workers = 2;
  int max_workers = 32;
};

class InProcessTransport final : public ServerTransport {
 public:
  explicit InProcessTransport(std::string name, InProcessOptions options = {});
  ~InProcessTransport() override;

  // Registers "inprocess:<name>" for CreateChannel while started.
  absl::Status Start(Dispatcher* dispatcher) override;
  void Shutdown(absl::Time deadline) override;
  std::string target() const override;
  // No connections; the counters calls_in_flight (unary calls, inline or
  // on the pool, and streams) and calls_inline (synchronous calls whose
  // handler ran on the caller's thread, so far).
  void Report(TransportReport* report) const override;

  // A channel to this transport. Calls before Start or after Shutdown fail
  // with UNAVAILABLE. The channel may outlive the transport.
  std::shared_ptr<Channel> NewChannel(ChannelOptions options = {});

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Makes CreateChannel understand "inprocess:<name>". Called by Start(); safe
// to call more than once.
void RegisterInProcessTransport();

}  // namespace lpc

#endif  // LPC_RUNTIME_INPROCESS_H_
