// frames_client: sends frames through the frames example's server, over
// the transport its config names, and checks every byte that comes back.
//
//   frames_client --lpc_config=examples/frames/local.textproto [frames] [bytes]
//   frames_client --lpc_config=examples/frames/grpc.textproto [frames] [bytes]
//
// Sends `frames` frames (default 20) of `bytes` bytes (default 8 MiB), each
// with different contents: Invert must return every byte inverted, and
// Checksum the frame's FNV-1a hash. Then one frame over the server's limit,
// which must fail with INVALID_ARGUMENT (not with --no_oversize). Prints
// the Invert round trip (p50 and slowest) and exits non-zero on any
// mismatch.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/frames/fnv.h"
#include "examples/frames/frames.lpc.h"
#include "runtime/buffer.h"
#include "runtime/config.h"
#include "runtime/flags.h"
#include "transports/connect.h"

ABSL_FLAG(bool, no_oversize, false,
          "skip the last call, one frame over the server's limit");

using example::frames::FrameProcessorClient;

namespace {

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "frames_client: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

// Frame `n`'s contents: every frame differs, and so does every byte's
// neighbourhood, so a stale or shifted byte shows.
void Fill(uint32_t n, uint8_t* frame, size_t size) {
  uint32_t x = n * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    frame[i] = static_cast<uint8_t>(x);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = lpc::ParseFlags(
      argc, argv, "frames_client --lpc_config=<file> [frames] [bytes]");
  absl::StatusOr<lpc::config::Config> config = lpc::LoadConfigFromArgsOrEnv();
  if (!config.ok()) return Fail(config.status(), "config");
  const bool oversize = !absl::GetFlag(FLAGS_no_oversize);
  const long frames = args.size() > 0 ? std::atol(args[0].c_str()) : 20;
  const long bytes = args.size() > 1 ? std::atol(args[1].c_str()) : 8 << 20;
  if (frames < 1 || bytes < 1 || bytes > example::frames::kMaxFrameBytes) {
    std::fprintf(stderr, "usage: frames_client --lpc_config=<file> [frames >= 1] "
                         "[bytes in 1..%u]\n", example::frames::kMaxFrameBytes);
    return 2;
  }
  auto channel =
      lpc::ConnectFromConfig(*config, FrameProcessorClient::Descriptor().full_name);
  if (!channel.ok()) return Fail(channel.status(), "connect");
  FrameProcessorClient processor(*channel);
  std::printf("frames_client: via %s\n",
              std::string((*channel)->transport_name()).c_str());

  // Each frame goes in a buffer from the channel (a shared one on the
  // local port), filled in place; sending it gives it up. `expected` is the
  // same frame, kept to check the answers.
  std::string expected(static_cast<size_t>(bytes), '\0');
  std::vector<double> round_trips_ms;
  int inverted_ok = 0, checksums_ok = 0;
  for (long n = 0; n < frames; ++n) {
    auto* want = reinterpret_cast<uint8_t*>(expected.data());
    Fill(static_cast<uint32_t>(n), want, expected.size());
    absl::StatusOr<lpc::Buffer> frame = processor.NewBuffer(expected.size());
    if (!frame.ok()) return Fail(frame.status(), "NewBuffer");
    Fill(static_cast<uint32_t>(n), frame->data(), frame->size());
    const absl::Time start = absl::Now();
    absl::StatusOr<lpc::BufferView> inverted =
        processor.Invert(std::move(*frame));
    round_trips_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!inverted.ok()) return Fail(inverted.status(), "Invert");
    bool same = inverted->size() == expected.size();
    for (size_t i = 0; same && i < expected.size(); ++i) {
      same = inverted->data()[i] == 255 - want[i];
    }
    inverted_ok += same;
    absl::StatusOr<lpc::Buffer> again = processor.NewBuffer(expected.size());
    if (!again.ok()) return Fail(again.status(), "NewBuffer");
    std::memcpy(again->data(), want, expected.size());
    absl::StatusOr<uint64_t> sum = processor.Checksum(std::move(*again));
    if (!sum.ok()) return Fail(sum.status(), "Checksum");
    checksums_ok += *sum == example::frames::Fnv1a64(expected);
  }
  std::printf("frames_client: %ld frames of %ld bytes: inverted %d/%ld exact, "
              "checksums %d/%ld right\n",
              frames, bytes, inverted_ok, frames, checksums_ok, frames);
  std::sort(round_trips_ms.begin(), round_trips_ms.end());
  const double p50 = round_trips_ms[round_trips_ms.size() / 2];
  std::printf("frames_client: Invert round trip p50 %.2f ms, slowest %.2f ms "
              "(%.2f GB/s, the frame both ways)\n",
              p50, round_trips_ms.back(), 2.0 * static_cast<double>(bytes) / (p50 * 1e6));

  bool refused_ok = true;
  if (oversize) {
    const size_t too_big = example::frames::kMaxFrameBytes + size_t{1};
    absl::StatusOr<lpc::Buffer> big = processor.NewBuffer(too_big);
    if (!big.ok()) return Fail(big.status(), "NewBuffer");
    absl::StatusOr<uint64_t> refused = processor.Checksum(std::move(*big));
    std::printf("frames_client: a frame of %zu bytes -> %s\n", too_big,
                refused.status().ToString().c_str());
    refused_ok = absl::IsInvalidArgument(refused.status());
  }
  const bool ok =
      inverted_ok == frames && checksums_ok == frames && refused_ok;
  return ok ? 0 : 1;
}
