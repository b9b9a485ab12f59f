// The server's call path for one client: draining its request ring into
// decoded calls (Drain, HandleMessage), binding interfaces, cancels, running
// a call and sending its reply (RunCall, SendReply), and what a worker does
// after a call (AfterCall: re-check the ring, spin for the client's next
// request, or let the ring's doorbell wake the server).
//
// Thread safety: thread-safe; called by the worker pool's threads and the
// I/O thread. Takes the connection's locks (recv_mu, send_mu, state_mu) and,
// through the pool, the pool's; never holds one while calling the owner.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CALLS_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CALLS_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/internal/handler_pool.h"
#include "runtime/server.h"
#include "transports/local/buffer_cache.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/turn_timer.h"
#include "transports/local/internal/server_streams.h"
#include "transports/local/internal/worker_pool.h"
#include "transports/local/local_transport.h"

namespace lpc::local::internal {

class ServerCalls : public StreamOwner {
 public:
  // The server, which ends connections.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Disconnects a client that broke the protocol (or cannot keep up),
    // telling it why.
    virtual void CutOff(const std::shared_ptr<Connection>& c,
                        const absl::Status& why) = 0;
    // Closes a connection whose work is done.
    virtual void Close(const std::shared_ptr<Connection>& c) = 0;
  };

  // `options`, `buffers`, `budgets`, `pool`, `handlers` and `owner`
  // outlive this. `handlers` runs the calls whose StartCall holds its
  // thread (BoundInterface::Method::start_call_blocks).
  ServerCalls(const LocalPortOptions& options, BufferCache* buffers,
              ServerBudgets* budgets, WorkerPool* pool,
              ::lpc::internal::HandlerPool* handlers, Owner* owner)
      : options_(options),
        buffers_(*buffers),
        budgets_(*budgets),
        pool_(pool),
        handlers_(handlers),
        owner_(owner),
        stream_host_(std::make_shared<StreamHost>(this)) {}
  // Streams a handler still holds stop reaching this server.
  ~ServerCalls() override { stream_host_->Detach(); }
  ServerCalls(const ServerCalls&) = delete;
  ServerCalls& operator=(const ServerCalls&) = delete;

  // Before the first call.
  void set_dispatcher(Dispatcher* dispatcher) { dispatcher_ = dispatcher; }
  // From now on requests are answered UNAVAILABLE and workers stop spinning.
  void BeginShutdown() { shutting_down_.store(true); }
  bool shutting_down() const { return shutting_down_.load(); }
  // Requests' wire deadlines become absl::Time against this anchor
  // (WallClockAnchor), refreshed by every tick: no clock read per call.
  void SetWallAnchor(absl::Time wall_now, int64_t mono_now_ns) {
    wall_anchor_unix_ns_.store(
        absl::ToUnixNanos(WallClockAnchor(wall_now, mono_now_ns)),
        std::memory_order_relaxed);
  }

  // Reads up to batch_per_turn records of `c`'s ring and queues their calls
  // with the pool (or closes a hung-up client whose work is done).
  void Drain(const std::shared_ptr<Connection>& c);
  // Runs one decoded call, sends its reply, then AfterCall.
  void RunCall(WorkItem& item);
  // A CANCEL for call `id` of `c`: a ring record, or (`by_socket`) a
  // control packet, which the I/O thread reads even while the ring is not
  // read.
  void CancelCall(Connection& c, uint64_t id, bool by_socket);
  // Sends `reply`, or queues it while the reply ring is full; cuts the
  // client off if it cannot take it (max_queued_replies already queued, or
  // `max_queued` when given). Returns true if its wake-up woke the client.
  bool SendReply(const std::shared_ptr<Connection>& c, OwnedReply&& reply,
                 size_t max_queued = 0);
  // The queue bound for a stream's records: one client may open
  // max_streams_per_connection streams before it reads anything, and each
  // has a window announce and a finish to queue, which cannot wait. Stream
  // messages wait while half of max_queued_replies replies are queued
  // (LocalServerStream::Config), so they stay far below it.
  size_t StreamQueueLimit() const {
    return size_t{options_.max_queued_replies} +
           2 * size_t{options_.max_streams_per_connection};
  }
  // A stream's hold mark and queue bound, from the port's options.
  void SetQueueBounds(LocalServerStream::Config* config) const {
    config->hold_writes_at_queued =
        std::max<size_t>(1, options_.max_queued_replies / 2);
    config->queue_limit = StreamQueueLimit();
  }

