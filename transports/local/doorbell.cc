// Futex, eventfd and clock helpers; see doorbell.h.
#include "transports/local/doorbell.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace lpc::local {

absl::Status FutexWait(uint32_t* word, uint32_t expected,
                       absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("futex wait: timeout");
  }
  struct timespec ts = absl::ToTimespec(timeout);
  const long rc = ::syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts,
                            nullptr, 0);
  if (rc == 0) return absl::OkStatus();
  if (errno == ETIMEDOUT) return absl::DeadlineExceededError("futex wait: timeout");
  // EAGAIN: the value differed; EINTR: a signal. Both mean "re-check".
  return absl::OkStatus();
}

void FutexWake(uint32_t* word, int count) {
  ::syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

absl::StatusOr<UniqueFd> CreateEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    return absl::ResourceExhaustedError(
        absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return fd;
}

void SignalEventFd(int fd) {
  const uint64_t one = 1;
  ssize_t rc;
  do {
    rc = ::write(fd, &one, sizeof(one));
  } while (rc < 0 && errno == EINTR);
}

bool DrainEventFd(int fd) {
  uint64_t value = 0;
  ssize_t rc;
  do {
    rc = ::read(fd, &value, sizeof(value));
  } while (rc < 0 && errno == EINTR);
  return rc == sizeof(value) && value != 0;
}

uint32_t RunningValueForThisCpu() {
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? 1u : static_cast<uint32_t>(cpu) + 1;
}

bool PeerRunningElsewhere(uint32_t peer_running) {
  if (peer_running == 0) return false;
  return peer_running != RunningValueForThisCpu();
}

void YieldCpu() { ::sched_yield(); }

bool MoveOffThisCpu() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  // More CPUs than a cpu_set_t holds (1024) fail here: nothing is moved.
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return false;
  const int cpu = ::sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed) ||
      CPU_COUNT(&allowed) < 2) {
    return false;
  }
  cpu_set_t others = allowed;
  CPU_CLR(cpu, &others);
  if (::sched_setaffinity(0, sizeof(others), &others) != 0) return false;
  // Already on another CPU: widening again does not move it back.
  (void)::sched_setaffinity(0, sizeof(allowed), &allowed);
  return true;
}

int64_t MonotonicNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t ToMonotonicDeadlineNs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return 0;
  return ToMonotonicDeadlineNs(deadline, absl::Now(), MonotonicNowNs());
}

int64_t ToMonotonicDeadlineNs(absl::Time deadline, absl::Time wall_now,
                              int64_t now) {
  if (deadline == absl::InfiniteFuture()) return 0;
  const absl::Duration left = deadline - wall_now;
  if (left <= absl::ZeroDuration()) return now > 0 ? now : 1;
  const int64_t left_ns = absl::ToInt64Nanoseconds(left);
  if (left_ns > INT64_MAX - now) return 0;
  return now + left_ns;
}

absl::Time FromMonotonicDeadlineNs(int64_t deadline_ns) {
  if (deadline_ns <= 0) return absl::InfiniteFuture();
  return FromMonotonicDeadlineNs(deadline_ns,
                                 WallClockAnchor(absl::Now(), MonotonicNowNs()));
}

absl::Time FromMonotonicDeadlineNs(int64_t deadline_ns, absl::Time anchor) {
  if (deadline_ns <= 0) return absl::InfiniteFuture();
  return anchor + absl::Nanoseconds(deadline_ns);  // absl::Time saturates.
}

absl::Time WallClockAnchor(absl::Time wall_now, int64_t mono_now_ns) {
  return wall_now - absl::Nanoseconds(mono_now_ns);
}

}  // namespace lpc::local
