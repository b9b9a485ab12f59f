// Calls of a gRPC server through gRPC's asynchronous client API (each on a
// completion queue of its own, driven by the calling thread), with raw
// bytes: no generated code, and no gRPC callback-API thread in the
// process. For the tests of the health service and of which gRPC APIs the
// server uses.
//
// Thread safety: a RawStream is used by one thread at a time.
#ifndef LPC_TRANSPORTS_GRPC_RAW_CLIENT_TESTING_H_
#define LPC_TRANSPORTS_GRPC_RAW_CLIENT_TESTING_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/status.h>

namespace lpc::grpc_test {

// A channel to `target` (gRPC syntax), without credentials.
std::shared_ptr<grpc::Channel> RawChannel(const std::string& target);

// One unary call of `path` with `request`, bearing `metadata`; `reply` gets
// the reply's bytes when it is OK. At most 10 seconds.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& path, const std::string& request,
                      std::string* reply,
                      const std::map<std::string, std::string>& metadata = {});

// One streaming call of `path` (any kind; at most 10 seconds): the client
// sends `request` and half-closes, then reads.
class RawStream {
 public:
  RawStream(const std::shared_ptr<grpc::Channel>& channel,
            const std::string& path, const std::string& request);
  ~RawStream();
  RawStream(const RawStream&) = delete;
  RawStream& operator=(const RawStream&) = delete;

  // The next message, or nullopt once the stream ended.
  std::optional<std::string> Read();
  // Cancels the call from the client.
  void Cancel() { ctx_.TryCancel(); }
  // The call's status (after Read returned nullopt, or Cancel).
  grpc::Status Finish();

 private:
  // Waits for the operation tagged `tag`; whether it succeeded.
  bool Wait(void* tag);

  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
};

// grpc.health.v1 messages, encoded by hand: a HealthCheckRequest for
// `service`, and the status of a HealthCheckResponse (0 UNKNOWN, 1 SERVING,
// 2 NOT_SERVING, 3 SERVICE_UNKNOWN), -1 if the bytes are not one.
std::string HealthRequest(const std::string& service);
int HealthStatus(const std::string& response);

}  // namespace lpc::grpc_test

#endif  // LPC_TRANSPORTS_GRPC_RAW_CLIENT_TESTING_H_
