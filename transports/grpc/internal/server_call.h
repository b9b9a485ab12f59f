// One call on GrpcServerTransport: the state its gRPC reactor, the worker
// pool, the handler and Shutdown share, and for calls that run through the
// call model (streaming methods, [async] handlers) the lpc::ServerStream
// the handler gets.
//
// A stream call talks to gRPC through one serialised "pump": decisions are
// made under the call's mutex, and whichever thread holds the pump then
// issues gRPC's reactor operations with no lock held (gRPC may run a
// reaction on the calling thread). One read and one write are outstanding
// at most, as gRPC requires; the gRPC call is finished by the pump after
// the last write completed, and nothing touches the reactor after that
// (gRPC deletes it in OnDone).
//
// Flow control: client messages are read ahead up to the server's
// StreamWindow (ServerOptions::stream_window); gRPC's HTTP/2 window holds
// the client back beyond that. A handler's Write is handed to gRPC when no
// other write is outstanding; its callback runs then, so a slow client
// holds the handler back by gRPC's own flow control.
//
// Thread safety: the ServerStream methods are safe from any thread (one
// outstanding Read and one outstanding Write); the reactor events come from
// gRPC's threads.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_CALL_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_CALL_H_

#include <atomic>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/mutex.h"
#include "runtime/server.h"

namespace lpc::grpc_transport {

// The handler's response metadata that may cross to the client: reserved
// keys are left out, malformed entries dropped (and logged).
std::vector<std::pair<std::string, std::string>> SendableResponseMetadata(
    const CallContext& ctx);

// What a call tells the transport that owns it.
class CallOwner {
 public:
  virtual ~CallOwner() = default;
  // The call is about to be finished on gRPC (a draining Shutdown waits for
  // that). Runs before the gRPC Finish, so the owner is still alive.
  virtual void OnAnswered() = 0;
};

// How a unary call served on the server's completion queue (not through a
// callback reactor) is answered: once, with the reply (OK only) or with a
// status alone (`reply` null).
class UnaryResponder {
 public:
  virtual void Finish(const grpc::ByteBuffer* reply,
                      const grpc::Status& status) = 0;

 protected:
  ~UnaryResponder() = default;
};

class ServerCall final : public ServerStream {
 public:
  // A call of gRPC's callback API (streams, [async] handlers, paths that
  // reach the generic service).
  ServerCall(grpc::ServerGenericBidiReactor* reactor,
             grpc::CallbackServerContext* grpc_ctx, CallOwner* owner)
      : reactor_(reactor), grpc_ctx_(grpc_ctx), owner_(owner) {}
  // A unary call served on the completion queue (never a stream).
  ServerCall(UnaryResponder* responder, grpc::ServerContextBase* grpc_ctx,
             CallOwner* owner)
      : responder_(responder), grpc_ctx_(grpc_ctx), owner_(owner) {}

  // Set before the call is registered, then read-only.
  const BoundInterface* iface = nullptr;
  const BoundInterface::Method* method = nullptr;
  bool oneway = false;
  // Runs through Dispatcher::StartCall (a ServerStream).
  bool uses_stream = false;
  // The context handle lease the call bears (internal/leases.h); empty
  // until acquired. Released by the transport when gRPC is done with it.
  std::string lease;

  CallContext ctx;           // The handler's context.
  grpc::ByteBuffer request;  // The request of a call whose client sends one.
  grpc::ByteBuffer response;  // A unary call's reply, until OnDone.

  // Whoever flips this first finishes the gRPC call (unary calls: the
  // worker, an early error or Shutdown; stream calls: the first Finish or
  // Abort).
  std::atomic<bool> finished{false};

  // Guarded by the transport's mutex.
  bool handler_pending = false;  // Queued or running.
  bool grpc_done = false;        // OnDone ran.

  // Exactly one of these is set.
  grpc::ServerGenericBidiReactor* reactor() const { return reactor_; }
  UnaryResponder* responder() const { return responder_; }
  grpc::ServerContextBase* grpc_ctx() const { return grpc_ctx_; }
  CallOwner* owner() const { return owner_; }

