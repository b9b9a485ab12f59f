// Call metadata on the local transport.
//
// A request or reply that carries metadata sets kFlagMetadata in its
// FrameHeader, and its payload starts with a metadata block:
//
//   uint32 block_length            bytes of the block after this field
//   uint32 count                   number of entries
//   count x { uint32 key_length, key bytes, uint32 value_length, value bytes }
//
// followed by the message payload (the serialized request or reply, or the
// status message of an error reply). Integers are little-endian.
//
// The receiver decodes the block from its private copy of the payload and
// applies limits before it allocates: at most kMaxMetadataEntries entries,
// kMaxMetadataBytes bytes in all; keys are non-empty lower-case ASCII
// ([a-z0-9-_.]), and a key ending in "-bin" may carry any bytes while other
// values are printable ASCII. Keys starting with "lpc-" are reserved and
// never sent. A block that breaks a rule is DATA_LOSS naming the rule.
//
// Thread safety: free functions.
#ifndef LPC_TRANSPORTS_LOCAL_METADATA_H_
#define LPC_TRANSPORTS_LOCAL_METADATA_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/call_context.h"

namespace lpc::local {

inline constexpr uint32_t kMaxMetadataEntries = 64;
inline constexpr uint32_t kMaxMetadataBytes = 16 * 1024;

// Appends the metadata block for `md` to `out`. INVALID_ARGUMENT when the
// metadata breaks the rules above (the sender finds out, not the peer).
absl::Status EncodeMetadata(const Metadata& md, std::string* out);

// Whether `md` has anything to send (reserved "lpc-" keys are never sent).
bool HasSendableMetadata(const Metadata& md);

// Decodes the block at the start of `payload` into `*md` and sets `*rest` to
// the payload after it.
absl::Status DecodeMetadata(std::string_view payload, Metadata* md,
                            std::string_view* rest);

}  // namespace lpc::local

#endif  // LPC_TRANSPORTS_LOCAL_METADATA_H_
