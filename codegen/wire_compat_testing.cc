#include "codegen/wire_compat_testing.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/wire_format_lite.h"
#include "runtime/handles.h"

namespace lpc::wire_testing {

namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::io::CodedInputStream;
using ::google::protobuf::io::CodedOutputStream;
using ::google::protobuf::internal::WireFormatLite;

struct Field {
  uint32_t number;
  std::string bytes;
};


std::optional<std::string> CanonicalAt(std::string_view bytes,
                                       const Descriptor& type, int depth) {
  if (depth > 100 || bytes.size() > static_cast<size_t>(INT_MAX)) {
    return std::nullopt;
  }
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  std::vector<Field> fields;
  while (static_cast<size_t>(in.CurrentPosition()) < bytes.size()) {
    const int start = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    const uint32_t number = WireFormatLite::GetTagFieldNumber(tag);
    const auto wire_type = WireFormatLite::GetTagWireType(tag);
    if (number == 0 || wire_type == WireFormatLite::WIRETYPE_END_GROUP) {
      return std::nullopt;
    }
    const FieldDescriptor* field = type.FindFieldByNumber(static_cast<int>(number));
    if (wire_type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED &&
        field != nullptr && field->type() == FieldDescriptor::TYPE_MESSAGE) {
      uint32_t length = 0;
      std::string payload;
      if (!in.ReadVarint32(&length) ||
          !in.ReadString(&payload, static_cast<int>(length))) {
        return std::nullopt;
      }
      std::optional<std::string> inner =
          CanonicalAt(payload, *field->message_type(), depth + 1);
      if (!inner.has_value()) return std::nullopt;
      fields.push_back(
          {number, EncodeVarint(tag) + EncodeVarint(inner->size()) + *inner});
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
    fields.push_back(
        {number, std::string(bytes.substr(
                     static_cast<size_t>(start),
                     static_cast<size_t>(in.CurrentPosition() - start)))});
  }
  std::stable_sort(fields.begin(), fields.end(),
                   [](const Field& a, const Field& b) {
                     return a.number < b.number;
                   });
  for (size_t i = 0; i < fields.size();) {
    size_t j = i;
    while (j < fields.size() && fields[j].number == fields[i].number) ++j;
    const FieldDescriptor* field =
        type.FindFieldByNumber(static_cast<int>(fields[i].number));
    if (field != nullptr && field->is_map()) {
      std::sort(fields.begin() + static_cast<ptrdiff_t>(i),
                fields.begin() + static_cast<ptrdiff_t>(j),
                [](const Field& a, const Field& b) { return a.bytes < b.bytes; });
    }
    i = j;
  }
  std::string out;
  for (const Field& f : fields) out += f.bytes;
  return out;
}

}  // namespace

std::optional<std::string> Canonical(std::string_view bytes,
                                     const Descriptor& type) {
  return CanonicalAt(bytes, type, 0);
}

std::string Hex(std::string_view bytes, size_t max) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<uint8_t>(bytes[i]));
    if (!out.empty()) out += ' ';
    out += buf;
  }
  if (bytes.size() > max) {
    out += " ... (" + std::to_string(bytes.size()) + " bytes)";
  }
  return out;
}

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

