// Context handle leases over gRPC (docs/handles.md, "Leases (gRPC)").
//
// gRPC has no connection identity that survives reconnects, so a client
// names its own: every call of an lpc gRPC channel carries metadata
// `lpc-lease: <32 hex digits>`, random per channel. The contexts a handler
// opens belong to the call's lease (one ContextTable per lease), and only
// calls bearing the same lease see them. A lease lapses `timeout` after the
// last call that bore it ended (never while one runs): its contexts run
// down. `/lpc.Lease/Renew` keeps it alive, `/lpc.Lease/Release` ends it at
// once. A stock client that sends no lease gets a fresh one in the call's
// initial metadata.
//
// Thread safety: LeaseTable is thread-safe; mu_ is a leaf lock (rundowns
// are queued, never run under it).
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_LEASES_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_LEASES_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <grpcpp/channel.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/context_handle.h"
#include "runtime/mutex.h"

namespace lpc::grpc_transport {

inline constexpr char kLeaseKey[] = "lpc-lease";
// Trailing metadata of a unary reply whose lease holds contexts: the
// lease's timeout in milliseconds, so that the lpc channel renews it.
inline constexpr char kLeaseTimeoutKey[] = "lpc-lease-timeout-ms";
inline constexpr char kRenewPath[] = "/lpc.Lease/Renew";
inline constexpr char kReleasePath[] = "/lpc.Lease/Release";

// 32 random lower-case hex digits.
std::string NewLeaseId();
// INVALID_ARGUMENT unless `id` is 32 lower-case hex digits.
absl::Status CheckLeaseId(std::string_view id);

class LeaseTable {
 public:
  // Starts the thread that lapses leases.
  LeaseTable(absl::Duration timeout, size_t max_contexts_per_lease);
  // Stops it and runs down every lease (Shutdown).
  ~LeaseTable();
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  absl::Duration timeout() const { return timeout_; }

  // A call bearing lease `id` starts: its table (made on first use). The
  // lease cannot lapse until the matching Done(id).
  std::shared_ptr<ContextTable> Acquire(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The call ended: the lapse clock restarts. A lease without contexts and
  // calls is forgotten at once.
  void Done(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // /lpc.Lease/Renew: restarts the lapse clock of a known lease.
  void Renew(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // /lpc.Lease/Release: the lease ends now; its contexts run down.
  void Release(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Every lease ends; later Acquires get tables that are run down already.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Leases known now.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Lease {
    std::shared_ptr<ContextTable> table;
    int calls = 0;      // Calls bearing it now.
    absl::Time last;    // When the last call bearing it ended (or renewal).
  };

  void LapseLoop() ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration timeout_;
  const size_t max_contexts_;
  mutable Mutex mu_;
  CondVar cv_;  // Shutdown.
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::thread lapse_thread_;
};

// The client side: keeps the leases of lpc gRPC channels alive. A channel
// whose reply said its lease holds contexts (kLeaseTimeoutKey) is renewed
// every third of that timeout (on one runtime thread) until Forget.
// Thread-safe; renewals and releases are asynchronous gRPC calls, never
// waited for.
class LeaseKeeper {
 public:
  static LeaseKeeper& Get();

  // Renews `lease` over `channel` every `interval` while the channel lives,
  // until Forget(lease). Calling it again changes the interval.
  void Keep(std::weak_ptr<grpc::Channel> channel, const std::string& lease,
            absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(const std::string& lease) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Kept {
    std::weak_ptr<grpc::Channel> channel;
    absl::Duration interval;
    absl::Time next;
  };
  LeaseKeeper() = default;
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  Mutex mu_;
  CondVar cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Kept> kept_ ABSL_GUARDED_BY(mu_);
};

// Sends `path` (kRenewPath or kReleasePath) for `lease` over `channel`,
// asynchronously; the answer is ignored.
void SendLeaseCall(const std::shared_ptr<grpc::Channel>& channel,
                   const char* path, const std::string& lease);

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_LEASES_H_
