// The in-process transport's channel: resolves an interface once, then
// runs synchronous plain unary calls on the calling thread, and starts
// asynchronous and oneway plain unary calls, unary calls of [async]
// handlers and streams on the server side (InProcessServer). The zero-copy
// forms (CallWith, StartCallWith, SendOnewayWith) write each message once
// and pass a buffer field as a view (docs/zero-copy.md).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/context_handle.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/buffer.h"
#include "runtime/internal/inprocess_server.h"
#include "runtime/message.h"
#include "runtime/mutex.h"

namespace lpc::inprocess_internal {

using ::lpc::internal::CallContextAccess;
namespace {

using ReadResult = absl::StatusOr<std::optional<std::string>>;

// What a synchronous zero-copy call writes on its caller's stack, each
// way, before it takes the heap.
constexpr size_t kStackBytes = 512;

class InProcessChannel final : public Channel {
 public:
  InProcessChannel(std::weak_ptr<InProcessServer> transport,
                   ChannelOptions options)
      : Channel(std::move(options)), transport_(std::move(transport)) {}
  // The channel is the in-process client: its contexts run down with it.
  ~InProcessChannel() override { contexts_->RundownAll(); }

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override {
    absl::Status s = PrepareCall(ctx, request.size());
    if (!s.ok()) {
      done(s);
      return;
    }
    // With a reply, `done` gets every failure: Start returns OK.
    Start(iface, method, ctx, ReceivedMessage(std::move(request)),
          /*zero_copy=*/false,
          [done = std::move(done)](absl::StatusOr<ReceivedMessage> reply) {
            if (!reply.ok()) {
              done(reply.status());
            } else {
              done(reply->TakeString());
            }
          })
        .IgnoreError();
  }

  // A plain unary method's handler runs here, on the calling thread
  // (InProcessServer::CallInline); a method whose handler takes the call
  // ([async]) goes through StartCall and waits.
  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override {
    absl::StatusOr<Target> t = Find(iface, method, ctx, request.size());
    if (!t.ok()) return t.status();
    const BoundInterface* bound = t->bound;
    const BoundInterface::Method* m = t->method;
    if (m->uses_start_call) {
      return Channel::Call(iface, method, ctx, std::move(request));
    }
    std::string response;
    absl::Status s = t->transport->CallInline(
        *ctx, method.handles, contexts_,
        [&](Dispatcher& d, CallContext& server_ctx) {
          return d.DispatchBound(*bound, *m, server_ctx, request, &response);
        });
    if (!s.ok()) return s;
    return response;
  }

  // The zero-copy path (docs/zero-copy.md): the request is written once,
  // on this thread's stack when small, and the handler's DispatchWith
  // decodes it there; its buffer field travels as a view of the caller's
  // Buffer. The reply is written once the same way and decoded here.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override {
    absl::StatusOr<Target> t =
        Find(iface, method, ctx, SerializedSize(request));
    if (!t.ok()) return t.status();
    const BoundInterface* bound = t->bound;
    const BoundInterface::Method* m = t->method;
    InProcessServer* transport = t->transport.get();
    if (m->uses_start_call) {
      return Channel::CallWith(iface, method, ctx, request, decode);
    }
    uint8_t request_stack[kStackBytes];
    ReceivedMessage received = WriteOnce(request, request_stack, kStackBytes);
    uint8_t reply_stack[kStackBytes];
    WriteOnceSink reply(reply_stack, kStackBytes);
    absl::Status s = transport->CallInline(
        *ctx, method.handles, contexts_,
        [&](Dispatcher& d, CallContext& server_ctx) {
          return d.DispatchBoundWith(*bound, *m, server_ctx, received, reply);
        });
    if (!s.ok()) return s;
    return decode(reply.message());
  }

  void StartCallWith(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     const MessageWriter& request,
                     ReceivedCallback done) override {
    absl::Status s = PrepareCall(ctx, SerializedSize(request));
    if (!s.ok()) {
      done(std::move(s));
      return;
    }
    // With a reply, `done` gets every failure: Start returns OK.
    Start(iface, method, ctx, WriteOnce(request, nullptr, 0),
          /*zero_copy=*/true, std::move(done))
        .IgnoreError();
  }

