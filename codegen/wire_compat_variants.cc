#include "codegen/wire_compat_variants.h"

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "codegen/wire_compat_testing.h"
#include "gtest/gtest.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/wire_format_lite.h"

namespace lpc::wire_testing {

namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using ::google::protobuf::io::CodedInputStream;
using ::google::protobuf::internal::WireFormatLite;

enum Flag : uint32_t {
  kReversed = 1 << 0,
  kUnknown = 1 << 1,
  kUnpacked = 1 << 2,
  kSplitPacked = 1 << 3,
  kOverlong = 1 << 4,
  kTwice = 1 << 5,
  kSplitMessages = 1 << 6,
  kWrongWireType = 1 << 7,
};

struct RawField {
  uint32_t number = 0;
  int wire_type = 0;
  uint64_t varint = 0;  // wire type 0
  std::string data;     // fixed bytes, a payload, or a group's body and end
};

std::string Varint(uint64_t v, size_t min_bytes = 1) {
  std::string out;
  while (v >= 0x80 || out.size() + 1 < min_bytes) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

std::optional<std::vector<RawField>> Parse(std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return std::nullopt;
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  std::vector<RawField> fields;
  while (static_cast<size_t>(in.CurrentPosition()) < bytes.size()) {
    const uint32_t tag = in.ReadTag();
    RawField f;
    f.number = WireFormatLite::GetTagFieldNumber(tag);
    f.wire_type = static_cast<int>(WireFormatLite::GetTagWireType(tag));
    if (f.number == 0) return std::nullopt;
    const int start = in.CurrentPosition();
    bool ok = true;
    switch (f.wire_type) {
      case 0:
        ok = in.ReadVarint64(&f.varint);
        break;
      case 1:
        ok = in.ReadString(&f.data, 8);
        break;
      case 2: {
        uint32_t length = 0;
        ok = in.ReadVarint32(&length) &&
             in.ReadString(&f.data, static_cast<int>(length));
        break;
      }
      case 3:
        ok = WireFormatLite::SkipField(&in, tag);
        if (ok) {
          f.data = std::string(bytes.substr(
              static_cast<size_t>(start),
              static_cast<size_t>(in.CurrentPosition() - start)));
        }
        break;
      case 5:
        ok = in.ReadString(&f.data, 4);
        break;
      default:
        ok = false;
    }
    if (!ok) return std::nullopt;
    fields.push_back(std::move(f));
  }
  return fields;
}

std::string Emit(const RawField& f, bool overlong) {
  std::string out = Varint((f.number << 3) | static_cast<uint32_t>(f.wire_type));
  switch (f.wire_type) {
    case 0:
      return out + Varint(f.varint, overlong ? 10 : 1);
    case 2:
      return out + Varint(f.data.size(), overlong ? 5 : 1) + f.data;
    default:
      return out + f.data;
  }
}

int ElementWireType(const FieldDescriptor& fd) {
  switch (fd.type()) {
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return 5;
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return 1;
    default:
      return 0;
  }
}

// The elements of packed field `fd`'s payload, as unpacked fields.
std::optional<std::vector<RawField>> Unpack(const FieldDescriptor& fd,
                                            uint32_t number,
                                            const std::string& payload) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(payload.data()),
                      static_cast<int>(payload.size()));
  std::vector<RawField> out;
  const int wt = ElementWireType(fd);
  while (static_cast<size_t>(in.CurrentPosition()) < payload.size()) {
    RawField e;
    e.number = number;
    e.wire_type = wt;
    const bool ok = wt == 0   ? in.ReadVarint64(&e.varint)
                    : wt == 5 ? in.ReadString(&e.data, 4)
                              : in.ReadString(&e.data, 8);
    if (!ok) return std::nullopt;
    out.push_back(std::move(e));
  }
  return out;
}

std::string Packed(const std::vector<RawField>& elements, size_t from,
                   size_t to, bool overlong) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    out += elements[i].wire_type == 0
               ? Varint(elements[i].varint, overlong ? 10 : 1)
               : elements[i].data;
  }
  return out;
}

