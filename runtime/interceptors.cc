// The access log and metrics interceptors.
#include "runtime/interceptors.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lpc {
namespace {

// Quotes `s` for a log line: backslash, double quote and control bytes
// escaped, so that a peer-chosen string cannot forge a line or a field.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", c));
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

void WriteToStderr(std::string_view line) {
  std::string out(line);
  out += '\n';
  // One write: lines of concurrent calls do not interleave.
  const ssize_t unused = ::write(2, out.data(), out.size());
  (void)unused;
}

int BucketOf(absl::Duration d) {
  const int64_t us = absl::ToInt64Microseconds(d);
  int b = 0;
  while (b < MetricsInterceptor::kBuckets - 1 && us >= (int64_t{1} << b)) ++b;
  return b;
}

}  // namespace

AccessLogInterceptor::AccessLogInterceptor() : sink_(WriteToStderr) {}

AccessLogInterceptor::AccessLogInterceptor(Sink sink)
    : sink_(sink != nullptr ? std::move(sink) : Sink(WriteToStderr)) {}

std::string AccessLogInterceptor::FormatLine(const InterceptedCall& call,
                                             const CallContext& ctx,
                                             const absl::Status& status,
                                             const CallStats& stats) {
  std::string line = absl::StrCat(
      "access ", std::string(call.method_path), " peer=", Quote(ctx.peer().ToString()),
      " status=", absl::StatusCodeToString(status.code()),
      " duration_us=", absl::ToInt64Microseconds(stats.duration),
      " in=", stats.request_messages, "/", stats.request_bytes, "B",
      " out=", stats.response_messages, "/", stats.response_bytes, "B");
  if (!status.ok()) {
    absl::StrAppend(&line, " msg=",
                    Quote(std::string_view(status.message().data(),
                                           status.message().size())));
  }
  return line;
}

void AccessLogInterceptor::OnFinish(const InterceptedCall& call,
                                    CallContext& ctx,
                                    const absl::Status& status,
                                    const CallStats& stats) {
  sink_(FormatLine(call, ctx, status, stats));
}

std::array<uint64_t, MetricsInterceptor::kBuckets>
MetricsInterceptor::BucketBoundsUs() {
  std::array<uint64_t, kBuckets> bounds{};
  for (int i = 0; i < kBuckets; ++i) bounds[i] = uint64_t{1} << i;
  return bounds;
}

void MetricsInterceptor::OnFinish(const InterceptedCall& call,
                                  CallContext& ctx, const absl::Status& status,
                                  const CallStats& stats) {
  (void)ctx;
  const int bucket = BucketOf(stats.duration);
  const double us = absl::ToDoubleMicroseconds(stats.duration);
  MutexLock lock(&mu_);
  auto it = methods_.find(call.method_path);
  if (it == methods_.end()) {
    it = methods_.emplace(std::string(call.method_path), MethodStats{}).first;
    it->second.method = std::string(call.method_path);
  }
  MethodStats& m = it->second;
  ++m.calls;
  if (!status.ok()) ++m.errors;
  ++m.by_code[absl::StatusCodeToString(status.code())];
  ++m.buckets[bucket];
  m.total_us += us;
}

std::vector<MetricsInterceptor::MethodStats> MetricsInterceptor::Snapshot()
    const {
  MutexLock lock(&mu_);
  std::vector<MethodStats> out;
  out.reserve(methods_.size());
  for (const auto& [name, m] : methods_) out.push_back(m);
  return out;
}

std::string MetricsInterceptor::Report() const {
  const std::array<uint64_t, kBuckets> bounds = BucketBoundsUs();
  // The bound of the bucket that holds the `q`-quantile call.
  auto quantile_bound = [&](const MethodStats& m, double q) -> std::string {
    // Nearest rank: the ceil(q * calls)-th call, counting from 1.
    const double exact = q * static_cast<double>(m.calls);
    uint64_t rank = static_cast<uint64_t>(exact);
    if (static_cast<double>(rank) < exact || rank == 0) ++rank;
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += m.buckets[b];
      if (seen >= rank) {
        return b == kBuckets - 1 ? std::string("inf")
                                 : absl::StrCat(bounds[b]);
      }
    }
    return "inf";
  };
  std::string out;
  for (const MethodStats& m : Snapshot()) {
    absl::StrAppend(&out, "metrics ", m.method, " calls=", m.calls,
                    " errors=", m.errors,
                    absl::StrFormat(" mean_us=%.1f",
                                    m.calls == 0 ? 0.0 : m.total_us / m.calls),
                    "\n  p50_us<", quantile_bound(m, 0.5), " p90_us<",
                    quantile_bound(m, 0.9), " p99_us<", quantile_bound(m, 0.99),
                    "\n  codes");
    for (const auto& [code, n] : m.by_code) absl::StrAppend(&out, " ", code, "=", n);
    absl::StrAppend(&out, "\n  latency_us");
    for (int b = 0; b < kBuckets; ++b) {
      if (m.buckets[b] == 0) continue;
      if (b == kBuckets - 1) {
        absl::StrAppend(&out, " >=", bounds[b - 1], ":", m.buckets[b]);
      } else {
        absl::StrAppend(&out, " <", bounds[b], ":", m.buckets[b]);
      }
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace lpc
