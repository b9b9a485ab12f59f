// Encoding and validating the local transport's metadata block.
#include "transports/local/metadata.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace lpc::local {
namespace {

void PutU32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
               static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(b, 4);
}

bool GetU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in->data());
  *v = uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
       (uint32_t{p[3]} << 24);
  in->remove_prefix(4);
  return true;
}

bool IsReserved(std::string_view key) { return key.rfind("lpc-", 0) == 0; }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Empty when valid; otherwise what is wrong.
std::string CheckEntry(std::string_view key, std::string_view value) {
  if (key.empty()) return "empty metadata key";
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) return "metadata key has a character other than [a-z0-9-_.]";
  }
  if (!EndsWith(key, "-bin")) {
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return "metadata value of a non -bin key is not printable ASCII";
      }
    }
  }
  return "";
}

}  // namespace

bool HasSendableMetadata(const Metadata& md) {
  for (const auto& [k, v] : md) {
    if (!IsReserved(k)) return true;
  }
  return false;
}

absl::Status EncodeMetadata(const Metadata& md, std::string* out) {
  std::string block;
  uint32_t count = 0;
  for (const auto& [k, v] : md) {
    if (IsReserved(k)) continue;
    std::string problem = CheckEntry(k, v);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(problem, ": '", k, "'"));
    }
    ++count;
    PutU32(static_cast<uint32_t>(k.size()), &block);
    block.append(k);
    PutU32(static_cast<uint32_t>(v.size()), &block);
    block.append(v);
    if (count > kMaxMetadataEntries || block.size() + 4 > kMaxMetadataBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metadata exceeds the local transport's limit of ",
          kMaxMetadataEntries, " entries or ", kMaxMetadataBytes, " bytes"));
    }
  }
  PutU32(static_cast<uint32_t>(block.size() + 4), out);
  PutU32(count, out);
  out->append(block);
  return absl::OkStatus();
}

absl::Status DecodeMetadata(std::string_view payload, Metadata* md,
                            std::string_view* rest) {
  uint32_t block_length = 0;
  if (!GetU32(&payload, &block_length)) {
    return absl::DataLossError("metadata block shorter than its length field");
  }
  if (block_length < 4 || block_length > kMaxMetadataBytes ||
      block_length > payload.size()) {
    return absl::DataLossError(
        absl::StrCat("metadata block length ", block_length, " is out of range"));
  }
  std::string_view block = payload.substr(0, block_length);
  *rest = payload.substr(block_length);
  uint32_t count = 0;
  GetU32(&block, &count);
  if (count > kMaxMetadataEntries) {
    return absl::DataLossError(
        absl::StrCat("metadata entry count ", count, " exceeds the limit"));
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t key_length = 0, value_length = 0;
    if (!GetU32(&block, &key_length) || key_length > block.size()) {
      return absl::DataLossError("metadata key length past the block");
    }
    std::string_view key = block.substr(0, key_length);
    block.remove_prefix(key_length);
    if (!GetU32(&block, &value_length) || value_length > block.size()) {
      return absl::DataLossError("metadata value length past the block");
    }
    std::string_view value = block.substr(0, value_length);
    block.remove_prefix(value_length);
    std::string problem = CheckEntry(key, value);
    if (!problem.empty()) return absl::DataLossError(problem);
    if (IsReserved(key)) {
      return absl::DataLossError("metadata carries a reserved lpc- key");
    }
    md->emplace(std::string(key), std::string(value));
  }
  if (!block.empty()) {
    return absl::DataLossError("metadata block has bytes after its entries");
  }
  return absl::OkStatus();
}

}  // namespace lpc::local