// A field number `type` does not use.
uint32_t UnknownNumber(const Descriptor& type) {
  for (uint32_t n : {9999u, 536870910u, 123456u, 7777u, 3u}) {
    if (type.FindFieldByNumber(static_cast<int>(n)) == nullptr) return n;
  }
  return 536870909u;
}

std::string Unknowns(uint32_t n) {
  return Varint(n << 3) + Varint(150) +                            // varint
         Varint((n << 3) | 1) + std::string("\x01\0\0\0\0\0\0\x80", 8) +
         Varint((n << 3) | 2) + Varint(3) + std::string("\xff?\0", 3) +  // bytes
         Varint((n << 3) | 3) + "\x08\x01" + Varint((n << 3) | 4) +  // group
         Varint((n << 3) | 5) + std::string("\0\0\x80\x3f", 4);    // fixed32
}

std::string Transform(const std::string& bytes, const Descriptor& type,
                      uint32_t flags) {
  std::optional<std::vector<RawField>> parsed = Parse(bytes);
  if (!parsed.has_value()) return bytes;
  const bool overlong = flags & kOverlong;
  std::vector<std::pair<uint32_t, std::string>> out;  // (number, bytes)
  const uint32_t unknown = UnknownNumber(type);
  auto add_unknown = [&] {
    if (flags & kUnknown) out.emplace_back(unknown, Unknowns(unknown));
  };
  for (RawField& f : *parsed) {
    add_unknown();
    const FieldDescriptor* fd = type.FindFieldByNumber(static_cast<int>(f.number));
    if (fd == nullptr) {
      out.emplace_back(f.number, Emit(f, overlong));
      continue;
    }
    if (flags & kWrongWireType) {
      RawField wrong;
      wrong.number = f.number;
      if (ElementWireType(*fd) == 5) {
        wrong.wire_type = 0;
        wrong.varint = 7;
      } else {
        wrong.wire_type = 5;
        wrong.data = std::string("\x01\x02\x03\x04", 4);
      }
      out.emplace_back(f.number, Emit(wrong, overlong));
    }
    if (f.wire_type == 2 && fd->type() == FieldDescriptor::TYPE_MESSAGE) {
      f.data = Transform(f.data, *fd->message_type(), flags);
      std::optional<std::vector<RawField>> inner = Parse(f.data);
      if ((flags & kSplitMessages) && !fd->is_repeated() && inner.has_value() &&
          !inner->empty()) {
        // Split at a field boundary; the two occurrences merge.
        const size_t half = inner->size() / 2;
        RawField first = f;
        RawField second = f;
        first.data.clear();
        second.data.clear();
        for (size_t i = 0; i < inner->size(); ++i) {
          (i < half ? first : second).data += Emit((*inner)[i], overlong);
        }
        out.emplace_back(f.number, Emit(first, overlong));
        out.emplace_back(f.number, Emit(second, overlong));
        continue;
      }
    } else if (f.wire_type == 2 && fd->is_repeated() && fd->is_packable()) {
      std::optional<std::vector<RawField>> elements = Unpack(*fd, f.number, f.data);
      if (elements.has_value() && (flags & kUnpacked)) {
        for (const RawField& e : *elements) out.emplace_back(f.number, Emit(e, overlong));
        continue;
      }
      if (elements.has_value() && (flags & kSplitPacked) && elements->size() >= 2) {
        const size_t half = elements->size() / 2;
        RawField first = f;
        RawField second = f;
        first.data = Packed(*elements, 0, half, overlong);
        second.data = Packed(*elements, half, elements->size(), overlong);
        out.emplace_back(f.number, Emit(first, overlong));
        out.emplace_back(f.number, Emit(second, overlong));
        continue;
      }
      if (elements.has_value()) f.data = Packed(*elements, 0, elements->size(), overlong);
    } else if ((flags & kTwice) && !fd->is_repeated()) {
      RawField before = f;
      if (f.wire_type == 0) {
        before.varint = f.varint ^ 0x10000;  // out of any narrow range
      } else if (f.wire_type == 2) {
        before.data = "zz";
      } else if (!before.data.empty()) {
        before.data[0] = static_cast<char>(before.data[0] ^ 1);
      }
      out.emplace_back(f.number, Emit(before, overlong));
    }
    out.emplace_back(f.number, Emit(f, overlong));
  }
  add_unknown();
  if (flags & kReversed) {
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.first > b.first;
    });
  }
  std::string result;
  for (const auto& [number, field] : out) result += field;
  return result;
}

}  // namespace

