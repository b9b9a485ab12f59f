// The in-process transport: synchronous unary calls (Channel::Call) whose
// handler runs on the caller's thread (CallInline); the runtime's handler
// pool and a deadline timer for plain unary calls started asynchronously
// or oneway, which complete exactly once whichever of reply, cancel,
// deadline or shutdown comes first; and everything else (streams, async
// handlers) through StreamCore (internal/inprocess_stream.h).
#include "runtime/inprocess.h"

#include <unistd.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/internal/handler_pool.h"
#include "runtime/handles.h"
#include "runtime/internal/inprocess_server.h"
#include "runtime/internal/inprocess_stream.h"
#include "runtime/internal/serving_thread.h"
#include "runtime/target.h"

namespace lpc {

using ::lpc::internal::CallContextAccess;

using inprocess_internal::Expirable;
using inprocess_internal::StreamCore;
using ReadResult = absl::StatusOr<std::optional<std::string>>;

namespace {

std::mutex g_names_mu;
std::map<std::string, std::weak_ptr<InProcessTransport::Impl>>& Names() {
  static auto* names =
      new std::map<std::string, std::weak_ptr<InProcessTransport::Impl>>;
  return *names;
}

}  // namespace

namespace inprocess_internal {

// Every in-process call's peer: this process. Never destroyed, so that a
// server context may point at it for as long as it lives.
const PeerIdentity& ProcessPeer() {
  static const PeerIdentity* peer = [] {
    auto* p = new PeerIdentity;
    p->transport = "inprocess";
    p->uid = static_cast<uint32_t>(getuid());
    p->gid = static_cast<uint32_t>(getgid());
    p->pid = static_cast<int32_t>(getpid());
    p->address = "inprocess";
    return p;
  }();
  return *peer;
}

void FillServerContext(const CallContext& client, CallContext* server) {
  server->set_deadline(client.deadline());
  server->metadata() = client.metadata();
  CallContextAccess::SetPeerRef(*server, &ProcessPeer());
}

}  // namespace inprocess_internal

using inprocess_internal::FillServerContext;
using inprocess_internal::InProcessBinding;
using inprocess_internal::InProcessCall;

class InProcessTransport::Impl final
    : public std::enable_shared_from_this<InProcessTransport::Impl>,
      public inprocess_internal::InProcessServer {
 public:
  Impl(std::string name, InProcessOptions options)
      : name_(std::move(name)),
        pool_({.min_workers = options.min_workers,
               .max_workers = options.max_workers}) {}

  ~Impl() override { Stop(absl::Now()); }

  absl::Status Start(Dispatcher* dispatcher) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (state_ != State::kNew) {
      return absl::FailedPreconditionError("in-process transport reused");
    }
    absl::Status s = pool_.Start();
    if (!s.ok()) return s;
    dispatcher_ = dispatcher;
    state_ = State::kRunning;
    timer_ = std::thread([this] { TimerLoop(); });
    return absl::OkStatus();
  }

