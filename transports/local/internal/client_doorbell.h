// ClientDoorbell: how a client rings the server's doorbell, the eventfd the
// server sent in its welcome, so that no server can make the ring block.
//
// The eventfd's file description is shared with the server, so its
// O_NONBLOCK flag is the server's to clear (fcntl F_SETFL acts on the
// description). A write of 1 blocks only on a blocking description whose
// counter is at its maximum (2^64 - 2), and the counter is the server's to
// fill (one write of 2^64 - 2). Linux has no per-call way out: pwritev2's
// RWF_NOWAIT is refused for eventfd writes (EOPNOTSUPP; eventfd has no
// write_iter), and an eventfd cannot be reopened as a second description
// through /proc (ENXIO). Checking the flag or the counter first leaves a
// window the server can race.
//
// So a ring writes directly (one syscall, as before) and a process-wide
// watchdog rescues a ring that blocked: every 20 ms, while doorbells exist,
// it looks at each doorbell with a ring in progress, and if its counter is
// full (poll shows no POLLOUT: only a server can have put it there, a
// client adds 1 per ring) it marks the doorbell wedged and drains the
// counter with preadv2(RWF_NOWAIT), which the kernel honours for eventfd
// reads whatever the flag says, so the blocked write completes. A wedged
// doorbell never writes again, and its connection ends with UNAVAILABLE.
// A ring therefore takes at most about one watchdog period plus the time
// the server keeps refilling the counter against the drain.
//
// Thread safety: Ring() and wedged() are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_

#include <atomic>

#include "absl/time/time.h"
#include "transports/local/doorbell.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class ClientDoorbell final : public PeerDoorbell {
 public:
  // How often the watchdog looks at doorbells with a ring in progress.
  static constexpr absl::Duration kWatchdogPeriod = absl::Milliseconds(20);

  // Takes the server's eventfd and registers with the watchdog.
  explicit ClientDoorbell(UniqueFd eventfd);
  // Deregisters (waiting for a watchdog pass that uses it), then closes.
  ~ClientDoorbell() override;
  ClientDoorbell(const ClientDoorbell&) = delete;
  ClientDoorbell& operator=(const ClientDoorbell&) = delete;

  void Ring() override;
  // The server wedged the doorbell: nothing is written to it any more.
  bool wedged() const { return wedged_.load(std::memory_order_acquire); }

  // The watchdog's look at this doorbell (its lock held): rescues a ring
  // blocked on a full counter. Public for the watchdog only.
  void Rescue();

 private:
  UniqueFd fd_;
  std::atomic<int> ringing_{0};  // Rings in progress.
  std::atomic<bool> wedged_{false};
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_
