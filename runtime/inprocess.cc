// The in-process transport: a worker pool, a deadline timer, and calls that
// complete exactly once whichever of reply, cancel, deadline or shutdown
// comes first.
#include "runtime/inprocess.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/target.h"

namespace lpc {
namespace {

std::mutex g_names_mu;
std::map<std::string, std::weak_ptr<InProcessTransport::Impl>>& Names() {
  static auto* names =
      new std::map<std::string, std::weak_ptr<InProcessTransport::Impl>>;
  return *names;
}

}  // namespace

// One call in flight. Whoever flips `done` first (the handler's reply, the
// client's cancel, the deadline timer or shutdown) completes it; the others
// only see that it is done.
struct InProcessCall {
  const InterfaceDescriptor* iface = nullptr;
  const MethodDescriptor* method = nullptr;
  std::string request;
  CallContext* client_ctx = nullptr;  // Valid until `done` flips.
  // Set before the call is shared and never changed after: whether a caller
  // waits for a reply (false for oneway). Threads other than the one that
  // wins `done` test this, never `callback`, which the winner moves from.
  bool wants_reply = false;
  ResponseCallback callback;  // Touched only by whoever wins `done`.
  uint64_t cancel_handle = 0;
  CallContext server_ctx;
  std::atomic<bool> done{false};

  // Completes the call if nobody has; returns whether this caller did.
  bool Complete(absl::StatusOr<std::string> result,
                const Metadata* response_metadata) {
    if (done.exchange(true)) return false;
    client_ctx->RemoveCancelCallback(cancel_handle);
    // A reply that lost the race against the caller's deadline or cancel
    // is not delivered: the caller sees what ended the call.
    if (response_metadata != nullptr && client_ctx->IsCancelled()) {
      result = StatusForEndedCall(*client_ctx);
      response_metadata = nullptr;
    }
    if (response_metadata != nullptr) {
      client_ctx->response_metadata() = *response_metadata;
    }
    ResponseCallback cb = std::move(callback);
    cb(std::move(result));
    return true;
  }
};

class InProcessTransport::Impl
    : public std::enable_shared_from_this<InProcessTransport::Impl> {
 public:
  Impl(std::string name, InProcessOptions options)
      : name_(std::move(name)), options_(options) {}

  ~Impl() { Stop(absl::Now()); }

  absl::Status Start(Dispatcher* dispatcher) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kNew) {
      return absl::FailedPreconditionError("in-process transport reused");
    }
    dispatcher_ = dispatcher;
    state_ = State::kRunning;
    for (int i = 0; i < options_.min_workers; ++i) StartWorkerLocked();
    timer_ = std::thread([this] { TimerLoop(); });
    return absl::OkStatus();
  }

  void Stop(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ != State::kRunning) return;
    state_ = State::kDraining;
    // Queued calls that have not started fail at once; running ones get
    // until `deadline`.
    std::deque<std::shared_ptr<InProcessCall>> queued;
    queued.swap(queue_);
    lock.unlock();
    for (auto& c : queued) {
      if (c->wants_reply) {
        c->Complete(absl::UnavailableError("server shutting down"), nullptr);
      }
    }
    lock.lock();
    while (running_calls_ > 0 && absl::Now() < deadline) {
      idle_cv_.wait_until(lock, absl::ToChronoTime(deadline));
    }
    std::vector<std::shared_ptr<InProcessCall>> running(active_.begin(),
                                                        active_.end());
    lock.unlock();
    for (auto& c : running) {
      // Fail the caller first, so a handler that returns as soon as it sees
      // the cancellation cannot slip a reply in.
      if (c->wants_reply) {
        c->Complete(absl::UnavailableError("server shut down before the call "
                                           "finished"),
                    nullptr);
      }
      c->server_ctx.Cancel();
    }
    lock.lock();
    state_ = State::kStopped;
    work_cv_.notify_all();
    timer_cv_.notify_all();
    std::vector<std::thread> workers;
    workers.swap(workers_);
    std::thread timer = std::move(timer_);
    lock.unlock();
    for (auto& w : workers) w.join();
    if (timer.joinable()) timer.join();
  }

  // Queues a call; returns false (and leaves `call` untouched) if the
  // transport is not running.
  bool Enqueue(std::shared_ptr<InProcessCall> call) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kRunning) return false;
    queue_.push_back(call);
    if (call->wants_reply) {
      deadlines_.emplace(call->client_ctx->deadline(), call);
      timer_cv_.notify_one();
    }
    // Idle workers that have not woken yet are already spoken for by the
    // calls queued before this one.
    if (queue_.size() > static_cast<size_t>(idle_workers_) &&
        static_cast<int>(workers_.size()) < options_.max_workers) {
      StartWorkerLocked();
    }
    work_cv_.notify_one();
    return true;
  }

  const std::string& name() const { return name_; }

 private:
  enum class State { kNew, kRunning, kDraining, kStopped };

  void StartWorkerLocked() {
    workers_.emplace_back([this] { WorkerLoop(); });
  }

  void WorkerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_workers_;
      work_cv_.wait(lock, [&] {
        return !queue_.empty() || state_ == State::kStopped;
      });
      --idle_workers_;
      if (state_ == State::kStopped) return;
      std::shared_ptr<InProcessCall> call = std::move(queue_.front());
      queue_.pop_front();
      ++running_calls_;
      active_.insert(call);
      lock.unlock();
      Run(*call);
      lock.lock();
      active_.erase(call);
      --running_calls_;
      idle_cv_.notify_all();
    }
  }

  void Run(InProcessCall& call) {
    if (call.done.load()) return;  // Cancelled or expired while queued.
    absl::Status bind = dispatcher_->CheckBinding(
        call.iface->full_name, call.iface->uuid, call.iface->version);
    std::string response;
    absl::Status status = bind;
    if (bind.ok()) {
      status = dispatcher_->Dispatch(call.iface->full_name, call.method->id,
                                     call.server_ctx, call.request, &response);
    }
    if (!call.wants_reply) return;  // Oneway: no reply.
    if (status.ok()) {
      call.Complete(std::move(response), &call.server_ctx.response_metadata());
    } else {
      call.Complete(status, &call.server_ctx.response_metadata());
    }
  }

  void TimerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (state_ != State::kStopped) {
      absl::Time now = absl::Now();
      std::vector<std::shared_ptr<InProcessCall>> expired;
      while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        if (auto c = deadlines_.begin()->second.lock()) expired.push_back(c);
        deadlines_.erase(deadlines_.begin());
      }
      if (!expired.empty()) {
        lock.unlock();
        for (auto& c : expired) {
          if (c->done.load()) continue;
          c->Complete(absl::DeadlineExceededError("deadline exceeded"),
                      nullptr);
          c->server_ctx.Cancel();
        }
        lock.lock();
        continue;
      }
      if (deadlines_.empty()) {
        timer_cv_.wait(lock);
      } else {
        timer_cv_.wait_until(lock,
                             absl::ToChronoTime(deadlines_.begin()->first));
      }
    }
  }

  const std::string name_;
  const InProcessOptions options_;
  Dispatcher* dispatcher_ = nullptr;

  std::mutex mu_;  // Guards everything below.
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::condition_variable timer_cv_;
  State state_ = State::kNew;
  std::deque<std::shared_ptr<InProcessCall>> queue_;
  std::set<std::shared_ptr<InProcessCall>> active_;
  std::multimap<absl::Time, std::weak_ptr<InProcessCall>> deadlines_;
  std::vector<std::thread> workers_;
  std::thread timer_;
  int idle_workers_ = 0;
  int running_calls_ = 0;
};

