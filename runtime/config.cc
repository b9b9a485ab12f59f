// Config parsing with protobuf's text-format parser, plus the semantic checks
// that the parser cannot do, each reported at the offending field.
#include "runtime/config.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "runtime/interceptor.h"
#include "runtime/target.h"

ABSL_FLAG(std::string, lpc_config, "",
          "lpc's config file (text format, runtime/config.proto); when empty, "
          "the LPC_CONFIG environment variable names it");

namespace lpc {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// Bounds of the local port's stream settings (LocalPortOptions takes
// the same thread bound): a typo's 4294967295 is an error, not a server
// that starts threads until it fails.
constexpr uint32_t kMaxStreamsPerConnection = uint32_t{1} << 20;
constexpr uint32_t kMaxStreamHandlerThreads = 4096;
// Threads: max_concurrency, max_workers, max_handlers_per_connection.
constexpr uint32_t kMaxThreads = 4096;
// The kernel's SCM_MAX_FD: descriptors one message can carry.
constexpr uint32_t kMaxHandlesPerMessage = 253;
// Health Watch streams one gRPC listener set keeps open.
constexpr uint32_t kMaxHealthWatches = uint32_t{1} << 20;

class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      line_ = line;
      column_ = column;
      message_ = message;
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}

  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

// Formats "file:line:col: field: message" for a field recorded in `tree`.
absl::Status FieldError(std::string_view filename,
                        const TextFormat::ParseInfoTree* tree,
                        const google::protobuf::Message& msg,
                        std::string_view field_name, std::string_view path,
                        std::string_view message) {
  const FieldDescriptor* field =
      msg.GetDescriptor()->FindFieldByName(std::string(field_name));
  int line = 0, column = 0;
  if (tree != nullptr && field != nullptr) {
    TextFormat::ParseLocation loc = tree->GetLocation(field, -1);
    if (loc.line >= 0) {
      line = loc.line + 1;
      column = loc.column + 1;
    }
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s:%d:%d: %s: %s", std::string(filename), line, column,
      std::string(path), std::string(message)));
}

