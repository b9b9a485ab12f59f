// ClientConnection's waiting half: callers waiting for their replies as
// leader or follower, the leader's drain of the reply ring, and the pump
// thread that leads for async calls. See client_connection.h.
#include <sched.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/client_connection.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {

int SpinCallersFor(int option) {
  if (option > 0) return option;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

LocalChannelStats ClientConnection::stats() const {
  LocalChannelStats s;
  s.waits = waits_.load(std::memory_order_relaxed);
  s.waits_without_spin = waits_without_spin_.load(std::memory_order_relaxed);
  s.callers_waiting =
      static_cast<uint32_t>(waiting_.load(std::memory_order_relaxed));
  s.spinning_callers = static_cast<uint32_t>(spin_callers_);
  return s;
}

void ClientConnection::Wait(PendingCall* call) {
  Wait(call, [] { return false; }, [] {});
}

// The common case takes no lock but the leader role: the caller leads, its
// reply completes the call (one mu_ section in DrainReplies), and it hands
// the role on only if a follower waits for it.
//
// A caller that finds spin_callers_ callers already waiting never spins:
// with more callers than CPUs a spinner only delays the callers it keeps
// off the CPU, and the few that spin make most of the calls. It sleeps at
// once, as a follower in the FIFO or as a leader on the ring's futex.
void ClientConnection::Wait(PendingCall* call,
                            absl::FunctionRef<bool()> cancelled,
                            absl::FunctionRef<void()> before_sleep) {
  const bool may_spin =
      waiting_.fetch_add(1, std::memory_order_relaxed) < spin_callers_;
  struct Leave {
    std::atomic<int>& waiting;
    ~Leave() { waiting.fetch_sub(1, std::memory_order_relaxed); }
  } leave{waiting_};
  waits_.fetch_add(1, std::memory_order_relaxed);
  if (!may_spin) waits_without_spin_.fetch_add(1, std::memory_order_relaxed);
  bool prepared = false;
  bool offered = false;  // Offered the leader role, not taken yet.
  const auto prepare_once = [&] {
    if (!prepared) {
      prepared = true;
      before_sleep();
    }
  };
  const auto stop = [&] {
    return call->done.load(std::memory_order_acquire) ||
           (!prepared && cancelled());
  };
  // The first pass skips the clock: a leader checks the deadline itself.
  for (bool first = true; !call->done.load(std::memory_order_acquire);
       first = false) {
    if (!first && absl::Now() >= call->deadline) {
      Expire(call->id);
      continue;
    }
    if (!prepared && cancelled()) {
      prepare_once();  // Runs the cancel callback at once.
      continue;
    }
    if (reader_mu_.TryLock()) {
      offered = false;
      LeadAndHandOff(stop, call->deadline, /*yield=*/false, may_spin,
                     prepare_once);
      continue;
    }
    if (!prepared) {
      prepare_once();
      continue;
    }
    // Follow: sleep until the reply completes this call or the leader
    // hands on (FollowerWait, pending_call.h).
    mu_.Lock();
    followers_.fetch_add(1, std::memory_order_seq_cst);
    if (call->done.load(std::memory_order_acquire)) {
      followers_.fetch_sub(1, std::memory_order_relaxed);
      mu_.Unlock();
      break;
    }
    if (reader_mu_.TryLock()) {  // The leader left meanwhile.
      followers_.fetch_sub(1, std::memory_order_relaxed);
      mu_.Unlock();
      reader_mu_.Unlock();
      continue;
    }
    FollowerWait me;
    call->follower = &me;
    EnqueueSleeperLocked(&me);
    me.cv.WaitWithDeadline(
        &mu_, std::min(call->deadline, absl::Now() + kClientSleepChunk));
    if (me.queued) UnlinkSleeperLocked(&me);  // Timed out.
    call->follower = nullptr;
    followers_.fetch_sub(1, std::memory_order_relaxed);
    offered = offered || me.lead_offered;
    mu_.Unlock();
  }
  // Offered the role and left without it (the reply came, the deadline
  // passed, a cancel): the next follower takes it.
  if (offered) {
    MutexLock lock(&mu_);
    HandOffLocked();
  }
}

void ClientConnection::EnqueueSleeperLocked(FollowerWait* f) {
  f->queued = true;
  f->next = nullptr;
  f->prev = sleepers_tail_;
  if (sleepers_tail_ != nullptr) {
    sleepers_tail_->next = f;
  } else {
    sleepers_head_ = f;
  }
  sleepers_tail_ = f;
}

void ClientConnection::UnlinkSleeperLocked(FollowerWait* f) {
  (f->prev != nullptr ? f->prev->next : sleepers_head_) = f->next;
  (f->next != nullptr ? f->next->prev : sleepers_tail_) = f->prev;
  f->prev = f->next = nullptr;
  f->queued = false;
}

void ClientConnection::HandOffLocked() {
  if (FollowerWait* f = sleepers_head_; f != nullptr) {
    UnlinkSleeperLocked(f);
    f->lead_offered = true;
    f->cv.Signal();
  }
  if (pump_following_) cv_.SignalAll();
}

int ClientConnection::DrainReplies(absl::FunctionRef<bool()> stop) {
  int handled = 0;
  bool none_left = false;  // The last reply completed the last call.
  for (;;) {
    if (handled > 0 && stop()) break;  // The rest is for the next leader.
    absl::StatusOr<std::optional<IncomingMessage>> msg = ep_->Receive();
    if (!msg.ok()) {
      // A reply whose descriptors break the rules fails its call with
      // INTERNAL; the connection ends either way.
      if (GetHandleError(msg.status()).has_value()) {
        FailForHandles(msg.status());
        break;
      }
      MarkDead(absl::UnavailableError(
          absl::StrCat("bad reply from server: ", msg.status().message())));
      break;
    }
    if (!msg->has_value()) break;
    ++handled;
    IncomingMessage& m = **msg;
    // Closed on the closer's thread unless its call takes them.
    struct CloseUntaken {
      std::vector<UniqueFd>& fds;
      ~CloseUntaken() {
        if (!fds.empty()) FdCloser::Get().Close(fds);
      }
    } close_untaken{m.handles};
    if (m.type() != MessageType::kReply &&
        m.type() != MessageType::kBindReply) {
      if (!RouteStreamRecord(m)) break;  // Stream records (see streams).
      continue;
    }
    Metadata reply_metadata;
    if ((m.header.flags & kFlagMetadata) != 0 && !m.oversized) {
      std::string_view rest;
      absl::Status md = DecodeMetadata(m.payload, &reply_metadata, &rest);
      if (!md.ok()) {
        MarkDead(absl::UnavailableError(
            absl::StrCat("bad reply from server: ", md.message())));
        break;
      }
      m.payload.erase(0, m.payload.size() - rest.size());
    }
    absl::StatusOr<std::string> result;
    if (m.header.status_code != 0) {
      result = absl::Status(static_cast<absl::StatusCode>(m.header.status_code),
                            m.payload);
    } else if (m.oversized) {
      result = absl::ResourceExhaustedError(
          "reply exceeds the channel's maximum message size");
    } else {
      result = std::move(m.payload);
    }
    if (!result.ok()) m.buffer.reset();
    // Look up and complete under one lock.
    Completion done;
    bool stream_reply = false;
    {
      MutexLock lock(&mu_);
      auto it = calls_.find(m.header.message_id);
      if (it == calls_.end()) {
        // A stream's call answered by a REPLY (the server shut down), or
        // a call whose caller gave up (dropped).
        stream_reply = streams_.contains(m.header.message_id);
        if (!stream_reply) {
          stray_replies_.fetch_add(1);
          continue;
        }
        m.header.flags = 0;  // Its metadata block is decoded already.
      } else {
        PendingCall* call = it->second;
        calls_.erase(it);
        none_left = calls_.empty();
        call->bind_slot = m.header.interface_slot;
        if (call->ctx != nullptr && !reply_metadata.empty()) {
          call->ctx->response_metadata().merge(reply_metadata);
        }
        // The reply's table, for the generated decoder; the caller's
        // thread reads it after `done` (CompleteLocked).
        if (call->ctx != nullptr && !m.handles.empty() &&
            m.header.status_code == 0) {
          AdoptReplyHandles(*call->ctx, m.handles);
        }
        if (m.buffer.has_value()) {
          if (call->attached_out != nullptr) {
            *call->attached_out = std::move(m.buffer);
          } else {
            // The string API: the field appended, as protobuf allows.
            AppendBytesField(m.buffer->field_number, m.buffer->view.view(),
                             &*result);
          }
          m.buffer.reset();
        }
        CompleteLocked(call, std::move(result), &done);  // Wakes its caller.
      }
    }
    if (stream_reply) {
      if (!RouteStreamRecord(m)) break;
      continue;
    }
    done.Run();
  }
  ep_->ReleaseReceived();
  if (doorbell_.wedged() && !dead()) {
    MarkDead(absl::UnavailableError(
        "server wedged its doorbell (a blocking eventfd with a full counter)"));
  }
  // Buffers of a very large request wait for its reply; with no call in
  // flight, nothing will take them.
  if (none_left) buffers_.DropLarge();
  return handled;
}

void ClientConnection::ExpireOverdue() {
  std::vector<uint64_t> overdue;
  std::vector<std::shared_ptr<ClientStreamSink>> streams;
  const absl::Time now = absl::Now();
  {
    MutexLock lock(&mu_);
    for (auto& [id, call] : calls_) {
      if (now >= call->deadline) overdue.push_back(id);
    }
    for (auto& [id, weak] : streams_) {
      if (auto s = weak.lock()) streams.push_back(std::move(s));
    }
  }
  for (uint64_t id : overdue) Expire(id);
  for (auto& s : streams) s->CheckDeadline(now);
}

// Hot path (no syscall): drain the reply ring; spin on it while the server
// runs on another CPU. Only when that fails does the leader look at the
// control socket (goodbye, hang-up; at most once per kSocketCheckNs, and
// always after a sleep that timed out) and sleep on the reply futex for at
// most kClientSleepChunk. A dead server is therefore noticed within about
// 10 ms whether the leader spins or sleeps.
void ClientConnection::Lead(absl::FunctionRef<bool()> stop,
                            absl::Time deadline, bool yield, bool may_spin,
                            absl::FunctionRef<void()> before_sleep) {
  // This thread's CPU, read once per lead and again every few microseconds
  // of spinning (it only feeds hints).
  uint32_t own = RunningValueForThisCpu();
  ep_->SetRunningValue(own);
  const auto peer_elsewhere = [&] {
    const uint32_t peer = ep_->PeerRunning();
    return peer != 0 && peer != own;
  };
  bool check_socket = false;
  int64_t spin_left_ns = spin_ns_;  // Spin budget left before sleeping.
  while (!stop() && !dead()) {
    // The hint (two loads) spares an empty ring the validating Receive.
    if (ep_->HasInboundHint() && DrainReplies(stop) > 0) {
      spin_left_ns = spin_ns_;
      continue;
    }
    if (stop()) break;
    bool resume_spin = false;
    if (may_spin && spin_left_ns > 0 && SpinRoom() && peer_elsewhere()) {
      // InfiniteDuration spins until the reply, the deadline, or the server
      // stops running.
      const int64_t start = MonotonicNowNs();
      int64_t budget = spin_left_ns;
      if (budget > kSocketCheckNs) {  // Long spins end at the deadline.
        budget = std::min(budget,
                          absl::ToInt64Nanoseconds(deadline - absl::Now()));
      }
      if (SpinUntil(
              budget, [&] { return ep_->HasInboundHint() || stop(); },
              [&] {
                if (SocketCheckDue(MonotonicNowNs())) {
                  check_socket = resume_spin = true;
                  return false;
                }
                // The pump, and any leader while other threads of this
                // process wait for the role or their calls, give up the CPU
                // every few microseconds: with more callers than CPUs, a
                // spinning leader would otherwise starve them.
                if (yield || followers_.load(std::memory_order_relaxed) > 0) {
                  ::sched_yield();
                }
                own = RunningValueForThisCpu();
                ep_->SetRunningValue(own);
                return SpinRoom() && peer_elsewhere();
              })) {
        continue;
      }
      if (spin_left_ns != INT64_MAX) {
        spin_left_ns -= MonotonicNowNs() - start;
      }
    }
    if (check_socket || SocketCheckDue(MonotonicNowNs())) {
      check_socket = false;
      // Death, goodbye and memfd packets, overdue calls.
      absl::Status s = ReadOnePacket(absl::InfinitePast());
      if (s.ok()) continue;
      if (!absl::IsDeadlineExceeded(s) || dead()) break;
      ExpireOverdue();
      if (stop()) break;
      if (resume_spin) continue;
    }
    before_sleep();
    if (stop()) break;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    // Clears `running` while asleep.
    if (!ep_->WaitForInbound(0, std::min(left, kClientSleepChunk))) {
      check_socket = true;  // Woken by the timeout (or spuriously).
    }
  }
  // `running` stays set after a call ends: a caller in a loop is back
  // within microseconds, and the server's spin for it is bounded anyway.
}

void ClientConnection::LeadAndHandOff(absl::FunctionRef<bool()> stop,
                                      absl::Time deadline, bool yield,
                                      bool may_spin,
                                      absl::FunctionRef<void()> before_sleep) {
  Lead(stop, deadline, yield, may_spin, before_sleep);
  reader_mu_.Unlock();
  // A read-modify-write, ordered with a follower's increment before its
  // try-lock: either the follower takes the role itself or this sees it and
  // wakes it (it is asleep in the FIFO by the time this holds mu_).
  if (followers_.fetch_add(0, std::memory_order_seq_cst) > 0) {
    MutexLock lock(&mu_);
    HandOffLocked();
  }
}

void ClientConnection::StartPumpLocked() {
  if (pump_started_) return;
  pump_started_ = true;
  // The pump holds the connection only during a turn, so that its last
  // holder may let it go at any time; a stream that a turn drops can be
  // that holder, and then the connection ends on the pump thread between
  // turns (its destructor detaches the pump) and the next turn finds it
  // gone.
  std::weak_ptr<ClientConnection> weak = weak_from_this();
  pump_ = std::thread([weak] {
    for (;;) {
      std::shared_ptr<ClientConnection> self = weak.lock();
      if (self == nullptr || !self->PumpTurn()) return;
    }
  });
}

bool ClientConnection::PumpTurn() {
  mu_.Lock();
  if (stop_pump_) {
    mu_.Unlock();
    return false;
  }
  if (!deferred_.empty()) {
    // Streams' held-back messages, sent without any of our locks.
    std::vector<std::function<void()>> run;
    run.swap(deferred_);
    deferred_count_.store(0, std::memory_order_release);
    mu_.Unlock();
    for (auto& fn : run) fn();
    return true;
  }
  if (async_pending_ == 0 || dead_) {
    cv_.WaitWithDeadline(&mu_, absl::Now() + absl::Milliseconds(100));
    mu_.Unlock();
    return true;
  }
  followers_.fetch_add(1, std::memory_order_seq_cst);
  if (!reader_mu_.TryLock()) {
    pump_following_ = true;
    cv_.WaitWithDeadline(&mu_, absl::Now() + absl::Milliseconds(5));
    pump_following_ = false;
    followers_.fetch_sub(1, std::memory_order_relaxed);
    mu_.Unlock();
    return true;
  }
  followers_.fetch_sub(1, std::memory_order_relaxed);
  mu_.Unlock();
  LeadAndHandOff(
      [this] {
        return async_pending_.load(std::memory_order_acquire) == 0 ||
               deferred_count_.load(std::memory_order_acquire) > 0 ||
               stop_pump_.load(std::memory_order_acquire);
      },
      absl::Now() + absl::Milliseconds(50), /*yield=*/true, /*may_spin=*/true,
      [] {});
  return true;
}

}  // namespace lpc::local::internal
