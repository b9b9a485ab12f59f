// Registers the "grpc" target scheme when //transports/grpc is linked in.
#include "transports/grpc/grpc_channel.h"

namespace lpc {
namespace {

const bool kGrpcRegistered = [] {
  RegisterGrpcTransport();
  return true;
}();

}  // namespace
}  // namespace lpc