// The first port out of range (above 65535, or 0 when `zero_ok` is false)
// among the "host:port" addresses of a gRPC target or listening address
// ("dns:///h:p", "ipv4:a:p,b:p", "[::1]:p"), as text; empty if none. Unix
// socket addresses have no port.
std::string BadGrpcPort(std::string_view address, bool zero_ok) {
  if (address.starts_with("unix:") || address.starts_with("unix-abstract:")) {
    return "";
  }
  for (std::string_view prefix : {"ipv4:", "ipv6:", "dns:"}) {
    if (address.starts_with(prefix)) address.remove_prefix(prefix.size());
  }
  // "dns://authority/host:port": the part after the authority.
  if (address.starts_with("//")) {
    size_t slash = address.find('/', 2);
    if (slash == std::string_view::npos) return "";
    address.remove_prefix(slash + 1);
  }
  while (!address.empty()) {
    size_t comma = address.find(',');
    std::string_view one = address.substr(0, comma);
    address = comma == std::string_view::npos ? std::string_view()
                                              : address.substr(comma + 1);
    size_t colon = one.rfind(':');
    if (colon == std::string_view::npos) continue;
    std::string_view port = one.substr(colon + 1);
    if (port.empty() ||
        !std::all_of(port.begin(), port.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      continue;  // No port, or an IPv6 address without brackets.
    }
    uint64_t value = 0;
    for (char c : port) {
      value = value * 10 + static_cast<uint64_t>(c - '0');
      if (value > 65535) break;
    }
    if (value > 65535 || (value == 0 && !zero_ok)) return std::string(port);
  }
  return "";
}

absl::Status CheckTarget(std::string_view filename,
                         const TextFormat::ParseInfoTree* tree,
                         const google::protobuf::Message& msg,
                         std::string_view path, const std::string& target) {
  absl::StatusOr<Target> t = ParseTarget(target);
  if (!t.ok()) {
    return FieldError(filename, tree, msg, "target", path,
                      std::string(t.status().message()));
  }
  if (t->scheme != "local" && t->scheme != "grpc" && t->scheme != "auto" &&
      t->scheme != "inprocess") {
    return FieldError(filename, tree, msg, "target", path,
                      absl::StrCat("unknown scheme '", t->scheme,
                                   "'; expected local, grpc, auto or "
                                   "inprocess"));
  }
  if (t->scheme == "auto" && t->address.find('@') == std::string::npos) {
    return FieldError(filename, tree, msg, "target", path,
                      "auto targets are auto:<port>@<grpc-target>");
  }
  if (t->scheme == "grpc" || t->scheme == "auto") {
    std::string_view grpc_target = t->address;
    if (t->scheme == "auto") grpc_target.remove_prefix(grpc_target.find('@') + 1);
    std::string port = BadGrpcPort(grpc_target, /*zero_ok=*/false);
    if (!port.empty()) {
      return FieldError(filename, tree, msg, "target", path,
                        absl::StrCat("port ", port,
                                     " is out of range; expected 1 to 65535"));
    }
  }
  return absl::OkStatus();
}

// gRPC's floor for each reconnect setting: it raises lower values silently.
constexpr uint32_t kMinReconnectMs = 100;
// gRPC takes the settings as an int of milliseconds.
constexpr uint32_t kMaxGrpcMs = INT32_MAX;

absl::Status CheckMillis(std::string_view filename,
                         const TextFormat::ParseInfoTree* tree,
                         const google::protobuf::Message& msg,
                         const std::string& field, const std::string& path,
                         uint32_t value, uint32_t min) {
  if (value == 0) return absl::OkStatus();
  if (value < min || value > kMaxGrpcMs) {
    return FieldError(
        filename, tree, msg, field, absl::StrCat(path, ".", field),
        absl::StrCat(value, " ms is out of range; use 0 for gRPC's default or ",
                     min, " to ", kMaxGrpcMs, " ms"));
  }
  return absl::OkStatus();
}

// The gRPC client options that gRPC itself would clamp, ignore or reject
// only at the first call.
absl::Status CheckGrpcOptions(std::string_view filename,
                              const TextFormat::ParseInfoTree* endpoint_tree,
                              const config::Endpoint& e,
                              const std::string& path) {
  if (!e.has_grpc()) return absl::OkStatus();
  const config::GrpcClientOptions& g = e.grpc();
  const FieldDescriptor* grpc_field =
      config::Endpoint::descriptor()->FindFieldByName("grpc");
  const TextFormat::ParseInfoTree* tree =
      endpoint_tree == nullptr ? nullptr
                               : endpoint_tree->GetTreeForNested(grpc_field, -1);
  std::string grpc_path = absl::StrCat(path, ".grpc");
  if (!g.lb_policy().empty() && g.lb_policy() != "pick_first" &&
      g.lb_policy() != "round_robin") {
    return FieldError(filename, tree, g, "lb_policy",
                      absl::StrCat(grpc_path, ".lb_policy"),
                      absl::StrCat("unknown load-balancing policy '",
                                   g.lb_policy(),
                                   "'; expected pick_first or round_robin"));
  }
  absl::Status s = CheckMillis(filename, tree, g, "keepalive_time_ms", grpc_path,
                               g.keepalive_time_ms(), 1);
  if (!s.ok()) return s;
  s = CheckMillis(filename, tree, g, "keepalive_timeout_ms", grpc_path,
                  g.keepalive_timeout_ms(), 1);
  if (!s.ok()) return s;
  if (g.keepalive_permit_without_calls() && g.keepalive_time_ms() == 0) {
    return FieldError(filename, tree, g, "keepalive_permit_without_calls",
                      absl::StrCat(grpc_path, ".keepalive_permit_without_calls"),
                      "needs keepalive_time_ms: without it no pings are sent");
  }
  if (!g.has_reconnect()) return absl::OkStatus();
  const config::GrpcReconnect& r = g.reconnect();
  const FieldDescriptor* reconnect_field =
      config::GrpcClientOptions::descriptor()->FindFieldByName("reconnect");
  const TextFormat::ParseInfoTree* rtree =
      tree == nullptr ? nullptr : tree->GetTreeForNested(reconnect_field, -1);
  std::string rpath = absl::StrCat(grpc_path, ".reconnect");
  s = CheckMillis(filename, rtree, r, "initial_backoff_ms", rpath,
                  r.initial_backoff_ms(), kMinReconnectMs);
  if (!s.ok()) return s;
  s = CheckMillis(filename, rtree, r, "max_backoff_ms", rpath,
                  r.max_backoff_ms(), kMinReconnectMs);
  if (!s.ok()) return s;
  s = CheckMillis(filename, rtree, r, "min_connect_timeout_ms", rpath,
                  r.min_connect_timeout_ms(), kMinReconnectMs);
  if (!s.ok()) return s;
  if (r.initial_backoff_ms() != 0 && r.max_backoff_ms() != 0 &&
      r.initial_backoff_ms() > r.max_backoff_ms()) {
    return FieldError(filename, rtree, r, "max_backoff_ms",
                      absl::StrCat(rpath, ".max_backoff_ms"),
                      absl::StrCat("is less than initial_backoff_ms (",
                                   r.max_backoff_ms(), " < ",
                                   r.initial_backoff_ms(), ")"));
  }
  return absl::OkStatus();
}

// Protobuf's parser says "Expected integer, got: -" for a negative value
// in an unsigned field; this names the field and says why.
std::string ExplainParseError(std::string_view text, int line, int column,
                              const std::string& message) {
  if (message.rfind("Expected integer, got: -", 0) != 0) return message;
  size_t start = 0;
  for (int i = 0; i < line && start != std::string_view::npos; ++i) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return message;
  std::string_view before =
      text.substr(start, std::min<size_t>(column, text.size() - start));
  size_t colon = before.rfind(':');
  if (colon == std::string_view::npos) return message;
  size_t end = colon;
  while (end > 0 && before[end - 1] == ' ') --end;
  size_t begin = end;
  while (begin > 0 && (std::isalnum(static_cast<unsigned char>(before[begin - 1])) ||
                       before[begin - 1] == '_')) {
    --begin;
  }
  if (begin == end) return message;
  return absl::StrCat(std::string(before.substr(begin, end - begin)),
                      ": negative values are not allowed (", message, ")");
}

}  // namespace