std::vector<Encoding> Variants(const Message& m) {
  const std::string bytes = Serialize(m);
  const Descriptor& type = *m.GetDescriptor();
  std::vector<Encoding> out;
  for (const auto& [name, flags] : std::vector<std::pair<std::string, uint32_t>>{
           {"reversed", kReversed},
           {"unknown", kUnknown},
           {"unpacked", kUnpacked},
           {"split_packed", kSplitPacked},
           {"overlong", kOverlong},
           {"twice", kTwice},
           {"split_messages", kSplitMessages},
           {"wrong_wire_type", kWrongWireType},
           {"all", kReversed | kUnknown | kUnpacked | kOverlong | kTwice |
                       kSplitMessages | kWrongWireType},
       }) {
    out.push_back({name, Transform(bytes, type, flags)});
  }
  return out;
}

std::vector<Encoding> Corruptions(std::string_view bytes) {
  std::vector<Encoding> out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    out.push_back({"cut@" + std::to_string(i), std::string(bytes.substr(0, i))});
    std::string b(bytes);
    b[i] = '\xff';
    out.push_back({"ff@" + std::to_string(i), b});
    b[i] = '\0';
    out.push_back({"00@" + std::to_string(i), b});
    b[i] = static_cast<char>(bytes[i] ^ 0x80);
    out.push_back({"flip@" + std::to_string(i), b});
  }
  return out;
}

std::vector<Encoding> Oddities(const Descriptor& type) {
  std::vector<Encoding> out = {
      {"field_0", std::string("\x00", 1)},
      {"field_0_bytes", std::string("\x02\x00", 2)},
      {"end_group_alone", "\x0c"},
      {"wire_type_6", "\x0e"},
      {"wire_type_7", "\x0f\x00"},
      {"open_group", "\x0b\x08\x01"},
      {"mismatched_group", "\x0b\x14"},
      {"tag_cut", "\x80"},
      {"tag_overlong", "\x88\x80\x80\x80\x80\x00\x01"},
  };
  const uint32_t unknown = UnknownNumber(type);
  std::string deep;
  for (int i = 0; i < 150; ++i) deep += Varint((unknown << 3) | 3);
  for (int i = 0; i < 150; ++i) deep += Varint((unknown << 3) | 4);
  out.push_back({"unknown_groups_150_deep", deep});
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& fd = *type.field(i);
    const std::string name = std::string(fd.name()) + ":";
    const uint32_t n = static_cast<uint32_t>(fd.number());
    const int wt = fd.is_packable() && fd.is_repeated() ? 2
                   : fd.type() == FieldDescriptor::TYPE_STRING ||
                           fd.type() == FieldDescriptor::TYPE_BYTES ||
                           fd.type() == FieldDescriptor::TYPE_MESSAGE
                       ? 2
                       : ElementWireType(fd);
    const std::string tag = Varint((n << 3) | static_cast<uint32_t>(wt));
    out.push_back({name + "tag_only", tag});
    if (wt == 0) {
      out.push_back({name + "varint_cut", tag + "\x80"});
      out.push_back({name + "varint_11_bytes", tag + std::string(10, '\xff') + "\x01"});
      out.push_back({name + "varint_2^32+5", tag + Varint((uint64_t{1} << 32) + 5)});
      out.push_back({name + "varint_-1_5_bytes", tag + Varint(0xffffffffu)});
    } else if (wt == 2) {
      out.push_back({name + "length_past_end", tag + "\x05" + "ab"});
      out.push_back({name + "length_cut", tag + "\x80"});
      out.push_back({name + "length_2^31", tag + Varint(uint64_t{1} << 31) + "ab"});
      if (fd.type() == FieldDescriptor::TYPE_STRING) {
        for (const std::string& bad :
             {std::string("\xff\xfe"), std::string("a\xc3"), std::string("\xc0\xaf"),
              std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
          out.push_back({name + "bad_utf8 " + Hex(bad), tag + Varint(bad.size()) + bad});
        }
      }
      if (fd.is_packable() && fd.is_repeated()) {
        out.push_back({name + "packed_element_cut",
                       tag + (ElementWireType(fd) == 0 ? std::string("\x02\x01\x80")
                                                       : std::string("\x03\0\0\0", 4))});
      }
      if (fd.type() == FieldDescriptor::TYPE_MESSAGE) {
        out.push_back({name + "bad_inside", tag + "\x02\x08\x80"});
        out.push_back({name + "end_group_inside", tag + "\x01\x0c"});
      }
    } else {
      out.push_back({name + "fixed_cut", tag + "\x01\x02"});
    }
  }
  return out;
}