  void Stop(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (state_ != State::kRunning) return;
      state_ = State::kDraining;
    }
    pool_.Stop();  // New calls are refused; queued ones still run.
    std::vector<std::shared_ptr<InProcessCall>> unary;
    std::vector<std::shared_ptr<StreamCore>> streams;
    std::vector<InlineCall*> inline_calls;
    {
      MutexLock lock(&mu_);
      while ((!unary_.empty() || !streams_.empty() || inline_ != nullptr) &&
             absl::Now() < deadline) {
        idle_cv_.WaitWithDeadline(&mu_, deadline);
      }
      unary.assign(unary_.begin(), unary_.end());
      for (auto& [ptr, core] : streams_) streams.push_back(core);
      // Pinned: each caller waits, once its handler has returned, until
      // its context has been cancelled here, without the lock.
      for (InlineCall* c = inline_; c != nullptr; c = c->next) {
        c->shut_down = true;
        c->pinned = true;
        inline_calls.push_back(c);
      }
    }
    for (InlineCall* c : inline_calls) c->server_ctx->Cancel();
    if (!inline_calls.empty()) {
      MutexLock lock(&mu_);
      for (InlineCall* c : inline_calls) c->pinned = false;
      idle_cv_.SignalAll();
    }
    for (auto& c : unary) {
      // Fail the caller first, so a handler that returns as soon as it sees
      // the cancellation cannot slip a reply in.
      if (c->wants_reply) {
        c->Complete(absl::UnavailableError("server shut down before the call "
                                           "finished"),
                    nullptr);
      }
      c->server_ctx.Cancel();
    }
    for (auto& core : streams) {
      core->Abort(absl::UnavailableError(
          "server shut down before the call finished"));
    }
    pool_.Join();  // Handlers have been told to stop; wait for them.
    std::thread timer;
    {
      MutexLock lock(&mu_);
      // And for the handlers running on their callers' threads.
      while (inline_ != nullptr) {
        idle_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
      }
      state_ = State::kStopped;
      timer_cv_.SignalAll();
      timer = std::move(timer_);
    }
    if (timer.joinable()) timer.join();
  }

  // InProcessServer:
  InProcessBinding Bind(const InterfaceDescriptor& iface,
                        bool* cacheable) override {
    Dispatcher* d = dispatcher();
    *cacheable = d != nullptr;
    if (d == nullptr) {
      return {absl::UnavailableError("in-process server is not running")};
    }
    InProcessBinding b;
    b.status = d->CheckBinding(iface.full_name, iface.uuid, iface.version);
    if (b.status.ok()) {
      b.bound = d->Bind(iface.full_name);
      if (b.bound == nullptr) {
        b.status = absl::UnimplementedError(absl::StrCat(
            "unknown interface ", std::string(iface.full_name)));
      }
    }
    return b;
  }

  absl::Status StartUnary(const std::shared_ptr<InProcessCall>& call) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (state_ != State::kRunning) {
        return absl::UnavailableError("in-process server is not running");
      }
      unary_.insert(call);
      if (call->wants_reply) WatchDeadlineLocked(call->client_ctx->deadline(), call);
    }
    absl::Status s = pool_.Submit([this, call](bool run) {
      if (run) {
        RunUnary(*call);
      } else if (call->wants_reply) {
        call->Complete(absl::UnavailableError("server shut down before the "
                                              "call started"),
                       nullptr);
      }
      Forget(call);
    });
    if (!s.ok()) Forget(call);
    return s;
  }

  absl::Status CallInline(CallContext& ctx, bool handles,
                          std::shared_ptr<ContextTable> contexts,
                          InlineDispatch dispatch) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    // Set up before the call is listed: shutdown may cancel it from then on.
    CallContext server_ctx;
    FillServerContext(ctx, &server_ctx);
    CallContextAccess::SetContextTable(server_ctx, std::move(contexts));
    // The caller's Cancel() (from another thread, or a parent context's)
    // reaches the handler; the deadline it sees in its own context. The
    // link costs nothing unless the handler watches for cancellation.
    CallContextAccess::SetLazyCancelParent(server_ctx, &ctx);
    InlineCall call;
    call.server_ctx = &server_ctx;
    {
      MutexLock lock(&mu_);
      if (state_ != State::kRunning) {
        return absl::UnavailableError("in-process server is not running");
      }
      call.next = inline_;
      if (inline_ != nullptr) inline_->prev = &call;
      inline_ = &call;
      ++inline_running_;
      ++inline_calls_;
    }
    absl::Status result = RunInline(ctx, handles, server_ctx, dispatch);
    bool shut_down;
    {
      MutexLock lock(&mu_);
      while (call.pinned) {  // Stop is cancelling server_ctx.
        idle_cv_.WaitWithDeadline(&mu_, absl::InfiniteFuture());
      }
      if (call.prev != nullptr) {
        call.prev->next = call.next;
      } else {
        inline_ = call.next;
      }
      if (call.next != nullptr) call.next->prev = call.prev;
      --inline_running_;
      shut_down = call.shut_down;
      if (state_ != State::kRunning) idle_cv_.SignalAll();
    }
    if (shut_down) {
      return absl::UnavailableError(
          "server shut down before the call finished");
    }
    return result;
  }

  void StartStream(const std::shared_ptr<StreamCore>& core,
                   const BoundInterface* bound,
                   const BoundInterface::Method* method) override {
    if (!Register(core)) return;
    absl::Status s = pool_.Submit([this, core, bound, method](bool run) {
      if (!run) {
        core->Abort(absl::UnavailableError("server shut down before the "
                                           "call started"));
      } else if (!core->ended()) {
        dispatcher_->StartCall(*bound, *method,
                               inprocess_internal::MakeServerStream(core));
      }
    });
    if (!s.ok()) core->Abort(s);
  }

  void StartUnaryOverStream(const std::shared_ptr<StreamCore>& core,
                            const BoundInterface* bound,
                            const BoundInterface::Method* method) override {
    if (!Register(core)) return;
    std::weak_ptr<Impl> weak = weak_from_this();
    core->ServerRead([weak, core, bound, method](ReadResult first) {
      if (!first.ok()) return;  // The call ended.
      if (!first->has_value()) {
        core->ServerFinish(
            absl::InvalidArgumentError("the call carried no request"));
        return;
      }
      core->ServerRead([weak, core, bound, method,
                        request = std::move(**first)](ReadResult second) mutable {
        if (!second.ok()) return;
        if (second->has_value()) {
          core->ServerFinish(absl::InvalidArgumentError(
              absl::StrCat(method->path, " takes one request message")));
          return;
        }
        auto self = weak.lock();
        if (self == nullptr) {
          core->Abort(absl::UnavailableError("in-process server is gone"));
          return;
        }
        Impl* impl = self.get();
        absl::Status s = impl->pool_.Submit(
            [impl, core, bound, method,
             request = std::move(request)](bool run) {
              if (!run) {
                core->Abort(absl::UnavailableError(
                    "server shut down before the call started"));
                return;
              }
              if (core->ended()) return;
              std::string response;
              absl::Status st = impl->dispatcher_->DispatchBound(
                  *bound, *method, core->server_ctx(), request, &response);
              if (st.ok() && !method->descriptor->oneway) {
                core->ServerWrite(std::move(response), [](absl::Status) {});
              }
              core->ServerFinish(st);
            });
        if (!s.ok()) core->Abort(s);
      });
    });
  }

  // StreamHost: a call ended.
  void StreamDone(StreamCore* core) override ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<StreamCore> last;  // Released without the lock.
    MutexLock lock(&mu_);
    auto it = streams_.find(core);
    if (it == streams_.end()) return;
    last = std::move(it->second);
    streams_.erase(it);
    idle_cv_.SignalAll();
  }

  StreamCore::Limits Limits(const ChannelOptions& channel) override {
    StreamCore::Limits limits;
    limits.server_to_client = channel.stream_window;
    limits.client_max_message = channel.max_message_size;
    Dispatcher* d = dispatcher();
    limits.client_to_server = d != nullptr ? d->options().stream_window
                                           : StreamWindow{};
    limits.server_max_message = d != nullptr ? d->options().max_message_size
                                             : channel.max_message_size;
    return limits;
  }

  bool Defer(std::function<void()> fn) override ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (state_ != State::kRunning && state_ != State::kDraining) return false;
    deferred_.push_back(std::move(fn));
    timer_cv_.Signal();
    return true;
  }

  std::weak_ptr<inprocess_internal::StreamHost> host() override {
    return weak_from_this();
  }

  const std::string& name() const { return name_; }

  void Report(TransportReport* report) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    report->counters.emplace_back(
        "calls_in_flight", unary_.size() + streams_.size() + inline_running_);
    report->counters.emplace_back("calls_inline", inline_calls_);
  }

 private:
  enum class State { kNew, kRunning, kDraining, kStopped };

  Dispatcher* dispatcher() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return state_ == State::kRunning ? dispatcher_ : nullptr;
  }

  // Tracks `core` and its deadline; false (the core ended) when the
  // transport is not running.
  bool Register(const std::shared_ptr<StreamCore>& core)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (state_ == State::kRunning) {
        streams_.emplace(core.get(), core);
        WatchDeadlineLocked(core->server_ctx().deadline(), core);
        return true;
      }
    }
    core->Abort(absl::UnavailableError("in-process server is not running"));
    return false;
  }

  void Forget(const std::shared_ptr<InProcessCall>& call)
      ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    unary_.erase(call);
    idle_cv_.SignalAll();
  }

  void WatchDeadlineLocked(absl::Time deadline,
                           std::weak_ptr<Expirable> what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (deadline == absl::InfiniteFuture()) return;
    auto it = deadlines_.emplace(deadline, std::move(what));
    if (it == deadlines_.begin()) timer_cv_.Signal();
  }

  // A synchronous unary call whose handler may run on the caller's
  // thread, while it does (CallInline). On the caller's stack; listed in
  // inline_ so that shutdown can wait for it and cancel it.
  struct InlineCall {
    CallContext* server_ctx = nullptr;
    bool shut_down = false;  // mu_: shutdown failed the call.
    bool pinned = false;     // mu_: shutdown is cancelling server_ctx.
    InlineCall* prev = nullptr;  // mu_
    InlineCall* next = nullptr;  // mu_
  };

  // CallInline's work once the call is listed: the handler, on this
  // thread, and the status as the caller sees it.
  absl::Status RunInline(CallContext& ctx, bool handles,
                         CallContext& server_ctx, InlineDispatch dispatch) {
    if (handles) {
      // Duplicated, as a local peer would receive them: the caller's table
      // is its own (docs/handles.md).
      if (HandleTable* sent = internal::CallHandles::request_if_any(ctx)) {
        absl::Status s = internal::DuplicateHandles(
            *sent, internal::CallHandles::request(server_ctx));
        if (!s.ok()) return s;
      }
    }
    absl::Status result = dispatch(*dispatcher_, server_ctx);
    if (ctx.IsCancelled()) {
      // A reply that lost the race against the caller's deadline or cancel
      // is not delivered: the caller sees what ended the call.
      result = StatusForEndedCall(ctx);
    } else {
      ctx.response_metadata() = std::move(server_ctx.response_metadata());
      if (result.ok() && handles) {
        result = internal::DuplicateHandles(
            internal::CallHandles::reply(server_ctx),
            internal::CallHandles::reply(ctx));
      }
    }
    // The server's side is closed before the caller sees the reply.
    if (handles) internal::CallHandles::Reset(server_ctx);
    return result;
  }

  void RunUnary(InProcessCall& call) {
    if (call.done.load()) return;  // Cancelled or expired while queued.
    absl::StatusOr<ReceivedMessage> reply;
    if (call.zero_copy) {
      inprocess_internal::WriteOnceSink sink(nullptr, 0);
      absl::Status status = dispatcher_->DispatchBoundWith(
          *call.bound, *call.method, call.server_ctx, call.request, sink);
      reply = status.ok() ? absl::StatusOr<ReceivedMessage>(
                                std::move(sink.message()))
                          : status;
    } else {
      std::string response;
      absl::Status status =
          dispatcher_->DispatchBound(*call.bound, *call.method, call.server_ctx,
                                     call.request.bytes(), &response);
      reply = status.ok() ? absl::StatusOr<ReceivedMessage>(
                                ReceivedMessage(std::move(response)))
                          : status;
    }
    if (call.wants_reply) {
      call.Complete(std::move(reply), &call.server_ctx.response_metadata());
    }
    // The server side's descriptors (the reply's were duplicated for the
    // client by Complete) are closed now, on this worker.
    internal::CallHandles::Reset(call.server_ctx);
  }

  // The deadline timer, and the thread that runs deferred stream
  // callbacks (Defer); it drains them before it exits.
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_) {
    internal::ServingThreadScope serving;  // Runs user callbacks.
    MutexLock lock(&mu_);
    while (state_ != State::kStopped || !deferred_.empty()) {
      if (!deferred_.empty()) {
        std::deque<std::function<void()>> batch;
        batch.swap(deferred_);
        mu_.Unlock();
        for (auto& fn : batch) fn();
        batch.clear();
        mu_.Lock();
        continue;
      }
      absl::Time now = absl::Now();
      std::vector<std::shared_ptr<Expirable>> expired;
      while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        if (auto c = deadlines_.begin()->second.lock()) {
          expired.push_back(std::move(c));
        }
        deadlines_.erase(deadlines_.begin());
      }
      if (!expired.empty()) {
        mu_.Unlock();
        for (auto& c : expired) c->Expire();
        expired.clear();
        mu_.Lock();
        continue;
      }
      timer_cv_.WaitWithDeadline(&mu_, deadlines_.empty()
                                           ? absl::InfiniteFuture()
                                           : deadlines_.begin()->first);
    }
  }

  const std::string name_;
  internal::HandlerPool pool_;
  Dispatcher* dispatcher_ = nullptr;  // Set by Start, before any call.

  Mutex mu_;  // Guards what follows. Never held while calling out.
  CondVar idle_cv_;   // A call was forgotten.
  CondVar timer_cv_;  // An earlier deadline, a deferred callback, stopping.
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  std::set<std::shared_ptr<InProcessCall>> unary_ ABSL_GUARDED_BY(mu_);
  InlineCall* inline_ ABSL_GUARDED_BY(mu_) = nullptr;  // Their list's head.
  uint64_t inline_running_ ABSL_GUARDED_BY(mu_) = 0;  // In that list.
  uint64_t inline_calls_ ABSL_GUARDED_BY(mu_) = 0;    // Ever run inline.
  std::unordered_map<StreamCore*, std::shared_ptr<StreamCore>> streams_
      ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::weak_ptr<Expirable>> deadlines_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
  std::thread timer_ ABSL_GUARDED_BY(mu_);
};


