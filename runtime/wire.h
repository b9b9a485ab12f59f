// lpc::wire: the protobuf wire format as lpcc's generated code writes and
// reads it on the zero-copy path (docs/zero-copy.md): straight between C++
// values and a transport's memory, with protobuf's WireFormatLite and
// CodedOutputStream / CodedInputStream primitives, and no protobuf message
// object for a method's request or reply. Not for user code.
//
// A codec names one protobuf field type: Int32, Int64, UInt32, UInt64,
// Bool, Float, Double, Fixed64, Enum, String, Bytes, Message<M>,
// Context<H>. The field functions take the C++ value of a field:
//
//   FieldSize<C>(number, v) / WriteField<C>(number, v, p)
//     v a value: a proto3 singular field, left out when it is zero or
//     empty (a message is always written); std::vector<E>: repeated,
//     packed for scalars; std::optional<E>: written when set, even zero.
//   MapFieldSize<K, V>(number, m) / WriteMapField<K, V>(number, m, p)
//     a map<K, V>: one entry message {1: key, 2: value} per element.
//   ReadField<C>(in, tag, &v) / ReadMapField<K, V>(in, tag, &m)
//     one occurrence of the field whose tag ReadTag returned: last one
//     wins for a singular field, a message merges, a repeated scalar takes
//     packed and unpacked runs, a wire type other than the field's is
//     skipped (as protobuf's parser does). Returns kOk, kMalformed, or
//     kRange / kKeyRange when a value does not fit its narrow C++ type.
//
// The sizes of Message<M> values are computed by FieldSize (ByteSizeLong)
// and reused by WriteField (SerializeWithCachedSizesToArray): call FieldSize
// first, on the same objects.
#ifndef LPC_RUNTIME_WIRE_H_
#define LPC_RUNTIME_WIRE_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/wire_format_lite.h"

namespace lpc::wire {

using WFL = ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedInputStream;
using ::google::protobuf::io::CodedOutputStream;

enum ReadResult : int { kOk = 0, kMalformed = 1, kRange = 2, kKeyRange = 3 };

inline uint32_t MakeTag(uint32_t number, WFL::WireType type) {
  return (number << 3) | static_cast<uint32_t>(type);
}
inline size_t TagSize(uint32_t number) {
  return CodedOutputStream::VarintSize32(number << 3);
}
inline uint8_t* WriteTag(uint32_t number, WFL::WireType type, uint8_t* p) {
  return CodedOutputStream::WriteVarint32ToArray(MakeTag(number, type), p);
}
inline size_t LengthSize(size_t n) {
  return CodedOutputStream::VarintSize64(static_cast<uint64_t>(n));
}
inline uint8_t* WriteLength(size_t n, uint8_t* p) {
  return CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(n), p);
}

// A scalar codec's base: the protobuf value type T, and the conversions
// from and to the C++ value type V (a narrow integer, an enum, ...).
template <class T_>
struct Scalar {
  using T = T_;
  static constexpr bool kPackable = true;
  template <class V>
  static T Get(const V& v) {
    return static_cast<T>(v);
  }
  template <class V>
  static bool Put(T x, V* out) {
    if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool> &&
                  std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!std::in_range<V>(x)) return false;
    }
    *out = static_cast<V>(x);
    return true;
  }
  static bool IsDefault(T x) {
    if constexpr (std::is_floating_point_v<T>) {
      // protoc writes -0.0: it tests the bits.
      T zero = 0;
      return std::memcmp(&x, &zero, sizeof(T)) == 0;
    } else {
      return x == T{};
    }
  }
};

#define LPC_WIRE_VARINT_CODEC(Name, Type, PbType, SizeExpr, WriteExpr) \
  struct Name : Scalar<Type> {                                          \
    static constexpr WFL::WireType kWire = WFL::WIRETYPE_VARINT;        \
    static size_t Size(Type v) { return SizeExpr; }                     \
    static uint8_t* Write(Type v, uint8_t* p) { return WriteExpr; }     \
    static bool Read(CodedInputStream* in, Type* v) {                   \
      return WFL::ReadPrimitive<Type, WFL::PbType>(in, v);              \
    }                                                                   \
  };

