// How lpc's call model maps onto gRPC's, shared by the gRPC client and
// server: status codes, metadata keys, the interface-binding headers, method
// paths and deadlines. Pure functions; no gRPC object is created here.
//
// Thread safety: every function is thread-safe.
#ifndef LPC_TRANSPORTS_GRPC_MAPPING_H_
#define LPC_TRANSPORTS_GRPC_MAPPING_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/interface.h"
#include "runtime/message.h"

namespace lpc::grpc_transport {

// Metadata keys lpc itself sends on every call.
inline constexpr char kInterfaceUuidKey[] = "lpc-interface-uuid";
inline constexpr char kInterfaceVersionKey[] = "lpc-interface-version";

// Canonical codes are numerically identical in absl and gRPC; these map one
// to one and keep the message. A code outside 0..16 becomes UNKNOWN.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// True for keys that never cross between lpc Metadata and gRPC metadata:
// lpc's own ("lpc-"), gRPC's ("grpc-"), HTTP/2 pseudo-headers (":") and the
// headers gRPC adds to every call (user-agent, content-type, te).
bool IsReservedMetadataKey(std::string_view key);

// Checks one user metadata entry before it is handed to gRPC, which rejects
// (or asserts on) malformed ones: the key is non-empty and made of
// [0-9a-z-_.]; a value of a key not ending in "-bin" is printable ASCII.
// INVALID_ARGUMENT names the key.
absl::Status ValidateMetadataEntry(std::string_view key,
                                   std::string_view value);

// "1.2".
std::string FormatVersion(InterfaceVersion version);
// Parses "<major>.<minor>" with decimal numbers that fit in 32 bits;
// nullopt for anything else.
std::optional<InterfaceVersion> ParseVersion(std::string_view text);

// Splits a gRPC method path "/<package>.<Interface>/<Method>" into the
// interface's full name and the method name; nullopt if it is malformed.
struct MethodPathParts {
  std::string_view interface_name;
  std::string_view method_name;
};
std::optional<MethodPathParts> ParseMethodPath(std::string_view path);

// Puts `bytes` into a one-slice ByteBuffer: copied when small (under
// 4 KiB), moved without copying otherwise.
grpc::ByteBuffer ToByteBuffer(std::string bytes);
// Copies a received ByteBuffer out as one string (one copy per slice). INTERNAL if gRPC cannot
// read the buffer (it is corrupt or was compressed with an unknown codec).
absl::Status FromByteBuffer(const grpc::ByteBuffer& buffer, std::string* out);

// Has `message` write itself into one gRPC slice of its size: one
// allocation, no copy in between. A message with a buffer field is
// serialized whole first (the field appended, as the emitted .proto has it).
grpc::ByteBuffer WriteToByteBuffer(const MessageWriter& message);
// A received message as the generated decoders read it: a view of the
// ByteBuffer's slice when it has one (valid while `*slice` holds it;
// Retain() copies), its bytes copied out otherwise. INTERNAL as for
// FromByteBuffer.
absl::Status ReceiveByteBuffer(const grpc::ByteBuffer& buffer,
                               grpc::Slice* slice, ReceivedMessage* out);

// Deadlines. gRPC uses system_clock::time_point::max() for "none", lpc uses
// absl::InfiniteFuture().
std::chrono::system_clock::time_point ToGrpcDeadline(absl::Time deadline);
absl::Time FromGrpcDeadline(std::chrono::system_clock::time_point deadline);

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_MAPPING_H_
