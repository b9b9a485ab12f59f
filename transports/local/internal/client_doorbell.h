// ClientDoorbell: how a client rings the server's doorbell, the eventfd
// the server sent in its welcome.
//
// Thread safety: Ring() is thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_

#include "transports/local/doorbell.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

class ClientDoorbell final : public PeerDoorbell {
 public:
  explicit ClientDoorbell(UniqueFd eventfd) : fd_(std::move(eventfd)) {}
  ClientDoorbell(const ClientDoorbell&) = delete;
  ClientDoorbell& operator=(const ClientDoorbell&) = delete;

  void Ring() override { SignalEventFd(fd_.get()); }
  bool wedged() const { return false; }

 private:
  UniqueFd fd_;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_DOORBELL_H_