  absl::Status SendOnewayWith(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              const MessageWriter& request) override {
    absl::Status s = PrepareCall(ctx, SerializedSize(request));
    if (!s.ok()) return s;
    return Start(iface, method, ctx, WriteOnce(request, nullptr, 0),
                 /*zero_copy=*/true, nullptr);
  }

  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    absl::Status s = PrepareCall(ctx, request.size());
    if (!s.ok()) return s;
    return Start(iface, method, ctx, ReceivedMessage(std::move(request)),
                 /*zero_copy=*/false, nullptr);
  }

  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override {
    auto transport = transport_.lock();
    absl::Status s = PrepareCall(ctx, 0);
    std::weak_ptr<StreamHost> host;
    StreamCore::Limits limits;
    if (transport != nullptr) {
      host = transport->host();
      limits = transport->Limits(options());
    }
    auto core = std::make_shared<StreamCore>(ctx, limits, std::move(host));
    const BoundInterface* bound = nullptr;
    const BoundInterface::Method* m = nullptr;
    if (s.ok() && transport == nullptr) {
      s = absl::UnavailableError("in-process server is not running");
    }
    if (s.ok()) s = Resolve(*transport, iface, method, &bound, &m);
    if (!s.ok()) {
      core->Abort(s);
      return MakeClientStream(std::move(core));
    }
    FillServerContext(*ctx, &core->server_ctx());
    internal::CallContextAccess::SetContextTable(core->server_ctx(), contexts_);
    core->WatchClientCancel();
    std::shared_ptr<ClientStream> client =
        MakeClientStream(core);
    if (m->uses_start_call) {
      transport->StartStream(core, bound, m);
    } else {
      transport->StartUnaryOverStream(core, bound, m);
    }
    return client;
  }

  std::string_view transport_name() const override { return "inprocess"; }

 private:
  // Keyed by the descriptor and what the bind check reads from it
  // (descriptors are static data, so comparing pointers is enough).
  struct CachedBinding {
    const InterfaceDescriptor* iface;
    const char* name;
    const char* uuid;
    InterfaceVersion version;
    InProcessBinding binding;

    bool Matches(const InterfaceDescriptor& d) const {
      return iface == &d && name == d.full_name.data() &&
             uuid == d.uuid.data() && version.major == d.version.major &&
             version.minor == d.version.minor;
    }
  };

  // Starts a unary call (`done` null: oneway). With a reply, `done` gets
  // every failure and OK is returned; oneway returns the failure.
  // `zero_copy`: `request` was written by a MessageWriter (its buffer
  // attached) and the reply is written once (InProcessCall::zero_copy);
  // else `request` owns a string and the reply is one.
  absl::Status Start(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     ReceivedMessage request, bool zero_copy,
                     ReceivedCallback done) {
    const bool wants_reply = done != nullptr;
    auto fail = [&](absl::Status s) {
      if (!wants_reply) return s;
      done(std::move(s));
      return absl::OkStatus();
    };
    auto transport = transport_.lock();
    if (transport == nullptr) {
      return fail(absl::UnavailableError("in-process server is not running"));
    }
    const BoundInterface* bound = nullptr;
    const BoundInterface::Method* m = nullptr;
    absl::Status s = Resolve(*transport, iface, method, &bound, &m);
    if (!s.ok()) return fail(std::move(s));
    if (m->uses_start_call) {
      // Through the call model, with strings (an attached buffer copied).
      std::string flat;
      std::string bytes = request.attached().has_value()
                              ? std::string(Flatten(request, &flat))
                              : request.TakeString();
      ResponseCallback string_done;
      if (wants_reply) {
        string_done = [done = std::move(done)](
                          absl::StatusOr<std::string> reply) {
          if (!reply.ok()) {
            done(reply.status());
          } else {
            done(ReceivedMessage(std::move(*reply)));
          }
        };
      }
      StartThroughStream(*transport, bound, m, ctx, std::move(bytes),
                         std::move(string_done));
      return absl::OkStatus();
    }
    auto call = std::make_shared<InProcessCall>();
    call->bound = bound;
    call->method = m;
    call->request = std::move(request);
    call->zero_copy = zero_copy;
    FillServerContext(*ctx, &call->server_ctx);
    internal::CallContextAccess::SetContextTable(call->server_ctx, contexts_);
    if (method.handles) {
      // Duplicated, as a local peer would receive them: the caller's table
      // is its own (docs/handles.md).
      call->handles = true;
      if (HandleTable* sent = internal::CallHandles::request_if_any(*ctx)) {
        s = internal::DuplicateHandles(
            *sent, internal::CallHandles::request(call->server_ctx));
        if (!s.ok()) return fail(std::move(s));
      }
    }
    if (wants_reply) {
      call->client_ctx = ctx;
      call->callback = std::move(done);
      call->wants_reply = true;
      // Register for cancellation before the call can complete.
      std::weak_ptr<InProcessCall> weak = call;
      call->cancel_handle =
          CallContextAccess::AddTransportCancelCallback(*ctx, [weak] {
            if (auto c = weak.lock()) {
              c->Complete(absl::CancelledError("call cancelled by the client"),
                          nullptr);
              c->server_ctx.Cancel();
            }
          });
    }
    s = transport->StartUnary(call);
    if (!s.ok()) {
      if (!wants_reply) return s;
      call->Complete(s, nullptr);
    }
    return absl::OkStatus();
  }