LPC_WIRE_VARINT_CODEC(Int32, int32_t, TYPE_INT32, WFL::Int32Size(v),
                      CodedOutputStream::WriteVarint32SignExtendedToArray(v, p))
LPC_WIRE_VARINT_CODEC(Int64, int64_t, TYPE_INT64, WFL::Int64Size(v),
                      CodedOutputStream::WriteVarint64ToArray(
                          static_cast<uint64_t>(v), p))
LPC_WIRE_VARINT_CODEC(UInt32, uint32_t, TYPE_UINT32, WFL::UInt32Size(v),
                      CodedOutputStream::WriteVarint32ToArray(v, p))
LPC_WIRE_VARINT_CODEC(UInt64, uint64_t, TYPE_UINT64, WFL::UInt64Size(v),
                      CodedOutputStream::WriteVarint64ToArray(v, p))
LPC_WIRE_VARINT_CODEC(Bool, bool, TYPE_BOOL, (static_cast<void>(v), 1),
                      CodedOutputStream::WriteVarint32ToArray(v ? 1 : 0, p))
LPC_WIRE_VARINT_CODEC(Enum, int, TYPE_ENUM, WFL::EnumSize(v),
                      CodedOutputStream::WriteVarint32SignExtendedToArray(v, p))
#undef LPC_WIRE_VARINT_CODEC

struct Float : Scalar<float> {
  static constexpr WFL::WireType kWire = WFL::WIRETYPE_FIXED32;
  static size_t Size(float) { return 4; }
  static uint8_t* Write(float v, uint8_t* p) {
    return WFL::WriteFloatNoTagToArray(v, p);
  }
  static bool Read(CodedInputStream* in, float* v) {
    return WFL::ReadPrimitive<float, WFL::TYPE_FLOAT>(in, v);
  }
};
struct Double : Scalar<double> {
  static constexpr WFL::WireType kWire = WFL::WIRETYPE_FIXED64;
  static size_t Size(double) { return 8; }
  static uint8_t* Write(double v, uint8_t* p) {
    return WFL::WriteDoubleNoTagToArray(v, p);
  }
  static bool Read(CodedInputStream* in, double* v) {
    return WFL::ReadPrimitive<double, WFL::TYPE_DOUBLE>(in, v);
  }
};
struct Fixed64 : Scalar<uint64_t> {
  static constexpr WFL::WireType kWire = WFL::WIRETYPE_FIXED64;
  static size_t Size(uint64_t) { return 8; }
  static uint8_t* Write(uint64_t v, uint8_t* p) {
    return WFL::WriteFixed64NoTagToArray(v, p);
  }
  static bool Read(CodedInputStream* in, uint64_t* v) {
    return WFL::ReadPrimitive<uint64_t, WFL::TYPE_FIXED64>(in, v);
  }
};

// A context handle (runtime/context_handle.h): its 64-bit id, a fixed64.
template <class H>
struct Context : Fixed64 {
  static uint64_t Get(const H& h) { return h.wire_id(); }
  static bool Put(uint64_t x, H* out) {
    *out = H::FromWire(x);
    return true;
  }
};