namespace {

class InProcessChannel final : public Channel {
 public:
  InProcessChannel(std::weak_ptr<InProcessTransport::Impl> transport,
                   ChannelOptions options)
      : Channel(std::move(options)), transport_(std::move(transport)) {}

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    absl::Status s = PrepareCall(ctx, request.size());
    if (!s.ok()) {
      done(s);
      return;
    }
    auto call = MakeCall(iface, method, ctx, std::move(request));
    call->callback = std::move(done);
    call->wants_reply = true;
    // Register for cancellation before the call can complete.
    std::weak_ptr<InProcessCall> weak = call;
    call->cancel_handle = ctx->AddTransportCancelCallback([weak] {
      if (auto c = weak.lock()) {
        c->Complete(absl::CancelledError("call cancelled by the client"),
                    nullptr);
        c->server_ctx.Cancel();
      }
    });
    auto transport = transport_.lock();
    if (transport == nullptr || !transport->Enqueue(call)) {
      call->Complete(absl::UnavailableError("in-process server is not running"),
                     nullptr);
    }
  }

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    absl::Status s = PrepareCall(ctx, request.size());
    if (!s.ok()) return s;
    auto call = MakeCall(iface, method, ctx, std::move(request));
    call->client_ctx = nullptr;
    auto transport = transport_.lock();
    if (transport == nullptr || !transport->Enqueue(call)) {
      return absl::UnavailableError("in-process server is not running");
    }
    return absl::OkStatus();
  }

  std::string_view transport_name() const override { return "inprocess"; }

 private:
  static std::shared_ptr<InProcessCall> MakeCall(const InterfaceDescriptor& iface,
                                                 const MethodDescriptor& method,
                                                 CallContext* ctx,
                                                 std::string request) {
    auto call = std::make_shared<InProcessCall>();
    call->iface = &iface;
    call->method = &method;
    call->request = std::move(request);
    call->client_ctx = ctx;
    call->server_ctx.set_deadline(ctx->deadline());
    call->server_ctx.metadata() = ctx->metadata();
    call->server_ctx.set_method_path(iface.MethodPath(method));
    PeerIdentity peer;
    peer.transport = "inprocess";
    peer.uid = static_cast<uint32_t>(getuid());
    peer.gid = static_cast<uint32_t>(getgid());
    peer.pid = static_cast<int32_t>(getpid());
    peer.address = "inprocess";
    call->server_ctx.set_peer(std::move(peer));
    return call;
  }

  std::weak_ptr<InProcessTransport::Impl> transport_;
};

}  // namespace

InProcessTransport::InProcessTransport(std::string name,
                                       InProcessOptions options)
    : impl_(std::make_shared<Impl>(std::move(name), options)) {}

InProcessTransport::~InProcessTransport() {
  Shutdown(absl::Now());
}

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

std::string InProcessTransport::target() const {
  return absl::StrCat("inprocess:", impl_->name());
}

std::shared_ptr<Channel> InProcessTransport::NewChannel(ChannelOptions options) {
  return std::make_shared<InProcessChannel>(impl_, std::move(options));
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
            return absl::UnavailableError(
                absl::StrCat("no in-process server named '", std::string(address), "'"));
          }
          return std::shared_ptr<Channel>(
              std::make_shared<InProcessChannel>(impl, args.common));
        });
  });
}

}  // namespace lpc
