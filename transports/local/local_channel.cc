// The client side of the local transport: connect + handshake, interface
// binding, calls with deadlines and cancellation, and reconnection.
//
// Waiting for replies is leader/follower: a calling thread that finds no
// reader becomes the leader, drains the reply ring for everyone (spinning
// while the server runs on another CPU, then sleeping on the ring's futex
// in chunks of at most 10 ms, checking the control socket before each
// sleep) and hands the role on when its own call ends. Threads with async
// calls in flight are served by a pump thread that leads the same way.
//
// Locks, in nesting order: ClientConnection::reader_mu, then send_mu, then
// mu. LocalChannel::mu_ is never held while taking them.
#include <errno.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/target.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/control_socket.h"
#include "transports/local/doorbell.h"
#include "transports/local/endpoint.h"
#include "transports/local/frame.h"
#include "transports/local/local_transport.h"
#include "transports/local/metadata.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/shared_word.h"

namespace lpc::local {
namespace {

constexpr uint64_t kHardPayloadCap = uint64_t{1} << 30;
constexpr absl::Duration kSleepChunk = absl::Milliseconds(10);
// How often a busy connection polls its control socket (hang-up, goodbye).
constexpr int64_t kSocketCheckNs = 1000 * 1000;

// One registered call. A synchronous call's record lives on its caller's
// stack; an async call's on the heap, deleted by whoever completes it. While
// registered, a record is reached only through ClientConnection::calls_
// (under mu_), or by its own waiting thread; anything that may outlive the
// call (cancel callbacks, the expiry scan) refers to it by id.
struct PendingCall {
  uint64_t id = 0;
  std::atomic<bool> done{false};       // Set last, under mu_.
  absl::StatusOr<std::string> result;  // Sync calls; valid once done.
  uint32_t bind_slot = 0;
  absl::Time deadline = absl::InfiniteFuture();
  ResponseCallback callback;  // Async calls only.
  // The caller's context, for the reply's metadata; valid while the call is
  // registered (the caller keeps it alive until the call completes). May be
  // null (bind calls).
  CallContext* ctx = nullptr;
  // `deadline` on CLOCK_MONOTONIC (0 = none), as sent.
  int64_t deadline_ns = 0;
  // Async calls: the cancel callback registered on `ctx` (0 = none).
  uint64_t cancel_handle = 0;
};

// A call ends this way: a call whose deadline (`deadline_ns`, monotonic;
// the context's deadline as sent) passed or that was cancelled ends that
// way, even if a reply raced in at the last moment.
absl::StatusOr<std::string> Finish(CallContext* ctx, int64_t deadline_ns,
                                   absl::StatusOr<std::string> r) {
  if (ctx == nullptr) return r;
  if (ctx->WasCancelledExplicitly()) {
    return absl::CancelledError("call cancelled");
  }
  if (deadline_ns != 0 && MonotonicNowNs() >= deadline_ns) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return r;
}

// An async call's callback, ready to run outside the locks (no lock of
// the connection may be held: removing the cancel callback may wait for a
// Cancel() that is running it, and that needs the connection's locks).
struct Completion {
  ResponseCallback callback;
  CallContext* ctx = nullptr;
  int64_t deadline_ns = 0;
  uint64_t cancel_handle = 0;
  absl::StatusOr<std::string> result;
  void Run() {
    if (!callback) return;
    // `ctx` is alive until `callback` runs. Once this returns, the cancel
    // callback (which holds a raw pointer to the connection) never runs.
    if (cancel_handle != 0) ctx->RemoveCancelCallback(cancel_handle);
    callback(Finish(ctx, deadline_ns, std::move(result)));
  }
};

class ClientConnection : public MemfdPort {
 public:
  ClientConnection(UniqueFd sock, UniqueFd eventfd, Mapping map,
                   SectionLayout layout, const LocalChannelOptions& o,
                   const ChannelOptions& co)
      : sock_(std::move(sock)),
        eventfd_(std::move(eventfd)),
        map_(std::move(map)),
        layout_(layout),
        options_(o),
        spin_ns_(absl::ToInt64Nanoseconds(o.spin)) {
    EndpointOptions eo;
    eo.max_inline_record = o.max_inline_record;
    eo.max_payload = kHardPayloadCap;
    eo.accept_payload = co.max_message_size;
    eo.peer_eventfd = eventfd_.get();
    eo.buffers = &buffers_;
    eo.memfd_pool = &memfd_pool_;
    eo.memfd_keep_idle = o.payload_cache_idle;
    ep_ = std::make_unique<Endpoint>(Side::kClient, map_.data(), layout_, this, eo);
  }

