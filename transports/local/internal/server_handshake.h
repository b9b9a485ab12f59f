// The server half of the handshake: for an admitted client, a sealed memfd
// section, its eventfd doorbell and the server's endpoint on it, offered to
// the client in one kWelcome packet (docs/local-transport.md, "Connection
// and handshake").
//
// Thread safety: a free function; the caches in the options are
// thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_HANDSHAKE_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_HANDSHAKE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/local_transport.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

struct ServerHandshakeOptions {
  SectionGeometry geometry;
  uint32_t max_inline_record = 1024;
  uint64_t max_message_size = 0;  // The dispatcher's.
  BufferCache* buffers = nullptr;
  PayloadMemfdPool* memfd_pool = nullptr;
  absl::Duration payload_cache_idle;
  std::string address;  // Every call's peer address, "local:<name>".
  // Budgets on reply memfds the client has not collected (EndpointOptions),
  // and the connection's byte budgets (Connection::request_bytes,
  // reply_bytes); 0 = no limit.
  uint64_t max_reply_memfd_bytes_per_connection = 0;
  uint64_t max_request_bytes_per_connection = 0;
  uint64_t max_queued_reply_bytes_per_connection = 0;
  ServerBudgets* budgets = nullptr;  // Not owned; null = none.
  // Owns `buffers`, `memfd_pool` and `budgets` where they are the
  // server's; the connection keeps it (Connection::server_state).
  std::shared_ptr<const void> server_state;
  // How long a memfd-mode record may wait, parked at the head of the
  // client's ring, for its payload memfd before the client is cut off
  // (Connection::memfd_parked_ns; no thread waits meanwhile).
  absl::Duration memfd_wait = absl::Milliseconds(500);
  // Most descriptors a message may carry (EndpointOptions::max_handles).
  uint32_t max_handles = 16;
};

// Builds the connection for client `sock` (identity `creds`) and sends it
// kWelcome with the section memfd and the eventfd; the memfd's last
// server-side descriptor closes on return (the mapping stays). An error
// means the client is dropped: where the section could not be made, it has
// been sent a kRefused packet first.
absl::StatusOr<std::shared_ptr<Connection>> ServerHandshake(
    UniqueFd sock, const PeerCredentials& creds,
    const ServerHandshakeOptions& options);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_HANDSHAKE_H_
