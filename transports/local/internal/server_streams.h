// The server side of the local transport's streams (docs/local-transport.md,
// "Streams"): LocalServerStream, the ServerStream a handler gets from
// Dispatcher::StartCall for a STREAM_OPEN, or for a REQUEST whose method's
// handler is asynchronous (then its reply goes back as a REPLY); and the
// StreamHost through which streams reach their server.
//
// Thread safety: LocalServerStream is thread-safe. Its mutex nests inside
// the connection's recv_mu (the drain delivers records with it held) and
// outside its send_mu and state_mu (a stream sends while holding it). No
// callback of the handler runs with any lock held, and nothing that may
// cut a client off (which cancels contexts, whose callbacks take the
// stream's mutex) runs with the stream's mutex held.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_STREAMS_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_STREAMS_H_

#include <array>
#include <atomic>
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
#include "transports/local/frame.h"
#include "transports/local/internal/budget.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/stream_table.h"

namespace lpc::local::internal {

// The stream protocol errors of docs/local-transport.md, "Protocol errors":
// each cuts the client off and is counted by kind.
enum class StreamError : uint8_t {
  kNone = 0,
  kAfterHalfClose,
  kUnknownStream,
  kWindowExceeded,
  kBadWindowUpdate,
  kBadOpen,
};
inline constexpr size_t kStreamErrorKinds = 6;
// "message after half-close", ...: the reason logged and sent.
const char* StreamErrorReason(StreamError e);

// What streams need of their server.
class StreamOwner {
 public:
  virtual ~StreamOwner() = default;
  // Disconnects a client that broke the protocol or whose ring is broken.
  virtual void CutOffForStream(const std::shared_ptr<Connection>& c,
                               const absl::Status& why) = 0;
  // Looks at the client's ring again (a stream's Read freed budget).
  virtual void ScheduleForStream(const std::shared_ptr<Connection>& c) = 0;
};

// Shared by a server's streams, so that a stream that a handler keeps
// after the server went away stays harmless: once detached, nothing
// reaches the owner. Counters for LocalServerStats.
class StreamHost {
 public:
  explicit StreamHost(StreamOwner* owner) : owner_(owner) {}

  // Runs fn(owner) unless the server detached.
  template <typename F>
  void With(F fn) {
    users_.fetch_add(1, std::memory_order_seq_cst);
    if (!detached_.load(std::memory_order_seq_cst)) fn(*owner_);
    users_.fetch_sub(1, std::memory_order_seq_cst);
  }
  // From now on With does nothing; returns once no call of it is inside.
  void Detach();

  std::atomic<uint64_t> opened{0};
  std::atomic<uint64_t> dropped_records{0};
  std::array<std::atomic<uint64_t>, kStreamErrorKinds> errors{};

