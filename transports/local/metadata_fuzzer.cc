// libFuzzer target for the metadata block a peer puts at the start of a
// request or reply payload (metadata.h). The input is the payload as the
// receiver's private copy holds it.
//
// Checked on every input, beyond "no crash, no out-of-bounds read":
//   - a block that decodes obeys the limits (entries, bytes, key and value
//     rules) and leaves `rest` as a suffix of the input;
//   - what decodes re-encodes, and the re-encoded block decodes to the same
//     entries (the encoder and the decoder agree on the rules).
// A violation aborts, which libFuzzer and the test driver report.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transports/local/metadata.h"

namespace lpc::local {
namespace {

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "metadata_fuzzer: invariant violated: %s\n", what);
  std::abort();
}

bool KeyCharOk(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
         ch == '_' || ch == '.';
}

void Check(std::string_view input) {
  Metadata md;
  std::string_view rest;
  if (!DecodeMetadata(input, &md, &rest).ok()) return;  // Refused: fine.
  if (md.size() > kMaxMetadataEntries) Violation("too many entries");
  if (rest.size() > input.size() ||
      rest.data() != input.data() + (input.size() - rest.size())) {
    Violation("rest is not a suffix of the payload");
  }
  size_t bytes = 0;
  for (const auto& [key, value] : md) {
    bytes += key.size() + value.size();
    if (key.empty()) Violation("empty key");
    for (char ch : key) {
      if (!KeyCharOk(ch)) Violation("key character outside [a-z0-9-_.]");
    }
  }
  if (bytes > kMaxMetadataBytes) Violation("more bytes than the limit");
  // Reserved keys are decoded (a peer may send them) but never re-sent, so
  // the round trip compares only what EncodeMetadata sends.
  Metadata sendable;
  for (const auto& [key, value] : md) {
    if (key.rfind("lpc-", 0) != 0) sendable.emplace(key, value);
  }
  std::string block;
  if (!EncodeMetadata(sendable, &block).ok()) {
    Violation("a decoded block does not re-encode");
  }
  Metadata again;
  std::string_view again_rest;
  if (!DecodeMetadata(block, &again, &again_rest).ok()) {
    Violation("a re-encoded block does not decode");
  }
  if (!again_rest.empty()) Violation("re-encoded block leaves bytes over");
  if (again != sendable) Violation("round trip changed the entries");
}

}  // namespace
}  // namespace lpc::local

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lpc::local::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
