// Server: registers services and serves them through one or more transports.
//
//   lpc::Server server;
//   CalculatorImpl calc;                       // derives CalculatorService
//   server.RegisterService(&calc);
//   server.AddTransport(MakeLocalServerTransport(...));
//   server.AddTransport(MakeGrpcServerTransport(...));
//   server.Start();
//   ...
//   server.Shutdown();
//
// Transports never see Service objects directly: they call the server
// through the Dispatcher interface, which finds the service, checks the
// interface binding and the message size, and runs the handler.
//
// Thread safety: RegisterService and AddTransport before Start; after that,
// every method is safe from any thread, Shutdown included from inside a
// handler (see Shutdown).
#ifndef LPC_RUNTIME_SERVER_H_
#define LPC_RUNTIME_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/interface.h"
#include "runtime/mutex.h"
#include "runtime/service.h"

namespace lpc {

class ServerInterceptor;  // runtime/interceptor.h

struct ServerOptions {
  // Requests and replies larger than this fail with RESOURCE_EXHAUSTED.
  // Default: 64 MiB.
  size_t max_message_size = size_t{64} << 20;
  // How long Shutdown() lets in-flight calls finish before failing them
  // with UNAVAILABLE.
  // Default: 5 seconds.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // The flow-control window of each stream's client-to-server flow: how
  // much a client may send ahead of the handler's reads.
  StreamWindow stream_window;
  // Context handles (runtime/context_handle.h) one client connection (a
  // gRPC lease) may hold open; opening more fails with RESOURCE_EXHAUSTED.
  // Default: 4096.
  size_t max_context_handles_per_connection = 4096;
  // Serve the introspection service, lpc.introspection.Introspection
  // (runtime/introspection.idl, docs/lpcctl.md), on every transport: Start
  // registers it after the user's services, unless one of them is it. In
  // the config file: server.introspection (docs/config.md).
  // Default: true.
  bool introspection = true;
};

// One client connection, as a transport reports it to the introspection
// service (ListConnections).
struct ConnectionReport {
  uint64_t id = 0;            // Unique within the transport.
  std::string transport;      // "local", "grpc", "inprocess".
  std::optional<uint32_t> peer_uid;
  std::optional<int32_t> peer_pid;
  std::string peer_address;   // Where the transport has one.
  uint32_t calls_in_flight = 0;
  uint64_t calls = 0;         // Calls started on the connection.
  uint64_t bytes_in = 0;      // Request payload bytes received.
  uint64_t bytes_out = 0;     // Reply payload bytes sent.
  uint32_t context_handles = 0;  // Context handles open on it.
  int64_t connected_unix_ms = 0;
};

// What a transport reports about itself (ServerTransport::Report).
struct TransportReport {
  // Its connections now; empty where it has no connection identity (gRPC).
  std::vector<ConnectionReport> connections;
  // Its counters by name ("connections_accepted"); the introspection
  // service prefixes them with the transport's kind ("local.").
  std::vector<std::pair<std::string, uint64_t>> counters;
  // Clients cut off, by reason ("data_loss", "resource_exhausted").
  std::vector<std::pair<std::string, uint64_t>> cutoffs;
};

// An interface resolved once, when a connection or call binds to it; the
// transport keeps the pointer and dispatches by method id, with no string
// look-up per call. Owned by the Server; valid until it is destroyed.
struct BoundInterface {
  const InterfaceDescriptor* descriptor = nullptr;
  int service_index = -1;  // the dispatcher's own index

  struct Method {
    const MethodDescriptor* descriptor = nullptr;
    std::string path;         // "/example.calc.Calculator/Add"
    bool uses_start_call = false;  // streaming or [async]: use StartCall
    // StartCall holds the thread until the call ends (a synchronous
    // streaming handler; Service::StartCallBlocks).
    bool start_call_blocks = false;
  };
  // Indexed by position in descriptor->methods.
  std::vector<Method> methods;

  // The method with ordinal `id`, or nullptr.
  const Method* FindMethod(uint32_t id) const;
};

// What a transport needs from the server. Implemented by Server.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;

  // The registered interface called `full_name`, or nullptr.
  virtual const InterfaceDescriptor* FindInterface(
      std::string_view full_name) const = 0;

  // The bind check: the interface exists (else UNIMPLEMENTED) and the
  // client's uuid and major version match (else FAILED_PRECONDITION naming
  // both versions).
  virtual absl::Status CheckBinding(std::string_view full_name,
                                    std::string_view uuid,
                                    InterfaceVersion version) const = 0;