::testing::AssertionResult SameMessage(const google::protobuf::Message& a,
                                       const google::protobuf::Message& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (!differencer.Compare(a, b)) {
    return ::testing::AssertionFailure() << "messages differ:\n" << report;
  }
  // The differencer takes -0.0 for 0.0; the bytes do not.
  if (const std::string sa = Serialize(a), sb = Serialize(b); sa != sb) {
    return ::testing::AssertionFailure()
           << "messages differ in their bytes (-0.0 against 0.0?)\n  "
           << Hex(sa) << "\n  " << Hex(sb) << "\n";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult WireEquals(std::string_view bytes,
                                      const google::protobuf::Message& expected) {
  const std::string want = Serialize(expected);
  std::unique_ptr<google::protobuf::Message> parsed(expected.New());
  if (!parsed->ParseFromString(std::string(bytes))) {
    return ::testing::AssertionFailure()
           << "the bytes do not parse as " << expected.GetTypeName()
           << "\n  bytes: " << Hex(bytes) << "\n  protoc: " << Hex(want);
  }
  if (::testing::AssertionResult same = SameMessage(*parsed, expected); !same) {
    return ::testing::AssertionFailure()
           << same.message() << "  bytes: " << Hex(bytes)
           << "\n  protoc: " << Hex(want);
  }
  const std::optional<std::string> got = Canonical(bytes, *expected.GetDescriptor());
  const std::optional<std::string> canon = Canonical(want, *expected.GetDescriptor());
  if (!got.has_value() || !canon.has_value() || *got != *canon) {
    return ::testing::AssertionFailure()
           << "same values, but not the bytes protoc writes for "
           << expected.GetTypeName() << " (fields in any order)"
           << "\n  bytes:  " << Hex(bytes) << "\n  protoc: " << Hex(want);
  }
  return ::testing::AssertionSuccess();
}

std::string Written(const MessageWriter& w) {
  const size_t n = w.size();
  constexpr size_t kPad = 64;
  auto exact = std::make_unique<uint8_t[]>(n == 0 ? 1 : n);
  w.WriteTo(exact.get());
  std::vector<uint8_t> padded(n + kPad, 0xa5);
  w.WriteTo(padded.data());
  for (size_t i = n; i < n + kPad; ++i) {
    if (padded[i] != 0xa5) {
      ADD_FAILURE() << "MessageWriter::WriteTo wrote past size() = " << n
                    << ", at " << i;
      break;
    }
  }
  EXPECT_TRUE(std::equal(padded.begin(), padded.begin() + static_cast<ptrdiff_t>(n),
                         exact.get()))
      << "two WriteTo calls wrote different bytes";
  std::string out = SerializeToString(w);
  EXPECT_EQ(out.size(), SerializedSize(w));
  EXPECT_EQ(out.compare(0, n, reinterpret_cast<const char*>(exact.get()), n), 0)
      << "SerializeToString does not start with WriteTo's bytes";
  return out;
}

absl::Status DecodeExact(std::string_view bytes,
                         absl::FunctionRef<absl::Status(ReceivedMessage&)> decode) {
  auto copy = std::make_unique<char[]>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), copy.get());
  absl::Status status;
  {
    ReceivedMessage message(std::string_view(copy.get(), bytes.size()), nullptr);
    status = decode(message);
  }
  copy.reset();
  return status;
}

namespace {

class CheckingSink final : public ReplySink {
 public:
  explicit CheckingSink(std::string* out) : out_(out) {}
  absl::Status Write(const MessageWriter& reply) override {
    EXPECT_FALSE(written_) << "ReplySink::Write called twice";
    written_ = true;
    *out_ = Written(reply);
    return absl::OkStatus();
  }

 private:
  std::string* out_;
  bool written_ = false;
};

}  // namespace

std::string EncodeVarint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

absl::Status DispatchBytes(Service& service, uint32_t method_id,
                           std::string_view request) {
  CallContext ctx;
  std::string response;
  return DispatchExact(service, method_id, ctx, request, &response);
}

std::shared_ptr<CapturingChannel> ReplyingChannel(
    absl::StatusOr<std::string> reply) {
  auto channel = std::make_shared<CapturingChannel>();
  channel->QueueReply(std::move(reply));
  return channel;
}

std::shared_ptr<CapturingChannel> StreamingChannel(
    std::vector<std::string> messages) {
  auto channel = std::make_shared<CapturingChannel>();
  channel->QueueStream(std::move(messages));
  return channel;
}

