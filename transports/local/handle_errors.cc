// Handle errors; see handle_errors.h.
#include "transports/local/handle_errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lpc::local {
namespace {

constexpr char kReasonKey[] = "lpc.local/handle_error";
constexpr char kIdKey[] = "lpc.local/handle_error_id";

}  // namespace

std::string_view HandleErrorReason(HandleError e) {
  switch (e) {
    case HandleError::kTooMany:
      return "too_many_handles";
    case HandleError::kUnreferenced:
      return "unreferenced_handle";
    case HandleError::kMissing:
      return "missing_handle";
    case HandleError::kBufferRefused:
      return "refused_buffer";
    case HandleError::kBufferUnreferenced:
      return "unreferenced_buffer";
    case HandleError::kBufferMissing:
      return "missing_buffer";
    case HandleError::kPoolRefused:
      return "refused_pool";
    case HandleError::kPoolChunk:
      return "bad_pool_chunk";
  }
  return "handle_error";
}

absl::Status MakeHandleError(HandleError e, uint64_t message_id,
                             std::string_view detail) {
  const std::string reason(HandleErrorReason(e));
  absl::Status s = absl::DataLossError(
      absl::StrCat(reason, ": ", std::string(detail)));
  s.SetPayload(kReasonKey, absl::Cord(reason));
  if (message_id != 0) {
    s.SetPayload(kIdKey, absl::Cord(absl::StrCat(message_id)));
  }
  return s;
}

std::optional<HandleError> GetHandleError(const absl::Status& s) {
  if (s.ok()) return std::nullopt;
  auto reason = s.GetPayload(kReasonKey);
  if (!reason.has_value()) return std::nullopt;
  return HandleErrorFromReason(std::string(*reason));
}

uint64_t HandleErrorMessageId(const absl::Status& s) {
  if (s.ok()) return 0;
  auto id = s.GetPayload(kIdKey);
  uint64_t v = 0;
  if (!id.has_value() || !absl::SimpleAtoi(std::string(*id), &v)) return 0;
  return v;
}

std::optional<HandleError> HandleErrorFromReason(std::string_view reason) {
  for (HandleError e :
       {HandleError::kTooMany, HandleError::kUnreferenced,
        HandleError::kMissing, HandleError::kBufferRefused,
        HandleError::kBufferUnreferenced, HandleError::kBufferMissing,
        HandleError::kPoolRefused, HandleError::kPoolChunk}) {
    if (HandleErrorReason(e) == reason) return e;
  }
  return std::nullopt;
}

}  // namespace lpc::local
