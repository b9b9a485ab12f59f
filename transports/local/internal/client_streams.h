// The client side of the local transport's streams (docs/local-transport.md,
// "Streams"): LocalClientStream, the stream's state, which the connection
// reaches (weakly) by stream id, and the ClientStream that
// LocalChannel::OpenStream returns (MakeClientStream), which the caller
// alone owns: once it is dropped, the state no longer touches the
// caller's context, however long the connection's threads hold it.
//
// Thread safety: thread-safe. send_mu_ orders the stream's own records
// (messages, then the half-close) and is held while sending, which may wait
// for ring room until the deadline; mu_ guards the state and is never held
// while sending or while a callback runs. Records arrive from the
// connection's leader (under its reader_mu_).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_STREAMS_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_STREAMS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/mutex.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/client_connection.h"

namespace lpc::local::internal {

class LocalClientStream final
    : public ClientStream,
      public ClientStreamSink,
      public std::enable_shared_from_this<LocalClientStream> {
 public:
  struct Config {
    uint64_t id = 0;
    // This client's window for the server's messages.
    StreamWindow in_window;
    size_t max_message_size = 0;
    absl::Time deadline = absl::InfiniteFuture();
  };

  // A stream that ended before it opened: every operation reports `status`.
  LocalClientStream(CallContext* ctx, absl::Status status);
  // The caller's handle on `stream`.
  static std::shared_ptr<ClientStream> MakeHandle(
      std::shared_ptr<LocalClientStream> stream);
  // A stream of `conn`; Open sends its STREAM_OPEN.
  LocalClientStream(std::shared_ptr<ClientConnection> conn, CallContext* ctx,
                    const Config& config);
  ~LocalClientStream() override;
  LocalClientStream(const LocalClientStream&) = delete;
  LocalClientStream& operator=(const LocalClientStream&) = delete;

  // Registered with the connection: hooks the context's cancellation and
  // sends STREAM_OPEN for `method_id` of interface slot `slot`, with the
  // request metadata and the monotonic `deadline_ns`. A failure ends the
  // stream with it.
  void Open(uint32_t slot, uint32_t method_id, int64_t deadline_ns);

  // The caller dropped its handle: the call is cancelled (CANCEL to the
  // server) if it had not ended, and the context is let go.
  void Drop();

  // ClientStream.
  CallContext& context() override { return *user_ctx_; }
  void Write(std::string message, WriteCallback done) override;
  void WritesDone() override;
  void Read(ReadCallback done) override;
  void Finish(FinishCallback done) override;

  // ClientStreamSink.
  absl::Status OnRecord(IncomingMessage& m) override;
  void OnConnectionEnd(const absl::Status& status) override;
  void CheckDeadline(absl::Time now) override;

  // Ends the call here with `status` (and CANCEL to the server if
  // `cancel_server`).
  void End(const absl::Status& status, bool cancel_server);

 private:
  using Todo = std::vector<std::function<void()>>;

  bool FitsLocked(uint64_t size) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends one record of this stream (send_mu_ held).
  absl::Status SendRecord(MessageType type, std::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Sends a message that was held back (on the pump thread), then the
  // half-close if WritesDone came meanwhile.
  void SendHeld(std::string bytes, WriteCallback done);
  // Sends credits for what Read took, if the rule says so.
  void MaybeReturnCredits();
  // Sends a WINDOW_UPDATE; without `may_wait` (on the leader's drain) a
  // full ring hands it to the pump instead of waiting.
  void SendCredits(uint32_t messages, uint64_t bytes, bool may_wait);
  // The end, under mu_; returns false if it had ended already.
  bool EndLocked(const absl::Status& status, bool by_server, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OnMessageLocked(IncomingMessage& m, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OnFinishLocked(IncomingMessage& m, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OnWindowLocked(IncomingMessage& m, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After the end: out of the connection's table, CANCEL if asked.
  void Leave(bool cancel_server);

  const std::shared_ptr<ClientConnection> conn_;  // Null: ended at birth.
  // The caller's context: for the caller's own threads while its handle
  // lives (Open, context(), Drop).
  CallContext* const user_ctx_;
  const Config config_;
  uint64_t cancel_handle_ = 0;  // Set by Open, before anything can end it.

  Mutex send_mu_;
  Mutex mu_ ABSL_ACQUIRED_AFTER(send_mu_);
  // The same, for the connection's threads (response metadata); null once
  // the handle is dropped.
  CallContext* ctx_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool by_server_ ABSL_GUARDED_BY(mu_) = false;  // STREAM_FINISH came.
  // Out of the connection's table (or not in it yet: Open clears it).
  bool left_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::vector<FinishCallback> finish_waiters_ ABSL_GUARDED_BY(mu_);
  bool metadata_seen_ ABSL_GUARDED_BY(mu_) = false;
  // Server to client.
  std::deque<std::string> inbound_ ABSL_GUARDED_BY(mu_);
  uint64_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t unreturned_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t unreturned_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  ReadCallback pending_read_ ABSL_GUARDED_BY(mu_);
  // Client to server: {1, 0} until the server announces its window.
  bool announced_ ABSL_GUARDED_BY(mu_) = false;
  StreamWindow out_window_ ABSL_GUARDED_BY(mu_){1, 0};
  uint32_t outstanding_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t outstanding_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<std::string> held_write_ ABSL_GUARDED_BY(mu_);
  WriteCallback held_done_ ABSL_GUARDED_BY(mu_);
  bool send_deferred_ ABSL_GUARDED_BY(mu_) = false;  // Pump will send.
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
  bool half_close_pending_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CLIENT_STREAMS_H_