InProcessTransport::InProcessTransport(std::string name,
                                       InProcessOptions options)
    : impl_(std::make_shared<Impl>(std::move(name), options)) {}

InProcessTransport::~InProcessTransport() { Shutdown(absl::Now()); }

absl::Status InProcessTransport::Start(Dispatcher* dispatcher) {
  RegisterInProcessTransport();
  absl::Status s = impl_->Start(dispatcher);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(g_names_mu);
  Names()[impl_->name()] = impl_;
  return absl::OkStatus();
}

void InProcessTransport::Shutdown(absl::Time deadline) {
  {
    std::lock_guard<std::mutex> lock(g_names_mu);
    auto it = Names().find(impl_->name());
    if (it != Names().end() && it->second.lock() == impl_) Names().erase(it);
  }
  impl_->Stop(deadline);
}

void InProcessTransport::Report(TransportReport* report) const {
  impl_->Report(report);
}

std::string InProcessTransport::target() const {
  return absl::StrCat("inprocess:", impl_->name());
}

std::shared_ptr<Channel> InProcessTransport::NewChannel(ChannelOptions options) {
  return inprocess_internal::MakeInProcessChannel(impl_, std::move(options));
}

void RegisterInProcessTransport() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterChannelFactory(
        "inprocess",
        [](std::string_view address, const ChannelArgs& args)
            -> absl::StatusOr<std::shared_ptr<Channel>> {
          std::lock_guard<std::mutex> lock(g_names_mu);
          auto it = Names().find(std::string(address));
          std::shared_ptr<InProcessTransport::Impl> impl;
          if (it != Names().end()) impl = it->second.lock();
          if (impl == nullptr) {
            return absl::UnavailableError(absl::StrCat(
                "no in-process server named '", std::string(address), "'"));
          }
          return inprocess_internal::MakeInProcessChannel(impl, args.common);
        });
  });
}

}  // namespace lpc