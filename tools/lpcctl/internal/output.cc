// Tables and JSON for lpcctl.
#include "tools/lpcctl/internal/output.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace lpc::lpcctl {

namespace pb = google::protobuf;

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::string Table::ToString() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line.append(2, ' ');
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size(), ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

pb::Value ToValue(const pb::Message& message) {
  pb::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  print.preserve_proto_field_names = true;
  std::string json;
  pb::Value value;
  // Printing a valid message and parsing the printer's own output into a
  // Value cannot fail; if it ever did, the value says so.
  if (!pb::util::MessageToJsonString(message, &json, print).ok() ||
      !pb::util::JsonStringToMessage(json, &value).ok()) {
    value.set_string_value("<no JSON form>");
  }
  return value;
}

pb::Value StringValue(std::string s) {
  pb::Value v;
  v.set_string_value(std::move(s));
  return v;
}

pb::Value NumberValue(double n) {
  pb::Value v;
  v.set_number_value(n);
  return v;
}

pb::Value ListOf(std::vector<pb::Value> items) {
  pb::Value v;
  for (pb::Value& item : items) {
    *v.mutable_list_value()->add_values() = std::move(item);
  }
  v.mutable_list_value();  // An empty list is still a list.
  return v;
}

pb::Value StatusValue(const absl::Status& status) {
  pb::Value v;
  auto& fields = *v.mutable_struct_value()->mutable_fields();
  fields["code"] = NumberValue(static_cast<int>(status.code()));
  fields["name"] = StringValue(absl::StatusCodeToString(status.code()));
  fields["message"] = StringValue(std::string(status.message()));
  return v;
}

std::string ToJson(const pb::Message& message, bool pretty) {
  // Struct fields are a map, which protobuf's JSON printer writes in the
  // order of the binary form; a deterministic serialization sorts map
  // entries by key, so the same answer always prints the same way.
  std::string binary;
  {
    pb::io::StringOutputStream stream(&binary);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  const pb::DescriptorPool* pool = message.GetDescriptor()->file()->pool();
  std::unique_ptr<pb::util::TypeResolver> resolver(
      pb::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, pool));
  pb::util::JsonPrintOptions print;
  print.add_whitespace = pretty;
  print.preserve_proto_field_names = true;
  std::string json;
  if (!pb::util::BinaryToJsonString(
           resolver.get(),
           absl::StrCat(kTypeUrlPrefix, "/", message.GetDescriptor()->full_name()),
           binary, &json, print)
           .ok()) {
    return "null";
  }
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

std::string FormatUptime(uint64_t ms) {
  const absl::Duration d =
      absl::Trunc(absl::Milliseconds(static_cast<int64_t>(ms)), absl::Seconds(1));
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

}  // namespace lpc::lpcctl
