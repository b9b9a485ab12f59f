// Test-only entry points into the local server's handling of one client,
// for the fuzz targets (//transports/local:control_path_fuzzer and
// :handle_message_fuzzer). A ServerFuzzPeer owns a server that is never
// started: no I/O thread, no workers, no listening socket. The caller makes
// a connection with Accept and then runs the server's steps by hand, each
// on the calling thread: the I/O thread's read of the control socket, a
// worker's drain of the request ring, or HandleMessage on one decoded
// message.
//
// Thread safety: one thread at a time. Defined in local_server.cc, where
// the server class lives.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_FUZZ_PEER_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_FUZZ_PEER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/server.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/local_transport.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class ServerFuzzPeer {
 public:
  // `dispatcher` outlives this.
  ServerFuzzPeer(const LocalPortOptions& options, Dispatcher* dispatcher);
  // Drops the server, its queues and the connections they hold.
  ~ServerFuzzPeer();
  ServerFuzzPeer(const ServerFuzzPeer&) = delete;
  ServerFuzzPeer& operator=(const ServerFuzzPeer&) = delete;

  // The server's side of the handshake over connected socket `sock`, as
  // the listener runs it (the kWelcome packet goes to the peer of `sock`);
  // `memfd_wait` is how long a record may stay parked for its payload
  // memfd (enforced by the tick, which never runs here).
  absl::StatusOr<std::shared_ptr<Connection>> Accept(UniqueFd sock,
                                                     absl::Duration memfd_wait);
  // The I/O thread's turn when `c`'s control socket is readable.
  void OnSocketReadable(const std::shared_ptr<Connection>& c);
  // A worker's turn on `c`'s request ring (decoded calls are queued, never
  // run).
  void Drain(const std::shared_ptr<Connection>& c);
  // HandleMessage on one message read from `c`'s ring; the calls it
  // decodes are appended to `items`.
  void HandleMessage(const std::shared_ptr<Connection>& c, IncomingMessage msg,
                     std::vector<WorkItem>* items);
  // Ends `c` as the server does (its queued calls and stashed fds go).
  void Close(const std::shared_ptr<Connection>& c);

 private:
  std::unique_ptr<LocalServerTransport> server_;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_FUZZ_PEER_H_