absl::StatusOr<config::Config> ParseConfig(std::string_view text,
                                           std::string_view filename) {
  config::Config config;
  TextFormat::Parser parser;
  FirstError errors;
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s:%d:%d: %s", std::string(filename), errors.line_ + 1,
        errors.column_ + 1,
        ExplainParseError(text, errors.line_, errors.column_, errors.message_)));
  }
  const FieldDescriptor* endpoint_field =
      config::Config::descriptor()->FindFieldByName("endpoint");
  for (int i = 0; i < config.endpoint_size(); ++i) {
    const config::Endpoint& e = config.endpoint(i);
    const TextFormat::ParseInfoTree* sub = tree.GetTreeForNested(endpoint_field, i);
    std::string path = absl::StrCat("endpoint[", i, "]");
    if (e.service().empty() && e.client().empty()) {
      // Point at the entry itself.
      TextFormat::ParseLocation loc = tree.GetLocation(endpoint_field, i);
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d:%d: %s: names neither a service nor a client",
          std::string(filename), loc.line + 1, loc.column + 1, path));
    }
    if (e.target().empty()) {
      TextFormat::ParseLocation loc = tree.GetLocation(endpoint_field, i);
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d:%d: %s.target: missing", std::string(filename), loc.line + 1,
          loc.column + 1, path));
    }
    absl::Status s =
        CheckTarget(filename, sub, e, absl::StrCat(path, ".target"), e.target());
    if (!s.ok()) return s;
    s = CheckGrpcOptions(filename, sub, e, path);
    if (!s.ok()) return s;
  }
  const FieldDescriptor* server_field =
      config::Config::descriptor()->FindFieldByName("server");
  for (int i = 0; i < config.server_size(); ++i) {
    const config::ServerEndpoint& s = config.server(i);
    if (s.local_port().empty() && s.grpc_address().empty()) {
      TextFormat::ParseLocation loc = tree.GetLocation(server_field, i);
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d:%d: server[%d]: needs a local_port or a grpc_address",
          std::string(filename), loc.line + 1, loc.column + 1, i));
    }
    const TextFormat::ParseInfoTree* sub = tree.GetTreeForNested(server_field, i);
    if (s.socket_mode() > 0777) {
      return FieldError(filename, sub, s, "socket_mode",
                        absl::StrCat("server[", i, "].socket_mode"),
                        "permission bits must be at most 0777 (511)");
    }
    if (s.max_streams_per_connection() > kMaxStreamsPerConnection) {
      return FieldError(
          filename, sub, s, "max_streams_per_connection",
          absl::StrCat("server[", i, "].max_streams_per_connection"),
          absl::StrCat(s.max_streams_per_connection(), " is more than the ",
                       kMaxStreamsPerConnection, " allowed (0 = 4096)"));
    }
    for (int a = 0; a < s.grpc_address_size(); ++a) {
      std::string port = BadGrpcPort(s.grpc_address(a), /*zero_ok=*/true);
      if (port.empty()) continue;
      const FieldDescriptor* field =
          config::ServerEndpoint::descriptor()->FindFieldByName("grpc_address");
      TextFormat::ParseLocation loc =
          sub == nullptr ? TextFormat::ParseLocation() : sub->GetLocation(field, a);
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d:%d: server[%d].grpc_address[%d]: port %s is out of range; "
          "expected 0 (any free port) to 65535",
          std::string(filename), loc.line + 1, loc.column + 1, i, a, port));
    }
    const struct {
      const char* field;
      uint32_t value;
      uint32_t max;
    } bounded[] = {
        {"max_concurrency", s.max_concurrency(), kMaxThreads},
        {"max_workers", s.max_workers(), kMaxThreads},
        {"max_handlers_per_connection", s.max_handlers_per_connection(),
         kMaxThreads},
        {"max_handles_per_message", s.max_handles_per_message(),
         kMaxHandlesPerMessage},
    };
    for (const auto& b : bounded) {
      if (b.value > b.max) {
        return FieldError(filename, sub, s, b.field,
                          absl::StrCat("server[", i, "].", b.field),
                          absl::StrCat(b.value, " is more than the ", b.max,
                                       " allowed"));
      }
    }
    if (s.max_stream_handler_threads() > kMaxStreamHandlerThreads) {
      return FieldError(
          filename, sub, s, "max_stream_handler_threads",
          absl::StrCat("server[", i, "].max_stream_handler_threads"),
          absl::StrCat(s.max_stream_handler_threads(), " is more than the ",
                       kMaxStreamHandlerThreads, " allowed (0 = 64)"));
    }
    if (s.grpc().max_health_watches() > kMaxHealthWatches) {
      const FieldDescriptor* grpc_field =
          config::ServerEndpoint::descriptor()->FindFieldByName("grpc");
      const TextFormat::ParseInfoTree* grpc_tree =
          sub == nullptr ? nullptr : sub->GetTreeForNested(grpc_field, -1);
      return FieldError(
          filename, grpc_tree, s.grpc(), "max_health_watches",
          absl::StrCat("server[", i, "].grpc.max_health_watches"),
          absl::StrCat(s.grpc().max_health_watches(), " is more than the ",
                       kMaxHealthWatches, " allowed (0 = 1024)"));
    }
  }
  return config;
}

