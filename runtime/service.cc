// Service: the default StartCall.
#include "runtime/service.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lpc {

void Service::StartCall(uint32_t method_id,
                        std::shared_ptr<ServerStream> call) {
  call->Finish(absl::UnimplementedError(
      absl::StrCat("method ", method_id, " of ",
                   std::string(descriptor().full_name),
                   " is not served through the call model")));
}

}  // namespace lpc
