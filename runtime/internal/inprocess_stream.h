// The in-process transport's calls through the call model: one StreamCore
// per call holds both message flows, their windows and the call's end; the
// ClientStream and ServerStream the two sides see are thin handles on it.
//
// Each flow is a queue. A writer's message joins the queue at once; its
// Write completes when the queue is within the reader's window (messages
// and bytes; one message of any size fits an empty window), otherwise when
// the reader's Reads have made room. Since a writer has at most one Write
// outstanding, a flow holds at most a window plus one message.
//
// The call ends once: by the server's Finish (the client reads what was
// queued, then the end), or by Abort (cancel, deadline, shutdown, a message
// over the size limit, either side going away), after which every pending
// and later operation fails with the abort status and the server's context
// is cancelled.
//
// Callbacks run on the thread whose operation completed them, without the
// core's lock held; when that thread is already nested several stream
// callbacks deep (two sides each starting their next operation from the
// other's callback), they run on the transport's callback thread instead,
// so the stack stays bounded.
//
// Thread safety: thread-safe.
#ifndef LPC_RUNTIME_INTERNAL_INPROCESS_STREAM_H_
#define LPC_RUNTIME_INTERNAL_INPROCESS_STREAM_H_

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
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/mutex.h"

namespace lpc::inprocess_internal {

// Something the transport's deadline timer can end.
class Expirable {
 public:
  virtual ~Expirable() = default;
  virtual void Expire() = 0;
};

class StreamCore;

// What a core tells its transport.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  // The call ended (once per core): the transport forgets it.
  virtual void StreamDone(StreamCore* core) = 0;
  // Runs `fn` soon on a thread of the transport's that runs only such
  // callbacks; false (and `fn` dropped) when the transport has stopped.
  virtual bool Defer(std::function<void()> fn) = 0;
};

class StreamCore final : public Expirable,
                         public std::enable_shared_from_this<StreamCore> {
 public:
  struct Limits {
    StreamWindow client_to_server;  // The server's window.
    StreamWindow server_to_client;  // The client's window.
    size_t client_max_message = 0;  // ChannelOptions::max_message_size.
    size_t server_max_message = 0;  // ServerOptions::max_message_size.
  };

  // `client_ctx` is the client's context (null for a oneway call, whose
  // server messages are dropped); it is touched only while the client is
  // attached (until ClientGone).
  StreamCore(CallContext* client_ctx, const Limits& limits,
             std::weak_ptr<StreamHost> host);
  ~StreamCore() override;

  // The server's context, filled by the transport before the call starts.
  CallContext& server_ctx() { return server_ctx_; }
  CallContext* client_ctx() const { return client_ctx_; }

  // Ends the call when the client's context is cancelled. Once, before the
  // core is shared; needs a client context.
  void WatchClientCancel();

  // The client's side (ClientStream).
  void ClientWrite(std::string message, WriteCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ClientWritesDone() ABSL_LOCKS_EXCLUDED(mu_);
  void ClientRead(ReadCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  void ClientFinish(FinishCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  // The client dropped its stream (or took its unary reply): forget its
  // context, and cancel the call if it has not ended. Call on a thread
  // where the client's context is alive.
  void ClientGone() ABSL_LOCKS_EXCLUDED(mu_);

  // The server's side (ServerStream).
  void ServerRead(ReadCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  void ServerWrite(std::string message, WriteCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ServerFinish(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the call with `status` on both sides, unless it ended.
  void Abort(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // The deadline timer: DEADLINE_EXCEEDED.
  void Expire() override;

  bool ended() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One direction.
  struct Flow {
    std::deque<std::string> queue;
    size_t bytes = 0;
    bool closed = false;  // Half-closed (client) or finished (server).
    ReadCallback pending_read;     // The reader waits for a message.
    WriteCallback pending_write;   // The writer waits for the window.
  };
  using Actions = std::vector<std::function<void()>>;

  // The shared parts of the two sides' Read and Write.
  // The server side reads c2s_ and writes s2c_; the client the reverse.
  void Read(ReadCallback done, bool server_side) ABSL_LOCKS_EXCLUDED(mu_);
  void Write(std::string message, WriteCallback done, bool server_side)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the next message of `flow`; releases a held-back writer that
  // now fits.
  std::string PopLocked(Flow& flow, const StreamWindow& window,
                        Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool Fits(const Flow& flow, const StreamWindow& window);
  // Copies the server's response metadata to the client, once.
  void SendMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why an operation on an ended call fails.
  absl::Status EndedStatusLocked(bool server_side) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyHost();
  // Runs callbacks, without the lock; on the host's callback thread when
  // this thread is already deeply nested in them.
  void RunCallbacks(Actions actions);

  CallContext* const client_ctx_;
  const Limits limits_;
  const std::weak_ptr<StreamHost> host_;
  CallContext server_ctx_;
  uint64_t cancel_handle_ = 0;  // Written before sharing; read by ClientGone.

  mutable Mutex mu_;
  Flow c2s_ ABSL_GUARDED_BY(mu_);
  Flow s2c_ ABSL_GUARDED_BY(mu_);
  // Set once the call ended: the server's status, or the abort's.
  std::optional<absl::Status> final_ ABSL_GUARDED_BY(mu_);
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  bool client_attached_ ABSL_GUARDED_BY(mu_) = true;
  bool metadata_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<FinishCallback> finish_waiters_ ABSL_GUARDED_BY(mu_);
};

// The handles the two sides hold. Dropping the client's cancels a call that
// has not ended; dropping the last server handle without finishing ends the
// call with INTERNAL.
std::shared_ptr<ClientStream> MakeClientStream(
    std::shared_ptr<StreamCore> core);
std::shared_ptr<ServerStream> MakeServerStream(
    std::shared_ptr<StreamCore> core);

}  // namespace lpc::inprocess_internal

#endif  // LPC_RUNTIME_INTERNAL_INPROCESS_STREAM_H_
