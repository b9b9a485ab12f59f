// The built-in introspection service: answers from the Server's registry,
// its transports' reports and protobuf's generated descriptor pool.
#include "runtime/internal/introspection_service.h"

#include <sys/types.h>
#include <unistd.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "runtime/introspection.lpc.h"
#include "runtime/server.h"

namespace lpc::internal {
namespace {

namespace pb = ::google::protobuf;
namespace in = ::lpc::introspection;

// "local" for "local:kv": the kind that prefixes a transport's counters.
std::string TransportKind(const std::string& target) {
  const size_t colon = target.find(':');
  return colon == std::string::npos ? target : target.substr(0, colon);
}

in::InterfaceInfo DescribeInterface(const InterfaceDescriptor& d) {
  in::InterfaceInfo info;
  info.set_name(std::string(d.full_name));
  info.set_uuid(std::string(d.uuid));
  info.set_version_major(d.version.major);
  info.set_version_minor(d.version.minor);
  // The message types come from the generated pool, where the interface's
  // .proto is registered by its generated code.
  const pb::ServiceDescriptor* service =
      pb::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(d.full_name));
  for (const MethodDescriptor& m : d.methods) {
    in::MethodInfo* mi = info.add_methods();
    mi->set_name(std::string(m.name));
    mi->set_id(m.id);
    mi->set_kind(std::string(MethodKindName(m.kind)));
    mi->set_oneway(m.oneway);
    mi->set_handles(m.handles);
    const pb::MethodDescriptor* pm =
        service == nullptr ? nullptr
                           : service->FindMethodByName(std::string(m.name));
    if (pm != nullptr) {
      mi->set_request_type(pm->input_type()->full_name());
      mi->set_response_type(pm->output_type()->full_name());
    }
  }
  return info;
}

class Introspection final : public in::IntrospectionService {
 public:
  explicit Introspection(const Server* server) : server_(server) {}

  absl::StatusOr<in::ServerInfo> GetServerInfo(CallContext&) override {
    in::ServerInfo info;
    info.set_pid(static_cast<uint32_t>(getpid()));
    info.set_uid(static_cast<uint32_t>(getuid()));
    const absl::Time start = server_->start_time();
    if (start != absl::InfinitePast()) {
      info.set_start_time_unix_ms(absl::ToUnixMillis(start));
      const absl::Duration up = absl::Now() - start;
      info.set_uptime_ms(
          static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(up))));
    }
    for (const std::string& t : server_->targets()) info.add_targets(t);
    for (const InterfaceDescriptor* d : server_->Interfaces()) {
      *info.add_interfaces() = DescribeInterface(*d);
    }
    const std::vector<std::string> targets = server_->targets();
    const std::vector<TransportReport> reports = server_->TransportReports();
    std::map<std::string, uint64_t> counters;
    uint64_t connections = 0;
    for (size_t i = 0; i < reports.size(); ++i) {
      connections += reports[i].connections.size();
      const std::string kind = TransportKind(targets[i]);
      for (const auto& [name, value] : reports[i].counters) {
        counters[absl::StrCat(kind, ".", name)] += value;
      }
      for (const auto& [reason, value] : reports[i].cutoffs) {
        counters[absl::StrCat(kind, ".cutoff.", reason)] += value;
      }
    }
    info.set_connections(static_cast<uint32_t>(connections));
    auto add = [&info](std::string name, uint64_t value) {
      in::Counter* c = info.add_counters();
      c->set_name(std::move(name));
      c->set_value(value);
    };
    add("calls_dispatched", server_->calls_dispatched());
    add("calls_failed", server_->calls_failed());
    for (auto& [name, value] : counters) add(name, value);
    return info;
  }

  absl::StatusOr<std::vector<in::ConnectionInfo>> ListConnections(
      CallContext&, std::map<std::string, uint64_t>* cutoffs) override {
    std::vector<in::ConnectionInfo> out;
    for (const TransportReport& r : server_->TransportReports()) {
      for (const ConnectionReport& c : r.connections) {
        in::ConnectionInfo& i = out.emplace_back();
        i.set_id(c.id);
        i.set_transport(c.transport);
        if (c.peer_uid.has_value()) i.set_peer_uid(*c.peer_uid);
        if (c.peer_pid.has_value()) i.set_peer_pid(*c.peer_pid);
        i.set_peer_address(c.peer_address);
        i.set_calls_in_flight(c.calls_in_flight);
        i.set_calls(c.calls);
        i.set_bytes_in(c.bytes_in);
        i.set_bytes_out(c.bytes_out);
        i.set_context_handles(c.context_handles);
        i.set_connected_unix_ms(c.connected_unix_ms);
      }
      for (const auto& [reason, value] : r.cutoffs) (*cutoffs)[reason] += value;
    }
    return out;
  }

  absl::StatusOr<std::string> GetFileDescriptorSet(
      CallContext&, const std::string& interface_name) override {
    if (server_->FindInterface(interface_name) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("the server does not serve ", interface_name));
    }
    return FileDescriptorSetFor(interface_name);
  }

  absl::StatusOr<std::string> Check(CallContext&,
                                    const std::string& service) override {
    if (!service.empty() && server_->FindInterface(service) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("the server does not serve ", service));
    }
    return std::string(server_->serving() ? "SERVING" : "NOT_SERVING");
  }

 private:
  const Server* const server_;
};

// Adds `file` to `set` after its imports, each file once.
void AddWithImports(const pb::FileDescriptor* file,
                    std::set<const pb::FileDescriptor*>* seen,
                    pb::FileDescriptorSet* set) {
  if (!seen->insert(file).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddWithImports(file->dependency(i), seen, set);
  }
  file->CopyTo(set->add_file());
}

}  // namespace

std::string_view IntrospectionInterfaceName() {
  return in::IntrospectionService::Descriptor().full_name;
}

std::unique_ptr<Service> MakeIntrospectionService(const Server* server) {
  return std::make_unique<Introspection>(server);
}

absl::StatusOr<std::string> FileDescriptorSetFor(std::string_view full_name) {
  const pb::ServiceDescriptor* service =
      pb::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(full_name));
  if (service == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no descriptor of ", std::string(full_name), " is compiled into the server"));
  }
  pb::FileDescriptorSet set;
  std::set<const pb::FileDescriptor*> seen;
  AddWithImports(service->file(), &seen, &set);
  return set.SerializeAsString();
}

}  // namespace lpc::internal