absl::Status DispatchExact(Service& service, uint32_t method_id,
                           CallContext& ctx, std::string_view request,
                           std::string* response) {
  response->clear();
  CheckingSink sink(response);
  return DecodeExact(request, [&](ReceivedMessage& m) {
    return service.DispatchWith(method_id, ctx, m, sink);
  });
}

// ---- FakeClientStream

FakeClientStream::FakeClientStream(std::vector<std::string> replies,
                                   absl::Status status, CallContext* ctx)
    : ctx_(ctx),
      status_(std::move(status)),
      replies_(replies.begin(), replies.end()) {}

void FakeClientStream::Write(std::string message, WriteCallback done) {
  {
    MutexLock lock(&mu_);
    if (writes_done_) {
      done(absl::FailedPreconditionError("after WritesDone"));
      return;
    }
    written_.push_back(std::move(message));
  }
  done(absl::OkStatus());
}

void FakeClientStream::WritesDone() {
  MutexLock lock(&mu_);
  writes_done_ = true;
}

void FakeClientStream::Read(ReadCallback done) {
  std::optional<std::string> next;
  {
    MutexLock lock(&mu_);
    if (!replies_.empty()) {
      next = std::move(replies_.front());
      replies_.pop_front();
    }
  }
  done(std::move(next));
}

void FakeClientStream::Finish(FinishCallback done) { done(status_); }

std::vector<std::string> FakeClientStream::written() {
  MutexLock lock(&mu_);
  return written_;
}

bool FakeClientStream::writes_done() {
  MutexLock lock(&mu_);
  return writes_done_;
}

// ---- FakeServerStream

FakeServerStream::FakeServerStream(std::vector<std::string> in)
    : in_(in.begin(), in.end()) {}

void FakeServerStream::Read(ReadCallback done) {
  std::optional<std::string> next;
  {
    MutexLock lock(&mu_);
    if (!in_.empty()) {
      next = std::move(in_.front());
      in_.pop_front();
    }
  }
  done(std::move(next));
}

void FakeServerStream::Write(std::string message, WriteCallback done) {
  {
    MutexLock lock(&mu_);
    if (status_.has_value()) {
      done(absl::CancelledError("finished"));
      return;
    }
    out_.push_back(std::move(message));
  }
  done(absl::OkStatus());
}

void FakeServerStream::Finish(absl::Status status) {
  MutexLock lock(&mu_);
  if (!status_.has_value()) status_ = std::move(status);
}

std::vector<std::string> FakeServerStream::written() {
  MutexLock lock(&mu_);
  return out_;
}

std::optional<absl::Status> FakeServerStream::status() {
  MutexLock lock(&mu_);
  return status_;
}

// ---- CapturingChannel

CapturingChannel::CapturingChannel() : Channel(ChannelOptions{}) {}

absl::StatusOr<std::string> CapturingChannel::Carry(
    const MethodDescriptor& method, CallContext* ctx, std::string request) {
  CapturedCall call;
  call.method = method.id;
  call.oneway = method.oneway;
  call.request = std::move(request);
  if (HandleTable* table = internal::CallHandles::request_if_any(*ctx)) {
    for (size_t i = 0; i < table->size(); ++i) {
      absl::StatusOr<Fd> dup = Fd::Duplicate(table->raw(i));
      EXPECT_TRUE(dup.ok()) << dup.status();
      if (dup.ok()) call.handles.push_back(*std::move(dup));
    }
  }
  calls_.push_back(std::move(call));
  if (method.oneway) return std::string();
  for (const Fd& fd : reply_handles_) {
    absl::StatusOr<Fd> dup = fd.Dup();
    EXPECT_TRUE(dup.ok()) << dup.status();
    if (dup.ok()) internal::CallHandles::reply(*ctx).Append(*std::move(dup));
  }
  reply_handles_.clear();
  if (replies_.empty()) return std::string();
  absl::StatusOr<std::string> reply = std::move(replies_.front());
  replies_.pop_front();
  return reply;
}