 private:
  StreamOwner* const owner_;
  std::atomic<int> users_{0};
  std::atomic<bool> detached_{false};
};

class LocalServerStream final
    : public ServerStream,
      public ConnStream,
      public std::enable_shared_from_this<LocalServerStream> {
 public:
  struct Config {
    uint64_t id = 0;
    // Opened by a REQUEST: one message each way, the reply a REPLY.
    bool unary = false;
    // The server's window for the client's messages.
    StreamWindow in_window;
    // The client's window for the server's messages (already clamped).
    StreamWindow out_window;
    size_t max_message_size = 0;
    // Writes wait while this many replies are queued for the client.
    size_t hold_writes_at_queued = 512;
    // The stream's records cut the client off only past this many queued
    // replies (ServerCalls::StreamQueueLimit). Its messages wait at
    // hold_writes_at_queued; the rest (credits, STREAM_FINISH, a unary
    // call's REPLY) cannot wait, and the other streams' may queue between a
    // message's check and its send.
    size_t queue_limit = 1024 + 2 * 4096;
    // A unary call's reply may carry this many descriptors (its handle
    // table); more fails the call with INTERNAL.
    uint32_t max_handles = 16;
  };

  // `ctx` is registered in the connection's call table by `registration`
  // (erased when the stream ends). Call Arm once it is shared.
  LocalServerStream(std::shared_ptr<Connection> conn,
                    std::shared_ptr<StreamHost> host, const Config& config,
                    std::unique_ptr<CallContext> ctx,
                    CallRegistration registration);
  // Ends an unfinished stream with INTERNAL ("handler dropped the call").
  ~LocalServerStream() override;
  LocalServerStream(const LocalServerStream&) = delete;
  LocalServerStream& operator=(const LocalServerStream&) = delete;

  // Hooks the context's cancellation (the client's CANCEL, its hang-up,
  // the server's shutdown) to the stream's end. Before StartCall.
  void Arm();
  // A unary call's request, taken by the first Read.
  void SetRequest(std::string request, ByteCharge charge);

  // ServerStream.
  CallContext& context() override { return *ctx_; }
  void Read(ReadCallback done) override;
  void Write(std::string message, WriteCallback done) override;
  void Finish(absl::Status status) override;

  // ConnStream.
  void Poll(absl::Time now) override;

  // The drain's side (the connection's recv_mu held). A protocol error is
  // returned for the caller to cut the client off.
  StreamError OnMessage(IncomingMessage& msg);
  StreamError OnHalfClose();
  StreamError OnWindowUpdate(const WindowBody& w);

  // Ends the stream with `why` (sent as its final status if `send`), as if
  // the handler had finished it; the handler's context is cancelled.
  void End(const absl::Status& why, bool send);

  uint64_t id() const { return config_.id; }
  // Whether the stream has ended (finished, cancelled, or cut off).
  bool ended() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return ended_;
  }

 private:
  struct Message {
    std::string bytes;
    ByteCharge charge;
  };
  using Todo = std::vector<std::function<void()>>;

  // Whether a message of `size` bytes fits the client's window now.
  bool FitsLocked(uint64_t size) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ReplyQueueLong();
  // Sends `bytes` as the next STREAM_MESSAGE. A non-OK status: the client
  // must be cut off (a bad ring).
  absl::Status SendMessageLocked(std::string bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends credits for what the handler took, if the rule says so.
  absl::Status MaybeReturnCreditsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a held-back write (and a held-back Finish) if it fits now.
  absl::Status FlushHeldLocked(Todo* todo) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the final status (STREAM_FINISH or REPLY) unless shutdown
  // answered the call already, then ends the stream.
  absl::Status FinishLocked(const absl::Status& status, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the stream with `why`: takes it out of the call and stream
  // tables, drops what it buffered, fails pending operations. Returns
  // whether shutdown had answered it (then nothing may be sent).
  bool EndLocked(const absl::Status& why, Todo* todo)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SendLocked(OwnedReply&& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Encodes response metadata not sent yet in front of `bytes`; returns
  // the flags. A bad block is INTERNAL.
  absl::StatusOr<uint16_t> WithMetadataLocked(std::string* bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `todo`, then cuts the client off if `bad` is not OK, then cancels
  // the context if the stream ended here.
  void After(Todo& todo, const absl::Status& bad, bool cancel_ctx);

  const std::shared_ptr<Connection> conn_;
  const std::shared_ptr<StreamHost> host_;
  const Config config_;
  const std::unique_ptr<CallContext> ctx_;

  Mutex mu_;
  // Declared after ctx_, so destroyed before it.
  CallRegistration registration_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool metadata_sent_ ABSL_GUARDED_BY(mu_) = false;
  // Client to server.
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Message> inbound_ ABSL_GUARDED_BY(mu_);
  uint64_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t unreturned_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t unreturned_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  ReadCallback pending_read_ ABSL_GUARDED_BY(mu_);
  // Server to client.
  uint32_t outstanding_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t outstanding_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<std::string> held_write_ ABSL_GUARDED_BY(mu_);
  WriteCallback held_done_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> held_finish_ ABSL_GUARDED_BY(mu_);
  // A unary call's reply, sent with Finish.
  std::optional<std::string> reply_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_STREAMS_H_
