// ClientDoorbell and its process-wide watchdog; see client_doorbell.h.
#include "transports/local/internal/client_doorbell.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "runtime/mutex.h"

namespace lpc::local::internal {
namespace {

// Drains the counter without blocking, whatever the description's
// O_NONBLOCK says. True if it read something.
bool DrainNoWait(int fd) {
  uint64_t value = 0;
  struct iovec iov = {&value, sizeof(value)};
  ssize_t rc;
  do {
    rc = ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  } while (rc < 0 && errno == EINTR);
  return rc == sizeof(value);
}

// The watchdog: one thread per process, started with the first doorbell,
// never stopped (it sleeps a second at a time while there is none).
class Watchdog {
 public:
  static Watchdog& Get() {
    static Watchdog* const watchdog = new Watchdog;  // Never destroyed.
    return *watchdog;
  }

  void Add(ClientDoorbell* bell) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    bells_.insert(bell);
    if (!started_) {
      started_ = true;
      std::thread([this] { Run(); }).detach();
    }
    cv_.Signal();
  }

  // Once this returns, the watchdog no longer touches `bell`.
  void Remove(ClientDoorbell* bell) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    bells_.erase(bell);
  }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    for (;;) {
      const absl::Duration period =
          bells_.empty() ? absl::Seconds(1) : ClientDoorbell::kWatchdogPeriod;
      cv_.WaitWithDeadline(&mu_, absl::Now() + period);
      for (ClientDoorbell* bell : bells_) bell->Rescue();
    }
  }

  Mutex mu_;
  CondVar cv_;
  absl::flat_hash_set<ClientDoorbell*> bells_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

ClientDoorbell::ClientDoorbell(UniqueFd eventfd) : fd_(std::move(eventfd)) {
  Watchdog::Get().Add(this);
}

ClientDoorbell::~ClientDoorbell() { Watchdog::Get().Remove(this); }

void ClientDoorbell::Ring() {
  if (wedged()) return;
  ringing_.fetch_add(1, std::memory_order_seq_cst);
  const uint64_t one = 1;
  ssize_t rc;
  do {
    rc = ::write(fd_.get(), &one, sizeof(one));
  } while (rc < 0 && errno == EINTR);
  ringing_.fetch_sub(1, std::memory_order_release);
}

void ClientDoorbell::Rescue() {
  if (ringing_.load(std::memory_order_seq_cst) == 0) return;
  if (!wedged()) {
    struct pollfd p = {fd_.get(), POLLOUT, 0};
    // Room in the counter: the ring in progress is not blocked.
    if (::poll(&p, 1, 0) < 0 || (p.revents & POLLOUT) != 0) return;
    // A full counter: only the server can have filled it.
    wedged_.store(true, std::memory_order_release);
  }
  // Each drain wakes the blocked writer; a server that refills at once
  // can win a few rounds, so keep at it for a little while, then come
  // back on the next pass.
  for (int i = 0; i < 1000 && ringing_.load(std::memory_order_acquire) > 0;
       ++i) {
    DrainNoWait(fd_.get());
    ::sched_yield();
  }
}

}  // namespace lpc::local::internal
