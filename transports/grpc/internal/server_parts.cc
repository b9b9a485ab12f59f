// See server_parts.h.
#include "transports/grpc/internal/server_parts.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "transports/grpc/mapping.h"

namespace lpc::grpc_transport {

InterfaceService::InterfaceService(const InterfaceDescriptor& iface,
                                   const std::vector<bool>& on_queue,
                                   ReactorFactory factory) {
  int index = 0;
  for (const MethodDescriptor& m : iface.methods) {
    paths_.push_back(std::make_unique<std::string>(iface.MethodPath(m)));
    const std::string* path = paths_.back().get();
    const size_t method_index = static_cast<size_t>(index);
    if (on_queue[method_index]) {
      // No handler: gRPC serves it asynchronously, reading the request
      // before it hands out the call.
      AddMethod(new grpc::internal::RpcServiceMethod(
          path->c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
      MarkMethodRaw(index++);
      continue;
    }
    // Bidi streaming at the gRPC API level for every kind: the reactor
    // reads the request(s) itself, as with the generic service. On the wire
    // a unary call is the same either way.
    AddMethod(new grpc::internal::RpcServiceMethod(
        path->c_str(), grpc::internal::RpcMethod::BIDI_STREAMING, nullptr));
    MarkMethodRawCallback(
        index++,
        new grpc::internal::CallbackBidiHandler<grpc::ByteBuffer,
                                                grpc::ByteBuffer>(
            [factory, method_index](grpc::CallbackServerContext* ctx) {
              return factory(ctx, method_index);
            }));
  }
}

namespace {

// Libraries may register the reflection plugin for every server of the
// process: Debian's libgrpc++_reflection does so when it is loaded
// (InitProtoReflectionServerBuilderPlugin at static initialisation). So the
// option removes any the builder already has, then adds one if wanted.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enabled) : enabled_(enabled) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(
      std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins)
      override {
    auto reflection =
        std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    std::erase_if(*plugins, [&](const auto& p) { return p->name() == name; });
    if (enabled_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool enabled_;
};

std::string ErrnoText(int err) { return std::strerror(err); }

std::string DiagnoseUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty()) return "empty socket path";
  if (path.size() >= sizeof addr.sun_path) {
    return "socket path longer than " +
           std::to_string(sizeof addr.sun_path - 1) + " bytes";
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    return "the path exists and is not a socket";
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoText(errno);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  std::string reason;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    // gRPC removes a stale socket before binding; only other errors count.
    if (errno != EADDRINUSE) reason = ErrnoText(errno);
  } else {
    unlink(path.c_str());
  }
  close(fd);
  return reason;
}

std::string DiagnoseTcp(const std::string& address) {
  std::string host;
  std::string port;
  if (address.starts_with("[")) {
    size_t close_bracket = address.find(']');
    if (close_bracket == std::string::npos) return "malformed address";
    host = address.substr(1, close_bracket - 1);
    if (address.size() < close_bracket + 2 || address[close_bracket + 1] != ':') {
      return "no port";
    }
    port = address.substr(close_bracket + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return "no port";
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* results = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(),
                       &hints, &results);
  if (rc != 0) return std::string("cannot resolve it: ") + gai_strerror(rc);
  std::string reason;
  for (addrinfo* a = results; a != nullptr && reason.empty(); a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                    a->ai_protocol);
    if (fd < 0) continue;  // E.g. no IPv6 on this host.
    int one = 1;  // As gRPC does.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) reason = ErrnoText(errno);
    close(fd);
  }
  freeaddrinfo(results);
  return reason;
}

}  // namespace

std::unique_ptr<grpc::ServerBuilderOption> MakeReflectionOption(
    bool enabled) {
  return std::make_unique<ReflectionOption>(enabled);
}

std::string DiagnoseListenFailure(const std::string& address) {
  if (address.starts_with("unix://")) {
    return DiagnoseUnix(address.substr(strlen("unix://")));
  }
  if (address.starts_with("unix:")) {
    return DiagnoseUnix(address.substr(strlen("unix:")));
  }
  if (address.find("://") != std::string::npos ||
      address.starts_with("unix-abstract:") || address.starts_with("vsock:")) {
    return "";
  }
  std::string tcp = address;
  if (tcp.starts_with("ipv4:") || tcp.starts_with("ipv6:")) tcp = tcp.substr(5);
  return DiagnoseTcp(tcp);
}

absl::Status ListenFailure(const std::vector<std::string>& addresses,
                           const std::vector<int>& ports) {
  std::string reasons;
  for (size_t i = 0; i < addresses.size() && i < ports.size(); ++i) {
    if (ports[i] != 0) continue;  // Bound.
    std::string why = DiagnoseListenFailure(addresses[i]);
    if (why.empty()) continue;
    absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", addresses[i], ": ",
                    why);
  }
  if (reasons.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "gRPC transport could not listen on ", absl::StrJoin(addresses, ", "),
        " (no reason found by binding it again; see gRPC's log)"));
  }
  return absl::UnavailableError(
      absl::StrCat("gRPC transport could not listen on ", reasons));
}

absl::Status UnknownPathStatus(const std::string& path,
                               const Dispatcher& dispatcher) {
  std::optional<MethodPathParts> parts = ParseMethodPath(path);
  if (!parts) {
    return absl::UnimplementedError(
        absl::StrCat("malformed method path '", path, "'"));
  }
  if (dispatcher.FindInterface(parts->interface_name) == nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        "unknown interface ", std::string(parts->interface_name)));
  }
  return absl::UnimplementedError(
      absl::StrCat("unknown method ", std::string(parts->method_name),
                   " of interface ", std::string(parts->interface_name)));
}

absl::Status CheckBindingHeaders(
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata,
    const InterfaceDescriptor& iface) {
  auto uuid_it = client_metadata.find(kInterfaceUuidKey);
  auto version_it = client_metadata.find(kInterfaceVersionKey);
  bool has_uuid = uuid_it != client_metadata.end();
  bool has_version = version_it != client_metadata.end();
  if (!has_uuid && !has_version) return absl::OkStatus();
  if (!has_uuid || !has_version) {
    return absl::InvalidArgumentError(
        absl::StrCat("a call must carry both ", kInterfaceUuidKey, " and ",
                     kInterfaceVersionKey, " or neither"));
  }
  std::string_view version_text(version_it->second.data(),
                                version_it->second.size());
  std::optional<InterfaceVersion> version = ParseVersion(version_text);
  if (!version) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", kInterfaceVersionKey, " '",
                     std::string(version_text), "'"));
  }
  return CheckInterfaceCompatible(
      iface.full_name,
      std::string_view(uuid_it->second.data(), uuid_it->second.size()),
      *version, iface.uuid, iface.version);
}

void ServerCounters::Report(size_t calls_in_flight, size_t calls_queued,
                            TransportReport* report) const {
  report->counters = {
      {"calls_started", calls_started.load(std::memory_order_relaxed)},
      {"calls_refused", calls_refused.load(std::memory_order_relaxed)},
      {"calls_in_flight", calls_in_flight},
      {"calls_queued", calls_queued},
      {"bytes_in", bytes_in.load(std::memory_order_relaxed)},
      {"bytes_out", bytes_out.load(std::memory_order_relaxed)},
  };
}

}  // namespace lpc::grpc_transport