// string (UTF-8 checked on receipt, as protobuf's proto3 parser does) and
// bytes.
template <bool kUtf8>
struct StringCodec {
  using T = std::string;
  static constexpr WFL::WireType kWire = WFL::WIRETYPE_LENGTH_DELIMITED;
  static constexpr bool kPackable = false;
  static const std::string& Get(const std::string& v) { return v; }
  static bool IsDefault(const std::string& v) { return v.empty(); }
  static size_t Size(const std::string& v) {
    return LengthSize(v.size()) + v.size();
  }
  static uint8_t* Write(const std::string& v, uint8_t* p) {
    p = WriteLength(v.size(), p);
    if (!v.empty()) std::memcpy(p, v.data(), v.size());
    return p + v.size();
  }
  static int ReadInto(CodedInputStream* in, std::string* v) {
    if (!WFL::ReadString(in, v)) return kMalformed;
    if constexpr (kUtf8) {
      if (!::google::protobuf::internal::IsStructurallyValidUTF8(
              v->data(), static_cast<int>(v->size()))) {
        return kMalformed;
      }
    }
    return kOk;
  }
};
using String = StringCodec<true>;
using Bytes = StringCodec<false>;

// Whether `length` more bytes are there (before the current limit). A
// CodedInputStream over an array takes its end for a legitimate end of a
// sub-message too, so a length-delimited field is checked first.
inline bool HasBytes(CodedInputStream* in, int length) {
  if (length == 0) return true;
  const void* data = nullptr;
  int size = 0;
  return in->GetDirectBufferPointer(&data, &size) && size >= length;
}

// Reads a length and pushes it as a limit, one recursion level deeper.
inline bool EnterLength(CodedInputStream* in, CodedInputStream::Limit* limit) {
  int length = 0;
  if (!in->ReadVarintSizeAsInt(&length) || !HasBytes(in, length)) return false;
  const auto pushed = in->IncrementRecursionDepthAndPushLimit(length);
  *limit = pushed.first;
  return pushed.second >= 0;
}

// A protobuf message (an IDL struct). Size computes the size once
// (ByteSizeLong), Write uses the cached one.
template <class M>
struct Message {
  using T = M;
  static constexpr WFL::WireType kWire = WFL::WIRETYPE_LENGTH_DELIMITED;
  static constexpr bool kPackable = false;
  static const M& Get(const M& v) { return v; }
  static bool IsDefault(const M&) { return false; }  // Present: written.
  static size_t Size(const M& v) {
    const size_t n = v.ByteSizeLong();
    return LengthSize(n) + n;
  }
  static uint8_t* Write(const M& v, uint8_t* p) {
    p = WriteLength(static_cast<size_t>(v.GetCachedSize()), p);
    return v.SerializeWithCachedSizesToArray(p);
  }
  static int ReadInto(CodedInputStream* in, M* v) {
    CodedInputStream::Limit limit;
    if (!EnterLength(in, &limit) || !v->MergePartialFromCodedStream(in) ||
        !in->DecrementRecursionDepthAndPopLimit(limit)) {
      return kMalformed;
    }
    return kOk;
  }
};

// Whether codec C reads straight into a V (strings, messages) rather than
// through its protobuf value type C::T (scalars).
template <class C, class V>
concept ReadsInto = requires(CodedInputStream* in, V* v) { C::ReadInto(in, v); };

// What a field of codec C and C++ type V is read into before it is known
// to be the last one: V itself, or C::T (checked and converted at the end).
template <class C, class V>
using WireOf = std::conditional_t<ReadsInto<C, V>, V, typename C::T>;

// One value of codec C into `*out`, its wire type already checked.
template <class C, class V>
int ReadValue(CodedInputStream* in, V* out) {
  if constexpr (ReadsInto<C, V>) {
    return C::ReadInto(in, out);
  } else {
    typename C::T x{};
    if (!C::Read(in, &x)) return kMalformed;
    return C::Put(x, out) ? kOk : kRange;
  }
}

// An unknown field; field number 0 is malformed, as protobuf has it.
inline int Skip(CodedInputStream* in, uint32_t tag) {
  if (WFL::GetTagFieldNumber(tag) == 0) return kMalformed;
  return WFL::SkipField(in, tag) ? kOk : kMalformed;
}

// ---- Sizes and writes ----

