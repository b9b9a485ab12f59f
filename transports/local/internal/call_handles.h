// The local transport's side of a call's handle tables (runtime/handles.h):
// moving received descriptors into a CallContext's table, and the table's
// descriptors out to be sent or closed.
//
// Thread safety: as the CallContext's tables (one call's one side at a
// time).
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_CALL_HANDLES_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_CALL_HANDLES_H_

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "runtime/call_context.h"
#include "transports/local/handle_errors.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::internal {

// Appends `fds` (received from the peer) to `ctx`'s request table, or its
// reply table; `fds` is left empty.
void AdoptRequestHandles(CallContext& ctx, std::vector<UniqueFd>& fds);
void AdoptReplyHandles(CallContext& ctx, std::vector<UniqueFd>& fds);

// Takes every descriptor left in `ctx`'s request table, or its reply table
// (the caller sends or closes them).
std::vector<UniqueFd> TakeRequestHandles(CallContext& ctx);
std::vector<UniqueFd> TakeReplyHandles(CallContext& ctx);

// Whether `ctx`'s reply table holds any descriptor.
bool HasReplyHandles(CallContext& ctx);

// The descriptors of `ctx`'s request table, borrowed (still owned by the
// table), for sending; empty if it has none.
std::vector<int> BorrowRequestHandles(CallContext& ctx);

// The handle error a handler's status reports
// (lpc::internal::IsHandleProtocolError), if any.
std::optional<HandleError> HandleProtocolErrorOf(const absl::Status& s);

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_CALL_HANDLES_H_
