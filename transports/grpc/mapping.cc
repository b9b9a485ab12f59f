// The lpc <-> gRPC mapping functions.
#include "transports/grpc/mapping.h"

#include <cstdint>
#include <limits>
#include <vector>

#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include "absl/strings/str_cat.h"

namespace lpc::grpc_transport {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  int code = static_cast<int>(status.code());
  if (code < 0 || code > static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      status.error_message());
}

bool IsReservedMetadataKey(std::string_view key) {
  return key.empty() || key.starts_with("lpc-") || key.starts_with("grpc-") ||
         key.starts_with(":") || key == "user-agent" ||
         key == "content-type" || key == "te";
}

absl::Status ValidateMetadataEntry(std::string_view key,
                                   std::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("empty metadata key");
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metadata key '", std::string(key),
          "' may only contain lower-case letters, digits, '-', '_' and '.'"));
    }
  }
  if (key.ends_with("-bin")) return absl::OkStatus();
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value of metadata key '", std::string(key),
          "' must be printable ASCII (use a key ending in -bin for bytes)"));
    }
  }
  return absl::OkStatus();
}

std::string FormatVersion(InterfaceVersion version) {
  return absl::StrCat(version.major, ".", version.minor);
}

namespace {

std::optional<uint32_t> ParseUint32(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(value);
}

}  // namespace

std::optional<InterfaceVersion> ParseVersion(std::string_view text) {
  size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::optional<uint32_t> major = ParseUint32(text.substr(0, dot));
  std::optional<uint32_t> minor = ParseUint32(text.substr(dot + 1));
  if (!major || !minor) return std::nullopt;
  return InterfaceVersion{*major, *minor};
}

std::optional<MethodPathParts> ParseMethodPath(std::string_view path) {
  if (path.size() < 4 || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 ||
      slash + 1 == path.size()) {
    return std::nullopt;
  }
  MethodPathParts parts{path.substr(0, slash), path.substr(slash + 1)};
  if (parts.method_name.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  return parts;
}

grpc::ByteBuffer ToByteBuffer(std::string bytes) {
  // Small messages are copied into one gRPC slice (one allocation, and the
  // bytes are about to be copied into a frame anyway); larger ones are
  // handed over with the string that holds them, without a copy.
  constexpr size_t kCopyBelow = 4096;
  if (bytes.size() < kCopyBelow) {
    grpc::Slice slice(bytes.data(), bytes.size());
    return grpc::ByteBuffer(&slice, 1);
  }
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(),
      [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

absl::Status FromByteBuffer(const grpc::ByteBuffer& buffer, std::string* out) {
  // The common case, a message in one uncompressed slice: one copy.
  grpc::Slice single;
  if (buffer.TrySingleSlice(&single).ok()) {
    out->assign(reinterpret_cast<const char*>(single.begin()), single.size());
    return absl::OkStatus();
  }
  out->clear();
  std::vector<grpc::Slice> slices;
  grpc::Status s = buffer.Dump(&slices);
  if (!s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot read a gRPC message: ", s.error_message()));
  }
  size_t total = 0;
  for (const grpc::Slice& slice : slices) total += slice.size();
  out->reserve(total);
  for (const grpc::Slice& slice : slices) {
    out->append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return absl::OkStatus();
}

grpc::ByteBuffer WriteToByteBuffer(const MessageWriter& message) {
  if (message.buffer() != nullptr) {
    return ToByteBuffer(SerializeToString(message));
  }
  grpc_slice raw = grpc_slice_malloc(message.size());
  message.WriteTo(GRPC_SLICE_START_PTR(raw));
  grpc::Slice slice(raw, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&slice, 1);
}

absl::Status ReceiveByteBuffer(const grpc::ByteBuffer& buffer,
                               grpc::Slice* slice, ReceivedMessage* out) {
  if (buffer.TrySingleSlice(slice).ok()) {
    *out = ReceivedMessage(
        std::string_view(reinterpret_cast<const char*>(slice->begin()),
                         slice->size()),
        nullptr);
    return absl::OkStatus();
  }
  std::string bytes;
  absl::Status s = FromByteBuffer(buffer, &bytes);
  if (!s.ok()) return s;
  *out = ReceivedMessage(std::move(bytes));
  return absl::OkStatus();
}

std::chrono::system_clock::time_point ToGrpcDeadline(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    return std::chrono::system_clock::time_point::max();
  }
  return absl::ToChronoTime(deadline);
}

absl::Time FromGrpcDeadline(std::chrono::system_clock::time_point deadline) {
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace lpc::grpc_transport
