// MessageWriter helpers, ReceivedMessage and StringReplySink.
#include "runtime/message.h"

#include <cstring>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace lpc {
namespace {

using ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedOutputStream;

// The tag and length that precede a buffer field's bytes.
size_t BufferFieldHeaderSize(const BufferField& f) {
  return CodedOutputStream::VarintSize32(WireFormatLite::MakeTag(
             f.field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) +
         CodedOutputStream::VarintSize64(f.buffer->size());
}

}  // namespace

void BytesWriter::WriteTo(uint8_t* dst) const {
  if (!bytes_.empty()) std::memcpy(dst, bytes_.data(), bytes_.size());
}

size_t SerializedSize(const MessageWriter& w) {
  size_t n = w.size();
  if (const BufferField* f = w.buffer(); f != nullptr) {
    n += BufferFieldHeaderSize(*f) + f->buffer->size();
  }
  return n;
}

void AppendTo(const MessageWriter& w, std::string* out) {
  const size_t start = out->size();
  out->resize(start + SerializedSize(w));
  uint8_t* p = reinterpret_cast<uint8_t*>(out->data()) + start;
  w.WriteTo(p);
  p += w.size();
  if (const BufferField* f = w.buffer(); f != nullptr) {
    p = CodedOutputStream::WriteVarint32ToArray(
        WireFormatLite::MakeTag(f->field_number,
                                WireFormatLite::WIRETYPE_LENGTH_DELIMITED),
        p);
    p = CodedOutputStream::WriteVarint64ToArray(f->buffer->size(), p);
    if (!f->buffer->empty()) {
      std::memcpy(p, f->buffer->data(), f->buffer->size());
    }
  }
}

std::string SerializeToString(const MessageWriter& w) {
  std::string out;
  AppendTo(w, &out);
  return out;
}

ReceivedMessage::ReceivedMessage(std::string bytes) : owned_(std::move(bytes)) {
  bytes_ = owned_;
}

ReceivedMessage::ReceivedMessage(std::string_view bytes,
                                 std::shared_ptr<const void> owner)
    : bytes_(bytes), owner_(std::move(owner)) {}

ReceivedMessage::ReceivedMessage(ReceivedMessage&& other) noexcept {
  *this = std::move(other);
}

ReceivedMessage& ReceivedMessage::operator=(ReceivedMessage&& other) noexcept {
  if (this == &other) return *this;
  const bool owns = other.owner_ == nullptr &&
                    other.bytes_.data() == other.owned_.data() &&
                    !other.owned_.empty();
  owned_ = std::move(other.owned_);
  bytes_ = owns ? std::string_view(owned_) : other.bytes_;
  owner_ = std::move(other.owner_);
  attached_ = std::move(other.attached_);
  other.bytes_ = {};
  other.attached_.reset();
  return *this;
}

ReceivedMessage::~ReceivedMessage() = default;

std::shared_ptr<const void> ReceivedMessage::Retain() {
  if (owner_ != nullptr) return owner_;
  std::shared_ptr<std::string> held;
  if (!owned_.empty() && bytes_.data() == owned_.data()) {
    held = std::make_shared<std::string>(std::move(owned_));
  } else {
    held = std::make_shared<std::string>(bytes_);
  }
  bytes_ = *held;
  owner_ = std::move(held);
  return owner_;
}

std::string ReceivedMessage::TakeString() {
  if (owner_ != nullptr || owned_.empty()) return std::string();
  bytes_ = {};
  return std::move(owned_);
}

std::string_view Flatten(const ReceivedMessage& m, std::string* storage) {
  if (!m.attached().has_value()) return m.bytes();
  const AttachedBuffer& a = *m.attached();
  const uint32_t tag = WireFormatLite::MakeTag(
      a.field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  storage->clear();
  storage->reserve(m.bytes().size() + 15 + a.view.size());
  storage->append(m.bytes());
  uint8_t header[15];
  uint8_t* p = CodedOutputStream::WriteVarint32ToArray(tag, header);
  p = CodedOutputStream::WriteVarint64ToArray(a.view.size(), p);
  storage->append(reinterpret_cast<const char*>(header), p - header);
  storage->append(a.view.view());
  return *storage;
}

absl::Status StringReplySink::Write(const MessageWriter& reply) {
  out_->clear();
  AppendTo(reply, out_);
  return absl::OkStatus();
}

}  // namespace lpc