void CapturingChannel::StartCall(const InterfaceDescriptor& iface,
                                 const MethodDescriptor& method,
                                 CallContext* ctx, std::string request,
                                 ResponseCallback done) {
  (void)iface;
  done(Carry(method, ctx, std::move(request)));
}

absl::Status CapturingChannel::SendOneway(const InterfaceDescriptor& iface,
                                          const MethodDescriptor& method,
                                          CallContext* ctx,
                                          std::string request) {
  (void)iface;
  EXPECT_TRUE(method.oneway);
  return Carry(method, ctx, std::move(request)).status();
}

absl::StatusOr<std::string> CapturingChannel::Call(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx, std::string request) {
  (void)iface;
  return Carry(method, ctx, std::move(request));
}

absl::Status CapturingChannel::CallWith(const InterfaceDescriptor& iface,
                                        const MethodDescriptor& method,
                                        CallContext* ctx,
                                        const MessageWriter& request,
                                        ReplyDecoder decode) {
  (void)iface;
  absl::StatusOr<std::string> reply = Carry(method, ctx, Written(request));
  calls_.back().zero_copy = true;
  if (!reply.ok()) return reply.status();
  return DecodeExact(*reply, decode);
}

void CapturingChannel::StartCallWith(const InterfaceDescriptor& iface,
                                     const MethodDescriptor& method,
                                     CallContext* ctx,
                                     const MessageWriter& request,
                                     ReceivedCallback done) {
  (void)iface;
  absl::StatusOr<std::string> reply = Carry(method, ctx, Written(request));
  calls_.back().zero_copy = true;
  if (!reply.ok()) {
    done(reply.status());
    return;
  }
  // An exactly sized copy the message owns.
  std::shared_ptr<char> copy(new char[reply->size()], std::default_delete<char[]>());
  std::copy(reply->begin(), reply->end(), copy.get());
  done(ReceivedMessage(std::string_view(copy.get(), reply->size()), copy));
}

absl::Status CapturingChannel::SendOnewayWith(const InterfaceDescriptor& iface,
                                              const MethodDescriptor& method,
                                              CallContext* ctx,
                                              const MessageWriter& request) {
  (void)iface;
  EXPECT_TRUE(method.oneway);
  absl::Status status = Carry(method, ctx, Written(request)).status();
  calls_.back().zero_copy = true;
  return status;
}

std::shared_ptr<ClientStream> CapturingChannel::OpenStream(
    const InterfaceDescriptor& iface, const MethodDescriptor& method,
    CallContext* ctx) {
  (void)iface;
  CapturedCall call;
  call.method = method.id;
  calls_.push_back(std::move(call));
  std::vector<std::string> replies;
  absl::Status status;
  if (!streams_.empty()) {
    replies = std::move(streams_.front().first);
    status = std::move(streams_.front().second);
    streams_.pop_front();
  }
  last_stream_ = std::make_shared<FakeClientStream>(std::move(replies),
                                                    std::move(status), ctx);
  return last_stream_;
}

void CapturingChannel::QueueReply(absl::StatusOr<std::string> reply) {
  replies_.push_back(std::move(reply));
}

void CapturingChannel::QueueReplyHandle(const Fd& fd) {
  absl::StatusOr<Fd> dup = fd.Dup();
  EXPECT_TRUE(dup.ok()) << dup.status();
  if (dup.ok()) reply_handles_.push_back(*std::move(dup));
}

void CapturingChannel::QueueStream(std::vector<std::string> replies,
                                   absl::Status status) {
  streams_.emplace_back(std::move(replies), std::move(status));
}

const std::string& CapturingChannel::only_request() {
  static const std::string* const kNone = new std::string();
  EXPECT_EQ(calls_.size(), 1u);
  if (calls_.size() != 1) return *kNone;
  return calls_[0].request;
}

}  // namespace lpc::wire_testing
