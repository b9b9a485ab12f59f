// The local server's fair scheduler (fair_scheduler.h).
#include "transports/local/internal/fair_scheduler.h"

#include <algorithm>

namespace lpc::local::internal {

FairScheduler::FairScheduler(const Options& options, Clock* clock)
    : options_(options), clock_(clock), limit_(options.concurrency) {}

void FairScheduler::SetActive(Client& c, bool active) {
  if (c.active_ == active) return;
  c.active_ = active;
  active_clients_ += active ? 1 : -1;
}

void FairScheduler::AddCalls(Client& c, size_t n, int64_t now_ns) {
  c.waiting_ += n;
  if (c.parked_) {
    parked_calls_ += n;
  } else {
    queued_calls_.fetch_add(n, std::memory_order_relaxed);
  }
  SetActive(c, true);
  c.last_active_ns_ = now_ns;
  if (!c.runnable_ && !c.parked_) {
    c.runnable_ = true;
    runnable_.push_back(&c);
  }
}

FairScheduler::Client* FairScheduler::TakeCall() {
  for (size_t n = runnable_.size(); n > 0; --n) {
    Client* c = runnable_.front();
    runnable_.pop_front();
    if (c->throttled_) {  // Its bucket ran dry during its last call.
      const int64_t now_ns = clock_->NowNs();
      Refill(*c, now_ns);
      if (c->throttled_) {
        Park(*c, now_ns);
        continue;
      }
    }
    if (!CanStart(*c)) {
      runnable_.push_back(c);
      continue;
    }
    --c->waiting_;
    queued_calls_.fetch_sub(1, std::memory_order_relaxed);
    ++c->running_;
    ++running_;
    if (c->waiting_ == 0) {
      c->runnable_ = false;
    } else {
      runnable_.push_back(c);
    }
    return c;
  }
  return nullptr;
}

void FairScheduler::CallDone(Client& c) {
  --running_;
  --c.running_;
}

bool FairScheduler::CanStart(const Client& c) const {
  if (running_ >= options_.max_workers || c.throttled_) return false;
  if (c.running_ == 0) return true;
  if (running_ >= limit_ ||
      c.running_ >= options_.max_handlers_per_connection) {
    return false;
  }
  return c.running_ < std::max(1, limit_ / std::max(1, active_clients_));
}

bool FairScheduler::AnyCallMayStart() const {
  for (const Client* c : runnable_) {
    if (CanStart(*c)) return true;
  }
  return false;
}

void FairScheduler::Tick(absl::Span<const Sample> samples, int64_t now_ns) {
  // A client stays active (and counts when the CPU share is computed) for
  // kActiveWindowNs after its last call arrived: a client making one call
  // at a time is between calls most of the time, yet it is busy.
  for (const Sample& s : samples) {
    Client& c = *s.client;
    if (c.active_ && c.waiting_ == 0 && c.running_ == 0 &&
        now_ns - c.last_active_ns_ > kActiveWindowNs) {
      SetActive(c, false);
    }
  }
  const double floor_share = options_.contended_cpu_share;
  const int64_t dt = last_tick_ns_ == 0 ? 0 : now_ns - last_tick_ns_;
  last_tick_ns_ = now_ns;
  double light_sum = 0;
  int light = 0;
  for (const Sample& s : samples) {
    Client& c = *s.client;
    if (dt > 0) {
      const double now_share = static_cast<double>(s.busy_ns - c.tick_busy_ns_) /
                               static_cast<double>(dt);
      c.share_ = 0.5 * c.share_ + 0.5 * now_share;
    }
    c.tick_busy_ns_ = s.busy_ns;
    const bool backlog_now =
        s.pending_calls >= static_cast<uint32_t>(c.running_) + 2;
    c.backlogged_ = backlog_now || c.backlog_seen_;
    c.backlog_seen_ = backlog_now;
    if (c.active_ && !c.backlogged_) {
      ++light;
      light_sum += c.share_;
    }
  }
  const bool accounting = floor_share > 0 && active_clients_ >= 2;
  accounting_.store(accounting, std::memory_order_relaxed);
  refill_share_ = std::clamp(1.0 - 4.0 * light_sum, floor_share, 1.0);
  for (const Sample& s : samples) {
    Client& c = *s.client;
    c.contended_ = accounting && c.backlogged_ && light > 0;
    if (!c.contended_) {
      c.throttled_ = false;
      c.tokens_ns_ = kShareBurstNs;
      c.refilled_ns_ = now_ns;
    }
  }
  // Buckets that refilled, and clients no longer contended.
  Unpark(now_ns);
}

void FairScheduler::Refill(Client& c, int64_t now_ns) {
  const int64_t dt = std::max<int64_t>(0, now_ns - c.refilled_ns_);
  c.refilled_ns_ = now_ns;
  c.tokens_ns_ = std::min<int64_t>(
      kShareBurstNs,
      c.tokens_ns_ +
          static_cast<int64_t>(static_cast<double>(dt) * refill_share_));
  // Hysteresis: a paused client resumes with a full bucket, so its turns
  // come as a few long bursts rather than many short ones; each turn wakes
  // a worker (and the client, whose ring is read again), which on a small
  // machine takes a CPU from whoever spins there.
  if (c.throttled_ && c.tokens_ns_ >= kShareBurstNs) c.throttled_ = false;
}

// When a throttled client's bucket is full again, at the present rate.
int64_t FairScheduler::ResumeAt(const Client& c, int64_t now_ns) const {
  const double missing = static_cast<double>(kShareBurstNs - c.tokens_ns_);
  return now_ns + static_cast<int64_t>(missing / std::max(refill_share_, 1e-3));
}

// Takes a throttled client (just taken off runnable_) out of the round
// until its bucket is full.
void FairScheduler::Park(Client& c, int64_t now_ns) {
  const int64_t at = ResumeAt(c, now_ns);
  const int64_t next = next_resume_ns_.load(std::memory_order_relaxed);
  if (next == 0 || at < next) {
    next_resume_ns_.store(at, std::memory_order_relaxed);
  }
  queued_calls_.fetch_sub(c.waiting_, std::memory_order_relaxed);
  parked_calls_ += c.waiting_;
  c.runnable_ = false;
  c.parked_ = true;
  parked_.push_back(&c);
}

void FairScheduler::Unpark(int64_t now_ns) {
  int64_t next = 0;
  for (size_t i = 0; i < parked_.size();) {
    Client& c = *parked_[i];
    Refill(c, now_ns);
    if (c.throttled_) {
      const int64_t at = ResumeAt(c, now_ns);
      if (next == 0 || at < next) next = at;
      ++i;
      continue;
    }
    c.parked_ = false;
    c.runnable_ = true;
    parked_calls_ -= c.waiting_;
    queued_calls_.fetch_add(c.waiting_, std::memory_order_relaxed);
    runnable_.push_back(&c);
    parked_[i] = parked_.back();
    parked_.pop_back();
  }
  next_resume_ns_.store(next, std::memory_order_relaxed);
}

bool FairScheduler::Charge(Client& c, int64_t ns, int64_t now_ns) {
  if (!c.contended_ || ns <= 0) return false;
  Refill(c, now_ns);
  // The debt is bounded, so a pause lasts at most (depth + debt) / refill.
  c.tokens_ns_ = std::max(c.tokens_ns_ - std::min(ns, kMaxChargeNs),
                          -kMaxShareDebtNs);
  if (c.tokens_ns_ < 0 && !c.throttled_) {
    c.throttled_ = true;
    return true;
  }
  return false;
}

void FairScheduler::Remove(Client& c) {
  SetActive(c, false);
  if (c.parked_) {
    parked_calls_ -= c.waiting_;
    parked_.erase(std::find(parked_.begin(), parked_.end(), &c));
  } else {
    queued_calls_.fetch_sub(c.waiting_, std::memory_order_relaxed);
    if (c.runnable_) {
      runnable_.erase(std::find(runnable_.begin(), runnable_.end(), &c));
    }
  }
  c.waiting_ = 0;
  c.runnable_ = false;
  c.parked_ = false;
}

std::vector<FairScheduler::Client*> FairScheduler::Clear() {
  std::vector<Client*> dropped(runnable_.begin(), runnable_.end());
  dropped.insert(dropped.end(), parked_.begin(), parked_.end());
  for (Client* c : dropped) {
    c->waiting_ = 0;
    c->runnable_ = false;
    c->parked_ = false;
  }
  runnable_.clear();
  parked_.clear();
  queued_calls_.store(0, std::memory_order_relaxed);
  parked_calls_ = 0;
  active_clients_ = 0;
  return dropped;
}

}  // namespace lpc::local::internal
