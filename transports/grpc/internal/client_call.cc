// See client_call.h.
#include "transports/grpc/internal/client_call.h"
#include "transports/grpc/internal/leases.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "transports/grpc/mapping.h"

namespace lpc::grpc_transport {
namespace {

thread_local bool t_in_grpc_callback = false;

}  // namespace

bool InGrpcCallback() { return t_in_grpc_callback; }

CallbackScope::CallbackScope() : previous_(t_in_grpc_callback) {
  t_in_grpc_callback = true;
}

CallbackScope::~CallbackScope() { t_in_grpc_callback = previous_; }

CallToken::CallToken(std::shared_ptr<GrpcChannel::CallTracker> tracker,
                     absl::Time deadline)
    : tracker_(std::move(tracker)) {
  std::lock_guard<std::mutex> lock(tracker_->mu);
  ++tracker_->in_flight;
  tracker_->latest_deadline = std::max(tracker_->latest_deadline, deadline);
}

CallToken::~CallToken() {
  std::lock_guard<std::mutex> lock(tracker_->mu);
  --tracker_->in_flight;
  tracker_->cv.notify_all();
}

absl::Status SetUpContext(const InterfaceDescriptor& iface,
                          const CallContext& ctx, const std::string& lease,
                          grpc::ClientContext* grpc_ctx) {
  grpc_ctx->set_deadline(ToGrpcDeadline(ctx.deadline()));
  for (const auto& [key, value] : ctx.metadata()) {
    if (IsReservedMetadataKey(key)) continue;
    absl::Status s = ValidateMetadataEntry(key, value);
    if (!s.ok()) return s;
    grpc_ctx->AddMetadata(key, value);
  }
  std::string uuid(iface.uuid);
  absl::Status s = ValidateMetadataEntry(kInterfaceUuidKey, uuid);
  if (!s.ok()) return s;
  grpc_ctx->AddMetadata(kInterfaceUuidKey, uuid);
  grpc_ctx->AddMetadata(kInterfaceVersionKey, FormatVersion(iface.version));
  if (!lease.empty()) grpc_ctx->AddMetadata(kLeaseKey, lease);
  return absl::OkStatus();
}

void CopyResponseMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& from,
    Metadata* to) {
  for (const auto& [key, value] : from) {
    std::string_view k(key.data(), key.size());
    if (IsReservedMetadataKey(k)) continue;
    to->emplace(std::string(k), std::string(value.data(), value.size()));
  }
}

}  // namespace lpc::grpc_transport
