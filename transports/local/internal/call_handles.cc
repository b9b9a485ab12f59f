// The local transport's side of a call's handle tables; see call_handles.h.
#include "transports/local/internal/call_handles.h"

#include "runtime/handles.h"

namespace lpc::local::internal {

namespace {

void Adopt(HandleTable& t, std::vector<UniqueFd>& fds) {
  for (UniqueFd& fd : fds) t.Adopt(fd.Release());
  fds.clear();
}

std::vector<UniqueFd> TakeAll(HandleTable* t) {
  std::vector<UniqueFd> out;
  if (t == nullptr) return out;
  for (int fd : t->Release()) out.emplace_back(fd);
  return out;
}

}  // namespace

void AdoptRequestHandles(CallContext& ctx, std::vector<UniqueFd>& fds) {
  if (!fds.empty()) Adopt(::lpc::internal::CallHandles::request(ctx), fds);
}

void AdoptReplyHandles(CallContext& ctx, std::vector<UniqueFd>& fds) {
  if (!fds.empty()) Adopt(::lpc::internal::CallHandles::reply(ctx), fds);
}

std::vector<UniqueFd> TakeRequestHandles(CallContext& ctx) {
  return TakeAll(::lpc::internal::CallHandles::request_if_any(ctx));
}

std::vector<UniqueFd> TakeReplyHandles(CallContext& ctx) {
  return TakeAll(::lpc::internal::CallHandles::reply_if_any(ctx));
}

bool HasReplyHandles(CallContext& ctx) {
  HandleTable* t = ::lpc::internal::CallHandles::reply_if_any(ctx);
  return t != nullptr && t->size() > 0;
}

std::vector<int> BorrowRequestHandles(CallContext& ctx) {
  std::vector<int> out;
  HandleTable* t = ::lpc::internal::CallHandles::request_if_any(ctx);
  if (t == nullptr) return out;
  for (size_t i = 0; i < t->size(); ++i) {
    if (t->raw(i) >= 0) out.push_back(t->raw(i));
  }
  return out;
}

std::optional<HandleError> HandleProtocolErrorOf(const absl::Status& s) {
  if (s.ok() || !::lpc::internal::IsHandleProtocolError(s)) return std::nullopt;
  std::optional<HandleError> e =
      HandleErrorFromReason(::lpc::internal::HandleProtocolErrorReason(s));
  return e.has_value() ? e : HandleError::kUnreferenced;
}


}  // namespace lpc::local::internal