bool NarrowInRange(const Message& m, std::string* field) {
  static const auto* const kRanges = new std::map<std::string, std::pair<int64_t, int64_t>>{
#define LPC_I8(f) {"lpc.codegen.wire." f, {-128, 127}}
#define LPC_I16(f) {"lpc.codegen.wire." f, {-32768, 32767}}
#define LPC_U8(f) {"lpc.codegen.wire." f, {0, 255}}
#define LPC_U16(f) {"lpc.codegen.wire." f, {0, 65535}}
      LPC_I8("Scalars.i8"), LPC_I16("Scalars.i16"), LPC_U8("Scalars.u8"),
      LPC_U16("Scalars.u16"), LPC_I8("Containers.i8s"), LPC_U16("Containers.u16s"),
      LPC_I8("Containers.opt_i8"), LPC_U16("Containers.opt_u16"),
      LPC_I8("Containers.NarrowMapEntry.key"), LPC_U8("Containers.NarrowMapEntry.value"),
      LPC_U16("Containers.WideMapEntry.key"), LPC_I16("Containers.WideMapEntry.value"),
      LPC_I16("Tree.Node.weight"), LPC_I8("CarrierWire.tag"),
      LPC_I8("AllInRequest.i8"), LPC_I16("AllInRequest.i16"), LPC_U8("AllInRequest.u8"),
      LPC_U16("AllInRequest.u16"), LPC_I8("AllOutResponse.i8"),
      LPC_I16("AllOutResponse.i16"), LPC_U8("AllOutResponse.u8"),
      LPC_U16("AllOutResponse.u16"), LPC_I8("InOutRequest.i8"),
      LPC_I8("InOutResponse.i8"), LPC_I16("InOutResponse.y"), LPC_I8("SeqsRequest.i8s"),
      LPC_I8("SeqsResponse.result"), LPC_U16("SeqsResponse.u16s"),
      LPC_U8("MapsRequest.DEntry.key"), LPC_I16("MapsResponse.ResultEntry.key"),
      LPC_U8("MapsResponse.ResultEntry.value"), LPC_U8("OptsRequest.e"),
      LPC_I16("FireRequest.x"), LPC_I16("PassRequest.n"), LPC_I8("DownRequest.n"),
      LPC_I8("LaterRequest.x"), LPC_I8("LaterResponse.result"),
      LPC_I16("LaterDownRequest.n"),
#undef LPC_I8
#undef LPC_I16
#undef LPC_U8
#undef LPC_U16
  };
  const Reflection& r = *m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  for (const FieldDescriptor* fd : fields) {
    if (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = fd->is_repeated() ? r.FieldSize(m, fd) : 1;
      for (int i = 0; i < n; ++i) {
        const Message& sub = fd->is_repeated() ? r.GetRepeatedMessage(m, fd, i)
                                               : r.GetMessage(m, fd);
        if (!NarrowInRange(sub, field)) return false;
      }
      continue;
    }
    auto it = kRanges->find(std::string(fd->full_name()));
    if (it == kRanges->end()) continue;
    const int n = fd->is_repeated() ? r.FieldSize(m, fd) : 1;
    for (int i = 0; i < n; ++i) {
      int64_t v = 0;
      if (fd->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        v = fd->is_repeated() ? r.GetRepeatedInt32(m, fd, i) : r.GetInt32(m, fd);
      } else {
        v = fd->is_repeated() ? r.GetRepeatedUInt32(m, fd, i) : r.GetUInt32(m, fd);
      }
      if (v < it->second.first || v > it->second.second) {
        *field = std::string(fd->full_name()) + " = " + std::to_string(v);
        return false;
      }
    }
  }
  return true;
}