  // Runs one call on the calling thread. UNIMPLEMENTED for an unknown
  // interface or method; RESOURCE_EXHAUSTED when the request or the reply
  // exceeds max_message_size; otherwise the handler's status.
  virtual absl::Status Dispatch(std::string_view full_name, uint32_t method_id,
                                CallContext& ctx, std::string_view request,
                                std::string* response) = 0;

  virtual const ServerOptions& options() const = 0;

  // The registered interface called `full_name`, resolved for dispatch by
  // method id, or nullptr.
  virtual const BoundInterface* Bind(std::string_view full_name) const {
    (void)full_name;
    return nullptr;
  }

  // Runs a plain unary call of `method` (uses_start_call false) on the
  // calling thread, like Dispatch without the look-ups.
  virtual absl::Status DispatchBound(const BoundInterface& iface,
                                     const BoundInterface::Method& method,
                                     CallContext& ctx,
                                     std::string_view request,
                                     std::string* response) {
    return Dispatch(iface.descriptor->full_name, method.descriptor->id, ctx,
                    request, response);
  }

  // The zero-copy form of DispatchBound (docs/zero-copy.md): the request is
  // decoded in place and the reply written through `reply`. The default
  // uses DispatchBound with strings.
  virtual absl::Status DispatchBoundWith(const BoundInterface& iface,
                                         const BoundInterface::Method& method,
                                         CallContext& ctx,
                                         ReceivedMessage& request,
                                         ReplySink& reply);

  // Starts a call that runs through the call model (streaming methods and
  // [async] handlers) and returns once its handler returned; the call may
  // go on long after. Whatever happens, `call` is finished exactly once.
  virtual void StartCall(const BoundInterface& iface,
                         const BoundInterface::Method& method,
                         std::shared_ptr<ServerStream> call) {
    (void)iface;
    (void)method;
    call->Finish(absl::UnimplementedError("streams are not supported"));
  }

  // Every registered interface, in registration order (a transport that
  // announces services, e.g. gRPC's health and reflection services).
  virtual std::vector<const InterfaceDescriptor*> Interfaces() const {
    return {};
  }
};

// One way of reaching a server: the local port, gRPC, in-process.
class ServerTransport {
 public:
  virtual ~ServerTransport() = default;

  // Starts accepting calls and passing them to `dispatcher`, which outlives
  // the transport's serving (until Shutdown returns).
  virtual absl::Status Start(Dispatcher* dispatcher) = 0;

  // Stops accepting new calls, lets in-flight calls finish until `deadline`,
  // then fails the rest with UNAVAILABLE. Returns once no handler runs and
  // no thread of the transport touches the dispatcher any more. The Server
  // never calls it on a thread inside a ServingThreadScope
  // (runtime/internal/serving_thread.h): a transport marks the threads it
  // joins that run user code, and the Server marks every dispatch.
  virtual void Shutdown(absl::Time deadline) = 0;

  // Where clients reach it, as a target string ("local:calc", "grpc:...").
  virtual std::string target() const = 0;

  // Adds its connections and counters to `report`, for the introspection
  // service. Called from any thread while the transport serves (and
  // before Start or after Shutdown, when it may report nothing); it must
  // not wait on a peer. The default reports nothing.
  virtual void Report(TransportReport* report) const { (void)report; }
};

class Server final : public Dispatcher {
 public:
  explicit Server(ServerOptions options = {});
  // Shuts down if still running, and waits until that shutdown, wherever
  // it began, has completed. Not from a handler of this server: the server
  // must outlive every call it serves.
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers `service`, not owned; it must outlive the server. Fails with
  // ALREADY_EXISTS if its interface is registered already.
  absl::Status RegisterService(Service* service);

  // Adds a transport; a server may have several, serving the same services.
  absl::Status AddTransport(std::unique_ptr<ServerTransport> transport);

  // Adds an interceptor that sees every call on every transport
  // (runtime/interceptor.h); they run in the order added. Before Start.
  absl::Status AddInterceptor(std::shared_ptr<ServerInterceptor> interceptor);

  // What the interceptors report (the "metrics" interceptor: per-method
  // call counts and latency histograms), one after the other; "" when none
  // reports anything.
  std::string Metrics() const;

  // Starts every transport. On failure the ones started are shut down.
  absl::Status Start();

  // Shuts every transport down with options().shutdown_grace: each stops
  // accepting calls (new ones fail with UNAVAILABLE), lets the calls in
  // flight finish until the grace ends, then fails the rest with
  // UNAVAILABLE and cancels their handlers. Idempotent.
  //
  // Called from an ordinary thread, it returns once the shutdown has
  // completed: no handler runs any more. Called while another thread shuts
  // the server down, it waits for that shutdown too.
  //
  // Called from inside a handler, or from any other code a transport runs
  // on its own threads (stream and cancel callbacks, interceptors), on any
  // transport: it starts the shutdown on a thread of the server's and
  // returns at once, without waiting, because that shutdown waits for the
  // calling handler. The calling call is one of the calls in flight: once
  // its handler returns, its reply goes out as usual (within the grace).
  // Wait() or the destructor, on another thread, waits for the end.
  // (grpc::Server::Shutdown from a handler deadlocks; this does not.)
  void Shutdown();

