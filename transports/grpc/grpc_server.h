// The gRPC server transport: serves an lpc::Server's services to gRPC
// clients, lpc's GrpcChannel or any other gRPC client that speaks the
// .proto lpcc emits.
//
//   lpc::GrpcServerOptions options;
//   options.listen_addresses = {"0.0.0.0:4000", "unix:/run/calc.sock"};
//   server.AddTransport(lpc::MakeGrpcServerTransport(options));
//   server.Start();
//
// Every call arrives with raw byte buffers, so no per-service gRPC code
// exists. The path "/<package>.<Interface>/<Method>" selects the interface
// and method (resolved once, at Start). A unary method with a synchronous
// handler is served on the transport's completion queue: the thread that
// takes the call from gRPC runs the handler and sends the reply, as gRPC's
// synchronous server does; unknown paths and the health service are served
// there too. Other calls come through gRPC's callback API and run on the
// runtime's handler pool (never on gRPC's own threads); only a server with
// such methods registers callback services.
// Handlers get the call's deadline, metadata and peer in their CallContext;
// streaming methods and [async] handlers get an lpc::ServerStream on gRPC's
// flow control. See docs/grpc-transport.md.
//
// Thread safety: Start and Shutdown are called by lpc::Server; target() and
// ports() are thread-safe once Start has returned.
#ifndef LPC_TRANSPORTS_GRPC_GRPC_SERVER_H_
#define LPC_TRANSPORTS_GRPC_GRPC_SERVER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/server.h"

namespace lpc {

// Server TLS from PEM files (used when GrpcServerOptions::credentials is
// nullptr). Every file is read and checked when the transport starts; a
// missing file or a bad certificate fails Start with a message naming it.
struct GrpcServerTlsOptions {
  // The server's certificate chain and its private key. Both set: every
  // listening address serves TLS. Both empty: no TLS.
  // Default: empty.
  std::string cert_chain_file;
  std::string private_key_file;
  // PEM roots that client certificates must chain to. When set, clients are
  // asked for a certificate; one that does not verify is refused, and a
  // verified one's names reach the handler's ctx.peer() (tls_common_name,
  // tls_alt_names).
  // Default: empty (clients are not asked).
  std::string client_ca_file;
  // Refuse clients that present no certificate (mTLS). Needs client_ca_file.
  // Default: false.
  bool require_client_cert = false;
};

struct GrpcServerOptions {
  // Where to listen, in gRPC's syntax: "127.0.0.1:4000", "[::]:4000",
  // "unix:/path/to.sock". Port 0 picks a free port; ports() and target()
  // report the one chosen.
  // Default: empty (Start fails with INVALID_ARGUMENT).
  std::vector<std::string> listen_addresses;
  // Credentials for every listening address. nullptr means insecure.
  // Default: nullptr.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // TLS from files, when `credentials` is nullptr.
  GrpcServerTlsOptions tls;
  // Serve gRPC's standard health service (grpc.health.v1.Health, lpc's
  // own implementation on the completion queue): SERVING for "" and for
  // every interface of the Server while running, NOT_SERVING from the
  // moment Shutdown starts draining; Watch streams end when it has drained.
  // Default: true.
  bool health_service = true;
  // Most health Watch streams open at once on this transport, from all
  // clients together; one more ends at once with RESOURCE_EXHAUSTED, so a
  // client cannot make the server hold an unbounded number. At least 1.
  // Default: 1024.
  size_t max_health_watches = 1024;
  // Serve gRPC's server reflection (grpc.reflection.v1alpha): lists the
  // Server's interfaces (the built-in lpc.introspection.Introspection too)
  // and returns the file descriptors of their .proto (compiled into the
  // program by lpc_cc_library), so that reflection clients (grpcurl,
  // grpc_cli, Python's grpc_reflection) can call them.
  // Default: true.
  bool reflection = true;
  // Threads that run handlers, for each of the two kinds of calls (unary
  // calls with a synchronous handler on the completion queue; the others
  // on the handler pool). More start, up to max_workers running handlers,
  // while every thread is busy (the completion queue keeps one more thread
  // that takes cancellations); calls beyond that wait in a queue until a
  // thread frees up or their deadline passes.
  // Default: 2 and 64.
  int min_workers = 2;
  int max_workers = 64;
  // Calls allowed to wait in each of those queues; more fail with
  // RESOURCE_EXHAUSTED.
  // Default: 4096.
  size_t max_queued_calls = 4096;
  // The largest request and reply gRPC accepts; larger ones fail with
  // RESOURCE_EXHAUSTED. 0 uses the Server's ServerOptions::max_message_size.
  // Default: 0.
  size_t max_message_size = 0;
  // A context handle lease lapses this long after the last call that bore
  // it, and its contexts run down (docs/handles.md, "Leases (gRPC)").
  // Default: 30 seconds.
  absl::Duration context_lease_timeout = absl::Seconds(30);
  // Any other gRPC server channel argument (GRPC_ARG_*), e.g. keepalive
  // enforcement. Applied last; lpc itself sets GRPC_ARG_ALLOW_REUSEPORT to 0
  // so that a port already in use fails Start.
  // Default: empty.
  std::map<std::string, std::variant<int, std::string>> channel_args;
};

class GrpcServerTransport final : public ServerTransport {
 public:
  explicit GrpcServerTransport(GrpcServerOptions options);
  ~GrpcServerTransport() override;  // Shuts down at once if still running.
  GrpcServerTransport(const GrpcServerTransport&) = delete;
  GrpcServerTransport& operator=(const GrpcServerTransport&) = delete;

  // Binds every listening address and starts serving. UNAVAILABLE if an
  // address cannot be bound, naming the address and the reason ("Address
  // already in use", "Permission denied"); a TLS file's error (see
  // GrpcServerTlsOptions); FAILED_PRECONDITION if started twice.
  absl::Status Start(Dispatcher* dispatcher) override;

  // Refuses new calls with UNAVAILABLE, lets running calls finish until
  // `deadline`, then cancels their contexts and fails them with
  // UNAVAILABLE, and finally stops listening. (The listener stays open
  // while draining so that late callers get UNAVAILABLE, which they may
  // retry elsewhere, rather than a reset.) Returns once every handler has
  // returned.
  void Shutdown(absl::Time deadline) override;

  // "grpc:" + the first listening address, with the chosen port.
  std::string target() const override;

  // The chosen port of each listening address, in order (Unix sockets have
  // none and report 0).
  std::vector<int> ports() const;

  // Counters only: calls started, refused, in flight and queued, and the
  // bytes of unary requests and replies. gRPC shows a callback server no
  // connections, so none are listed.
  void Report(TransportReport* report) const override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

inline std::unique_ptr<GrpcServerTransport> MakeGrpcServerTransport(
    GrpcServerOptions options) {
  return std::make_unique<GrpcServerTransport>(std::move(options));
}

}  // namespace lpc

#endif  // LPC_TRANSPORTS_GRPC_GRPC_SERVER_H_