  // Stream calls. Sets the window and size limit; for a method whose
  // client sends one message, `request` (already read) is the only
  // message; otherwise reading ahead starts.
  void StartStream(const StreamWindow& window, size_t max_message_size);
  // gRPC reactor events of a stream call.
  void OnStreamReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnCancel();
  // Sets the handler's context's deadline, from the client's timeout.
  // Before the call is registered.
  void SetDeadline(absl::Time deadline);
  // gRPC ended the call (its OnCancel, a failed read or write): the client
  // cancelled or went away, or the deadline passed; gRPC does not say
  // which. Whether it was the deadline: the call is past it, or so close
  // that the client's own deadline (a little earlier, see SetDeadline)
  // explains the cancel.
  bool DeadlinePassed() const;
  // Tells the handler's context: a cancel is an explicit Cancel(); the
  // deadline marks it expired (IsCancelled() without
  // WasCancelledExplicitly(); its children end at their deadline, which is
  // no later than this one, with DEADLINE_EXCEEDED).
  void EndContext(bool deadline_passed);
  // Ends the call from the transport (shutdown, refused, cancelled while
  // queued): the client gets `status`, the context is cancelled, then
  // pending operations fail with `status`.
  void Abort(const absl::Status& status);
  // What the client gets for a handler's `status`: DEADLINE_EXCEEDED once
  // the context's deadline has passed (the handler's answer lost the race,
  // and gRPC's server-side deadline, a millisecond-rounded copy of the
  // client's, may come just before the client's own), else `status`.
  absl::Status AnswerFor(absl::Status status) const;

  // ServerStream:
  CallContext& context() override { return ctx; }
  void Read(ReadCallback done) override;
  void Write(std::string message, WriteCallback done) override;
  void Finish(absl::Status status) override;

 private:
  struct PendingWrite {
    std::string message;
    WriteCallback done;
  };

  // Issues the gRPC operations the state asks for; see the file comment.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  bool ReadWantedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the stream: fails the pending Read and the queued Write with
  // `ops_status` (their callbacks are appended to the lists) and asks the
  // pump to finish the gRPC call with `finish_status`.
  void EndLocked(const absl::Status& ops_status,
                 const absl::Status& finish_status,
                 std::vector<ReadCallback>* reads,
                 std::vector<WriteCallback>* writes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SnapshotMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why operations fail once the client went away.
  absl::Status EndedStatus() const;
  static absl::Status EndedStatus(bool deadline_passed);

  grpc::ServerGenericBidiReactor* const reactor_ = nullptr;  // Until OnDone.
  UnaryResponder* const responder_ = nullptr;  // Until the call is done.
  grpc::ServerContextBase* const grpc_ctx_;    // Until OnDone.
  CallOwner* const owner_;
  // From when gRPC ending the call counts as the deadline (SetDeadline).
  absl::Time expiry_from_ = absl::InfiniteFuture();

  Mutex mu_;
  StreamWindow window_ ABSL_GUARDED_BY(mu_);
  size_t max_message_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool repump_ ABSL_GUARDED_BY(mu_) = false;
  // Read side.
  // A list: unlike std::deque it allocates nothing while empty, which
  // keeps unary calls free of its cost.
  std::list<std::string> buffered_ ABSL_GUARDED_BY(mu_);
  size_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ahead_ ABSL_GUARDED_BY(mu_) = false;  // Client streams.
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool input_ended_ ABSL_GUARDED_BY(mu_) = false;  // Half-close seen.
  ReadCallback pending_read_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer read_buf_;  // Owned by the read in flight.
  // Write side.
  std::optional<PendingWrite> queued_write_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer write_buf_;  // Owned by the write in flight.
  // Response metadata, taken at the first Write (sent as initial metadata)
  // or at Finish when nothing was written (sent as trailing metadata).
  bool metadata_taken_ ABSL_GUARDED_BY(mu_) = false;
  bool metadata_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<std::string, std::string>> metadata_
      ABSL_GUARDED_BY(mu_);
  // Ending.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // Finish, Abort or cancel.
  absl::Status ops_status_ ABSL_GUARDED_BY(mu_);  // For ops after the end.
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_SERVER_CALL_H_