  // A unary call of a method whose handler takes the call (an [async]
  // handler): the request and the half-close go in, one message or the
  // status comes out.
  void StartThroughStream(InProcessServer& transport,
                          const BoundInterface* bound,
                          const BoundInterface::Method* m, CallContext* ctx,
                          std::string request, ResponseCallback done) {
    const bool wants_reply = done != nullptr;
    auto core = std::make_shared<StreamCore>(wants_reply ? ctx : nullptr,
                                             transport.Limits(options()),
                                             transport.host());
    FillServerContext(*ctx, &core->server_ctx());
    internal::CallContextAccess::SetContextTable(core->server_ctx(), contexts_);
    core->ClientWrite(std::move(request), [](absl::Status) {});
    core->ClientWritesDone();
    if (wants_reply) {
      core->WatchClientCancel();
      struct Reply {
        Mutex mu;
        std::optional<std::string> message ABSL_GUARDED_BY(mu);
      };
      auto reply = std::make_shared<Reply>();
      // The status is asked for once the reply (or the end) is in, so the
      // reply is never behind it.
      core->ClientRead([core, done = std::move(done)](ReadResult r) mutable {
        std::optional<std::string> reply;
        if (r.ok() && r->has_value()) reply = std::move(**r);
        core->ClientFinish([core, reply = std::move(reply),
                            done = std::move(done)](absl::Status s) mutable {
          core->ClientGone();  // Before `done`: the context may go then.
          if (s.ok() && !reply.has_value()) {
            s = absl::InternalError("the handler finished without a reply");
          }
          if (!s.ok()) {
            done(std::move(s));
          } else {
            done(std::move(*reply));
          }
        });
      });
    }
    transport.StartStream(core, bound, m);
  }

  // Where a synchronous call goes: the server (kept alive for the call),
  // and the bound interface and method.
  struct Target {
    std::shared_ptr<InProcessServer> transport;
    const BoundInterface* bound = nullptr;
    const BoundInterface::Method* method = nullptr;
  };
  absl::StatusOr<Target> Find(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              size_t request_size) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Status s = PrepareCall(ctx, request_size);
    if (!s.ok()) return s;
    Target t;
    t.transport = transport_.lock();
    if (t.transport == nullptr) {
      return absl::UnavailableError("in-process server is not running");
    }
    s = Resolve(*t.transport, iface, method, &t.bound, &t.method);
    if (!s.ok()) return s;
    return t;
  }

  // The bound interface and method for a call, resolved once per interface
  // and channel: later calls find it without a lock.
  absl::Status Resolve(InProcessServer& transport,
                       const InterfaceDescriptor& iface,
                       const MethodDescriptor& method,
                       const BoundInterface** bound,
                       const BoundInterface::Method** m)
      ABSL_LOCKS_EXCLUDED(mu_) {
    InProcessBinding b;
    const CachedBinding* last = last_.load(std::memory_order_acquire);
    if (last != nullptr && last->Matches(iface)) {
      b = last->binding;
    } else {
      b = ResolveSlow(transport, iface);
    }
    if (!b.status.ok()) return b.status;
    *bound = b.bound;
    *m = b.bound->FindMethod(method.id);
    if (*m == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat("unknown method ", method.id, " on interface ",
                       std::string(iface.full_name)));
    }
    return absl::OkStatus();
  }

  InProcessBinding ResolveSlow(InProcessServer& transport,
                               const InterfaceDescriptor& iface)
      ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    for (const auto& c : cache_) {
      if (c->Matches(iface)) {
        last_.store(c.get(), std::memory_order_release);
        return c->binding;
      }
    }
    bool cacheable = false;
    InProcessBinding b = transport.Bind(iface, &cacheable);
    if (cacheable) {
      cache_.push_back(std::make_unique<CachedBinding>(
          CachedBinding{&iface, iface.full_name.data(), iface.uuid.data(),
                        iface.version, b}));
      last_.store(cache_.back().get(), std::memory_order_release);
    }
    return b;
  }

  const std::weak_ptr<InProcessServer> transport_;
  // The contexts the server opened for this channel (its one client).
  const std::shared_ptr<ContextTable> contexts_ =
      std::make_shared<ContextTable>();
  Mutex mu_;  // Guards cache_.
  // Entries are never removed, so last_ stays valid.
  std::vector<std::unique_ptr<CachedBinding>> cache_ ABSL_GUARDED_BY(mu_);
  std::atomic<const CachedBinding*> last_{nullptr};
};

}  // namespace

ReceivedMessage WriteOnce(const MessageWriter& writer, uint8_t* stack,
                          size_t stack_size) {
  const size_t size = writer.size();
  ReceivedMessage message;
  if (size <= stack_size) {
    writer.WriteTo(stack);
    message = ReceivedMessage(
        std::string_view(reinterpret_cast<const char*>(stack), size), nullptr);
  } else {
    std::string bytes(size, '\0');
    writer.WriteTo(reinterpret_cast<uint8_t*>(bytes.data()));
    message = ReceivedMessage(std::move(bytes));
  }
  if (const BufferField* f = writer.buffer(); f != nullptr) {
    message.Attach(f->field_number,
                   ::lpc::internal::BufferAccess::ToView(std::move(*f->buffer)));
  }
  return message;
}

std::shared_ptr<Channel> MakeInProcessChannel(
    std::weak_ptr<InProcessServer> server, ChannelOptions options) {
  return std::make_shared<InProcessChannel>(std::move(server),
                                            std::move(options));
}

}  // namespace lpc::inprocess_internal
