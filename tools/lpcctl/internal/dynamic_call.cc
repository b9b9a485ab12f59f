// DynamicInterface and CallDynamic: `lpcctl call` without generated code.
#include "tools/lpcctl/internal/dynamic_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/stream.h"

namespace lpc::lpcctl {
namespace {

namespace pb = google::protobuf;

absl::StatusOr<MethodKind> ParseKind(const std::string& name) {
  for (MethodKind kind :
       {MethodKind::kUnary, MethodKind::kServerStreaming,
        MethodKind::kClientStreaming, MethodKind::kBidiStreaming}) {
    if (MethodKindName(kind) == name) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the server names an unknown method kind \"", name, "\""));
}

absl::Status DecodeBytes(std::string_view bytes, std::string* out) {
  out->assign(bytes);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DynamicInterface>> DynamicInterface::Create(
    const introspection::InterfaceInfo& info,
    const std::string& file_descriptor_set) {
  std::unique_ptr<DynamicInterface> d(new DynamicInterface());
  d->info_ = info;
  pb::FileDescriptorSet files;
  if (!files.ParseFromString(file_descriptor_set)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the server's FileDescriptorSet for ", info.name(), " does not parse"));
  }
  for (const pb::FileDescriptorProto& file : files.file()) {
    // A file sent twice is the same file; Add refuses only a conflicting one.
    if (!d->database_.Add(file)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the server's FileDescriptorSet for ", info.name(),
          " has conflicting entries for ", file.name()));
    }
  }
  d->pool_ = std::make_unique<pb::DescriptorPool>(&d->database_);
  d->methods_.reserve(d->info_.methods_size());
  for (const introspection::MethodInfo& m : d->info_.methods()) {
    absl::StatusOr<MethodKind> kind = ParseKind(m.kind());
    if (!kind.ok()) return kind.status();
    MethodDescriptor method;
    method.name = m.name();
    method.id = m.id();
    method.oneway = m.oneway();
    method.kind = *kind;
    d->methods_.push_back(method);
  }
  d->descriptor_.full_name = d->info_.name();
  d->descriptor_.uuid = d->info_.uuid();
  d->descriptor_.version = {d->info_.version_major(), d->info_.version_minor()};
  d->descriptor_.methods = absl::MakeConstSpan(d->methods_);
  return d;
}

absl::StatusOr<const MethodDescriptor*> DynamicInterface::FindMethod(
    std::string_view name) const {
  if (const MethodDescriptor* m = descriptor_.FindMethodByName(name)) return m;
  std::vector<std::string> names;
  for (const MethodDescriptor& m : methods_) names.emplace_back(m.name);
  return absl::NotFoundError(absl::StrCat(info_.name(), " has no method \"",
                                          std::string(name), "\"; it has ",
                                          absl::StrJoin(names, ", ")));
}

const introspection::MethodInfo* DynamicInterface::Info(
    const MethodDescriptor& method) const {
  for (const introspection::MethodInfo& m : info_.methods()) {
    if (m.id() == method.id) return &m;
  }
  return nullptr;
}

absl::StatusOr<const pb::Descriptor*> DynamicInterface::RequestType(
    const MethodDescriptor& method) const {
  const introspection::MethodInfo* info = Info(method);
  const pb::Descriptor* type =
      info == nullptr ? nullptr
                      : pool_->FindMessageTypeByName(info->request_type());
  if (type == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "the server's descriptors lack the request type of ", info_.name(), ".",
        std::string(method.name), info == nullptr ? "" : ": " + info->request_type()));
  }
  return type;
}

absl::StatusOr<const pb::Descriptor*> DynamicInterface::ResponseType(
    const MethodDescriptor& method) const {
  const introspection::MethodInfo* info = Info(method);
  const pb::Descriptor* type =
      info == nullptr ? nullptr
                      : pool_->FindMessageTypeByName(info->response_type());
  if (type == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "the server's descriptors lack the response type of ", info_.name(),
        ".", std::string(method.name), info == nullptr ? "" : ": " + info->response_type()));
  }
  return type;
}

absl::StatusOr<std::string> DynamicInterface::JsonToBytes(
    const pb::Descriptor* type, std::string_view json) const {
  std::unique_ptr<pb::Message> msg(factory_.GetPrototype(type)->New());
  auto status = pb::util::JsonStringToMessage(
      pb::StringPiece(json.data(), json.size()), msg.get());
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request is not JSON of ", type->full_name(), ": ",
        std::string(status.message())));
  }
  return msg->SerializeAsString();
}

absl::StatusOr<std::string> DynamicInterface::BytesToJson(
    const pb::Descriptor* type, std::string_view bytes, bool pretty) const {
  std::unique_ptr<pb::Message> msg(factory_.GetPrototype(type)->New());
  if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        absl::StrCat("the reply does not parse as ", type->full_name()));
  }
  pb::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = pb::util::MessageToJsonString(*msg, &json, options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat("the reply has no JSON form: ",
                                            std::string(status.message())));
  }
  return json;
}

absl::Status CallDynamic(const std::shared_ptr<Channel>& channel,
                         const DynamicInterface& iface,
                         const MethodDescriptor& method, std::string request,
                         const DynamicCallOptions& options,
                         const std::function<void(const std::string&)>& on_reply) {
  const std::string what = absl::StrCat(iface.info().name(), ".", std::string(method.name));
  for (const introspection::MethodInfo& m : iface.info().methods()) {
    if (m.id() == method.id && m.handles()) {
      return absl::UnimplementedError(absl::StrCat(
          what, " carries file descriptors, which lpcctl cannot pass"));
    }
  }
  if (method.client_streams()) {
    return absl::UnimplementedError(absl::StrCat(
        what, " is ", std::string(MethodKindName(method.kind)),
        "; lpcctl calls unary and server-streaming methods only"));
  }
  absl::StatusOr<const google::protobuf::Descriptor*> reply_type =
      iface.ResponseType(method);
  if (!reply_type.ok()) return reply_type.status();

  CallContext ctx;
  ctx.set_timeout(options.deadline);
  for (const auto& [key, value] : options.metadata) {
    ctx.metadata().emplace(key, value);
  }
  const InterfaceDescriptor& desc = iface.descriptor();
  if (method.oneway) {
    return channel->SendOneway(desc, method, &ctx, std::move(request));
  }
  if (!method.server_streams()) {
    absl::StatusOr<std::string> reply =
        channel->Call(desc, method, &ctx, std::move(request));
    if (!reply.ok()) return reply.status();
    absl::StatusOr<std::string> json = iface.BytesToJson(*reply_type, *reply, false);
    if (!json.ok()) return json.status();
    on_reply(*json);
    return absl::OkStatus();
  }
  ClientReader<std::string> reader = ClientReader<std::string>::Start(
      channel, desc, method, &ctx, std::move(request), &DecodeBytes);
  std::string message;
  while (reader.Read(&message)) {
    absl::StatusOr<std::string> json = iface.BytesToJson(*reply_type, message, false);
    if (!json.ok()) {
      reader.Cancel();
      // The reply that did not decode is the error to report, not the
      // CANCELLED that the cancel just caused.
      reader.Finish().IgnoreError();
      return json.status();
    }
    on_reply(*json);
  }
  return reader.Finish();
}

}  // namespace lpc::lpcctl
