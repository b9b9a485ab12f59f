// The server's call path for streams and asynchronous handlers
// (server_calls.h; the streams themselves are server_streams.h): reading
// STREAM_OPEN and the other stream records, starting a call through
// Dispatcher::StartCall, and the tick's look at open streams.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/internal/call_context_access.h"
#include "transports/local/frame.h"
#include "transports/local/internal/server_calls.h"
#include "transports/local/metadata.h"

namespace lpc::local::internal {

using ::lpc::internal::CallContextAccess;

void ServerCalls::StreamProtocolError(const std::shared_ptr<Connection>& c,
                                      StreamError e, uint64_t id) {
  stream_host_->errors[static_cast<size_t>(e)].fetch_add(
      1, std::memory_order_relaxed);
  CutOff(c, absl::DataLossError(absl::StrCat(
                "stream protocol: ", StreamErrorReason(e), " (stream ", id,
                ")")));
}

void ServerCalls::RefuseStream(const std::shared_ptr<Connection>& c,
                               uint64_t id, const absl::Status& why) {
  c->streams.NoteOpened(id);
  SendReply(c, OwnedReply{MessageType::kStreamFinish, id,
                          static_cast<uint32_t>(why.code()), 0,
                          std::string(why.message().substr(0, 1024))});
}

void ServerCalls::OpenStream(const std::shared_ptr<Connection>& c,
                             IncomingMessage& msg,
                             std::vector<WorkItem>* items) {
  const FrameHeader& h = msg.header;
  if (c->hung_up.load()) return;  // Its caller is gone.
  if (h.message_id == 0) {  // (DecodeFrame refuses it first.)
    StreamProtocolError(c, StreamError::kBadOpen, 0);
    return;
  }
  std::string_view rest;
  absl::StatusOr<StreamOpenBody> body;
  if (!msg.oversized) {
    body = DecodeStreamOpenBody(msg.payload, &rest);
    if (!body.ok()) {
      StreamProtocolError(c, StreamError::kBadOpen, h.message_id);
      return;
    }
  }
  absl::Status refuse;
  if (shutting_down_.load()) {
    refuse = absl::UnavailableError("server is shutting down");
  } else if (msg.oversized) {
    refuse = absl::ResourceExhaustedError(
        absl::StrCat("stream open of ", h.payload_length,
                     " bytes refused: too large for the server"));
  }
  WorkItem item;
  if (refuse.ok()) {
    item.ctx = std::make_unique<CallContext>();
    // Before Register: once registered, the I/O thread's Cancel reads the
    // deadline under state_mu (as for unary calls).
    item.ctx->set_deadline(FromMonotonicDeadlineNs(
        h.deadline_ns, absl::FromUnixNanos(wall_anchor_unix_ns_.load(
                           std::memory_order_relaxed))));
  }
  const Registered r = c->Register(h, /*oneway=*/false, refuse.ok(), item);
  if (r == Registered::kCancelledEarly) {
    cancelled_before_read_.fetch_add(1, std::memory_order_relaxed);
    c->streams.NoteOpened(h.message_id);
    return;
  }
  if (r == Registered::kDuplicateId) {
    CutOff(c, absl::DataLossError("duplicate message id in flight"));
    return;
  }
  if (r == Registered::kNotBound && refuse.ok()) {
    refuse = absl::FailedPreconditionError(
        absl::StrCat("interface slot ", h.interface_slot, " is not bound"));
  } else if (refuse.ok() && item.method == nullptr) {
    refuse = absl::UnimplementedError(absl::StrCat(
        "unknown method ", h.method_id, " on interface ",
        std::string(item.iface->descriptor->full_name)));
  }
  if (!refuse.ok()) {
    item.registration = CallRegistration();  // Erases the entry, if any.
    RefuseStream(c, h.message_id, refuse);
    return;
  }
  if ((h.flags & kFlagMetadata) != 0) {
    // Decoded from the private copy; a bad block costs only its sender.
    std::string_view after;
    if (absl::Status md = DecodeMetadata(rest, &item.ctx->metadata(), &after);
        !md.ok()) {
      item.registration = CallRegistration();
      CutOff(c, md);
      return;
    }
    rest = after;
  }
  if (!rest.empty()) {
    item.registration = CallRegistration();
    StreamProtocolError(c, StreamError::kBadOpen, h.message_id);
    return;
  }
  CallContextAccess::SetPeerRef(*item.ctx,
                                &c->peer);  // As long as the stream holds `c`.
  CallContextAccess::SetContextTable(*item.ctx, c->contexts);

  const ServerOptions& so = dispatcher_->options();
  LocalServerStream::Config config;
  config.id = h.message_id;
  config.in_window = so.stream_window;
  config.in_window.messages = std::max<uint32_t>(1, config.in_window.messages);
  config.in_window.bytes = std::max<size_t>(1, config.in_window.bytes);
  config.out_window.messages =
      std::min(body->window_messages, config.in_window.messages);
  config.out_window.bytes = static_cast<size_t>(
      std::min<uint64_t>(body->window_bytes, config.in_window.bytes));
  config.max_message_size = so.max_message_size;
  SetQueueBounds(&config);
  auto stream = std::make_shared<LocalServerStream>(
      c, stream_host_, config, std::move(item.ctx),
      std::move(item.registration));
  const StreamTable::Added added = c->streams.Add(
      h.message_id, stream, /*is_stream=*/true,
      options_.max_streams_per_connection);
  if (added == StreamTable::Added::kFull) {
    stream->End(absl::ResourceExhaustedError(absl::StrCat(
                    "too many streams on this connection (at most ",
                    options_.max_streams_per_connection, ")")),
                /*send=*/true);
    return;
  }
  if (added == StreamTable::Added::kDuplicate) {
    stream->End(absl::DataLossError("duplicate stream id"), /*send=*/false);
    CutOff(c, absl::DataLossError("duplicate message id in flight"));
    return;
  }
  stream_host_->opened.fetch_add(1, std::memory_order_relaxed);
  // The server's window, before anything else of the stream.
  SendReply(c,
            OwnedReply{MessageType::kWindowUpdate, h.message_id, 0, 0,
                       EncodeWindowBody(kWindowAnnounce,
                                        config.in_window.messages,
                                        config.in_window.bytes)},
            StreamQueueLimit());
  stream->Arm();
  item.conn = c;
  item.stream = std::move(stream);
  calls_started_.fetch_add(1);
  c->calls.fetch_add(1, std::memory_order_relaxed);
  items->push_back(std::move(item));
}

void ServerCalls::StreamRecord(const std::shared_ptr<Connection>& c,
                               IncomingMessage& msg) {
  const FrameHeader& h = msg.header;
  if ((h.flags & kFlagMetadata) != 0) {
    CutOff(c, absl::DataLossError(
                  "stream protocol: metadata on a client's stream message"));
    return;
  }
  std::shared_ptr<ConnStream> found;
  switch (c->streams.Find(h.message_id, &found)) {
    case StreamTable::Lookup::kUnknown:
      StreamProtocolError(c, StreamError::kUnknownStream, h.message_id);
      return;
    case StreamTable::Lookup::kEnded:
      // Sent before the client saw the stream end: dropped.
      stream_host_->dropped_records.fetch_add(1, std::memory_order_relaxed);
      return;
    case StreamTable::Lookup::kOpen:
      break;
  }
  auto* stream = static_cast<LocalServerStream*>(found.get());
  StreamError e = StreamError::kNone;
  switch (msg.type()) {
    case MessageType::kStreamMessage:
      e = stream->OnMessage(msg);
      break;
    case MessageType::kHalfClose:
      e = stream->OnHalfClose();
      break;
    default: {
      absl::StatusOr<WindowBody> w = DecodeWindowBody(msg.payload);
      e = w.ok() ? stream->OnWindowUpdate(*w) : StreamError::kBadWindowUpdate;
      break;
    }
  }
  if (e != StreamError::kNone) StreamProtocolError(c, e, h.message_id);
}

void ServerCalls::StartCall(WorkItem& item) {
  const std::shared_ptr<Connection>& c = item.conn;
  c->handlers.fetch_add(1, std::memory_order_relaxed);
  if (item.unary_over_stream) {
    RunUnaryOverStream(item);
    return;
  }
  std::shared_ptr<LocalServerStream> stream;
  if (item.stream != nullptr) {
    stream = std::static_pointer_cast<LocalServerStream>(std::move(item.stream));
  } else {
    // A REQUEST whose handler is asynchronous: a stream of one message
    // each way whose reply is a REPLY. Once StartCall returns it holds
    // no worker and no in-flight slot, only a stream slot.
    LocalServerStream::Config config;
    config.id = item.msg.header.message_id;
    config.unary = true;
    config.max_message_size = dispatcher_->options().max_message_size;
    config.max_handles = options_.max_handles_per_message;
    SetQueueBounds(&config);
    stream = std::make_shared<LocalServerStream>(
        c, stream_host_, config, std::move(item.ctx),
        std::move(item.registration));
    stream->SetRequest(std::move(item.msg.payload), std::move(item.charge));
    const StreamTable::Added added =
        c->streams.Add(config.id, stream, /*is_stream=*/false,
                       options_.max_streams_per_connection);
    if (added != StreamTable::Added::kOk) {
      stream->End(absl::ResourceExhaustedError(absl::StrCat(
                      "too many asynchronous calls and streams on this "
                      "connection (at most ",
                      options_.max_streams_per_connection, ")")),
                  /*send=*/true);
      stream.reset();
    } else {
      stream->Arm();
    }
  }
  if (stream != nullptr) {
    if (c->closed.load() || c->hung_up.load()) {
      stream->End(absl::UnavailableError("client went away"), /*send=*/false);
    } else if (!item.method->uses_start_call) {
      StartUnaryOverStream(c, stream, item.iface, item.method);
    } else if (item.method->start_call_blocks) {
      // A synchronous streaming handler would hold this worker for the
      // stream's life.
      StartOnHandlerPool(std::move(stream), item.iface, item.method);
    } else {
      dispatcher_->StartCall(*item.iface, *item.method, stream);
    }
    stream.reset();  // The handler holds it now (or dropped it: it ends).
  }
  item.charge.Release();
  c->handlers.fetch_sub(1, std::memory_order_relaxed);
  c->pending_calls.fetch_sub(1);
  AfterCall(c, /*woke_client=*/false);
}

void ServerCalls::StartOnHandlerPool(std::shared_ptr<LocalServerStream> stream,
                                     const BoundInterface* iface,
                                     const BoundInterface::Method* method) {
  Dispatcher* const dispatcher = dispatcher_;
  // The task holds a copy: if Submit refuses it, `stream` is still ours to
  // end with the reason.
  absl::Status s =
      handlers_->Submit([dispatcher, stream, iface, method](bool run) mutable {
        if (!run) {
          // Shutdown dropped it (and has answered the call already).
          stream->End(absl::UnavailableError(
                          "server shut down before the call started"),
                      /*send=*/true);
        } else if (!stream->ended()) {
          dispatcher->StartCall(*iface, *method, std::move(stream));
        }
      });
  if (!s.ok()) stream->End(s, /*send=*/true);
}

void ServerCalls::StartUnaryOverStream(
    const std::shared_ptr<Connection>& c,
    const std::shared_ptr<LocalServerStream>& stream,
    const BoundInterface* iface, const BoundInterface::Method* method) {
  using ReadResult = absl::StatusOr<std::optional<std::string>>;
  std::shared_ptr<StreamHost> host = stream_host_;
  stream->Read([c, stream, iface, method, host](ReadResult first) {
    if (!first.ok()) return;  // The call ended.
    if (!first->has_value()) {
      stream->Finish(absl::InvalidArgumentError("the call carried no request"));
      return;
    }
    stream->Read([c, stream, iface, method, host,
                  request = std::move(**first)](ReadResult second) mutable {
      if (!second.ok()) return;
      if (second->has_value()) {
        stream->Finish(absl::InvalidArgumentError(
            absl::StrCat(method->path, " takes one request message")));
        return;
      }
      // Onto a worker, like a REQUEST (the handler may block).
      WorkItem item;
      item.conn = c;
      item.stream = stream;
      item.unary_over_stream = true;
      item.iface = iface;
      item.method = method;
      item.msg.payload = std::move(request);
      host->With([&](StreamOwner& owner) {
        auto& calls = static_cast<ServerCalls&>(owner);
        std::vector<WorkItem> items;
        items.push_back(std::move(item));
        c->pending_calls.fetch_add(1);
        calls.pool_->QueueCalls(c, items);
      });
    });
  });
}

void ServerCalls::RunUnaryOverStream(WorkItem& item) {
  const std::shared_ptr<Connection>& c = item.conn;
  auto stream = std::static_pointer_cast<LocalServerStream>(item.stream);
  std::string response;
  absl::Status s = dispatcher_->DispatchBound(
      *item.iface, *item.method, stream->context(), item.msg.payload,
      &response);
  if (s.ok() && !item.method->descriptor->oneway) {
    stream->Write(std::move(response), [](absl::Status) {});
  }
  stream->Finish(s);
  stream.reset();
  item.stream.reset();
  c->handlers.fetch_sub(1, std::memory_order_relaxed);
  c->pending_calls.fetch_sub(1);
  AfterCall(c, /*woke_client=*/false);
}

void ServerCalls::PollStreams(Connection& c, absl::Time now) {
  if (c.streams.size() == 0) return;
  for (const std::shared_ptr<ConnStream>& s : c.streams.All()) s->Poll(now);
}

}  // namespace lpc::local::internal
