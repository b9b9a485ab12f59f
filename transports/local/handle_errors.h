// The local transport's handle errors (docs/local-transport.md,
// "Handles"): a peer that breaks the rules of a message's handle table is
// cut off with one of three reasons, which the server counts.
//
// A handle error is a DATA_LOSS status whose message starts with the
// reason and which carries the reason, and the message id it concerns, as
// a payload, so that the code that cuts the peer off (or fails the call)
// can tell it from other protocol errors.
//
// Thread safety: free functions are thread-safe.
#ifndef LPC_TRANSPORTS_LOCAL_HANDLE_ERRORS_H_
#define LPC_TRANSPORTS_LOCAL_HANDLE_ERRORS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace lpc::local {

enum class HandleError {
  kTooMany,       // "too_many_handles": more than max_handles_per_message
  kUnreferenced,  // "unreferenced_handle": descriptors no record announces
  kMissing,       // "missing_handle": a record announces what never came
  // The same for a message's buffer field (docs/local-transport.md,
  // "Buffers"):
  kBufferRefused,       // "refused_buffer": the memfd failed the checks
  kBufferUnreferenced,  // "unreferenced_buffer": no record claims it, or twice
  kBufferMissing,       // "missing_buffer": a record announces what never came
  // The same-uid buffer pool (docs/local-transport.md, "The same-uid
  // buffer pool"):
  kPoolRefused,  // "refused_pool": a POOL packet failed the checks, or twice
  kPoolChunk,    // "bad_pool_chunk": a chunk lent or returned against the rules
};
inline constexpr size_t kHandleErrorKinds = 8;

// "too_many_handles", "unreferenced_handle", "missing_handle".
std::string_view HandleErrorReason(HandleError e);

// DATA_LOSS "<reason>: <detail>" marked as handle error `e` about message
// `message_id` (0 = none).
absl::Status MakeHandleError(HandleError e, uint64_t message_id,
                             std::string_view detail);

// The handle error `s` carries, if any.
std::optional<HandleError> GetHandleError(const absl::Status& s);
// The message id a handle error names (0 = none or not one).
uint64_t HandleErrorMessageId(const absl::Status& s);

// The reason of a runtime status (lpc::internal::IsHandleProtocolError's
// reasons: "too_many_handles", "unreferenced_handle", "missing_handle"),
// by name.
std::optional<HandleError> HandleErrorFromReason(std::string_view reason);

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_HANDLE_ERRORS_H_
