// The stream test service's handlers.
#include "transports/grpc/stream_test_service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace lpc::stream_test {
namespace {

constexpr MethodDescriptor kMethods[] = {
    {"Count", kCount, false, MethodKind::kServerStreaming},
    {"Sum", kSum, false, MethodKind::kClientStreaming},
    {"Echo", kEcho, false, MethodKind::kBidiStreaming},
    {"FailAfter", kFailAfter, false, MethodKind::kServerStreaming},
    {"Hang", kHang, false, MethodKind::kBidiStreaming},
    {"Flood", kFlood, false, MethodKind::kServerStreaming},
    {"Reverse", kReverse, false, MethodKind::kUnary},
    {"Sink", kSink, false, MethodKind::kClientStreaming},
};

const InterfaceDescriptor kInterface{
    "lpc.test.StreamService", "0c7d2b4e-5a61-4f3e-9b28-7d4c1e0a9f35", {1, 0},
    absl::Span<const MethodDescriptor>(kMethods)};

// The handler's own bound: its deadline, plus a margin for the transport
// to report the end.
absl::Time Until(ServerStream& s) {
  return std::min(s.context().deadline(), absl::Now() + absl::Seconds(60)) +
         absl::Seconds(5);
}

}  // namespace

const InterfaceDescriptor& StreamInterface() { return kInterface; }

const MethodDescriptor& StreamMethod(StreamMethodId id) {
  return *kInterface.FindMethod(id);
}

absl::Status StreamService::Dispatch(uint32_t method_id, CallContext&,
                                     std::string_view, std::string*) {
  return absl::UnimplementedError(
      absl::StrCat("method ", method_id, " runs through StartCall"));
}

bool StreamService::UsesStartCall(uint32_t) const { return true; }

void StreamService::StartCall(uint32_t method_id,
                              std::shared_ptr<ServerStream> call) {
  switch (method_id) {
    case kCount:
      return RunCount(*call);
    case kSum:
      return SumNext(std::move(call), 0);
    case kEcho:
      return EchoNext(std::move(call));
    case kFailAfter:
      return RunFailAfter(*call);
    case kHang:
      return RunHang(*call);
    case kFlood:
      return RunFlood(*call);
    case kReverse: {
      ServerStream* raw = call.get();
      raw->Read([call = std::move(call)](
                    absl::StatusOr<std::optional<std::string>> r) {
        if (!r.ok() || !r->has_value()) {
          call->Finish(r.ok() ? absl::InvalidArgumentError("no request")
                              : r.status());
          return;
        }
        std::string reply(r->value().rbegin(), r->value().rend());
        ServerStream* s = call.get();
        s->Write(std::move(reply), [call](absl::Status st) {
          call->Finish(st);
        });
      });
      return;
    }
    case kSink:
      return SinkNext(std::move(call), 0);
  }
  call->Finish(absl::UnimplementedError(absl::StrCat("no method ", method_id)));
}

void StreamService::RunCount(ServerStream& call) {
  const absl::Time until = Until(call);
  auto request = ReadBlocking(call, until);
  int64_t n = 0;
  if (!request.ok() || !request->has_value() ||
      !absl::SimpleAtoi(**request, &n)) {
    call.Finish(absl::InvalidArgumentError("Count wants a number"));
    return;
  }
  call.context().response_metadata().emplace("x-count", **request);
  for (int64_t i = 0; i < n; ++i) {
    absl::Status s = WriteBlocking(call, absl::StrCat(i), until);
    if (!s.ok()) {
      call.Finish(s);
      return;
    }
  }
  call.Finish(absl::OkStatus());
}

void StreamService::RunFailAfter(ServerStream& call) {
  const absl::Time until = Until(call);
  auto request = ReadBlocking(call, until);
  std::vector<std::string> parts;
  if (request.ok() && request->has_value()) {
    parts = absl::StrSplit(**request, absl::MaxSplits(':', 2));
  }
  int k = 0, code = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &k) ||
      !absl::SimpleAtoi(parts[1], &code)) {
    call.Finish(absl::InvalidArgumentError("FailAfter wants k:code:message"));
    return;
  }
  for (int i = 0; i < k; ++i) {
    if (!WriteBlocking(call, absl::StrCat(i), until).ok()) break;
  }
  call.Finish(absl::Status(static_cast<absl::StatusCode>(code), parts[2]));
}

