// The server's call path (server_calls.h).
#include "transports/local/internal/server_calls.h"

#include <fcntl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/call_context.h"
#include "runtime/handles.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/buffer.h"
#include "runtime/fd.h"
#include "runtime/message.h"
#include "transports/local/doorbell.h"
#include "transports/local/frame.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {

using ::lpc::internal::CallContextAccess;
namespace {

// LocalPortOptions::spin = InfiniteDuration spins at most this long for a
// client's next call.
constexpr int64_t kMaxServerSpinNs = 100 * 1000 * 1000;
// How long a worker polls, yielding, for the next request of a client that
// sleeps (AfterCall): a wake-up of an idle CPU takes 20-30 us here.
constexpr int64_t kWakeSpinNs = 50 * 1000;
// A worker and its client that take turns on one CPU (AfterCall, NoteWake):
// a reply that wakes the client where it last ran, on this worker's CPU,
// or a first yield this long that ends with the client's next call, shows
// it; after this many calls in a row so, the worker moves to another CPU,
// at most once per kColocatedMoveGapNs.
constexpr int64_t kHandOverNs = 2 * 1000;
constexpr int kColocatedCallsToMove = 4;
constexpr int64_t kColocatedMoveGapNs = 10 * 1000 * 1000;
// A worker's turn on one client's ring ends after the record that brings
// the payload bytes it copied past this (as after batch_per_turn
// records): 16 records of 4 MiB each kept a worker from every other
// client for over 100 ms.
constexpr uint64_t kMaxTurnBytes = uint64_t{4} << 20;
}  // namespace

