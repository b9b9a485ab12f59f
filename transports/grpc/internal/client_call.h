// Pieces every GrpcChannel call shares, unary or stream: counting calls for
// the channel's destructor, knowing when a thread runs one of our gRPC
// callbacks, and setting up a grpc::ClientContext from a CallContext.
//
// Thread safety: CallToken and the free functions are thread-safe;
// CallbackScope is per thread.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_CALL_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_CALL_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/interface.h"
#include "transports/grpc/grpc_channel.h"

namespace lpc {

struct GrpcChannel::CallTracker {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;                                  // Guarded by mu.
  absl::Time latest_deadline = absl::InfinitePast();  // Guarded by mu.
  // The channel's context handle lease (internal/leases.h), sent with
  // every call; set at construction, then read-only.
  std::string lease;
  std::weak_ptr<grpc::Channel> channel;
  // Whether LeaseKeeper renews the lease (a reply said it holds contexts).
  std::atomic<bool> kept{false};
};

namespace grpc_transport {

// True while this thread runs one of our gRPC completion callbacks.
bool InGrpcCallback();

// Marks this thread as running a gRPC completion callback while it lives.
class CallbackScope {
 public:
  CallbackScope();
  ~CallbackScope();
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  const bool previous_;
};

// Counts a call from before its grpc::ClientContext exists until after it
// is destroyed (the context holds a reference to the gRPC channel). Declare
// it first in a call's state so that it is destroyed last.
class CallToken {
 public:
  CallToken(std::shared_ptr<GrpcChannel::CallTracker> tracker,
            absl::Time deadline);
  ~CallToken();
  CallToken(const CallToken&) = delete;
  CallToken& operator=(const CallToken&) = delete;

 private:
  const std::shared_ptr<GrpcChannel::CallTracker> tracker_;
};

// Copies the deadline, the user metadata and the interface binding headers
// into the gRPC context. INVALID_ARGUMENT for a malformed metadata entry.
absl::Status SetUpContext(const InterfaceDescriptor& iface,
                          const CallContext& ctx, const std::string& lease,
                          grpc::ClientContext* grpc_ctx);

// Appends the entries of server metadata that are not reserved.
void CopyResponseMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& from,
    Metadata* to);

}  // namespace grpc_transport
}  // namespace lpc

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_CALL_H_
