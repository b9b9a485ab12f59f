// Service: the default StartCall.
#include "runtime/service.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/message.h"

namespace lpc {

void Service::StartCall(uint32_t method_id,
                        std::shared_ptr<ServerStream> call) {
  call->Finish(absl::UnimplementedError(
      absl::StrCat("method ", method_id, " of ",
                   std::string(descriptor().full_name),
                   " is not served through the call model")));
}

absl::Status Service::Dispatch(uint32_t method_id, CallContext& ctx,
                               std::string_view request,
                               std::string* response) {
  if (response == nullptr) {
    return absl::InvalidArgumentError("lpc: Dispatch needs a response buffer");
  }
  response->clear();  // Stays empty for a oneway method.
  ReceivedMessage message(request, nullptr);
  StringReplySink sink(response);
  return DispatchWith(method_id, ctx, message, sink);
}

absl::Status Service::DispatchWith(uint32_t method_id, CallContext& ctx,
                                   ReceivedMessage& request,
                                   ReplySink& reply) {
  std::string flat;
  const std::string_view in = Flatten(request, &flat);
  std::string response;
  absl::Status s = Dispatch(method_id, ctx, in, &response);
  if (!s.ok()) return s;
  if (descriptor().FindMethod(method_id) != nullptr &&
      descriptor().FindMethod(method_id)->oneway) {
    return s;
  }
  return reply.Write(BytesWriter(response));
}

}  // namespace lpc