// Singular (proto3: left out when default).
template <class C, class V>
size_t FieldSize(uint32_t number, const V& v) {
  const auto& x = C::Get(v);
  return C::IsDefault(x) ? 0 : TagSize(number) + C::Size(x);
}
template <class C, class V>
uint8_t* WriteField(uint32_t number, const V& v, uint8_t* p) {
  const auto& x = C::Get(v);
  if (C::IsDefault(x)) return p;
  p = WriteTag(number, C::kWire, p);
  return C::Write(x, p);
}

// Optional: written when set.
template <class C, class V>
size_t FieldSize(uint32_t number, const std::optional<V>& v) {
  return v.has_value() ? TagSize(number) + C::Size(C::Get(*v)) : 0;
}
template <class C, class V>
uint8_t* WriteField(uint32_t number, const std::optional<V>& v, uint8_t* p) {
  if (!v.has_value()) return p;
  p = WriteTag(number, C::kWire, p);
  return C::Write(C::Get(*v), p);
}

// Repeated: packed scalars, else one field per element.
template <class C, class V>
size_t PackedDataSize(const std::vector<V>& v) {
  size_t n = 0;
  for (const auto& e : v) n += C::Size(C::Get(e));
  return n;
}
template <class C, class V>
size_t FieldSize(uint32_t number, const std::vector<V>& v) {
  if (v.empty()) return 0;
  if constexpr (C::kPackable) {
    const size_t data = PackedDataSize<C>(v);
    return TagSize(number) + LengthSize(data) + data;
  } else {
    size_t n = TagSize(number) * v.size();
    for (const auto& e : v) n += C::Size(C::Get(e));
    return n;
  }
}
template <class C, class V>
uint8_t* WriteField(uint32_t number, const std::vector<V>& v, uint8_t* p) {
  if (v.empty()) return p;
  if constexpr (C::kPackable) {
    p = WriteTag(number, WFL::WIRETYPE_LENGTH_DELIMITED, p);
    p = WriteLength(PackedDataSize<C>(v), p);
    for (const auto& e : v) p = C::Write(C::Get(e), p);
  } else {
    for (const auto& e : v) {
      p = WriteTag(number, C::kWire, p);
      p = C::Write(C::Get(e), p);
    }
  }
  return p;
}

// Maps: every entry writes its key and its value, as protobuf does.
template <class KC, class VC, class K, class V>
size_t MapEntrySize(const K& k, const V& v) {
  return TagSize(1) + KC::Size(KC::Get(k)) + TagSize(2) + VC::Size(VC::Get(v));
}
template <class KC, class VC, class K, class V>
size_t MapFieldSize(uint32_t number, const std::map<K, V>& m) {
  size_t n = 0;
  for (const auto& [k, v] : m) {
    const size_t entry = MapEntrySize<KC, VC>(k, v);
    n += TagSize(number) + LengthSize(entry) + entry;
  }
  return n;
}
template <class KC, class VC, class K, class V>
uint8_t* WriteMapField(uint32_t number, const std::map<K, V>& m, uint8_t* p) {
  for (const auto& [k, v] : m) {
    p = WriteTag(number, WFL::WIRETYPE_LENGTH_DELIMITED, p);
    // Message values' sizes were cached by MapFieldSize.
    size_t entry = TagSize(1) + KC::Size(KC::Get(k)) + TagSize(2);
    if constexpr (std::is_same_v<VC, Message<V>>) {
      const size_t n = static_cast<size_t>(v.GetCachedSize());
      entry += LengthSize(n) + n;
    } else {
      entry += VC::Size(VC::Get(v));
    }
    p = WriteLength(entry, p);
    p = WriteTag(1, KC::kWire, p);
    p = KC::Write(KC::Get(k), p);
    p = WriteTag(2, VC::kWire, p);
    p = VC::Write(VC::Get(v), p);
  }
  return p;
}

// ---- Reads ----

template <class C, class V>
int ReadField(CodedInputStream* in, uint32_t tag, V* out) {
  if (WFL::GetTagWireType(tag) != C::kWire) return Skip(in, tag);
  return ReadValue<C>(in, out);
}