void ServerCalls::Drain(const std::shared_ptr<Connection>& c) {
  // Reused per worker thread (Drain does not nest): no allocation per turn.
  thread_local std::vector<WorkItem> items;
  struct ClearOnExit {
    std::vector<WorkItem>& v;
    ~ClearOnExit() { v.clear(); }  // Keeps the capacity.
  } clear_on_exit{items};
  items.clear();
  std::optional<TimedTurn> timed(&longest_ring_read_);  // Until queued.
  bool requeue = false;
  bool at_limit = false;
  bool parked = false;  // A record waits for its payload memfd.
  {
    MutexLock recv(&c->recv_mu);
    if (c->closed.load()) return;
    c->ep->SetRunning(true);
    absl::Status flushed;
    {
      MutexLock send(&c->send_mu);
      if (c->hung_up.load()) {
        c->DropRepliesLocked();  // Nobody reads them any more.
      } else if (!c->pending_replies.empty()) {
        flushed = c->FlushRepliesLocked();
      }
    }
    if (!flushed.ok()) {
      c->queued.store(false);
      CutOff(c, flushed);
      return;
    }
    uint32_t taken = 0;
    uint64_t turn_bytes = 0;  // Payload bytes read this turn.
    bool ring_empty = false;
    absl::Status bad;
    const size_t in_flight = c->pending_calls.load();
    while (taken < options_.batch_per_turn && turn_bytes < kMaxTurnBytes) {
      // (The server's queued-reply budget needs no check here: a reply
      // past it becomes a short failure.)
      if (in_flight + items.size() >= options_.max_in_flight_per_connection ||
          !MayRead(c->request_bytes, budgets_.request_bytes) ||
          c->reply_bytes.Reached()) {
        at_limit = true;  // Back-pressure: the ring fills and the client
        break;            // waits; a finishing call (or the tick, for the
      }                   // server-wide budgets) reschedules us.
      absl::StatusOr<std::optional<IncomingMessage>> msg = c->ep->Receive();
      if (!msg.ok()) {
        bad = msg.status();
        break;
      }
      if (!msg->has_value()) {
        parked = c->ep->memfd_parked();
        ring_empty = !parked;
        break;
      }
      ++taken;
      turn_bytes += (*msg)->payload.size();
      HandleMessage(c, std::move(**msg), &items);
      if (c->closed.load()) break;
    }
    c->ep->ReleaseReceived();
    if (taken > 0) {
      c->records.fetch_add(taken, std::memory_order_relaxed);
      c->bytes_in.fetch_add(turn_bytes, std::memory_order_relaxed);
    }
    // Parked: the ring is not read again until the memfd comes (the I/O
    // thread schedules us then) or the tick cuts the client off; no
    // thread waits for it.
    if (parked) {
      c->parked_on_handles.store(c->ep->parked_on_handles(),
                                 std::memory_order_relaxed);
      c->parked_on_buffer.store(c->ep->parked_on_buffer(),
                                std::memory_order_relaxed);
    }
    if (!parked) {
      c->memfd_parked_ns.store(0, std::memory_order_relaxed);
    } else if (c->memfd_parked_ns.load(std::memory_order_relaxed) == 0) {
      c->memfd_parked_ns.store(MonotonicNowNs(), std::memory_order_seq_cst);
    }
    if (!bad.ok()) {
      c->queued.store(false);
      CutOff(c, bad);
      return;
    }
    if (c->hung_up.load() && ring_empty && items.empty() &&
        c->pending_calls.load() == 0) {
      c->queued.store(false);
      Close(c);  // Every oneway call it published has run.
      return;
    }
    if (parked) {
      // Neither requeued nor asleep: see below.
    } else if ((taken == options_.batch_per_turn ||
                turn_bytes >= kMaxTurnBytes) &&
               !at_limit) {
      requeue = true;  // Round-robin: back of the line.
    } else if (items.empty() && !at_limit && !c->ep->PrepareToSleep()) {
      requeue = true;  // Records arrived while we looked.
    }
    // With calls to run, the doorbell stays off: every call ends in
    // AfterCall, which re-checks the ring and only then may sleep.
  }
  if (requeue) {
    pool_->Requeue(c);
  } else {
    c->queued.store(false, std::memory_order_seq_cst);
    if (parked) {
      // The memfd may have come after we looked, while we were still
      // queued (the I/O thread's Schedule then did nothing).
      if (c->HasStashedFd()) Schedule(c, false);
    } else if (items.empty() && !at_limit && c->ep->HasInboundHint()) {
      Schedule(c, false);
    }
  }
  timed.reset();
  if (items.empty()) return;
  // This worker runs the batch in order (unless the pool is at its
  // concurrency limit), taking turns with other clients' waiting calls.
  // No helper is woken: for short handlers a wake-up costs more than the
  // work. If a handler runs long, the poller (awake every millisecond while
  // handlers run) or the tick hands the rest of the batch to a free worker.
  c->pending_calls.fetch_add(static_cast<uint32_t>(items.size()));
  pool_->QueueCalls(c, items);
}

