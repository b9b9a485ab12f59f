// lpcctl call: a call of any method the server describes, by JSON.
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/introspection.lpc.h"
#include "tools/lpcctl/internal/commands.h"
#include "tools/lpcctl/internal/dynamic_call.h"
#include "tools/lpcctl/internal/output.h"

namespace lpc::lpcctl {
namespace {

namespace pb = google::protobuf;
using introspection::InterfaceInfo;
using introspection::IntrospectionClient;
using introspection::ServerInfo;

// The interface `name` names: by full name, or by its last component when
// exactly one interface has it.
absl::StatusOr<InterfaceInfo> FindInterface(const ServerInfo& info,
                                            std::string_view name) {
  std::vector<const InterfaceInfo*> by_short_name;
  std::vector<std::string> all;
  for (const InterfaceInfo& i : info.interfaces()) {
    if (i.name() == name) return i;
    const std::string_view full = i.name();
    const size_t dot = full.rfind('.');
    if (full.substr(dot == std::string_view::npos ? 0 : dot + 1) == name) {
      by_short_name.push_back(&i);
    }
    all.push_back(i.name());
  }
  if (by_short_name.size() == 1) return *by_short_name[0];
  return absl::NotFoundError(absl::StrCat(
      "the server ", by_short_name.empty() ? "serves no" : "has several",
      " interface \"", std::string(name), "\"; it serves ", absl::StrJoin(all, ", ")));
}

// The reply's JSON text as a Value, for --json (it came from protobuf's
// printer, so it parses).
pb::Value ReplyValue(const std::string& json) {
  pb::Value v;
  if (!pb::util::JsonStringToMessage(json, &v).ok()) v.set_string_value(json);
  return v;
}

}  // namespace

int RunCall(const Options& options, std::string_view target,
            std::string_view method_name, std::string_view request_json) {
  const size_t dot = method_name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == method_name.size()) {
    std::cerr << "lpcctl: call: \"" << method_name
              << "\" is not Interface.Method\n";
    return kUsageError;
  }
  const std::string_view iface_name = method_name.substr(0, dot);
  const std::string_view short_method = method_name.substr(dot + 1);

  absl::StatusOr<std::shared_ptr<Channel>> channel = Connect(options, target);
  if (!channel.ok()) return Fail(target, channel.status());
  IntrospectionClient introspection(*channel);
  CallContext info_ctx;
  info_ctx.set_timeout(options.deadline);
  absl::StatusOr<ServerInfo> info = introspection.GetServerInfo(&info_ctx);
  if (!info.ok()) return Fail(target, info.status());
  absl::StatusOr<InterfaceInfo> iface_info = FindInterface(*info, iface_name);
  if (!iface_info.ok()) return Fail(target, iface_info.status());
  CallContext fds_ctx;
  fds_ctx.set_timeout(options.deadline);
  absl::StatusOr<std::string> files =
      introspection.GetFileDescriptorSet(iface_info->name(), &fds_ctx);
  if (!files.ok()) return Fail(target, files.status());
  absl::StatusOr<std::unique_ptr<DynamicInterface>> iface =
      DynamicInterface::Create(*iface_info, *files);
  if (!iface.ok()) return Fail(target, iface.status());
  absl::StatusOr<const MethodDescriptor*> method = (*iface)->FindMethod(short_method);
  if (!method.ok()) return Fail(target, method.status());
  absl::StatusOr<const pb::Descriptor*> request_type = (*iface)->RequestType(**method);
  if (!request_type.ok()) return Fail(target, request_type.status());
  absl::StatusOr<std::string> request =
      (*iface)->JsonToBytes(*request_type, request_json);
  if (!request.ok()) {
    std::cerr << "lpcctl: call: " << request.status().message() << "\n";
    return kUsageError;
  }

  DynamicCallOptions call_options;
  call_options.deadline = options.deadline;
  call_options.metadata = options.metadata;
  const bool streams = (*method)->server_streams();
  std::vector<std::string> replies;
  absl::Status status = CallDynamic(
      *channel, **iface, **method, std::move(*request), call_options,
      [&](const std::string& json) {
        // A stream's messages are printed as they come, one line each; a
        // unary reply once the status is known.
        if (!streams) {
          replies.push_back(json);
        } else if (options.json) {
          pb::Struct line;
          (*line.mutable_fields())["reply"] = ReplyValue(json);
          std::cout << ToJson(line, false) << std::endl;
        } else {
          std::cout << json << std::endl;
        }
      });

  if (options.json) {
    pb::Struct out;
    if (!replies.empty()) (*out.mutable_fields())["reply"] = ReplyValue(replies[0]);
    (*out.mutable_fields())["status"] = StatusValue(status);
    std::cout << ToJson(out, !streams) << "\n";
  } else {
    for (const std::string& json : replies) std::cout << json << "\n";
    std::cout << status << "\n";
  }
  return static_cast<int>(status.code());
}

}  // namespace lpc::lpcctl