absl::StatusOr<config::Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (buffer.str().size() > (size_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": config files are limited to 1 MiB"));
  }
  return ParseConfig(buffer.str(), path);
}

std::string ConfigPathFromArgsOrEnv() {
  std::string flag = absl::GetFlag(FLAGS_lpc_config);
  if (!flag.empty()) return flag;
  const char* env = std::getenv("LPC_CONFIG");
  return env == nullptr ? "" : env;
}

absl::StatusOr<config::Config> LoadConfigFromArgsOrEnv() {
  std::string path = ConfigPathFromArgsOrEnv();
  if (path.empty()) {
    return absl::NotFoundError(
        "no config file: pass --lpc_config=<path> or set LPC_CONFIG");
  }
  return LoadConfigFile(path);
}

const config::Endpoint* FindEndpoint(const config::Config& config,
                                     std::string_view service,
                                     std::string_view client) {
  if (!client.empty()) {
    for (const auto& e : config.endpoint()) {
      if (e.client() == client) return &e;
    }
  }
  for (const auto& e : config.endpoint()) {
    if (!e.service().empty() && e.service() == service) return &e;
  }
  return nullptr;
}

const config::ServerEndpoint* FindServer(const config::Config& config,
                                         std::string_view name) {
  for (const auto& s : config.server()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

absl::Status AddInterceptorsFromConfig(Server* server,
                                       const config::ServerEndpoint& entry) {
  for (const std::string& name : entry.interceptor()) {
    absl::StatusOr<std::shared_ptr<ServerInterceptor>> made =
        MakeServerInterceptor(name);
    if (!made.ok()) {
      return absl::Status(made.status().code(),
                          absl::StrCat("server '", entry.name(), "': ",
                                       made.status().message()));
    }
    absl::Status s = server->AddInterceptor(*std::move(made));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace lpc
