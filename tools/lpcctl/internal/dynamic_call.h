// Calls of methods known only at run time: `lpcctl call`.
//
// A DynamicInterface is built from what a server's introspection service
// says about one interface: the InterfaceInfo from GetServerInfo (uuid,
// version, methods with ordinal, kind and message types) and the
// FileDescriptorSet from GetFileDescriptorSet. From those it makes the
// runtime's InterfaceDescriptor and MethodDescriptors (which the local
// transport binds and dispatches by, and the gRPC transport names paths
// by), and a protobuf DescriptorPool whose DynamicMessages turn JSON into a
// request and a reply into JSON (the proto3 JSON mapping).
//
// Everything here comes from the server, so none of it is trusted: a
// malformed descriptor set or a method whose types it lacks is an error,
// never a crash.
//
// Thread safety: a DynamicInterface is immutable once created.
#ifndef LPC_TOOLS_LPCCTL_INTERNAL_DYNAMIC_CALL_H_
#define LPC_TOOLS_LPCCTL_INTERNAL_DYNAMIC_CALL_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/interface.h"
#include "runtime/introspection.pb.h"

namespace lpc::lpcctl {

class DynamicInterface {
 public:
  // INVALID_ARGUMENT when `file_descriptor_set` does not parse or a
  // method's kind is unknown.
  static absl::StatusOr<std::unique_ptr<DynamicInterface>> Create(
      const introspection::InterfaceInfo& info,
      const std::string& file_descriptor_set);

  DynamicInterface(const DynamicInterface&) = delete;
  DynamicInterface& operator=(const DynamicInterface&) = delete;

  const InterfaceDescriptor& descriptor() const { return descriptor_; }
  const introspection::InterfaceInfo& info() const { return info_; }

  // The method called `name`; NOT_FOUND lists the interface's methods.
  absl::StatusOr<const MethodDescriptor*> FindMethod(
      std::string_view name) const;

  // The method's request and response message types; NOT_FOUND when the
  // descriptor set lacks them.
  absl::StatusOr<const google::protobuf::Descriptor*> RequestType(
      const MethodDescriptor& method) const;
  absl::StatusOr<const google::protobuf::Descriptor*> ResponseType(
      const MethodDescriptor& method) const;

  // JSON of `type` to its serialized form; INVALID_ARGUMENT says what
  // does not parse.
  absl::StatusOr<std::string> JsonToBytes(const google::protobuf::Descriptor* type,
                                          std::string_view json) const;
  // Serialized `type` to JSON (every field, proto field names); compact
  // on one line unless `pretty`. DATA_LOSS when the bytes do not parse.
  absl::StatusOr<std::string> BytesToJson(const google::protobuf::Descriptor* type,
                                          std::string_view bytes,
                                          bool pretty) const;

 private:
  DynamicInterface() = default;

  const introspection::MethodInfo* Info(const MethodDescriptor& method) const;

  introspection::InterfaceInfo info_;
  std::vector<MethodDescriptor> methods_;  // Views into info_.
  InterfaceDescriptor descriptor_;         // Views into info_ and methods_.
  google::protobuf::SimpleDescriptorDatabase database_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  mutable google::protobuf::DynamicMessageFactory factory_;
};

struct DynamicCallOptions {
  absl::Duration deadline = absl::Seconds(5);
  Metadata metadata;
};

// Calls `method` with the serialized request `request` (JsonToBytes of
// its request type) and hands each reply (one for a unary method, each
// message of a server stream, none for a oneway method) to `on_reply` as
// compact JSON, as it arrives. Returns the call's status. Client- and
// bidi-streaming methods and methods that carry handles are UNIMPLEMENTED
// (lpcctl cannot supply a stream of requests or a file descriptor), and
// nothing is sent.
absl::Status CallDynamic(const std::shared_ptr<Channel>& channel,
                         const DynamicInterface& iface,
                         const MethodDescriptor& method, std::string request,
                         const DynamicCallOptions& options,
                         const std::function<void(const std::string&)>& on_reply);

}  // namespace lpc::lpcctl

#endif  // LPC_TOOLS_LPCCTL_INTERNAL_DYNAMIC_CALL_H_
