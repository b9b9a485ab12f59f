// Context handle leases over gRPC: the server's lease table and the
// client's renewals (leases.h).
#include "transports/grpc/internal/leases.h"

#include <sys/random.h>

#include <algorithm>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/strings/escaping.h"

namespace lpc::grpc_transport {

std::string NewLeaseId() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

absl::Status CheckLeaseId(std::string_view id) {
  bool ok = id.size() == 32 &&
            std::all_of(id.begin(), id.end(), [](char c) {
              return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "metadata lpc-lease must be 32 lower-case hex digits (a context handle "
      "lease); leave it out to get one");
}

LeaseTable::LeaseTable(absl::Duration timeout, size_t max_contexts_per_lease)
    : timeout_(timeout), max_contexts_(max_contexts_per_lease) {
  lapse_thread_ = std::thread([this] { LapseLoop(); });
}

LeaseTable::~LeaseTable() {
  Shutdown();
  if (lapse_thread_.joinable()) lapse_thread_.join();
}

std::shared_ptr<ContextTable> LeaseTable::Acquire(const std::string& id) {
  MutexLock lock(&mu_);
  if (stopped_) {
    auto table = std::make_shared<ContextTable>(max_contexts_);
    table->RundownAll();  // Opens nothing more.
    return table;
  }
  Lease& lease = leases_[id];
  if (lease.table == nullptr) {
    lease.table = std::make_shared<ContextTable>(max_contexts_);
  }
  ++lease.calls;
  return lease.table;
}

void LeaseTable::Done(const std::string& id) {
  std::shared_ptr<ContextTable> forgotten;  // Destroyed without mu_.
  MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  Lease& lease = it->second;
  if (lease.calls > 0) --lease.calls;
  lease.last = absl::Now();
  if (lease.calls == 0 && lease.table->size() == 0) {
    forgotten = std::move(lease.table);
    leases_.erase(it);
  }
}

void LeaseTable::Renew(const std::string& id) {
  MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.last = absl::Now();
}

void LeaseTable::Release(const std::string& id) {
  std::shared_ptr<ContextTable> table;
  {
    MutexLock lock(&mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    table = std::move(it->second.table);
    leases_.erase(it);
  }
  table->RundownAll();
}

void LeaseTable::Shutdown() {
  std::vector<std::shared_ptr<ContextTable>> tables;
  {
    MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [id, lease] : leases_) tables.push_back(std::move(lease.table));
    leases_.clear();
    cv_.SignalAll();
  }
  for (auto& t : tables) t->RundownAll();
}

size_t LeaseTable::size() const {
  MutexLock lock(&mu_);
  return leases_.size();
}

void LeaseTable::LapseLoop() {
  // Checks a few times per timeout, so a lease lapses within a tenth of it
  // (at most a second) after its time.
  const absl::Duration tick =
      std::clamp(timeout_ / 10, absl::Milliseconds(5), absl::Seconds(1));
  MutexLock lock(&mu_);
  while (!stopped_) {
    cv_.WaitWithDeadline(&mu_, absl::Now() + tick);
    if (stopped_) break;
    const absl::Time now = absl::Now();
    std::vector<std::shared_ptr<ContextTable>> lapsed;
    for (auto it = leases_.begin(); it != leases_.end();) {
      Lease& lease = it->second;
      if (lease.calls == 0 && now - lease.last >= timeout_) {
        lapsed.push_back(std::move(lease.table));
        leases_.erase(it++);
      } else {
        ++it;
      }
    }
    if (lapsed.empty()) continue;
    mu_.Unlock();
    for (auto& t : lapsed) t->RundownAll();  // Queued, not run here.
    lapsed.clear();
    mu_.Lock();
  }
}

void SendLeaseCall(const std::shared_ptr<grpc::Channel>& channel,
                   const char* path, const std::string& lease) {
  struct Call {
    grpc::ClientContext ctx;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto call = std::make_shared<Call>();
  call->ctx.AddMetadata(kLeaseKey, lease);
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
  grpc::Slice empty;
  call->request = grpc::ByteBuffer(&empty, 1);
  Call* raw = call.get();
  grpc::GenericStub(channel).UnaryCall(
      &raw->ctx, path, grpc::StubOptions(), &raw->request, &raw->response,
      [call = std::move(call)](grpc::Status) mutable { call.reset(); });
}

LeaseKeeper& LeaseKeeper::Get() {
  static LeaseKeeper* keeper = new LeaseKeeper;
  return *keeper;
}

void LeaseKeeper::Keep(std::weak_ptr<grpc::Channel> channel,
                       const std::string& lease, absl::Duration interval) {
  MutexLock lock(&mu_);
  if (!started_) {
    started_ = true;
    std::thread([this] { Loop(); }).detach();
  }
  Kept& k = kept_[lease];
  k.channel = std::move(channel);
  k.interval = std::max(interval, absl::Milliseconds(1));
  k.next = absl::Now() + k.interval;
  cv_.SignalAll();
}

void LeaseKeeper::Forget(const std::string& lease) {
  MutexLock lock(&mu_);
  kept_.erase(lease);
}

void LeaseKeeper::Loop() {
  MutexLock lock(&mu_);
  for (;;) {
    absl::Time next = absl::Now() + absl::Seconds(60);
    for (const auto& [lease, k] : kept_) next = std::min(next, k.next);
    cv_.WaitWithDeadline(&mu_, next);
    const absl::Time now = absl::Now();
    std::vector<std::pair<std::shared_ptr<grpc::Channel>, std::string>> due;
    for (auto it = kept_.begin(); it != kept_.end();) {
      Kept& k = it->second;
      if (k.next > now) {
        ++it;
        continue;
      }
      std::shared_ptr<grpc::Channel> channel = k.channel.lock();
      if (channel == nullptr) {
        kept_.erase(it++);
        continue;
      }
      k.next = now + k.interval;
      due.emplace_back(std::move(channel), it->first);
      ++it;
    }
    if (due.empty()) continue;
    mu_.Unlock();
    for (auto& [channel, lease] : due) SendLeaseCall(channel, kRenewPath, lease);
    due.clear();  // The channels go without mu_.
    mu_.Lock();
  }
}

}  // namespace lpc::grpc_transport