  ~ClientConnection() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_pump_ = true;
      cv_.notify_all();
    }
    if (pump_.joinable()) {
      if (pump_.get_id() == std::this_thread::get_id()) {
        pump_.detach();
      } else {
        pump_.join();
      }
    }
    // Async calls still registered (their channel went away): they never
    // complete, as before; their contexts are alive (their callbacks have
    // not run), so their cancel callbacks, which point at this connection,
    // are removed, waiting for one that is running right now (it finds its
    // call gone). Sync calls cannot be left: their callers hold a reference
    // to this connection.
    std::vector<PendingCall*> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, call] : calls_) left.push_back(call);
      calls_.clear();
    }
    for (PendingCall* call : left) {
      if (!call->callback) continue;
      if (call->cancel_handle != 0) {
        call->ctx->RemoveCancelCallback(call->cancel_handle);
      }
      delete call;
    }
  }

  bool dead() { return dead_flag_.load(std::memory_order_acquire); }
  bool HungUp() { return PeerHungUp(sock_.get()); }

  // Registers a call (an async one if call->callback is set) and returns
  // the interface slot `iface` is bound to. NOT_FOUND: `iface` is not bound
  // on this connection yet (nothing registered); RESOURCE_EXHAUSTED over
  // the in-flight limit. With iface null (bind calls) the slot is 0.
  absl::StatusOr<uint32_t> Register(PendingCall* call,
                                    const InterfaceDescriptor* iface) {
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_) return dead_status_;
    uint32_t slot = 0;
    if (iface != nullptr) {
      if (iface == last_iface_) {  // Descriptors are static data.
        slot = last_slot_;
      } else {
        auto it = bound_.find(iface->full_name);  // No allocation.
        if (it == bound_.end()) return absl::NotFoundError("not bound");
        slot = it->second;
        last_iface_ = iface;
        last_slot_ = slot;
      }
    }
    if (calls_.size() >= options_.max_in_flight) {
      return absl::ResourceExhaustedError("too many calls in flight");
    }
    if (call->callback && call->ctx != nullptr &&
        call->ctx->WasCancelledExplicitly()) {
      // Its cancel callback ran before it was registered (and found
      // nothing); refusing it here is what makes that cancel count.
      return absl::CancelledError("call cancelled");
    }
    if (call->id == 0) call->id = NextId();
    calls_.emplace(call->id, call);
    if (call->callback) {
      StartPumpLocked();
      if (async_pending_.fetch_add(1) == 0) cv_.notify_all();  // Pump.
    }
    return slot;
  }

  // A fresh message id (async calls take theirs before registering).
  uint64_t NextId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  void SetBound(const std::string& iface, uint32_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    bound_[iface] = slot;
  }

  std::optional<uint32_t> BoundSlot(std::string_view iface) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = bound_.find(iface);
    if (it == bound_.end()) return std::nullopt;
    return it->second;
  }

  // Places a message and publishes it, waiting for ring room until
  // `deadline`.
  absl::Status Send(const OutgoingMessage& m, absl::Time deadline) {
    std::lock_guard<std::mutex> lock(send_mu_);
    ep_->SetRunning(true);
    for (int i = 0;; ++i) {
      absl::StatusOr<bool> ok = ep_->TrySend(m);
      if (!ok.ok()) {
        if (absl::IsResourceExhausted(ok.status())) return ok.status();
        MarkDead(absl::UnavailableError(
            absl::StrCat("local transport broken: ", ok.status().message())));
        return absl::UnavailableError(ok.status().message());
      }
      if (*ok) break;
      ep_->Flush();
      if (dead()) return dead_status();
      if (HungUp()) {
        MarkDead(absl::UnavailableError("server closed the connection"));
        return dead_status();
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError("request ring stayed full");
      }
      ep_->WaitForRoom(std::min(left, kSleepChunk));
    }
    ep_->Flush();
    return absl::OkStatus();
  }

  // Tells the server to cancel call `id`. First as a control packet: the
  // server's I/O thread always reads the socket, even while it has stopped
  // reading this client's ring (back-pressure at its in-flight limit), when
  // a ring CANCEL would wait behind unread requests. The packet is sent
  // without waiting and without send_mu_ (a Send waiting for ring room may
  // hold it), so this may run in a cancel callback; one SOCK_SEQPACKET
  // packet is atomic, so it cannot tear a PAYLOAD_FD packet that a thread
  // under send_mu_ sends meanwhile, and the server needs no order between
  // the two. Only if the socket's buffer is full does it go by the ring.
  void SendCancel(uint64_t id) {
    const absl::Status sent = TrySendPacket(sock_.get(), EncodeCancelPacket(id));
    if (sent.ok() || absl::IsUnavailable(sent)) return;  // Sent, or gone.
    OutgoingMessage m;
    m.type = MessageType::kCancel;
    m.message_id = id;
    Send(m, absl::Now() + absl::Milliseconds(100)).IgnoreError();
  }

  BufferCache& buffers() { return buffers_; }

  // Completes call `id` with `result` if it is still registered; runs its
  // callback if async. Returns whether it was registered.
  bool Complete(uint64_t id, absl::StatusOr<std::string> result) {
    Completion done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return false;
      PendingCall* call = it->second;
      calls_.erase(it);
      CompleteLocked(call, std::move(result), &done);
      cv_.notify_all();
    }
    done.Run();
    return true;
  }

  // Ends the connection: every pending call fails with `status`.
  void MarkDead(const absl::Status& status) {
    std::vector<Completion> callbacks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!dead_) {
        dead_ = true;
        dead_flag_.store(true, std::memory_order_release);
        dead_status_ = status;
      }
      for (auto& [id, call] : calls_) {
        Completion done;
        CompleteLocked(call, dead_status_, &done);
        if (done.callback) callbacks.push_back(std::move(done));
      }
      calls_.clear();
      cv_.notify_all();
    }
    WakeLeader();
    for (Completion& c : callbacks) c.Run();
  }

  absl::Status dead_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return dead_status_;
  }

  // Wakes a leader sleeping on the reply ring's futex.
  void WakeLeader() {
    uint32_t* word = &ControlOf(map_.data(), layout_)->reply.consumer_sleeping;
    SharedStore<uint32_t>(*word, 0, std::memory_order_seq_cst);
    FutexWake(word, INT32_MAX);
  }

  // Waits until `call` completes, leading while nobody else does.
  //
  // `cancelled()` is polled (cheap) while the call spins; `before_sleep()`
  // runs (without locks held) before this thread first sleeps, so that a
  // call that never sleeps never pays for registering a cancel callback.
  //
  // The common case takes no lock but the leader role: the caller leads,
  // its reply completes the call (one mu_ section in DrainReplies), and it
  // hands the role on only if a follower waits for it.
  void Wait(PendingCall* call) {
    Wait(call, [] { return false; }, [] {});
  }
  template <typename Cancelled, typename BeforeSleep>
  void Wait(PendingCall* call, Cancelled cancelled, BeforeSleep before_sleep) {
    bool prepared = false;
    // The first pass skips the clock: a leader checks the deadline itself.
    for (bool first = true; !call->done.load(std::memory_order_acquire);
         first = false) {
      if (!first && absl::Now() >= call->deadline) {
        Expire(call->id);
        continue;
      }
      if (!prepared && cancelled()) {
        prepared = true;
        before_sleep();  // Runs the cancel callback at once.
        continue;
      }
      if (reader_mu_.try_lock()) {
        LeadAndHandOff(
            [&] {
              return call->done.load(std::memory_order_acquire) ||
                     (!prepared && cancelled());
            },
            call->deadline, /*yield=*/false, [&] {
              if (!prepared) {
                prepared = true;
                before_sleep();
              }
            });
        continue;
      }
      if (!prepared) {
        prepared = true;
        before_sleep();
        continue;
      }
      // Follow: sleep until the leader hands on or completes this call.
      std::unique_lock<std::mutex> lock(mu_);
      followers_.fetch_add(1, std::memory_order_seq_cst);
      if (call->done.load(std::memory_order_acquire)) {
        followers_.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
      if (reader_mu_.try_lock()) {  // The leader left meanwhile.
        followers_.fetch_sub(1, std::memory_order_relaxed);
        lock.unlock();
        reader_mu_.unlock();
        continue;
      }
      const absl::Duration left = call->deadline - absl::Now();
      cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, kSleepChunk)));
      followers_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Completes call `id` with DEADLINE_EXCEEDED and tells the server.
  void Expire(uint64_t id) {
    if (Complete(id, absl::DeadlineExceededError("deadline exceeded"))) {
      SendCancel(id);
    }
  }

  // MemfdPort (runs under reader_mu_, inside Receive).
  absl::Status SendPayloadFd(uint32_t number, uint64_t length,
                             int fd) override {
    PayloadFdBody body{number, 0, length};
    const int fds[1] = {fd};
    return SendPacket(sock_.get(),
                      EncodeControl(ControlType::kPayloadFd, &body, sizeof(body)),
                      fds);
  }
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t,
                                         absl::Time deadline) override {
    for (int i = 0; i < 64; ++i) {
      if (!stash_.empty()) {
        auto entry = std::move(stash_.front());
        stash_.pop_front();
        if (entry.first != number) {
          return absl::DataLossError("payload memfd out of order");
        }
        return std::move(entry.second);
      }
      absl::Status s = ReadOnePacket(deadline);
      if (!s.ok()) return s;
    }
    return absl::DataLossError("payload memfd did not arrive");
  }

  Endpoint& ep() { return *ep_; }

 private:
  // Reads one control packet (under reader_mu_). DEADLINE_EXCEEDED: none.
  absl::Status ReadOnePacket(absl::Time deadline) {
    absl::StatusOr<Packet> p = RecvPacket(sock_.get(), deadline);
    if (absl::IsDeadlineExceeded(p.status())) return p.status();
    if (!p.ok()) {
      MarkDead(absl::UnavailableError("server closed the connection"));
      return dead_status();
    }
    absl::Span<const std::byte> body;
    absl::StatusOr<ControlType> type = DecodeControlHeader(
        absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                            p->bytes.size()),
        &body);
    if (type.ok() && *type == ControlType::kGoodbye) {
      absl::Status why = DecodeStatusBody(body);
      MarkDead(absl::UnavailableError(why.message()));
      return dead_status();
    }
    PayloadFdBody b;
    if (!type.ok() || *type != ControlType::kPayloadFd ||
        body.size() != sizeof(b) || p->fds.size() != 1 || stash_.size() > 16) {
      MarkDead(absl::UnavailableError("protocol error on the control socket"));
      return dead_status();
    }
    std::memcpy(&b, body.data(), sizeof(b));
    stash_.emplace_back(b.memfd_number, std::move(p->fds[0]));
    return absl::OkStatus();
  }

  // Drains the reply ring until it is empty or, once a message was
  // handled, `stop()`; returns how many messages it handled.
  template <typename Stop>
  int DrainReplies(Stop stop) {
    int handled = 0;
    bool none_left = false;  // The last reply completed the last call.
    for (;;) {
      if (handled > 0 && stop()) break;  // The rest is for the next leader.
      absl::StatusOr<std::optional<IncomingMessage>> msg = ep_->Receive();
      if (!msg.ok()) {
        MarkDead(absl::UnavailableError(
            absl::StrCat("bad reply from server: ", msg.status().message())));
        break;
      }
      if (!msg->has_value()) break;
      ++handled;
      IncomingMessage& m = **msg;
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
      // Look up and complete under one lock.
      Completion done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = calls_.find(m.header.message_id);
        if (it == calls_.end()) {
          stray_replies_.fetch_add(1);  // Its caller gave up; drop it.
          continue;
        }
        PendingCall* call = it->second;
        calls_.erase(it);
        none_left = calls_.empty();
        call->bind_slot = m.header.interface_slot;
        if (call->ctx != nullptr && !reply_metadata.empty()) {
          call->ctx->response_metadata().merge(reply_metadata);
        }
        CompleteLocked(call, std::move(result), &done);
        // Followers wait for their own calls; nobody else sleeps on cv_.
        if (followers_.load(std::memory_order_relaxed) > 0) cv_.notify_all();
      }
      done.Run();
    }
    ep_->ReleaseReceived();
    // Buffers of a very large request wait for its reply; with no call in
    // flight, nothing will take them.
    if (none_left) buffers_.DropLarge();
    return handled;
  }

  void ExpireOverdue() {
    std::vector<uint64_t> overdue;
    const absl::Time now = absl::Now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, call] : calls_) {
        if (now >= call->deadline) overdue.push_back(id);
      }
    }
    for (uint64_t id : overdue) Expire(id);
  }

  // Ends `call`, already removed from calls_ (mu_ held): a sync call gets
  // its result and `done`; an async call's callback moves to `*out` and its
  // record is deleted.
  void CompleteLocked(PendingCall* call, absl::StatusOr<std::string> result,
                      Completion* out) {
    if (call->callback) {
      async_pending_.fetch_sub(1, std::memory_order_release);
      out->callback = std::move(call->callback);
      out->ctx = call->ctx;
      out->deadline_ns = call->deadline_ns;
      out->cancel_handle = call->cancel_handle;
      out->result = std::move(result);
      delete call;
      return;
    }
    call->result = std::move(result);
    call->done.store(true, std::memory_order_release);  // Last touch.
  }

 public:
  // The leader loop (reader_mu_ held): until `stop()` or the deadline.
  //
  // Hot path (no syscall): drain the reply ring; spin on it while the
  // server runs on another CPU. Only when that fails does the leader look
  // at the control socket (goodbye, hang-up; at most once per
  // kSocketCheckNs, and always after a sleep that timed out) and sleep on
  // the reply futex for at most kSleepChunk. A dead server is therefore
  // noticed within about 10 ms whether the leader spins or sleeps.
  //
  // `yield` (the async pump): every few microseconds of spinning the leader
  // yields its CPU, so that the application threads of this process that
  // issue the calls are not starved by it.
  // `before_sleep()` runs before every futex sleep (no lock held).
  template <typename Stop, typename BeforeSleep>
  void Lead(Stop stop, absl::Time deadline, bool yield,
            BeforeSleep before_sleep) {
    // This thread's CPU, read once per lead and again every few
    // microseconds of spinning (it only feeds hints).
    uint32_t own = RunningValueForThisCpu();
    ep_->SetRunningValue(own);
    const auto peer_elsewhere = [&] {
      const uint32_t peer = ep_->PeerRunning();
      return peer != 0 && peer != own;
    };
    bool check_socket = false;
    int64_t spin_left_ns = spin_ns_;  // Spin budget left before sleeping.
    for (int i = 0; !stop() && !dead(); ++i) {
      // The hint (two loads) spares an empty ring the validating Receive.
      if (ep_->HasInboundHint() && DrainReplies(stop) > 0) {
        spin_left_ns = spin_ns_;
        continue;
      }
      if (stop()) break;
      bool resume_spin = false;
      if (spin_left_ns > 0 && peer_elsewhere()) {
        // InfiniteDuration spins until the reply, the deadline, or the
        // server stops running.
        const int64_t start = MonotonicNowNs();
        int64_t budget = spin_left_ns;
        if (budget > kSocketCheckNs) {  // Long spins end at the deadline.
          budget = std::min(
              budget, absl::ToInt64Nanoseconds(deadline - absl::Now()));
        }
        if (SpinUntil(
                budget,
                [&] { return ep_->HasInboundHint() || stop(); },
                [&] {
                  if (SocketCheckDue(MonotonicNowNs())) {
                    check_socket = resume_spin = true;
                    return false;
                  }
                  // The pump, and any leader while other threads of this
                  // process wait for the role or their calls, give up the
                  // CPU every few microseconds: with more callers than
                  // CPUs, a spinning leader would otherwise starve them.
                  if (yield || followers_.load(std::memory_order_relaxed) > 0) {
                    ::sched_yield();
                  }
                  own = RunningValueForThisCpu();
                  ep_->SetRunningValue(own);
                  return peer_elsewhere();
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
      if (!ep_->WaitForInbound(0, std::min(left, kSleepChunk))) {
        check_socket = true;  // Woken by the timeout (or spuriously).
      }
    }
    // `running` stays set after a call ends: a caller in a loop is back
    // within microseconds, and the server's spin for it is bounded anyway.
  }

  // Leads (reader_mu_ held by the caller, released here), then hands the
  // leader role on to a waiting follower or the pump, if there is one.
  template <typename Stop, typename BeforeSleep>
  void LeadAndHandOff(Stop stop, absl::Time deadline, bool yield,
                      BeforeSleep before_sleep) {
    Lead(stop, deadline, yield, before_sleep);
    reader_mu_.unlock();
    // A read-modify-write, ordered with a follower's increment before its
    // try_lock: either the follower takes the role itself or this sees it
    // and wakes it.
    if (followers_.fetch_add(0, std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }

  // Whether the control socket is due for a look (rate limit shared by all
  // threads; claims the slot when it returns true).
  bool SocketCheckDue(int64_t now_ns) {
    int64_t last = last_socket_check_ns_.load(std::memory_order_relaxed);
    if (now_ns - last < kSocketCheckNs) return false;
    return last_socket_check_ns_.compare_exchange_strong(
        last, now_ns, std::memory_order_relaxed);
  }

 private:
  void StartPumpLocked() {
    if (pump_started_) return;
    pump_started_ = true;
    pump_ = std::thread([this] { Pump(); });
  }

  // Serves async calls while any are pending.
  void Pump() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_pump_) {
      if (async_pending_ == 0 || dead_) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
      followers_.fetch_add(1, std::memory_order_seq_cst);
      if (!reader_mu_.try_lock()) {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
        followers_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      followers_.fetch_sub(1, std::memory_order_relaxed);
      lock.unlock();
      LeadAndHandOff(
          [this] {
            return async_pending_.load(std::memory_order_acquire) == 0 ||
                   stop_pump_.load(std::memory_order_acquire);
          },
          absl::Now() + absl::Milliseconds(50), /*yield=*/true, [] {});
      lock.lock();
    }
  }

  UniqueFd sock_;
  UniqueFd eventfd_;
  Mapping map_;
  SectionLayout layout_;
  const LocalChannelOptions options_;
  const int64_t spin_ns_;
  // A sent request's large buffer holds the next large reply (see
  // buffer_cache.h). Before ep_, which takes from it.
  BufferCache buffers_{options_.payload_buffer_cache_bytes,
                      options_.large_payload_buffer_cache_bytes};
  // Sent request memfds kept for reuse (endpoint.h). Before ep_ too.
  PayloadMemfdPool memfd_pool_{options_.payload_memfd_cache_bytes};
  std::unique_ptr<Endpoint> ep_;

  std::mutex reader_mu_;  // The leader role: receive side, socket reads.
  std::deque<std::pair<uint32_t, UniqueFd>> stash_;  // reader_mu_

  std::mutex send_mu_;  // The send side of ep_.

  std::mutex mu_;
  std::condition_variable cv_;
  absl::flat_hash_map<uint64_t, PendingCall*> calls_;  // mu_
  std::atomic<uint64_t> next_id_{1};
  std::map<std::string, uint32_t, std::less<>> bound_;  // mu_: iface -> slot
  const InterfaceDescriptor* last_iface_ = nullptr;     // mu_: bound_ cache
  uint32_t last_slot_ = 0;                              // mu_
  // Threads (and the pump) waiting on cv_ for the leader role or their
  // call; changed under mu_, read without it by a leader handing on.
  std::atomic<int> followers_{0};
  bool dead_ = false;                                                 // mu_
  std::atomic<bool> dead_flag_{false};  // dead_, readable without mu_.
  absl::Status dead_status_;                                          // mu_
  // Written under mu_; read without it by the pump's leader loop.
  std::atomic<int> async_pending_{0};
  std::atomic<bool> stop_pump_{false};
  bool pump_started_ = false;                                         // mu_
  std::thread pump_;
  std::atomic<uint64_t> stray_replies_{0};
  std::atomic<int64_t> last_socket_check_ns_{0};
};

absl::StatusOr<std::shared_ptr<ClientConnection>> Connect(
    const std::string& path, const LocalChannelOptions& o,
    const ChannelOptions& co, absl::Time deadline) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) return absl::UnavailableError("socket() failed");
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to local port ", path, ": ", std::strerror(errno)));
  }
  if (o.expected_server_uid.has_value()) {
    absl::StatusOr<PeerCredentials> server = GetPeerCredentials(sock.get());
    if (!server.ok()) return server.status();
    if (server->uid != *o.expected_server_uid) {
      return absl::PermissionDeniedError(absl::StrCat(
          "local port ", path, " is served by uid ", server->uid,
          ", expected uid ", *o.expected_server_uid));
    }
  }
  absl::StatusOr<Packet> p =
      RecvPacket(sock.get(), std::min(deadline, absl::Now() + o.connect_timeout));
  if (!p.ok()) {
    return absl::UnavailableError(
        absl::StrCat("local handshake failed: ", p.status().message()));
  }
  absl::Span<const std::byte> body;
  absl::StatusOr<ControlType> type = DecodeControlHeader(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(p->bytes.data()),
                          p->bytes.size()),
      &body);
  if (!type.ok()) return absl::UnavailableError(type.status().message());
  if (*type == ControlType::kRefused) {
    absl::Status why = DecodeStatusBody(body);
    if (why.ok() || absl::IsDataLoss(why)) {
      return absl::UnavailableError("server refused the connection");
    }
    return why;
  }
  WelcomeBody w;
  if (*type != ControlType::kWelcome || body.size() != sizeof(w) ||
      p->fds.size() != 2) {
    return absl::UnavailableError("local handshake: malformed welcome");
  }
  std::memcpy(&w, body.data(), sizeof(w));
  SectionGeometry g;
  g.request_slots = w.request_slots;
  g.reply_slots = w.reply_slots;
  g.c2s_data_bytes = w.c2s_data_bytes;
  g.s2c_data_bytes = w.s2c_data_bytes;
  g.max_record_slots = w.max_record_slots;
  absl::StatusOr<SectionLayout> layout = ComputeLayout(g);
  if (!layout.ok()) return absl::UnavailableError(layout.status().message());
  if (layout->total_size != w.section_size ||
      layout->total_size > o.max_section_bytes) {
    return absl::UnavailableError("local handshake: section size mismatch");
  }
  if (absl::Status s = ValidateSealedMemfd(p->fds[0].get(), layout->total_size);
      !s.ok()) {
    return absl::UnavailableError(absl::StrCat("local handshake: ", s.message()));
  }
  char link[64] = {};
  const std::string proc = absl::StrCat("/proc/self/fd/", p->fds[1].get());
  if (::readlink(proc.c_str(), link, sizeof(link) - 1) < 0 ||
      std::strcmp(link, "anon_inode:[eventfd]") != 0) {
    return absl::UnavailableError("local handshake: doorbell is not an eventfd");
  }
  absl::StatusOr<Mapping> map =
      Mapping::Map(p->fds[0].get(), layout->total_size, true);
  if (!map.ok()) return map.status();
  if (absl::Status s =
          ValidateSectionHeader(map->data(), map->size(), *layout);
      !s.ok()) {
    return absl::UnavailableError(absl::StrCat("local handshake: ", s.message()));
  }
  return std::make_shared<ClientConnection>(std::move(sock), std::move(p->fds[1]),
                                            std::move(*map), *layout, o, co);
}

