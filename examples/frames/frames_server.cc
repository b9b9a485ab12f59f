// frames_server: serves the frames example on the listeners its config
// names (see server.textproto).
//
//   frames_server --lpc_config=examples/frames/server.textproto
//
// Prints "frames_server: ready <targets>", serves until SIGINT/SIGTERM, then
// prints how many frames and bytes it processed.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/frames/fnv.h"
#include "runtime/buffer.h"
#include "runtime/flags.h"
#include "runtime/serve.h"
#include "examples/frames/frames.lpc.h"

namespace example::frames {

class FrameProcessorImpl final : public FrameProcessorService {
 public:
  // Reads the frame in place (on the local port, the client's chunk of
  // the connection's same-uid buffer pool, or a read-only mapping of its
  // sealed memfd) and returns the result in a buffer from the call's
  // context, which goes back the same way (a heap buffer over gRPC).
  absl::StatusOr<lpc::Buffer> Invert(lpc::CallContext& ctx,
                                     const lpc::BufferView& frame) override {
    if (absl::Status s = CheckSize(frame.size()); !s.ok()) return s;
    absl::StatusOr<lpc::Buffer> out = ctx.NewBuffer(frame.size());
    if (!out.ok()) return out.status();
    const uint8_t* in = frame.data();
    uint8_t* inverted = out->data();
    for (size_t i = 0; i < frame.size(); ++i) {
      inverted[i] = static_cast<uint8_t>(255 - in[i]);
    }
    Count(frame.size());
    return out;
  }

  absl::StatusOr<uint64_t> Checksum(lpc::CallContext& ctx,
                                    const lpc::BufferView& frame) override {
    if (absl::Status s = CheckSize(frame.size()); !s.ok()) return s;
    Count(frame.size());
    return Fnv1a64(frame.view());
  }

  uint64_t frames() const { return frames_.load(); }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  static absl::Status CheckSize(size_t size) {
    if (size > kMaxFrameBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "frame of ", size, " bytes exceeds kMaxFrameBytes (",
          kMaxFrameBytes, ")"));
    }
    return absl::OkStatus();
  }
  void Count(size_t n) {
    frames_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(n, std::memory_order_relaxed);
  }

  std::atomic<uint64_t> frames_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace example::frames

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "frames_server --lpc_config=<file>");
  if (!args.empty()) {
    std::fprintf(stderr, "frames_server: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  example::frames::FrameProcessorImpl processor;
  const int code = lpc::ServeUntilSignal("frames_server", "frames", &processor);
  if (code == 0) {
    std::printf("frames_server: processed %llu frames, %llu bytes\n",
                static_cast<unsigned long long>(processor.frames()),
                static_cast<unsigned long long>(processor.bytes()));
  }
  return code;
}
