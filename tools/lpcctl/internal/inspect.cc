// lpcctl list, show and health: questions to the introspection service.
#include <iostream>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "runtime/config.pb.h"
#include "runtime/introspection.lpc.h"
#include "tools/lpcctl/internal/commands.h"
#include "tools/lpcctl/internal/output.h"
#include "tools/lpcctl/internal/port_scan.h"
#include "transports/connect.h"

namespace lpc::lpcctl {
namespace {

namespace pb = google::protobuf;
using introspection::ConnectionInfo;
using introspection::IntrospectionClient;
using introspection::ServerInfo;

constexpr std::string_view kIntrospection = "lpc.introspection.Introspection";

std::string RuntimeDir(const Options& options) {
  return options.runtime_dir.empty() ? DefaultRuntimeDir() : options.runtime_dir;
}

// "example.kv.KeyValue 1.1, ...": the user's interfaces, without the
// built-in one every server has.
std::string Interfaces(const ServerInfo& info) {
  std::vector<std::string> names;
  for (const auto& i : info.interfaces()) {
    if (i.name() == kIntrospection) continue;
    names.push_back(
        absl::StrCat(i.name(), " ", i.version_major(), ".", i.version_minor()));
  }
  return names.empty() ? "-" : absl::StrJoin(names, ", ");
}

std::string Age(int64_t since_unix_ms) {
  const int64_t now = absl::ToUnixMillis(absl::Now());
  return FormatUptime(now > since_unix_ms ? now - since_unix_ms : 0);
}

absl::StatusOr<ServerInfo> GetServerInfo(const Options& options,
                                         std::string_view target) {
  absl::StatusOr<std::shared_ptr<Channel>> channel = Connect(options, target);
  if (!channel.ok()) return channel.status();
  IntrospectionClient client(*channel);
  CallContext ctx;
  ctx.set_timeout(options.deadline);
  return client.GetServerInfo(&ctx);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Channel>> Connect(const Options& options,
                                                 std::string_view target) {
  std::string full(target);
  if (!absl::StrContains(full, ':')) full = absl::StrCat("local:", full);
  config::Endpoint endpoint;
  endpoint.set_default_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options.deadline)));
  if (!options.runtime_dir.empty()) {
    endpoint.mutable_local()->set_runtime_dir(options.runtime_dir);
  }
  return ConnectTarget(full, &endpoint);
}

int Fail(std::string_view what, const absl::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "lpcctl: " << what << ": " << status << "\n";
  return static_cast<int>(status.code());
}

int RunList(const Options& options) {
  const std::string dir = RuntimeDir(options);
  absl::StatusOr<std::vector<PortFile>> ports = ScanRuntimeDir(dir);
  if (!ports.ok()) return Fail("list", ports.status());

  Table table({"PORT", "STATE", "PID", "UID", "CONNS", "UPTIME", "INTERFACES"});
  pb::Value json_ports = ListOf({});
  for (const PortFile& port : *ports) {
    pb::Value entry;
    auto& fields = *entry.mutable_struct_value()->mutable_fields();
    fields["name"] = StringValue(port.name);
    fields["path"] = StringValue(port.path);
    fields["socket_uid"] = NumberValue(port.socket_uid);
    if (port.lock_pid.has_value()) fields["lock_pid"] = NumberValue(*port.lock_pid);
    const std::string pid =
        port.lock_pid.has_value() ? absl::StrCat(*port.lock_pid) : "-";
    std::string state = PortStateName(port.state);
    if (port.state != PortState::kLive) {
      fields["state"] = StringValue(state);
      if (!port.error.empty()) fields["error"] = StringValue(port.error);
      table.AddRow({port.name, state, pid, absl::StrCat(port.socket_uid), "-", "-",
                    port.error.empty() ? "-" : port.error});
    } else if (absl::StatusOr<ServerInfo> info = GetServerInfo(options, port.name);
               info.ok()) {
      fields["state"] = StringValue(state);
      fields["server"] = ToValue(*info);
      table.AddRow({port.name, state, absl::StrCat(info->pid()),
                    absl::StrCat(info->uid()), absl::StrCat(info->connections()),
                    FormatUptime(info->uptime_ms()), Interfaces(*info)});
    } else {
      // Live (its lock is held) but not answering this client: refused by
      // its access policy, an older server without introspection, or busy.
      state = "error";
      fields["state"] = StringValue(state);
      fields["error"] = StringValue(info.status().ToString());
      table.AddRow({port.name, state, pid, absl::StrCat(port.socket_uid), "-", "-",
                    info.status().ToString()});
    }
    *json_ports.mutable_list_value()->add_values() = std::move(entry);
  }
  if (options.json) {
    pb::Struct out;
    (*out.mutable_fields())["runtime_dir"] = StringValue(dir);
    (*out.mutable_fields())["ports"] = std::move(json_ports);
    std::cout << ToJson(out, true) << "\n";
  } else if (ports->empty()) {
    std::cout << "no ports in " << dir << "\n";
  } else {
    std::cout << table.ToString();
  }
  return 0;
}