std::unique_ptr<Message> WithoutUnknown(const Message& m) {
  std::unique_ptr<Message> copy(m.New());
  copy->CopyFrom(m);
  copy->DiscardUnknownFields();
  return copy;
}

void ExpectDecodesLikeProtoc(
    const Message& sample, const Decoder& decode, absl::StatusCode error,
    const std::function<void(Message*)>& normalize) {
  std::vector<Encoding> encodings = {{"protoc", Serialize(sample)}, {"empty", ""}};
  const size_t variants_from = encodings.size();
  for (Encoding& e : Variants(sample)) encodings.push_back(std::move(e));
  const size_t variants_to = encodings.size();
  for (Encoding& e : Corruptions(Serialize(sample))) encodings.push_back(std::move(e));
  for (Encoding& e : Oddities(*sample.GetDescriptor())) encodings.push_back(std::move(e));
  // protoc logs each string field with invalid UTF-8 it refuses.
  google::protobuf::LogSilencer quiet;
  int failures = 0;
  auto fail = [&](const Encoding& e) -> ::testing::AssertionResult {
    ++failures;
    return ::testing::AssertionFailure()
           << sample.GetTypeName() << ", encoding \"" << e.name
           << "\": " << Hex(e.bytes, 96) << "\n";
  };
  for (size_t i = 0; i < encodings.size() && failures < 10; ++i) {
    const Encoding& e = encodings[i];
    std::unique_ptr<Message> parsed(sample.New());
    const bool parses = parsed->ParseFromString(e.bytes);
    if (i >= variants_from && i < variants_to) {
      // The variants are valid encodings of `sample`.
      EXPECT_TRUE(parses) << fail(e).message();
      EXPECT_TRUE(SameMessage(*WithoutUnknown(*parsed), sample)) << fail(e).message();
    }
    std::string bad_field;
    const bool in_range = parses && NarrowInRange(*parsed, &bad_field);
    std::unique_ptr<Message> got;
    const absl::Status status = decode(e.bytes, &got);
    if (!in_range) {
      EXPECT_EQ(status.code(), error)
          << fail(e).message()
          << (parses ? "protoc parses it, but " + bad_field + " is out of range"
                     : std::string("protoc does not parse it"))
          << "; the stub says " << status;
      continue;
    }
    if (!status.ok() || got == nullptr) {
      ADD_FAILURE() << fail(e).message() << "protoc parses it; the stub says "
                    << status;
      continue;
    }
    std::unique_ptr<Message> want = WithoutUnknown(*parsed);
    if (normalize) normalize(want.get());
    ::testing::AssertionResult same = SameMessage(*WithoutUnknown(*got), *want);
    if (!same) ADD_FAILURE() << fail(e).message() << same.message();
  }
}

}  // namespace lpc::wire_testing