void ServerCalls::HandleMessage(const std::shared_ptr<Connection>& c,
                                IncomingMessage msg,
                                std::vector<WorkItem>* items) {
  const FrameHeader& h = msg.header;
  switch (msg.type()) {
    case MessageType::kBind: {
      absl::StatusOr<BindRequest> req = DecodeBindRequest(msg.payload);
      if (!req.ok()) {
        CutOff(c, req.status());
        return;
      }
      absl::Status s = dispatcher_->CheckBinding(
          req->full_name, req->uuid, InterfaceVersion{req->major, req->minor});
      uint32_t slot = 0;
      if (s.ok()) {
        // Resolved once here; calls then go by method id.
        absl::StatusOr<uint32_t> bound =
            c->Bind(req->full_name, dispatcher_->Bind(req->full_name));
        if (bound.ok()) {
          slot = *bound;
        } else {
          s = bound.status();
        }
      }
      SendReply(c, OwnedReply{MessageType::kBindReply, h.message_id,
                              static_cast<uint32_t>(s.code()), slot,
                              std::string(s.message())});
      return;
    }
    case MessageType::kCancel:
      CancelCall(*c, h.message_id, /*by_socket=*/false);
      return;
    case MessageType::kRequest:
    case MessageType::kOneway: {
      const bool oneway = msg.type() == MessageType::kOneway;
      // Closed on the closer's thread if the call does not run.
      PeerFds handles(std::move(msg.handles));
      if (!oneway && c->hung_up.load()) return;  // Its caller is gone.
      absl::Status refuse;
      if (shutting_down_.load()) {
        refuse = absl::UnavailableError("server is shutting down");
      } else if (msg.over_budget) {
        refuse = absl::ResourceExhaustedError(absl::StrCat(
            "request of ", h.payload_length,
            " bytes refused: the server's request byte budget is used up"));
      } else if (msg.oversized) {
        refuse = absl::ResourceExhaustedError(absl::StrCat(
            "request of ", h.payload_length,
            " bytes exceeds the server's maximum message size of ",
            dispatcher_->options().max_message_size, " bytes"));
      }
      // Built in place in the batch (no move of the item per call); taken
      // out again if the call does not run.
      WorkItem& item = items->emplace_back();
      if (refuse.ok()) {
        item.ctx = std::make_unique<CallContext>();
        // Before Register: once registered, the I/O thread's Cancel reads
        // the deadline under state_mu.
        item.ctx->set_deadline(FromMonotonicDeadlineNs(
            h.deadline_ns, absl::FromUnixNanos(wall_anchor_unix_ns_.load(
                               std::memory_order_relaxed))));
      }
      const Registered r = c->Register(h, oneway, refuse.ok(), item);
      if (r == Registered::kCancelledEarly) {
        cancelled_before_read_.fetch_add(1, std::memory_order_relaxed);
        items->pop_back();
        return;
      }
      if (r == Registered::kNotBound && refuse.ok()) {
        refuse = absl::FailedPreconditionError(absl::StrCat(
            "interface slot ", h.interface_slot, " is not bound"));
      } else if (r == Registered::kDuplicateId) {
        refuse = absl::DataLossError("duplicate message id in flight");
      }
      if (absl::IsDataLoss(refuse)) {
        CutOff(c, refuse);
        items->pop_back();
        return;
      }
      if (!refuse.ok()) {
        if (!oneway) {
          SendReply(c, OwnedReply{MessageType::kReply, h.message_id,
                                  static_cast<uint32_t>(refuse.code()), 0,
                                  std::string(refuse.message())});
        }
        items->pop_back();
        return;
      }
      if ((h.flags & kFlagMetadata) != 0) {
        // Decoded from the private copy; a bad block costs only its sender.
        std::string_view rest;
        absl::Status md =
            DecodeMetadata(msg.payload, &item.ctx->metadata(), &rest);
        if (!md.ok()) {
          item.registration = CallRegistration();  // Erases the entry.
          CutOff(c, md);
          items->pop_back();
          return;
        }
        msg.payload.erase(0, msg.payload.size() - rest.size());
      }
      item.conn = c;
      item.handles = std::move(handles);
      CallContextAccess::SetPeerRef(
          *item.ctx, &c->peer);  // As long as the item holds `c`.
      CallContextAccess::SetContextTable(*item.ctx, c->contexts);
      if (BufferPool* pool = c->pool(); pool != nullptr) {
        CallContextAccess::SetBufferSource(*item.ctx,
                                           pool->shared_from_this());
      }
      // A buffer that came beside the message counts too: the bytes the
      // handler may read, although they are the client's pages.
      item.charge = ByteCharge(
          &c->request_bytes, &budgets_.request_bytes,
          msg.payload.capacity() +
              (msg.buffer.has_value() ? msg.buffer->view.size() : 0));
      item.msg = std::move(msg);
      calls_started_.fetch_add(1);
      c->calls.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    case MessageType::kStreamOpen:
      OpenStream(c, msg, items);
      return;
    case MessageType::kStreamMessage:
    case MessageType::kHalfClose:
    case MessageType::kWindowUpdate:
      StreamRecord(c, msg);
      return;
    default:
      CutOff(c, absl::DataLossError("unexpected message type"));
  }
}

// A CANCEL for call `id` of `c`: a ring record, or (`by_socket`) a control
// packet, which the I/O thread reads even while the ring is not read. A
// call in flight has its context cancelled. A control packet for an id not
// in flight may have overtaken its request, still unread in the ring: the
// id is kept (bounded, oldest evicted) and HandleMessage drops that request
// when it reads it. The id check and the request's registration share
// state_mu, so a request is either found in flight here or finds the id
// there. Anything else (a duplicate, an unknown or finished id) is counted
// and harmless.
void ServerCalls::CancelCall(Connection& c, uint64_t id, bool by_socket) {
  if (!c.Cancel(id, by_socket, options_.max_in_flight_per_connection)) {
    cancels_ignored_.fetch_add(1, std::memory_order_relaxed);
  }
}

// Every call ends here. The ring's doorbell was left off while calls ran
// (Drain), so this re-checks the ring before the server may sleep on it.
// After answering, the worker spins briefly for the same client's next
// request while that client runs on another CPU: a busy client then needs
// no wake-up syscall either way. InfiniteDuration is capped at
// kMaxServerSpin per idle spell.
void ServerCalls::AfterCall(const std::shared_ptr<Connection>& c,
                            bool woke_client) {
  if (c->closed.load()) return;
  // A pair that shares a CPU. This reply woke a client that had last run
  // on this worker's CPU, so the kernel puts it here (its previous CPU,
  // and the waker's); the wake-up spin below may see it too. Counted when
  // AfterCall returns, whichever way (NoteWake). Only when spinning is
  // allowed: a pair that blocks on every call is faster on one CPU (a
  // futex wake of an idle CPU takes tens of microseconds here).
  const bool may_spin = options_.spin > absl::ZeroDuration();
  struct WakeNote {
    ServerCalls* server;
    Connection* conn;
    bool woke;
    bool here;
    ~WakeNote() { server->NoteWake(*conn, woke, here); }
  } note{this, c.get(), woke_client && may_spin,
         woke_client && may_spin && c->ep->PeerRunning() == 0 &&
             c->ep->PeerLastCpu() == RunningValueForThisCpu()};
  if (c->hung_up.load()) {
    Schedule(c, false);  // Drain closes it once nothing is left.
    return;
  }
  if (c->memfd_parked_ns.load(std::memory_order_relaxed) != 0) {
    // Its ring waits for a memfd: the PAYLOAD_FD's arrival schedules it.
    c->ep->SetRunning(false);
    return;
  }
  if (c->ep->HasInboundHint()) {
    // At the in-flight limit the ring is read again only once a batch's
    // worth of calls has finished (or none is left), not one record per
    // finished call: a client that keeps its ring full costs one drain
    // per batch. The calls still pending end here too, and look again.
    const uint32_t limit = options_.max_in_flight_per_connection;
    const uint32_t resume = limit - std::min(options_.batch_per_turn, limit / 2);
    const uint32_t pending = c->pending_calls.load();
    if (pending <= resume || pending == 0) {
      Schedule(c, false);  // This worker picks it up next.
    }
    return;
  }
  const int64_t spin_ns = std::min(absl::ToInt64Nanoseconds(options_.spin),
                                   kMaxServerSpinNs);
  const bool spin = spin_ns > 0 && !c->queued.load() &&
                    PeerRunningElsewhere(c->ep->PeerRunning()) &&
                    pool_->NoCallMayStart();
  if (spin) {
    // One spinner per client: it watches the ring for everyone, and ends
    // with the sleep protocol below. Two workers spinning for one client
    // on two CPUs left the client itself no CPU to publish on (a pipelining
    // client stalled for the whole spin cap).
    if (c->spinning.exchange(true, std::memory_order_acq_rel)) return;
    c->ep->ClearSleeping();
    if (SpinUntil(
            spin_ns, [&] { return c->ep->HasInboundHint(); },
            [&] {
              return PeerRunningElsewhere(c->ep->PeerRunning()) &&
                     !c->closed.load(std::memory_order_relaxed) &&
                     !shutting_down_.load(std::memory_order_relaxed);
            })) {
      c->spinning.store(false, std::memory_order_release);
      Schedule(c, false);
      return;
    }
    c->ep->SetRunning(false);
    const bool arrived = !c->ep->PrepareToSleep();
    c->spinning.store(false, std::memory_order_release);
    if (arrived) Schedule(c, false);
    return;
  }
  const size_t queued_before = pool_->queued_calls_hint();
  if (woke_client && spin_ns > 0 && c->ep->PeerRunning() == 0 &&
      !c->queued.load() && pool_->NoCallMayStart() &&
      pool_->TryStartWakeSpin()) {
    // This reply has just woken the client and no call that may start
    // waits: poll its ring with a yield between polls while it wakes, as
    // `running` (so that, once awake, it spins for the reply instead of
    // sleeping). Otherwise a pair that once fell asleep stayed in two
    // wake-ups per call: each side, finding the other asleep, slept too.
    // The first yield that gives the CPU away for long ends it (other
    // threads want the CPU), as does another call being queued; one
    // worker of the server at a time.
    c->ep->SetRunning(true);
    int64_t first_yield_ns = -1;
    const bool caught = YieldSpinUntil(
        kWakeSpinNs,
        [&] { return c->ep->HasInboundHint(); },
        [&] {
          return pool_->queued_calls_hint() <= queued_before &&
                 !c->closed.load(std::memory_order_relaxed) &&
                 !shutting_down_.load(std::memory_order_relaxed);
        },
        &first_yield_ns);
    pool_->EndWakeSpin();
    // The pair seen from the yields: the first one handed the CPU to the
    // client for a few microseconds, in which it read its reply, sent the
    // next call and slept again. (Woken on another CPU, a client takes
    // 20-30 us to start, while this worker's yields return at once.)
    if (caught && first_yield_ns >= kHandOverNs) note.here = true;
    if (caught) {
      Schedule(c, false);
      return;
    }
  }
  c->ep->SetRunning(false);
  if (!c->ep->PrepareToSleep()) Schedule(c, false);  // Arrived meanwhile.
}

// The pair stays on one CPU while the other may sit idle: a futex wake and
// two context switches per call, since each wake-up puts the woken side on
// the busy CPU of the side that woke it. After a few calls in a row whose
// reply woke the client onto this worker's CPU, the worker moves to
// another CPU it may use; the client then wakes on its own CPU, and both
// spin. A call that woke nobody ends the streak (the client was awake).
void ServerCalls::NoteWake(Connection& c, bool woke_client, bool here) {
  if (!woke_client || !here) {
    if (c.colocated_calls.load(std::memory_order_relaxed) != 0) {
      c.colocated_calls.store(0, std::memory_order_relaxed);
    }
    return;
  }
  if (c.colocated_calls.fetch_add(1, std::memory_order_relaxed) + 1 <
      kColocatedCallsToMove) {
    return;
  }
  c.colocated_calls.store(0, std::memory_order_relaxed);
  thread_local int64_t last_move_ns = 0;
  const int64_t now_ns = MonotonicNowNs();
  if (now_ns - last_move_ns < kColocatedMoveGapNs) return;
  last_move_ns = now_ns;
  if (MoveOffThisCpu()) colocated_moves_.fetch_add(1, std::memory_order_relaxed);
}

bool ServerCalls::SendReply(const std::shared_ptr<Connection>& c,
                            OwnedReply&& reply, size_t max_queued) {
  absl::StatusOr<bool> woke;
  {
    TimedTurn timed(&longest_reply_send_);
    woke = c->SendReply(std::move(reply), max_queued != 0
                                              ? max_queued
                                              : options_.max_queued_replies);
  }
  // A reply that did not go (nor wait in the queue) keeps its table:
  // closed on the closer's thread, not this worker's.
  CloseHandles(reply);
  if (woke.ok()) return *woke;
  CutOff(c, woke.status());
  return false;
}

}  // namespace lpc::local::internal