  uint64_t calls_started() const { return calls_started_.load(); }
  uint64_t cancelled_before_read() const {
    return cancelled_before_read_.load();
  }
  uint64_t cancels_ignored() const { return cancels_ignored_.load(); }
  uint64_t colocated_moves() const { return colocated_moves_.load(); }
  uint64_t handles_sent() const { return handles_sent_.load(); }
  // Replies whose buffer went as a pool chunk, or as a sealed memfd.
  uint64_t pool_buffers_sent() const { return pool_buffers_sent_.load(); }
  uint64_t sealed_buffers_sent() const { return sealed_buffers_sent_.load(); }
  // LocalServerStats::longest_ring_read_ns and longest_reply_send_ns.
  int64_t longest_ring_read_ns() const { return longest_ring_read_.ns(); }
  int64_t longest_reply_send_ns() const { return longest_reply_send_.ns(); }
  const StreamHost& stream_host() const { return *stream_host_; }

  // The tick's look at `c`'s streams: deadlines, held-back writes.
  void PollStreams(Connection& c, absl::Time now);

  // StreamOwner.
  void CutOffForStream(const std::shared_ptr<Connection>& c,
                       const absl::Status& why) override {
    CutOff(c, why);
  }
  void ScheduleForStream(const std::shared_ptr<Connection>& c) override {
    Schedule(c, false);
  }

  // Handles one message read from `c`'s ring (Drain's step; public for
  // the fuzz targets): binds, cancels, or appends a decoded call to
  // `items`.
  void HandleMessage(const std::shared_ptr<Connection>& c, IncomingMessage msg,
                     std::vector<WorkItem>* items);

 private:
  void AfterCall(const std::shared_ptr<Connection>& c, bool woke_client);
  // HandleMessage's stream records (server_calls_streams.cc).
  void OpenStream(const std::shared_ptr<Connection>& c, IncomingMessage& msg,
                  std::vector<WorkItem>* items);
  void StreamRecord(const std::shared_ptr<Connection>& c, IncomingMessage& msg);
  // Cuts `c` off for stream protocol error `e`, counting it.
  void StreamProtocolError(const std::shared_ptr<Connection>& c, StreamError e,
                           uint64_t id);
  // RunCall's part for a call through Dispatcher::StartCall: a stream, or a
  // REQUEST whose handler is asynchronous.
  void StartCall(WorkItem& item);
  // A plain unary method called through a stream: its one request is read,
  // then the handler runs on a worker like a REQUEST's (RunUnaryOverStream).
  // A call whose StartCall holds its thread: StartCall runs on the
  // handler pool, or the stream ends (the pool is full or stopped).
  void StartOnHandlerPool(std::shared_ptr<LocalServerStream> stream,
                          const BoundInterface* iface,
                          const BoundInterface::Method* method);
  void StartUnaryOverStream(const std::shared_ptr<Connection>& c,
                            const std::shared_ptr<LocalServerStream>& stream,
                            const BoundInterface* iface,
                            const BoundInterface::Method* method);
  void RunUnaryOverStream(WorkItem& item);
  // A finished stream's answer to the client (STREAM_FINISH) for a stream
  // that never opened.
  void RefuseStream(const std::shared_ptr<Connection>& c, uint64_t id,
                    const absl::Status& why);
  void NoteWake(Connection& c, bool woke_client, bool here);
  void Schedule(const std::shared_ptr<Connection>& c, bool wake) {
    pool_->Schedule(c, wake);
  }
  void CutOff(const std::shared_ptr<Connection>& c, const absl::Status& why) {
    owner_->CutOff(c, why);
  }
  void Close(const std::shared_ptr<Connection>& c) { owner_->Close(c); }

  const LocalPortOptions& options_;
  BufferCache& buffers_;
  ServerBudgets& budgets_;  // The server-wide byte budgets.
  WorkerPool* const pool_;
  ::lpc::internal::HandlerPool* const handlers_;
  Owner* const owner_;
  Dispatcher* dispatcher_ = nullptr;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> wall_anchor_unix_ns_{0};
  std::atomic<uint64_t> calls_started_{0}, cancelled_before_read_{0},
      cancels_ignored_{0}, colocated_moves_{0}, handles_sent_{0},
      pool_buffers_sent_{0}, sealed_buffers_sent_{0};
  LongestTurn longest_ring_read_, longest_reply_send_;
  const std::shared_ptr<StreamHost> stream_host_;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_SERVER_CALLS_H_
