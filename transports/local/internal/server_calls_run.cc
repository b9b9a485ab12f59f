// ServerCalls::RunCall: one decoded unary call, its handler and its reply
// (server_calls.h).
#include <fcntl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/buffer.h"
#include "runtime/call_context.h"
#include "runtime/fd.h"
#include "runtime/handles.h"
#include "runtime/internal/call_context_access.h"
#include "runtime/message.h"
#include "transports/local/frame.h"
#include "transports/local/handle_errors.h"
#include "transports/local/internal/call_handles.h"
#include "transports/local/internal/fd_closer.h"
#include "transports/local/internal/server_calls.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {

using ::lpc::internal::CallContextAccess;

void ServerCalls::RunCall(WorkItem& item) {
  const std::shared_ptr<Connection>& c = item.conn;
  const FrameHeader& h = item.msg.header;
  const bool oneway = item.msg.type() == MessageType::kOneway;
  c->ep->SetRunning(true);
  // Descriptors sent with a call of a method that takes none: nothing in
  // the message can reference them, so the client broke the protocol.
  const bool unexpected_handles = !item.handles.empty() &&
                                  item.method != nullptr &&
                                  !item.method->descriptor->handles;
  if (!item.handles.empty() && item.ctx != nullptr) {
    // The request's table: the generated decoder takes its descriptors.
    std::vector<UniqueFd> fds = item.handles.Take();
    AdoptRequestHandles(*item.ctx, fds);
  }
  if (item.stream != nullptr ||
      (!unexpected_handles && item.method != nullptr &&
       item.method->uses_start_call && !oneway &&
       !item.method->descriptor->streaming())) {
    StartCall(item);
    return;
  }
  // The doorbell stays off while the handler runs (a pipelining client
  // makes no syscall); if the handler blocks, the poller's watch
  // (ScanBusyConnections) finds this client's next records (a CANCEL, say)
  // within about a millisecond.
  c->handlers.fetch_add(1, std::memory_order_relaxed);
  // Where the handler's reply goes (docs/zero-copy.md): straight into the
  // reply ring, the data area or a memfd when nothing needs it first (no
  // response metadata, no reply descriptors, nothing queued ahead of it);
  // the call is then settled against a cancel or a shutdown that answered
  // it first (Connection::Finish) before anything is placed. Otherwise it
  // is serialized into the call's reply buffer (a kept one, for a large
  // reply: a fresh one would cost a page fault per 4 KiB), which the code
  // after the handler sends as before.
  class Sink final : public ReplySink {
   public:
    Sink(ServerCalls* server, Connection& c, const FrameHeader& h,
         CallContext& ctx, bool oneway, std::string* response)
        : server_(server), c_(c), h_(h), ctx_(ctx), oneway_(oneway),
          response_(response) {}
    absl::Status Write(const MessageWriter& reply) override {
      if (oneway_) return absl::OkStatus();  // Nobody to answer.
      if (!HasSendableMetadata(ctx_.response_metadata()) &&
          !HasReplyHandles(ctx_) && !c_.closed.load() && !c_.hung_up.load()) {
        finished = true;
        answered = c_.Finish(h_.message_id, 0, /*oneway=*/false);
        if (answered) return absl::OkStatus();  // Answered by the shutdown.
        OutgoingMessage m;
        m.type = MessageType::kReply;
        m.message_id = h_.message_id;
        m.body = &reply;
        // A shared buffer result goes beside the reply, sealed: no copy.
        std::optional<::lpc::internal::SealedBuffer> sealed;
        const BufferField* field = reply.buffer();
        BufferPool* pool = c_.pool();
        if (field != nullptr && !field->buffer->empty() && pool != nullptr &&
            pool->ChunkOf(*field->buffer).has_value()) {
          // A chunk of this connection's pool goes by reference (a chunk
          // of another's is appended as bytes, below).
          m.pool_buffer = field->buffer;
          m.buffer_field = field->field_number;
        } else if (field != nullptr && field->buffer->shared() &&
                   !field->buffer->empty()) {
          absl::StatusOr<::lpc::internal::SealedBuffer> made =
              SealForSending(field->buffer);
          if (!made.ok()) return made.status();
          sealed = std::move(*made);
          m.sealed_buffer = &*sealed;
          m.buffer_field = field->field_number;
        }
        // Counted before the client can see the reply; undone if it did
        // not go.
        std::atomic<uint64_t>* beside =
            m.pool_buffer != nullptr ? &server_->pool_buffers_sent_
            : sealed.has_value()     ? &server_->sealed_buffers_sent_
                                     : nullptr;
        if (beside != nullptr) beside->fetch_add(1, std::memory_order_relaxed);
        std::optional<bool> woke;
        {
          TimedTurn timed(&server_->longest_reply_send_);
          woke = c_.TrySendReplyNow(m);
        }
        if (!woke.has_value() && beside != nullptr) {
          beside->fetch_sub(1, std::memory_order_relaxed);
        }
        if (woke.has_value()) {
          sent = true;
          woke_client = *woke;
          c_.last_reply_bytes.store(PayloadLength(m),
                                    std::memory_order_relaxed);
          return absl::OkStatus();
        }
        if (sealed.has_value()) {
          // The ring had no room: the reply waits in the queue as bytes,
          // the buffer's read through a mapping of the sealed memfd.
          absl::StatusOr<BufferView> view =
              ::lpc::internal::BufferAccess::MapSealed(
                  Fd(::fcntl(sealed->memfd.get(), F_DUPFD_CLOEXEC, 0)),
                  sealed->offset, sealed->length);
          if (!view.ok()) return view.status();
          response_->clear();
          response_->resize(reply.size());
          reply.WriteTo(reinterpret_cast<uint8_t*>(response_->data()));
          AppendBytesField(field->field_number, view->view(), response_);
          return absl::OkStatus();
        }
      }
      const size_t need = SerializedSize(reply);
      if (need >= BufferCache::kMinCapacity && response_->capacity() < need) {
        *response_ = server_->buffers_.Take(need);
      }
      response_->clear();
      AppendTo(reply, response_);
      return absl::OkStatus();
    }
    // Connection::Finish ran here (`answered`: what it said).
    bool finished = false;
    bool answered = false;
    bool sent = false;  // The reply is in the ring.
    bool woke_client = false;

   private:
    ServerCalls* const server_;
    Connection& c_;
    const FrameHeader& h_;
    CallContext& ctx_;
    const bool oneway_;
    std::string* const response_;
  };
  std::string response;
  Sink sink(this, *c, h, *item.ctx, oneway, &response);
  absl::Status s;
  if (c->closed.load() || (!oneway && c->hung_up.load())) {
    s = absl::UnavailableError("client went away");  // Nobody to answer.
  } else if (item.method == nullptr) {
    s = absl::UnimplementedError(absl::StrCat(
        "unknown method ", h.method_id, " on interface ",
        std::string(item.iface->descriptor->full_name)));
  } else if (item.method->descriptor->streaming()) {
    s = absl::UnimplementedError(absl::StrCat(
        item.method->path, " is a streaming method: open a stream"));
  } else if (unexpected_handles) {
    s = ::lpc::internal::HandleProtocolError(
        ::lpc::internal::kUnreferencedHandle,
        absl::StrCat(item.method->path, " takes no descriptors"));
  } else {
    // The decoder reads the request from the one private copy; its buffer
    // comes back for the next call unless the decoder kept it.
    ReceivedMessage request(std::move(item.msg.payload));
    if (item.msg.buffer.has_value()) {
      request.Attach(item.msg.buffer->field_number,
                     std::move(item.msg.buffer->view));
      item.msg.buffer.reset();
    }
    s = dispatcher_->DispatchBoundWith(*item.iface, *item.method, *item.ctx,
                                       request, sink);
    item.msg.payload = request.TakeString();
  }
  // Descriptors the handler left in the request table, and a reply table
  // that does not go, close on the closer's thread (a client's descriptor
  // may block in close()).
  {
    std::vector<UniqueFd> left = TakeRequestHandles(*item.ctx);
    FdCloser::Get().Close(left);
  }
  std::vector<UniqueFd> reply_handles = TakeReplyHandles(*item.ctx);
  // The generated decoder found the request's table and bytes at odds:
  // the client broke the protocol.
  const std::optional<HandleError> handle_error = HandleProtocolErrorOf(s);
  if (s.ok() && reply_handles.size() > options_.max_handles_per_message) {
    s = absl::InternalError(absl::StrCat(
        "the handler's reply carries ", reply_handles.size(),
        " descriptors, more than max_handles_per_message (",
        options_.max_handles_per_message, ")"));
  }
  if (!s.ok() || oneway || handle_error.has_value()) {
    FdCloser::Get().Close(reply_handles);
  }
  const bool answered =
      sink.finished ? sink.answered
                    : c->Finish(h.message_id, item.oneway_serial, oneway);
  bool woke_client = sink.woke_client;
  item.registration.Disarm();  // Erased above.
  // (A reply that went is what the client has, whatever status the
  // dispatch returned after it.)
  if (!oneway && !answered && !sink.sent && !handle_error.has_value()) {
    if (HasSendableMetadata(item.ctx->response_metadata())) {
      std::string with_metadata;
      absl::Status md =
          EncodeMetadata(item.ctx->response_metadata(), &with_metadata);
      if (!md.ok()) {
        s = absl::InternalError(absl::StrCat(
            "the handler set invalid response metadata: ", md.message()));
        with_metadata.clear();
        md = EncodeMetadata({}, &with_metadata);
      }
      with_metadata += s.ok() ? response : std::string(s.message());
      response = std::move(with_metadata);
    }
    OwnedReply r{MessageType::kReply, h.message_id,
                 static_cast<uint32_t>(s.code()), 0, {}};
    if (s.ok() || HasSendableMetadata(item.ctx->response_metadata())) {
      r.payload = std::move(response);
    } else {
      r.payload = std::string(s.message());
    }
    if (HasSendableMetadata(item.ctx->response_metadata())) {
      r.flags = kFlagMetadata;
    }
    if (!reply_handles.empty()) {
      handles_sent_.fetch_add(reply_handles.size(), std::memory_order_relaxed);
      r.handles = std::move(reply_handles);
    }
    c->last_reply_bytes.store(r.payload.size(), std::memory_order_relaxed);
    woke_client = SendReply(c, std::move(r));
    buffers_.Give(std::move(r.payload));  // Empty if it was queued.
  }
  // The call's context and buffers go now, while the client is busy with
  // the reply, rather than after its next request has arrived.
  item.ctx.reset();
  buffers_.Give(std::move(item.msg.payload));
  item.charge.Release();  // Before AfterCall reads the ring again.
  c->handlers.fetch_sub(1, std::memory_order_relaxed);
  c->pending_calls.fetch_sub(1);
  if (handle_error.has_value()) {
    CutOff(c, MakeHandleError(*handle_error, h.message_id, std::string(s.message())));
    return;
  }
  AfterCall(c, woke_client);
}

}  // namespace lpc::local::internal