class LocalChannel final : public Channel {
 public:
  LocalChannel(std::string name, std::string path, ChannelOptions options,
               LocalChannelOptions local)
      : Channel(options),
        name_(std::move(name)),
        path_(std::move(path)),
        local_(std::move(local)),
        backoff_(local_.reconnect_backoff_initial) {}

  std::string_view transport_name() const override { return "local"; }

  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override {
    std::shared_ptr<ClientConnection> conn;
    PendingCall call;  // Registered until done; then only ours.
    call.ctx = ctx;
    if (absl::Status s = Begin(iface, method, ctx, request, &call, &conn);
        !s.ok()) {
      return s;
    }
    // Sent (copied into the section): a large buffer holds the reply next.
    conn->buffers().Give(std::move(request));
    // The cancel callback is registered only if the caller is about to
    // sleep (or saw the cancel while spinning): a reply that arrives within
    // the spin costs no CancelState, mutex or std::function. It names the
    // call by id, so it is harmless if it runs after this returns.
    std::optional<uint64_t> handle;
    const uint64_t id = call.id;
    conn->Wait(
        &call, [ctx] { return ctx->WasCancelledExplicitly(); },
        [&] {
          if (handle.has_value()) return;
          // Raw pointer (no heap for the std::function): removed below,
          // while `conn` is held, and removal waits for a running callback.
          ClientConnection* c = conn.get();
          handle = ctx->AddCancelCallback([c, id] {
            if (c->Complete(id, absl::CancelledError("call cancelled"))) {
              c->SendCancel(id);
            }
            c->WakeLeader();
          });
        });
    if (handle.has_value()) ctx->RemoveCancelCallback(*handle);
    return Finish(ctx, call.deadline_ns, std::move(call.result));
  }

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    // Deleted by whoever completes it (ClientConnection::CompleteLocked),
    // or below if it never got registered.
    auto* call = new PendingCall;
    call->ctx = ctx;
    call->callback = std::move(done);
    std::shared_ptr<ClientConnection> conn;
    bool registered = false;
    absl::Status s = Begin(iface, method, ctx, request, call, &conn, &registered);
    if (s.ok()) conn->buffers().Give(std::move(request));
    if (!s.ok() && !registered) {
      // Also removes its cancel callback, if Begin registered one.
      Completion c{std::move(call->callback), ctx, call->deadline_ns,
                   call->cancel_handle, std::move(s)};
      delete call;
      c.Run();
    }
    // Registered: the call now belongs to the connection (if sending failed,
    // Begin completed it and its callback ran).
  }

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    if (absl::Status s = PrepareCall(ctx, request.size()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ClientConnection>> conn =
        GetConnection(ctx->deadline(), MonotonicNowNs());
    if (!conn.ok()) return conn.status();
    std::optional<uint32_t> slot = (*conn)->BoundSlot(iface.full_name);
    if (!slot.has_value()) {
      absl::StatusOr<uint32_t> bound = Bind(*conn, iface, ctx->deadline());
      if (!bound.ok()) return bound.status();
      slot = *bound;
    }
    OutgoingMessage m;
    m.type = MessageType::kOneway;
    m.message_id = 0;
    m.interface_slot = *slot;
    m.method_id = method.id;
    m.deadline_ns = ToMonotonicDeadlineNs(ctx->deadline());
    m.payload = request;
    std::string with_metadata;
    if (HasSendableMetadata(ctx->metadata())) {
      if (absl::Status s = EncodeMetadata(ctx->metadata(), &with_metadata);
          !s.ok()) {
        return s;
      }
      with_metadata += request;
      m.flags = kFlagMetadata;
      m.payload = with_metadata;
    }
    return (*conn)->Send(m, ctx->deadline());
  }

 private:
  // Connects, binds, registers and sends one call (`call->ctx` and, for an
  // async call, `call->callback` set). `*registered` (async calls) tells
  // whether the call was registered: then the connection owns it, and a
  // failed send has already completed it.
  absl::Status Begin(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     const std::string& request, PendingCall* call,
                     std::shared_ptr<ClientConnection>* conn_out,
                     bool* registered = nullptr) {
    absl::Time now;
    if (absl::Status s = PrepareCall(ctx, request.size(), &now); !s.ok()) {
      return s;
    }
    const absl::Time deadline = ctx->deadline();
    const int64_t mono_now = MonotonicNowNs();
    call->deadline_ns = ToMonotonicDeadlineNs(deadline, now, mono_now);
    absl::StatusOr<std::shared_ptr<ClientConnection>> conn =
        GetConnection(deadline, mono_now);
    if (!conn.ok()) return conn.status();
    ClientConnection& c = **conn;
    std::string with_metadata;
    const bool has_metadata = HasSendableMetadata(ctx->metadata());
    if (has_metadata) {
      if (absl::Status s = EncodeMetadata(ctx->metadata(), &with_metadata);
          !s.ok()) {
        return s;
      }
      with_metadata += request;
    }
    call->deadline = deadline;
    const int64_t deadline_ns = call->deadline_ns;
    uint64_t async_id = 0;
    if (registered != nullptr) {
      // An async call's cancel callback is registered before the call is:
      // once sent, the reply may complete the call, and `done` may destroy
      // `ctx`, at any moment. It holds a raw pointer (16 bytes: no heap for
      // the std::function); it is removed before `done` runs
      // (Completion::Run) or, for a call still pending when the connection
      // dies, by the connection's destructor. A cancel that comes before
      // the call is registered finds nothing; Register then refuses it.
      call->id = async_id = c.NextId();
      ClientConnection* raw = conn->get();
      const uint64_t id = async_id;
      call->cancel_handle = ctx->AddCancelCallback([raw, id] {
        if (raw->Complete(id, absl::CancelledError("call cancelled"))) {
          raw->SendCancel(id);
        }
      });
    }
    absl::StatusOr<uint32_t> slot = c.Register(call, &iface);
    if (absl::IsNotFound(slot.status())) {  // First call of this interface.
      absl::StatusOr<uint32_t> bound = Bind(*conn, iface, deadline);
      if (!bound.ok()) return bound.status();
      slot = c.Register(call, &iface);
      if (absl::IsNotFound(slot.status())) {
        return absl::UnavailableError("interface binding lost");
      }
    }
    if (!slot.ok()) return slot.status();
    // From here on an async call belongs to the connection: it may be
    // completed and deleted at any moment (a cancel, a dead connection), so
    // `call` is not touched again; a sync call's record is ours.
    if (registered != nullptr) *registered = true;
    const uint64_t id = async_id != 0 ? async_id : call->id;
    OutgoingMessage m;
    m.type = MessageType::kRequest;
    m.message_id = id;
    m.interface_slot = *slot;
    m.method_id = method.id;
    m.deadline_ns = deadline_ns;
    m.payload = request;
    if (has_metadata) {
      m.flags = kFlagMetadata;
      m.payload = with_metadata;
    }
    if (absl::Status s = c.Send(m, deadline); !s.ok()) {
      c.Complete(id, s);  // Runs an async call's callback.
      return s;
    }
    *conn_out = std::move(*conn);
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> Bind(const std::shared_ptr<ClientConnection>& conn,
                                const InterfaceDescriptor& iface,
                                absl::Time deadline) {
    const std::string name(iface.full_name);
    PendingCall call;
    call.deadline = deadline;
    if (absl::StatusOr<uint32_t> r = conn->Register(&call, nullptr); !r.ok()) {
      return r.status();
    }
    BindRequest req{name, std::string(iface.uuid), iface.version.major,
                    iface.version.minor};
    const std::string payload = EncodeBindRequest(req);
    OutgoingMessage m;
    m.type = MessageType::kBind;
    m.message_id = call.id;
    m.payload = payload;
    if (absl::Status s = conn->Send(m, deadline); !s.ok()) {
      conn->Complete(call.id, s);
      return s;
    }
    conn->Wait(&call);
    if (!call.result.ok()) return call.result.status();
    conn->SetBound(name, call.bind_slot);
    return call.bind_slot;
  }

  absl::StatusOr<std::shared_ptr<ClientConnection>> GetConnection(
      absl::Time deadline, int64_t mono_now_ns) {
    std::lock_guard<std::mutex> lock(mu_);
    // The socket poll is rate-limited: a busy caller makes no syscall here.
    if (conn_ != nullptr && !conn_->dead() &&
        (!conn_->SocketCheckDue(mono_now_ns) || !conn_->HungUp())) {
      return conn_;
    }
    if (conn_ != nullptr) {
      if (!conn_->dead()) {
        conn_->MarkDead(absl::UnavailableError("server closed the connection"));
      }
      conn_.reset();
    }
    const absl::Time now = absl::Now();
    if (now < next_attempt_) {
      return absl::UnavailableError(absl::StrCat(
          "local port ", name_, " unavailable (retrying): ",
          last_error_.message()));
    }
    absl::StatusOr<std::shared_ptr<ClientConnection>> c =
        Connect(path_, local_, options(), deadline);
    if (!c.ok()) {
      last_error_ = c.status();
      next_attempt_ = now + backoff_;
      backoff_ = std::min(backoff_ * 2, local_.reconnect_backoff_max);
      return c.status();
    }
    backoff_ = local_.reconnect_backoff_initial;
    next_attempt_ = absl::InfinitePast();
    conn_ = *c;
    return conn_;
  }

  const std::string name_;
  const std::string path_;
  const LocalChannelOptions local_;
  std::mutex mu_;
  std::shared_ptr<ClientConnection> conn_;   // mu_
  absl::Time next_attempt_ = absl::InfinitePast();  // mu_
  absl::Duration backoff_;                   // mu_
  absl::Status last_error_;                  // mu_
};

}  // namespace

absl::StatusOr<std::shared_ptr<Channel>> CreateLocalChannel(
    std::string name, ChannelOptions options, LocalChannelOptions local) {
  absl::StatusOr<std::string> path = PortPath(name, local.runtime_dir);
  if (!path.ok()) return path.status();
  return std::shared_ptr<Channel>(new LocalChannel(
      std::move(name), std::move(*path), std::move(options), std::move(local)));
}

void RegisterLocalTransport() {
  RegisterChannelFactory(
      "local", [](std::string_view address, const ChannelArgs& args)
                   -> absl::StatusOr<std::shared_ptr<Channel>> {
        LocalChannelOptions local;
        if (args.transport_options != nullptr) {
          local = *static_cast<const LocalChannelOptions*>(args.transport_options);
        }
        return CreateLocalChannel(std::string(address), args.common, local);
      });
}

namespace {
const bool kRegistered = (RegisterLocalTransport(), true);
}  // namespace

}  // namespace lpc::local
