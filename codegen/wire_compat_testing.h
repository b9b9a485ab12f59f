// Test doubles and byte comparisons for the wire compatibility tests
// (wire_compat_*_test.cc): they check that the bytes the generated stubs
// write and read are those of the emitted .proto, as the protoc-generated
// classes of that .proto write and read them, whatever the stubs do inside.
//
// - CapturingChannel: a Channel that records each request's bytes (and its
//   handle table) and answers with canned reply bytes; the client side.
// - FakeServerStream / FakeClientStream: the byte-level streams of
//   runtime/call.h, fed with canned messages and recording what is written.
// - WireEquals: `bytes` parse as `expected` does and, field by field, are
//   the bytes protoc writes for `expected`.
#ifndef LPC_CODEGEN_WIRE_COMPAT_TESTING_H_
#define LPC_CODEGEN_WIRE_COMPAT_TESTING_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/fd.h"
#include "runtime/message.h"
#include "runtime/mutex.h"
#include "runtime/service.h"

namespace lpc::wire_testing {

// The canonical form of `bytes` as a message of type `type`: each field's
// bytes as they are, except that a field holding a message (a map entry
// too) holds that message's canonical form, and the fields are in field
// number order (stable: repeated elements keep their order), with the
// entries of one map field sorted by their bytes. Two encodings with the
// same canonical form differ only in the order of fields (which every
// parser accepts) and of map entries (which protobuf leaves unspecified).
// Every other difference -- a zero written or left out, a varint's length,
// packed or not, a field twice -- remains. nullopt when `bytes` are not
// well-formed protobuf wire data for `type`.
std::optional<std::string> Canonical(std::string_view bytes,
                                     const google::protobuf::Descriptor& type);

// Succeeds when `bytes` parse as a message of expected's type equal to
// `expected` (NaN equal to NaN), and their canonical form is that of
// protoc's serialization of `expected`. The failure message shows both
// in hex.
::testing::AssertionResult WireEquals(std::string_view bytes,
                                      const google::protobuf::Message& expected);

// Succeeds when `a` and `b` are equal messages (NaN equal to NaN, -0.0
// not equal to 0.0); otherwise the difference.
::testing::AssertionResult SameMessage(const google::protobuf::Message& a,
                                       const google::protobuf::Message& b);

// `bytes` in hex, two digits a byte, a space between bytes; long input is
// cut after `max` bytes.
std::string Hex(std::string_view bytes, size_t max = 256);

// protoc's serialization of `m` (deterministic: map entries sorted).
std::string Serialize(const google::protobuf::Message& m);

// The bytes `w` writes: SerializeToString(w) (its buffer field appended),
// after checking that WriteTo writes exactly size() bytes, the same ones
// twice, into an exactly sized heap block (so ASan sees a write past it)
// and into a padded one (so a plain build sees it too).
std::string Written(const MessageWriter& w);

// Runs `decode` on a ReceivedMessage viewing a heap copy of `bytes` of
// exactly their size, with no owner, freed as soon as `decode` returns: a
// decoder that reads past the end, or keeps a view without Retain(), is
// caught by ASan.
absl::Status DecodeExact(std::string_view bytes,
                         absl::FunctionRef<absl::Status(ReceivedMessage&)> decode);

// Service::DispatchWith on an exact heap copy of `request` (as
// DecodeExact), with a ReplySink that checks the reply's writer (as
// Written) and stores its bytes in *response.
absl::Status DispatchExact(Service& service, uint32_t method_id,
                           CallContext& ctx, std::string_view request,
                           std::string* response);

// DispatchExact with a fresh context, the reply dropped: what the server
// tests that decode a request ask for.
absl::Status DispatchBytes(Service& service, uint32_t method_id,
                           std::string_view request);

// `v` as a protobuf varint.
std::string EncodeVarint(uint64_t v);

// Protobuf wire bytes written field by field, for encodings protoc never
// writes (fields out of order or twice, unknown fields, wrong wire types).
class WireBytes {
 public:
  WireBytes& Varint(uint32_t number, uint64_t v) {
    Tag(number, 0);
    return Raw(v);
  }
  WireBytes& Len(uint32_t number, const std::string& data) {
    Tag(number, 2);
    Raw(data.size());
    out_ += data;
    return *this;
  }
  WireBytes& Fixed32(uint32_t number, uint32_t v) {
    Tag(number, 5);
    out_.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  WireBytes& Fixed64(uint32_t number, uint64_t v) {
    Tag(number, 1);
    out_.append(reinterpret_cast<const char*>(&v), 8);
    return *this;
  }
  WireBytes& Tag(uint32_t number, uint32_t type) { return Raw((number << 3) | type); }
  // A varint alone.
  WireBytes& Raw(uint64_t v) {
    out_ += EncodeVarint(v);
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// A ClientStream whose server already sent `replies` and ended with
// `status`: Read returns them, then the end; Writes are recorded.
class FakeClientStream final : public ClientStream {
 public:
  FakeClientStream(std::vector<std::string> replies, absl::Status status,
                   CallContext* ctx);

  CallContext& context() override { return *ctx_; }
  void Write(std::string message, WriteCallback done) override;
  void WritesDone() override;
  void Read(ReadCallback done) override;
  void Finish(FinishCallback done) override;

  std::vector<std::string> written();
  bool writes_done();

 private:
  CallContext* ctx_;
  const absl::Status status_;
  Mutex mu_;
  std::deque<std::string> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> written_ ABSL_GUARDED_BY(mu_);
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
};

// A server call whose client already sent `in` and half-closed: Reads
// return those messages, then the end; Writes are recorded; the first
// Finish counts.
class FakeServerStream final : public ServerStream {
 public:
  explicit FakeServerStream(std::vector<std::string> in);

  CallContext& context() override { return ctx_; }
  void Read(ReadCallback done) override;
  void Write(std::string message, WriteCallback done) override;
  void Finish(absl::Status status) override;

  std::vector<std::string> written();
  std::optional<absl::Status> status();

 private:
  CallContext ctx_;
  Mutex mu_;
  std::deque<std::string> in_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> out_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
};

// One call a CapturingChannel carried.
struct CapturedCall {
  uint32_t method = 0;   // the method's ordinal
  bool oneway = false;
  std::string request;   // the request bytes
  bool zero_copy = false;  // sent through CallWith / StartCallWith / SendOnewayWith
  // Duplicates of the request's descriptors, in table order.
  std::vector<Fd> handles;
};

// A Channel that records calls and answers each with the next canned
// reply (bytes or a status; OK and empty bytes when none is queued), after
// putting duplicates of the queued reply descriptors into the call's reply
// handle table. OpenStream answers with a FakeClientStream holding the
// queued stream replies.
class CapturingChannel final : public Channel {
 public:
  CapturingChannel();

  void StartCall(const InterfaceDescriptor& iface,
                 const MethodDescriptor& method, CallContext* ctx,
                 std::string request, ResponseCallback done) override;
  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override;
  absl::StatusOr<std::string> Call(const InterfaceDescriptor& iface,
                                   const MethodDescriptor& method,
                                   CallContext* ctx,
                                   std::string request) override;
  // The zero-copy forms: the request as Written() gives it; the reply
  // decoded as DecodeExact() runs it.
  absl::Status CallWith(const InterfaceDescriptor& iface,
                        const MethodDescriptor& method, CallContext* ctx,
                        const MessageWriter& request,
                        ReplyDecoder decode) override;
  void StartCallWith(const InterfaceDescriptor& iface,
                     const MethodDescriptor& method, CallContext* ctx,
                     const MessageWriter& request,
                     ReceivedCallback done) override;
  absl::Status SendOnewayWith(const InterfaceDescriptor& iface,
                              const MethodDescriptor& method, CallContext* ctx,
                              const MessageWriter& request) override;
  std::shared_ptr<ClientStream> OpenStream(const InterfaceDescriptor& iface,
                                           const MethodDescriptor& method,
                                           CallContext* ctx) override;
  std::string_view transport_name() const override { return "inprocess"; }

  // The reply of the next unary call.
  void QueueReply(absl::StatusOr<std::string> reply);
  // A descriptor the next unary reply carries (a duplicate of `fd`).
  void QueueReplyHandle(const Fd& fd);
  // The messages and status the next stream's server sends.
  void QueueStream(std::vector<std::string> replies,
                   absl::Status status = absl::OkStatus());

  std::vector<CapturedCall>& calls() { return calls_; }
  // The request of the only call so far (fails the test otherwise).
  const std::string& only_request();
  // The stream the last OpenStream made.
  std::shared_ptr<FakeClientStream> last_stream() { return last_stream_; }

 private:
  absl::StatusOr<std::string> Carry(const MethodDescriptor& method,
                                    CallContext* ctx, std::string request);

  std::vector<CapturedCall> calls_;
  std::deque<absl::StatusOr<std::string>> replies_;
  std::vector<Fd> reply_handles_;
  std::deque<std::pair<std::vector<std::string>, absl::Status>> streams_;
  std::shared_ptr<FakeClientStream> last_stream_;
};

// A CapturingChannel that answers the next unary call with `reply`: what
// the client tests that decode a reply call through.
std::shared_ptr<CapturingChannel> ReplyingChannel(
    absl::StatusOr<std::string> reply);
// A CapturingChannel whose next stream's server sends `messages` and ends
// with OK.
std::shared_ptr<CapturingChannel> StreamingChannel(
    std::vector<std::string> messages);

}  // namespace lpc::wire_testing

#endif  // LPC_CODEGEN_WIRE_COMPAT_TESTING_H_
