// Other encodings of a message, for the robustness half of the wire
// compatibility tests (wire_compat_robust_*_test.cc): the valid-but-unusual
// forms a stock protobuf peer may send, and corruptions of them. The tests
// compare what the generated decoders make of each with what protoc's
// parser makes of it, so the forms need not be right about protobuf's
// semantics; they only need to be the forms that matter.
#ifndef LPC_CODEGEN_WIRE_COMPAT_VARIANTS_H_
#define LPC_CODEGEN_WIRE_COMPAT_VARIANTS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace lpc::wire_testing {

struct Encoding {
  std::string name;
  std::string bytes;
};

// Encodings of `m` (protoc's bytes rewritten), each applied at every depth:
//   "reversed"         fields in descending number order (repeated
//                      elements keep theirs);
//   "unknown"          unknown fields of every wire type (varint, fixed64,
//                      length-delimited, group, fixed32) before, between
//                      and after the fields;
//   "unpacked"         each packed repeated scalar as one field per element;
//   "split_packed"     each packed repeated scalar as two packed runs;
//   "overlong"         every varint (values, lengths) padded with 0x80
//                      bytes to 10 bytes;
//   "twice"            each singular scalar preceded by an occurrence with
//                      another value (the last one counts);
//   "split_messages"   each singular message field as two occurrences, the
//                      first holding its first half of fields (they merge);
//   "wrong_wire_type"  each field preceded by an occurrence of its number
//                      with a wire type that is wrong for it;
//   "all"              all of the above at once.
std::vector<Encoding> Variants(const google::protobuf::Message& m);

// Corruptions of `bytes`: every proper prefix ("cut@N") and, at every
// position, the byte replaced with 0xff, 0x00 and itself ^ 0x80
// ("ff@N", "00@N", "flip@N").
std::vector<Encoding> Corruptions(std::string_view bytes);

// Hand-written malformed or odd forms, as messages of `type`: a truncated
// varint, a length past the end, an 11-byte varint, field number 0, an
// end-group tag without a start, wire types 6 and 7, an unterminated group,
// invalid UTF-8 in each string field, a packed run cut inside an element.
std::vector<Encoding> Oddities(const google::protobuf::Descriptor& type);

// Whether every field of `m` that the IDL declares narrower than its
// protobuf type (int8, int16, uint8, uint16 in testdata/wire_compat.idl)
// holds a value in that range, at any depth. On false, *field names one
// that does not.
bool NarrowInRange(const google::protobuf::Message& m, std::string* field);

// A copy of `m` without unknown fields, at any depth.
std::unique_ptr<google::protobuf::Message> WithoutUnknown(
    const google::protobuf::Message& m);

// A generated decoder under test: decodes `bytes` (a request, a reply or a
// stream message) and returns its status and, on OK, in *got the values
// it decoded, as a message of the type protoc parses the bytes into.
using Decoder = std::function<absl::Status(
    const std::string& bytes, std::unique_ptr<google::protobuf::Message>* got)>;

// Feeds `decode` protoc's encoding of `sample`, its Variants, its
// Corruptions, the Oddities of its type and the empty message, and checks
// each against protoc's parser: where protoc parses the bytes into values
// in range (NarrowInRange), `decode` succeeds with the same values
// (unknown fields aside; `normalize` turns protoc's message into what the
// stubs hand out, e.g. a struct that is always present); otherwise it
// fails with `error`. Also checks that each variant parses to `sample`.
void ExpectDecodesLikeProtoc(
    const google::protobuf::Message& sample, const Decoder& decode,
    absl::StatusCode error,
    const std::function<void(google::protobuf::Message*)>& normalize = nullptr);

}  // namespace lpc::wire_testing

#endif  // LPC_CODEGEN_WIRE_COMPAT_VARIANTS_H_
