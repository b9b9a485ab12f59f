// Servers and channels for the reliability suite: an lpc::Server serving
// RelService over the local port and, optionally, over gRPC on a Unix
// socket in the same directory; channels for "local:<name>" and
// "grpc:<address>" targets.
//
// Thread safety: a TestServer is built and destroyed by one thread; its
// service and transports are thread-safe.
#ifndef LPC_TESTS_RELIABILITY_HARNESS_H_
#define LPC_TESTS_RELIABILITY_HARNESS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/channel.h"
#include "runtime/server.h"
#include "tests/reliability/reliability_service.h"
#include "transports/local/local_transport.h"

namespace lpc::reliability {

struct TestServerOptions {
  // Directory of the port socket (and of the gRPC socket g.sock).
  // Default: "" (must be set).
  std::string dir;
  // Local port name; empty = no local transport.
  // Default: "p".
  std::string local_name = "p";
  // Also serve gRPC on unix:<dir>/g.sock.
  // Default: false.
  bool grpc = false;
  // Options of the local port (runtime_dir is set from `dir`; socket_mode
  // 0666 unless set otherwise).
  // Default: defaults.
  local::LocalPortOptions local;
  ServerOptions server;
  // Where RelService's Count appends (-1: nowhere).
  // Default: -1.
  int count_log_fd = -1;
};

class TestServer {
 public:
  explicit TestServer(TestServerOptions options);
  ~TestServer();

  const absl::Status& start_status() const { return start_; }
  RelService& service() { return service_; }
  Server& server() { return server_; }
  // nullptr without a local transport.
  local::LocalServerTransport* local() const { return local_; }
  // "local:<name>" and "grpc:unix:<dir>/g.sock" (empty if not served).
  std::string local_target() const;
  std::string grpc_target() const;

 private:
  TestServerOptions options_;
  RelService service_;
  Server server_;
  local::LocalServerTransport* local_ = nullptr;
  absl::Status start_;
};

// The gRPC address a TestServer in `dir` listens on.
std::string GrpcAddress(const std::string& dir);

// A channel for "local:<name>" (runtime dir `dir`) or "grpc:<address>".
// gRPC channels get the local transport's reconnect backoff (10 ms doubling
// to 1 s) instead of gRPC's default (1 s to 120 s).
absl::StatusOr<std::shared_ptr<Channel>> MakeChannel(
    const std::string& target, const std::string& dir,
    ChannelOptions options = {}, local::LocalChannelOptions local = {});

// One synchronous call of RelService `method`.
absl::StatusOr<std::string> CallRel(Channel& ch, const MethodDescriptor& method,
                                    std::string request,
                                    absl::Duration timeout = absl::Seconds(5));

// An async RelService Hold call (it returns only when cancelled; 60 s
// deadline) that records how it ended.
struct PendingHold {
  CallContext ctx;
  std::atomic<bool> done{false};
  absl::StatusCode code = absl::StatusCode::kUnknown;  // Set before `done`.

  void Start(Channel& ch, const std::string& key);
};

}  // namespace lpc::reliability

#endif  // LPC_TESTS_RELIABILITY_HARNESS_H_
