// The zero-copy call path's message types (docs/zero-copy.md):
//
// - MessageWriter: a message that generated code serializes straight into
//   memory a transport provides (a ring slot, the shared data area, a
//   memfd, a gRPC slice): the transport asks for size(), finds room, and
//   calls WriteTo there. No std::string and no protobuf message object
//   stands between the C++ values and the transport's buffer.
// - ReceivedMessage: the bytes a transport received, as the generated
//   decoder reads them: a view of the transport's one private copy (or of
//   a sealed, read-only memfd mapping), and what keeps it alive.
// - ReplySink: where a server's generated code writes its reply.
//
// A message with a `buffer` field carries that field outside the
// serialized bytes: MessageWriter::buffer() names it, and the transport
// either appends it as an ordinary length-delimited field (what
// AppendTo/SerializeToString do; gRPC, heap buffers) or passes the memfd
// whole (the local transport). A receiver that got it out of band attaches
// it to the ReceivedMessage. Either way the logical message is the emitted
// .proto's: fields may come in any order, and the buffer field counts as
// appended after the rest.
#ifndef LPC_RUNTIME_MESSAGE_H_
#define LPC_RUNTIME_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/buffer.h"

namespace lpc {

// The `buffer` field of an outgoing message.
struct BufferField {
  uint32_t field_number = 0;
  // Owned by the writer's caller; a transport that sends it without a copy
  // may move from it (internal::BufferAccess::Seal / ToView).
  Buffer* buffer = nullptr;
};

class MessageWriter {
 public:
  virtual ~MessageWriter() = default;
  // Bytes WriteTo writes: the whole message except its buffer field.
  // Computed once, when the writer is made; cheap to ask again.
  virtual size_t size() const = 0;
  // Writes exactly size() bytes at `dst` (any alignment).
  virtual void WriteTo(uint8_t* dst) const = 0;
  // The message's `buffer` field, if it has one and it is not empty;
  // nullptr otherwise.
  virtual const BufferField* buffer() const { return nullptr; }
};

// A MessageWriter over bytes already serialized (adapters, tests).
class BytesWriter final : public MessageWriter {
 public:
  explicit BytesWriter(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  void WriteTo(uint8_t* dst) const override;

 private:
  std::string_view bytes_;
};

// The whole message's serialized size: size() plus the buffer field's
// tag, length and bytes.
size_t SerializedSize(const MessageWriter& w);
// Appends the whole message (the buffer field last, copied) to `*out`.
void AppendTo(const MessageWriter& w, std::string* out);
std::string SerializeToString(const MessageWriter& w);

// A buffer field that travelled outside the message's bytes.
struct AttachedBuffer {
  uint32_t field_number = 0;
  BufferView view;
};

class ReceivedMessage {
 public:
  ReceivedMessage() = default;
  // Owns `bytes`.
  explicit ReceivedMessage(std::string bytes);
  // Views `bytes`, kept valid by `owner`. A null owner means the bytes are
  // valid only until the decoder returns; Retain() then copies them.
  ReceivedMessage(std::string_view bytes, std::shared_ptr<const void> owner);
  ReceivedMessage(ReceivedMessage&&) noexcept;
  ReceivedMessage& operator=(ReceivedMessage&&) noexcept;
  ReceivedMessage(const ReceivedMessage&) = delete;
  ReceivedMessage& operator=(const ReceivedMessage&) = delete;
  ~ReceivedMessage();

  std::string_view bytes() const { return bytes_; }

  // A keeper of bytes(): a BufferView decoded from a `bytes`-encoded
  // buffer field points into bytes() and holds this. Moves an owned
  // string into shared storage on the first call (no copy); copies
  // borrowed bytes that have no owner.
  std::shared_ptr<const void> Retain();

  // The buffer field that came out of band (local transport: a sealed
  // memfd; in process: the sender's Buffer), if any. When the bytes also
  // hold that field, the attached one wins (it counts as appended).
  const std::optional<AttachedBuffer>& attached() const { return attached_; }
  void Attach(uint32_t field_number, BufferView view) {
    attached_ = AttachedBuffer{field_number, std::move(view)};
  }

  // Takes back an owned string that nothing retained (a transport's
  // buffer cache); empty otherwise.
  std::string TakeString();

 private:
  std::string owned_;
  std::string_view bytes_;
  std::shared_ptr<const void> owner_;
  std::optional<AttachedBuffer> attached_;
};

// The message's bytes with an attached buffer field appended (copied into
// `*storage`), or bytes() alone when nothing is attached: for code that
// needs one contiguous serialized message.
std::string_view Flatten(const ReceivedMessage& m, std::string* storage);

class ReplySink {
 public:
  virtual ~ReplySink() = default;
  // The handler succeeded: place its reply. Called at most once, before
  // DispatchWith returns; `reply` is valid only during the call. A non-OK
  // status (too large for the transport, say) becomes the call's status.
  virtual absl::Status Write(const MessageWriter& reply) = 0;
};

// A ReplySink that serializes into a std::string (adapters, transports
// that send strings).
class StringReplySink final : public ReplySink {
 public:
  explicit StringReplySink(std::string* out) : out_(out) {}
  absl::Status Write(const MessageWriter& reply) override;

 private:
  std::string* out_;
};

}  // namespace lpc

#endif  // LPC_RUNTIME_MESSAGE_H_
