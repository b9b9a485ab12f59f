// lpcctl's two output forms: aligned text tables for people, and JSON
// (protobuf's JSON printer over google.protobuf.Struct and the
// introspection messages) for programs.
//
// Thread safety: the functions are thread-safe; a Table is used by one
// thread at a time.
#ifndef LPC_TOOLS_LPCCTL_INTERNAL_OUTPUT_H_
#define LPC_TOOLS_LPCCTL_INTERNAL_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace lpc::lpcctl {

// Rows of cells, printed with each column padded to its widest cell and
// two spaces between columns. The first row is the header.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  // The table, one line per row, each ending in '\n'; no trailing spaces.
  std::string ToString() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `message` as a google.protobuf.Value (its proto3 JSON form: every field,
// with proto field names; 64-bit integers are strings).
google::protobuf::Value ToValue(const google::protobuf::Message& message);
google::protobuf::Value StringValue(std::string s);
google::protobuf::Value NumberValue(double n);
google::protobuf::Value ListOf(std::vector<google::protobuf::Value> items);
// {"code": N, "name": "NOT_FOUND", "message": "..."}.
google::protobuf::Value StatusValue(const absl::Status& status);

// JSON text of `message` (a Struct, a Value or any message), with the keys
// of every Struct sorted: indented when `pretty`, else one line. Ends
// without a newline.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// "1h2m3s": a duration in milliseconds, to the second ("0s" under one).
std::string FormatUptime(uint64_t ms);

}  // namespace lpc::lpcctl

#endif  // LPC_TOOLS_LPCCTL_INTERNAL_OUTPUT_H_
