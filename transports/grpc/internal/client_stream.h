// GrpcChannel::OpenStream: an lpc::ClientStream on gRPC's callback generic
// client API (GenericStub::PrepareBidiStreamingCall with a
// ClientBidiReactor). Every method kind is a bidi-streaming call at the API
// level; on the wire it is whatever the method is.
//
// Flow control is gRPC's own (HTTP/2 windows, one outstanding write), and
// on top of it the client reads server messages ahead only up to
// ChannelOptions::stream_window, so a slow reader bounds its own memory and
// holds the server back. A Write's callback runs once the message is handed
// to gRPC, which happens when the previous write completed.
//
// Thread safety: as lpc::ClientStream.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_STREAM_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_STREAM_H_

#include <memory>

#include <grpcpp/channel.h>

#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"
#include "runtime/interface.h"
#include "transports/grpc/grpc_channel.h"

namespace lpc::grpc_transport {

// Opens a call of `method` on `channel`. `ctx` has its deadline set and was
// checked (Channel::PrepareCall). Never null: a call that cannot start
// reports why through Read and Finish.
std::shared_ptr<ClientStream> OpenGrpcStream(
    std::shared_ptr<grpc::Channel> channel,
    std::shared_ptr<GrpcChannel::CallTracker> tracker,
    const ChannelOptions& options, const InterfaceDescriptor& iface,
    const MethodDescriptor& method, CallContext* ctx);

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_CLIENT_STREAM_H_