template <class C, class V>
int ReadField(CodedInputStream* in, uint32_t tag, std::optional<V>* out) {
  if (WFL::GetTagWireType(tag) != C::kWire) return Skip(in, tag);
  if (!out->has_value()) out->emplace();
  return ReadValue<C>(in, &**out);
}

template <class C, class V>
int ReadField(CodedInputStream* in, uint32_t tag, std::vector<V>* out) {
  const auto type = WFL::GetTagWireType(tag);
  if constexpr (C::kPackable) {
    if (type == WFL::WIRETYPE_LENGTH_DELIMITED) {
      int length = 0;
      if (!in->ReadVarintSizeAsInt(&length) || !HasBytes(in, length)) {
        return kMalformed;
      }
      const CodedInputStream::Limit limit = in->PushLimit(length);
      while (in->BytesUntilLimit() > 0) {
        V e{};
        const int r = ReadValue<C>(in, &e);
        if (r != kOk) return r;
        out->push_back(std::move(e));
      }
      in->PopLimit(limit);
      return kOk;
    }
  }
  if (type != C::kWire) return Skip(in, tag);
  V e{};
  const int r = ReadValue<C>(in, &e);
  if (r != kOk) return r;
  out->push_back(std::move(e));
  return kOk;
}

template <class KC, class VC, class K, class V>
int ReadMapField(CodedInputStream* in, uint32_t tag, std::map<K, V>* out) {
  if (WFL::GetTagWireType(tag) != WFL::WIRETYPE_LENGTH_DELIMITED) {
    return Skip(in, tag);
  }
  CodedInputStream::Limit limit;
  if (!EnterLength(in, &limit)) return kMalformed;
  // Read as their wire types, converted once the entry is read: the last
  // key and value count.
  WireOf<KC, K> key_wire{};
  WireOf<VC, V> value_wire{};
  for (;;) {
    const uint32_t t = in->ReadTag();
    if (t == 0) break;
    int r = kOk;
    switch (WFL::GetTagFieldNumber(t)) {
      case 1:
        r = ReadField<KC>(in, t, &key_wire);
        break;
      case 2:
        r = ReadField<VC>(in, t, &value_wire);
        break;
      default:
        r = Skip(in, t);
    }
    if (r != kOk) return r;
  }
  if (!in->DecrementRecursionDepthAndPopLimit(limit)) return kMalformed;
  K key{};
  V value{};
  if constexpr (ReadsInto<KC, K>) {
    key = std::move(key_wire);
  } else if (!KC::Put(key_wire, &key)) {
    return kKeyRange;
  }
  if constexpr (ReadsInto<VC, V>) {
    value = std::move(value_wire);
  } else if (!VC::Put(value_wire, &value)) {
    return kRange;
  }
  out->insert_or_assign(std::move(key), std::move(value));
  return kOk;
}

// A `buffer` field (runtime/buffer.h) as it appears in the bytes: where
// its data is, as offsets (the generated reader makes the BufferView after
// ReceivedMessage::Retain, which may move the bytes). The last one wins.
struct BufferRange {
  bool found = false;
  size_t offset = 0;
  size_t length = 0;
};
inline int ReadBufferField(CodedInputStream* in, uint32_t tag, BufferRange* out) {
  if (WFL::GetTagWireType(tag) != WFL::WIRETYPE_LENGTH_DELIMITED) {
    return Skip(in, tag);
  }
  int length = 0;
  if (!in->ReadVarintSizeAsInt(&length)) return kMalformed;
  const int at = in->CurrentPosition();
  if (!in->Skip(length)) return kMalformed;
  *out = {true, static_cast<size_t>(at), static_cast<size_t>(length)};
  return kOk;
}

}  // namespace lpc::wire

#endif  // LPC_RUNTIME_WIRE_H_
