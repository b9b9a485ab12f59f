// For tests whose raw clients break the local protocol on purpose: what the
// server said when it cut the client off.
#ifndef LPC_TRANSPORTS_LOCAL_GOODBYE_TESTING_H_
#define LPC_TRANSPORTS_LOCAL_GOODBYE_TESTING_H_

#include <algorithm>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "transports/local/control_socket.h"
#include "transports/local/frame.h"

namespace lpc::testing {

// Reads control packets from `sock` until the server's GOODBYE and returns
// its reason; "hang-up" if the socket ends first, "" if neither happens
// within `timeout`. Other packets are skipped.
inline std::string WaitForGoodbye(int sock,
                                  absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    absl::StatusOr<local::Packet> p = local::RecvPacket(
        sock, std::min(end, absl::Now() + absl::Milliseconds(50)));
    if (absl::IsDeadlineExceeded(p.status())) continue;
    if (!p.ok()) return "hang-up";
    absl::Span<const std::byte> body;
    absl::StatusOr<local::ControlType> t = local::DecodeControlHeader(
        absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                            p->bytes.size()),
        &body);
    if (t.ok() && *t == local::ControlType::kGoodbye) {
      return std::string(local::DecodeStatusBody(body).message());
    }
  }
  return "";
}

}  // namespace lpc::testing

#endif  // LPC_TRANSPORTS_LOCAL_GOODBYE_TESTING_H_
