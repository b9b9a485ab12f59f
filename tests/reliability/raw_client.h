// RawClient: a local-transport client built from the transport's lower
// layers (control socket, memfd validation, section layout, Endpoint), so
// that a test can follow the protocol honestly and then break it: write
// arbitrary records into the request ring, scribble over its section, send
// control packets with any fds, or stop half-way through a step.
//
// Thread safety: one thread at a time, except base()/layout() which a
// scribbler thread may use while another thread calls.
#ifndef LPC_TESTS_RELIABILITY_RAW_CLIENT_H_
#define LPC_TESTS_RELIABILITY_RAW_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/interface.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::reliability {

class RawClient {
 public:
  // Connects to the port socket at `path` and completes the handshake the
  // way LocalChannel does (validating the WELCOME and the memfd). The
  // server's refusal comes back as its status.
  static absl::StatusOr<std::unique_ptr<RawClient>> Connect(
      const std::string& path, absl::Duration timeout = absl::Seconds(5));

  int socket() const { return sock_.get(); }
  int eventfd() const { return eventfd_.get(); }
  std::byte* base() const { return map_.data(); }
  uint64_t size() const { return map_.size(); }
  const local::SectionLayout& layout() const { return layout_; }
  local::SectionControl* control() const {
    return local::ControlOf(map_.data(), layout_);
  }
  local::Endpoint& endpoint() { return *ep_; }

  // --- Honest steps ---
  // Binds `iface`; returns its slot.
  absl::StatusOr<uint32_t> Bind(const InterfaceDescriptor& iface,
                                absl::Duration timeout = absl::Seconds(5));
  // Places a request (or oneway) through the Endpoint and publishes it.
  absl::Status Send(const local::OutgoingMessage& m, bool flush = true);
  // Publishes what Send placed with flush = false.
  void Flush() { ep_->Flush(); }
  // Waits for the next reply. UNAVAILABLE carrying the server's reason when
  // it sent GOODBYE or hung up; DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<local::IncomingMessage> WaitReply(
      absl::Duration timeout = absl::Seconds(5));
  // Makes one call of `method` and returns the reply payload or its status.
  absl::StatusOr<std::string> Call(uint32_t slot, uint32_t method_id,
                                   std::string_view payload,
                                   absl::Duration timeout = absl::Seconds(5));
  uint64_t NextId() { return next_id_++; }

  // --- Hostile steps ---
  // Writes `record` (any bytes; padded to whole slots) at the request ring's
  // producer position without publishing it.
  void WriteRaw(std::string_view record);
  // Publishes every raw record written and rings the server's eventfd.
  void PublishRaw();
  // Both of the above.
  void SendRaw(std::string_view record) {
    WriteRaw(record);
    PublishRaw();
  }
  // Rings the server's doorbell without publishing anything.
  void Ring();
  // Waits until the server cuts this client off (GOODBYE or hang-up).
  // Returns the reason it gave ("hang-up" without GOODBYE), or nullopt if
  // the connection is still up after `timeout`.
  std::optional<std::string> WaitCutOff(absl::Duration timeout);

 private:
  RawClient() = default;
  // Reads pending control packets; returns the GOODBYE reason or hang-up.
  // With `leave_payload_fds`, a PAYLOAD_FD at the head of the socket stays
  // there for the endpoint (a reply record that is not yet visible needs it).
  std::optional<std::string> CheckSocket(bool leave_payload_fds = false);

  local::UniqueFd sock_;
  local::UniqueFd eventfd_;
  local::Mapping map_;
  local::SectionLayout layout_;
  std::unique_ptr<local::SocketMemfdPort> port_;
  std::unique_ptr<local::Endpoint> ep_;
  uint64_t raw_tail_ = 0;
  uint64_t next_id_ = 1;
};

// A record of a frame header followed by `inline_payload`, with
// record_size and payload_length filled in for the inline mode.
std::string MakeRecord(const local::FrameHeader& h,
                       std::string_view inline_payload = {});
// A valid inline REQUEST header for `slot`/`method` with `payload_length`.
local::FrameHeader RequestHeader(uint64_t id, uint32_t slot, uint32_t method,
                                 uint32_t payload_length);

}  // namespace lpc::reliability

#endif  // LPC_TESTS_RELIABILITY_RAW_CLIENT_H_
