// The server interceptors that ship with lpc (runtime/interceptor.h):
//
//  - AccessLogInterceptor ("access_log"): one line per call, with the
//    method, the peer, the final status, the duration and the bytes moved.
//  - MetricsInterceptor ("metrics"): per-method call counts, error counts
//    and latency histograms, which Server::Metrics() prints.
//
// Both are registered by name, so a config file can turn them on:
//
//   server { name: "kv" local_port: "kv" interceptor: "access_log"
//            interceptor: "metrics" }
//
// Thread safety: both are thread-safe.
#ifndef LPC_RUNTIME_INTERCEPTORS_H_
#define LPC_RUNTIME_INTERCEPTORS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "runtime/interceptor.h"
#include "runtime/mutex.h"

namespace lpc {

class AccessLogInterceptor final : public ServerInterceptor {
 public:
  // Receives each line, without its newline. Called from the call's
  // thread; must be thread-safe.
  using Sink = std::function<void(std::string_view line)>;

  // Writes the lines to stderr (one write each).
  AccessLogInterceptor();
  explicit AccessLogInterceptor(Sink sink);

  // One line per call:
  //   access /example.kv.KeyValue/Get peer="local local:kv uid=1000 gid=1000
  //   pid=4242" status=OK duration_us=41 in=1/18B out=1/9B
  // `in` and `out` are messages/bytes from and to the client. A status
  // other than OK adds its message as msg="...".
  void OnFinish(const InterceptedCall& call, CallContext& ctx,
                const absl::Status& status, const CallStats& stats) override;

  // The line OnFinish writes.
  static std::string FormatLine(const InterceptedCall& call,
                                const CallContext& ctx,
                                const absl::Status& status,
                                const CallStats& stats);

 private:
  const Sink sink_;
};

class MetricsInterceptor final : public ServerInterceptor {
 public:
  // Latency buckets: bucket i counts calls that took less than
  // kBucketBoundsUs[i] microseconds (and at least the bound before it); the
  // last bucket takes the rest. Powers of 2 from 1 us to about 67 s.
  static constexpr int kBuckets = 28;
  static std::array<uint64_t, kBuckets> BucketBoundsUs();

  struct MethodStats {
    std::string method;  // "/example.kv.KeyValue/Get"
    uint64_t calls = 0;
    uint64_t errors = 0;                        // status other than OK
    std::map<std::string, uint64_t> by_code;    // "OK", "CANCELLED", ...
    std::array<uint64_t, kBuckets> buckets{};   // latency histogram
    double total_us = 0;
  };

  void OnFinish(const InterceptedCall& call, CallContext& ctx,
                const absl::Status& status, const CallStats& stats) override;

  // Every method called so far, sorted by method.
  std::vector<MethodStats> Snapshot() const;

  // The snapshot as text, one block per method:
  //   metrics /example.kv.KeyValue/Get calls=12 errors=1 mean_us=40.2
  //     p50_us<64 p90_us<128 p99_us<256
  //     codes OK=11 NOT_FOUND=1
  //     latency_us <32:3 <64:7 <128:2
  // (only non-empty buckets; "pNN_us<B": the NN-th percentile is below B).
  std::string Report() const override;

 private:
  mutable Mutex mu_;
  std::map<std::string, MethodStats, std::less<>> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lpc

#endif  // LPC_RUNTIME_INTERCEPTORS_H_