void StreamService::RunHang(ServerStream& call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++hangs_started_;
  }
  cv_.notify_all();
  const absl::Time until = Until(call);
  absl::Status failed;
  while (true) {
    auto r = ReadBlocking(call, until);
    if (!r.ok()) {
      failed = r.status();
      break;
    }
    if (!r->has_value()) {
      failed = absl::OkStatus();
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_hang_status_ = failed;
    if (!failed.ok() && call.context().IsCancelled()) ++hangs_cancelled_;
  }
  cv_.notify_all();
  call.Finish(failed);
}

void StreamService::RunFlood(ServerStream& call) {
  const absl::Time until = Until(call);
  auto request = ReadBlocking(call, until);
  std::vector<std::string> parts;
  if (request.ok() && request->has_value()) {
    parts = absl::StrSplit(**request, ':');
  }
  int64_t n = 0;
  size_t size = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &n) ||
      !absl::SimpleAtoi(parts[1], &size)) {
    call.Finish(absl::InvalidArgumentError("Flood wants n:size"));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    std::string m = absl::StrCat(i, ":");
    if (m.size() < size) m.resize(size, 'f');
    {
      std::lock_guard<std::mutex> lock(mu_);
      flood_in_write_ = true;
    }
    cv_.notify_all();
    absl::Status s = WriteBlocking(call, std::move(m), until);
    {
      std::lock_guard<std::mutex> lock(mu_);
      flood_in_write_ = false;
      if (s.ok()) ++flood_completed_;
    }
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        flood_finished_ = true;
      }
      cv_.notify_all();
      call.Finish(s);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    flood_finished_ = true;
  }
  cv_.notify_all();
  call.Finish(absl::OkStatus());
}

void StreamService::EchoNext(std::shared_ptr<ServerStream> call) {
  ServerStream* raw = call.get();
  raw->Read([call = std::move(call)](
                absl::StatusOr<std::optional<std::string>> r) mutable {
    if (!r.ok()) {
      call->Finish(r.status());
      return;
    }
    if (!r->has_value()) {
      call->Finish(absl::OkStatus());
      return;
    }
    ServerStream* s = call.get();
    s->Write(std::move(**r), [call = std::move(call)](absl::Status st) {
      if (!st.ok()) {
        call->Finish(st);
        return;
      }
      EchoNext(call);
    });
  });
}

void StreamService::SumNext(std::shared_ptr<ServerStream> call, int64_t sum) {
  ServerStream* raw = call.get();
  raw->Read([call = std::move(call),
             sum](absl::StatusOr<std::optional<std::string>> r) mutable {
    if (!r.ok()) {
      call->Finish(r.status());
      return;
    }
    if (!r->has_value()) {
      call->context().response_metadata().emplace("x-sum", absl::StrCat(sum));
      ServerStream* s = call.get();
      s->Write(absl::StrCat(sum),
               [call](absl::Status st) { call->Finish(st); });
      return;
    }
    int64_t v = 0;
    if (!absl::SimpleAtoi(**r, &v)) {
      call->Finish(absl::InvalidArgumentError("Sum wants numbers"));
      return;
    }
    SumNext(std::move(call), sum + v);
  });
}

void StreamService::SinkNext(std::shared_ptr<ServerStream> call,
                             int64_t count) {
  ServerStream* raw = call.get();
  raw->Read([this, call = std::move(call),
             count](absl::StatusOr<std::optional<std::string>> r) mutable {
    if (!r.ok()) {
      call->Finish(r.status());
      return;
    }
    if (!r->has_value()) {
      ServerStream* s = call.get();
      s->Write(absl::StrCat(count),
               [call](absl::Status st) { call->Finish(st); });
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++sink_messages_;
    }
    SinkNext(std::move(call), count + 1);
  });
}

bool StreamService::WaitForHangs(int started, int cancelled,
                                 absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout), [&] {
    return hangs_started_ >= started && hangs_cancelled_ >= cancelled;
  });
}

absl::Status StreamService::last_hang_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_hang_status_;
}

int64_t StreamService::flood_completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flood_completed_;
}

std::optional<int64_t> StreamService::WaitForFloodBlocked(
    absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout),
                      [&] { return flood_in_write_ || flood_finished_; })) {
    return std::nullopt;
  }
  return flood_completed_;
}

int64_t StreamService::sink_messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_messages_;
}

}  // namespace lpc::stream_test