  // Blocks until the server has been shut down and the shutdown has
  // completed, whichever thread called Shutdown: what a daemon's main
  // thread calls when a "Shutdown" RPC ends the server. Returns at once if
  // Start has not succeeded, and, inside a handler, at once (it would wait
  // for itself).
  void Wait();

  // The target strings of the transports, in the order they were added.
  std::vector<std::string> targets() const;

  // Calls dispatched so far, and how many of them ended with an error.
  uint64_t calls_dispatched() const { return calls_.load(); }
  uint64_t calls_failed() const { return failed_.load(); }

  // Whether the server serves: Start has begun and Shutdown has not.
  bool serving() const { return serving_.load(std::memory_order_acquire); }
  // When Start began; absl::InfinitePast() before.
  absl::Time start_time() const;
  // Each transport's Report, in the order the transports were added.
  std::vector<TransportReport> TransportReports() const;

  // Dispatcher:
  const InterfaceDescriptor* FindInterface(
      std::string_view full_name) const override;
  absl::Status CheckBinding(std::string_view full_name, std::string_view uuid,
                            InterfaceVersion version) const override;
  absl::Status Dispatch(std::string_view full_name, uint32_t method_id,
                        CallContext& ctx, std::string_view request,
                        std::string* response) override;
  const ServerOptions& options() const override { return options_; }
  std::vector<const InterfaceDescriptor*> Interfaces() const override;
  const BoundInterface* Bind(std::string_view full_name) const override;
  absl::Status DispatchBound(const BoundInterface& iface,
                             const BoundInterface::Method& method,
                             CallContext& ctx, std::string_view request,
                             std::string* response) override;
  absl::Status DispatchBoundWith(const BoundInterface& iface,
                                 const BoundInterface::Method& method,
                                 CallContext& ctx, ReceivedMessage& request,
                                 ReplySink& reply) override;
  void StartCall(const BoundInterface& iface,
                 const BoundInterface::Method& method,
                 std::shared_ptr<ServerStream> call) override;

 private:
  // RegisterService's work, also for the built-in introspection service.
  absl::Status RegisterServiceLocked(Service* service)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Service* FindService(std::string_view full_name) const;
  // The index of the service for `full_name` in services_, or -1.
  int FindServiceIndex(std::string_view full_name) const;

  // DispatchBound without interceptors.
  absl::Status RunBound(const BoundInterface& iface,
                        const BoundInterface::Method& method, CallContext& ctx,
                        std::string_view request, std::string* response);
  // DispatchBound and StartCall with interceptors (server_intercept.cc).
  absl::Status DispatchIntercepted(const BoundInterface& iface,
                                   const BoundInterface::Method& method,
                                   CallContext& ctx, std::string_view request,
                                   std::string* response);
  void StartCallIntercepted(const BoundInterface& iface,
                            const BoundInterface::Method& method,
                            std::shared_ptr<ServerStream> call);

  const ServerOptions options_;
  // Written only before Start; read concurrently afterwards. Empty in most
  // servers: the dispatch paths test it once.
  std::vector<std::shared_ptr<ServerInterceptor>> interceptors_;
  // Written only before Start; read concurrently afterwards.
  std::vector<Service*> services_;
  // One per service, same order: what Bind returns (with each method's
  // "/<interface>/<method>" path, built once, so that dispatch points a
  // context at it instead of building a string per call). unique_ptr so
  // that the pointers stay put while services are registered.
  std::vector<std::unique_ptr<BoundInterface>> bound_;
  std::vector<std::unique_ptr<ServerTransport>> transports_;

  // Shuts the transports down, then marks the shutdown done.
  void ShutdownTransports(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // Serialises Start and Shutdown's start. Not held while the transports
  // shut down: a handler calling Shutdown then must not block on it.
  Mutex mu_;
  CondVar shutdown_cv_;  // shutdown_done_ became true.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;    // Shutdown has begun.
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;  // ... and completed.
  // Runs the shutdown that a handler started; joined by the destructor.
  std::thread shutdown_thread_ ABSL_GUARDED_BY(mu_);

  // The built-in introspection service, made by Start.
  std::unique_ptr<Service> introspection_;

  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<bool> serving_{false};
  std::atomic<int64_t> start_unix_ns_{0};  // 0 = not started.
};

}  // namespace lpc

#endif  // LPC_RUNTIME_SERVER_H_