int RunShow(const Options& options, std::string_view target) {
  absl::StatusOr<std::shared_ptr<Channel>> channel = Connect(options, target);
  if (!channel.ok()) return Fail(target, channel.status());
  IntrospectionClient client(*channel);
  CallContext info_ctx;
  info_ctx.set_timeout(options.deadline);
  absl::StatusOr<ServerInfo> info = client.GetServerInfo(&info_ctx);
  if (!info.ok()) return Fail(target, info.status());
  CallContext conn_ctx;
  conn_ctx.set_timeout(options.deadline);
  std::map<std::string, uint64_t> cutoffs;
  absl::StatusOr<std::vector<ConnectionInfo>> conns =
      client.ListConnections(&cutoffs, &conn_ctx);
  if (!conns.ok()) return Fail(target, conns.status());

  if (options.json) {
    pb::Struct out;
    auto& fields = *out.mutable_fields();
    fields["server"] = ToValue(*info);
    std::vector<pb::Value> list;
    for (const ConnectionInfo& c : *conns) list.push_back(ToValue(c));
    fields["connections"] = ListOf(std::move(list));
    pb::Value cut;
    for (const auto& [reason, count] : cutoffs) {
      (*cut.mutable_struct_value()->mutable_fields())[reason] =
          NumberValue(static_cast<double>(count));
    }
    cut.mutable_struct_value();
    fields["cutoffs"] = std::move(cut);
    std::cout << ToJson(out, true) << "\n";
    return 0;
  }

  std::cout << "server pid " << info->pid() << ", uid " << info->uid()
            << ", up " << FormatUptime(info->uptime_ms()) << ", "
            << info->connections() << " connection"
            << (info->connections() == 1 ? "" : "s") << "\n";
  std::cout << "targets: " << absl::StrJoin(info->targets(), " ") << "\n\n";
  Table interfaces({"INTERFACE", "VERSION", "UUID", "METHODS"});
  for (const auto& i : info->interfaces()) {
    std::vector<std::string> methods;
    for (const auto& m : i.methods()) methods.push_back(m.name());
    interfaces.AddRow({i.name(), absl::StrCat(i.version_major(), ".", i.version_minor()),
                       i.uuid(), absl::StrJoin(methods, " ")});
  }
  std::cout << interfaces.ToString() << "\n";
  Table connections({"CONN", "TRANSPORT", "PEER_UID", "PEER_PID", "PEER",
                     "IN_FLIGHT", "CALLS", "BYTES_IN", "BYTES_OUT",
                     "CTX_HANDLES", "AGE"});
  for (const ConnectionInfo& c : *conns) {
    connections.AddRow(
        {absl::StrCat(c.id()), c.transport(),
         c.has_peer_uid() ? absl::StrCat(c.peer_uid()) : "-",
         c.has_peer_pid() ? absl::StrCat(c.peer_pid()) : "-",
         c.peer_address().empty() ? "-" : c.peer_address(),
         absl::StrCat(c.calls_in_flight()), absl::StrCat(c.calls()),
         absl::StrCat(c.bytes_in()), absl::StrCat(c.bytes_out()),
         absl::StrCat(c.context_handles()), Age(c.connected_unix_ms())});
  }
  std::cout << (conns->empty() ? "no connections\n" : connections.ToString())
            << "\n";
  Table counters({"COUNTER", "VALUE"});
  for (const auto& c : info->counters()) {
    counters.AddRow({c.name(), absl::StrCat(c.value())});
  }
  std::cout << counters.ToString() << "\n";
  Table cut({"CUT-OFF REASON", "COUNT"});
  for (const auto& [reason, count] : cutoffs) {
    cut.AddRow({reason, absl::StrCat(count)});
  }
  std::cout << (cutoffs.empty() ? "no connections cut off\n" : cut.ToString());
  return 0;
}

int RunHealth(const Options& options, std::string_view target) {
  absl::StatusOr<std::shared_ptr<Channel>> channel = Connect(options, target);
  if (!channel.ok()) return Fail(target, channel.status());
  IntrospectionClient client(*channel);
  CallContext ctx;
  ctx.set_timeout(options.deadline);
  absl::StatusOr<std::string> answer = client.Check(options.service, &ctx);
  if (!answer.ok()) return Fail(target, answer.status());
  // NOT_SERVING (or anything but SERVING) is a server that does not take
  // calls: UNAVAILABLE, as a call to it would end.
  const int code = *answer == "SERVING"
                       ? 0
                       : static_cast<int>(absl::StatusCode::kUnavailable);
  if (options.json) {
    pb::Struct out;
    (*out.mutable_fields())["status"] = StringValue(*answer);
    (*out.mutable_fields())["service"] = StringValue(options.service);
    std::cout << ToJson(out, false) << "\n";
  } else {
    std::cout << *answer << "\n";
  }
  return code;
}

}  // namespace lpc::lpcctl
