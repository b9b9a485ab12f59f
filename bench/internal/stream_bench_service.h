// The pieces of bench/lpc_stream.cc: a byte-level streaming service whose
// handlers are asynchronous (no thread waits per message), its server (a
// forked child for the gRPC and local transports, in this process for the
// in-process one), and the client loops that count messages.
//
// Thread safety: ServerProcess is used from one thread; the loops run on
// the stream's callbacks and are waited for by the calling thread.
#ifndef LPC_BENCH_INTERNAL_STREAM_BENCH_SERVICE_H_
#define LPC_BENCH_INTERNAL_STREAM_BENCH_SERVICE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/call.h"
#include "runtime/channel.h"
#include "runtime/server.h"

namespace lpc::bench::stream_bench {

enum class Direction { kDown, kUp };

// Opens the stream of `direction`'s method on `channel`.
std::shared_ptr<ClientStream> Open(Channel& channel, Direction direction,
                                   CallContext* ctx);

struct Counted {
  int64_t messages = 0;
  double elapsed_s = 0;
};

// Down: asks for messages of `payload` bytes and reads them for `seconds`
// (each checked for its sequence number), then cancels.
absl::StatusOr<Counted> ReadFor(ClientStream& stream, size_t payload,
                                double seconds);
// Up: writes messages of `payload` bytes for `seconds`, half-closes, and
// checks the server's count; the time runs until that count arrived.
absl::StatusOr<Counted> WriteFor(ClientStream& stream, size_t payload,
                                 double seconds);

// The server of one run.
class ServerProcess {
 public:
  ServerProcess();
  ~ServerProcess();
  // "grpc-unix", "grpc-tcp", "local" (forked, pinned to `cpu`) or
  // "inprocess".
  bool Start(const std::string& transport, int cpu, int timeout_s);
  absl::StatusOr<std::shared_ptr<Channel>> Connect();
  void Stop();

 private:
  std::string transport_;
  std::string dir_;
  std::string target_;
  pid_t pid_ = -1;
  int stop_fd_ = -1;
  // In-process only.
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<Channel> inprocess_channel_;
};

}  // namespace lpc::bench::stream_bench

#endif  // LPC_BENCH_INTERNAL_STREAM_BENCH_SERVICE_H_
