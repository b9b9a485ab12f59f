// The reference implementation of the conformance interface.
#include "tests/conformance/conformance_service.h"

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace lpc::conformance {

absl::StatusOr<AllTypes> ConformanceServiceImpl::Echo(lpc::CallContext& ctx,
                                                      const AllTypes& value) {
  return value;
}

absl::StatusOr<int64_t> ConformanceServiceImpl::Scalars(
    lpc::CallContext& ctx, bool b, int8_t i8, int16_t i16, int32_t i32,
    int64_t i64, uint8_t u8, uint16_t u16, uint32_t u32, uint64_t u64, float f,
    double d, uint64_t* u64_out, double* d_out) {
  // Every input is folded into the checks the client makes: the client
  // sends values whose identity it can verify from these outputs.
  *u64_out = u64 ^ (static_cast<uint64_t>(u8) << 8) ^
             (static_cast<uint64_t>(u16) << 16) ^
             (static_cast<uint64_t>(u32) << 32) ^ (b ? 1 : 0);
  *d_out = d + static_cast<double>(f);
  return i64 ^ (static_cast<int64_t>(i8) << 8) ^
         (static_cast<int64_t>(i16) << 16) ^ (static_cast<int64_t>(i32) << 32);
}

absl::Status ConformanceServiceImpl::Swap(lpc::CallContext& ctx,
                                          std::string* a, std::string* b) {
  std::swap(*a, *b);
  return absl::OkStatus();
}

absl::Status ConformanceServiceImpl::Split(lpc::CallContext& ctx,
                                           const std::string& text,
                                           std::vector<std::string>* words,
                                           int32_t* count) {
  *words = absl::StrSplit(text, ' ', absl::SkipEmpty());
  *count = static_cast<int32_t>(words->size());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ConformanceServiceImpl::EchoBytes(
    lpc::CallContext& ctx, const std::string& data) {
  return data;
}

void ConformanceServiceImpl::Record(lpc::CallContext& ctx,
                                    const std::string& event) {
  MutexLock lock(&mu_);
  recorded_.push_back(event);
}

absl::StatusOr<std::vector<std::string>> ConformanceServiceImpl::Recorded(
    lpc::CallContext& ctx) {
  MutexLock lock(&mu_);
  return recorded_;
}

absl::StatusOr<bool> ConformanceServiceImpl::WaitForCancel(
    lpc::CallContext& ctx, const std::string& tag, uint32_t max_millis) {
  {
    MutexLock lock(&mu_);
    recorded_.push_back("waiting:" + tag);
  }
  bool cancelled =
      ctx.WaitForCancellation(absl::Now() + absl::Milliseconds(max_millis));
  if (!cancelled) return false;
  {
    MutexLock lock(&mu_);
    ++cancellations_seen_;
  }
  // Answer as the caller ends: a gRPC server's deadline can fire a moment
  // before the client's own, and an OK answer could then reach a caller
  // whose deadline has not quite passed (docs/reliability.md, "Known
  // problems").
  if (!ctx.WasCancelledExplicitly()) {
    return absl::DeadlineExceededError("WaitForCancel: deadline exceeded");
  }
  return absl::CancelledError("WaitForCancel: cancelled");
}

absl::StatusOr<uint32_t> ConformanceServiceImpl::CancellationsSeen(
    lpc::CallContext& ctx) {
  MutexLock lock(&mu_);
  return cancellations_seen_;
}

absl::Status ConformanceServiceImpl::Fail(lpc::CallContext& ctx, int32_t code,
                                          const std::string& message) {
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

absl::StatusOr<std::string> ConformanceServiceImpl::MakeBytes(
    lpc::CallContext& ctx, uint64_t size) {
  if (size > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError("MakeBytes is limited to 1 GiB");
  }
  std::string out(size, '\0');
  for (uint64_t i = 0; i < size; ++i) out[i] = static_cast<char>(i * 131 + 7);
  return out;
}

absl::StatusOr<std::map<std::string, std::string>>
ConformanceServiceImpl::EchoMetadata(lpc::CallContext& ctx) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : ctx.metadata()) {
    if (k.rfind("x-", 0) == 0) out[k] = v;
  }
  ctx.response_metadata().emplace("echo-reply", "yes");
  return out;
}

absl::StatusOr<std::string> ConformanceServiceImpl::Peer(
    lpc::CallContext& ctx) {
  return ctx.peer().ToString();
}

ConformanceServiceImpl::~ConformanceServiceImpl() {
  std::vector<std::thread> repliers;
  {
    MutexLock lock(&mu_);
    repliers.swap(repliers_);
  }
  for (std::thread& t : repliers) t.join();
}

namespace {

Item MakeItem(uint32_t seq, uint32_t size) {
  Item item;
  item.set_seq(seq);
  item.set_data(std::string(size, 'i'));
  return item;
}

}  // namespace

absl::Status ConformanceServiceImpl::Range(lpc::CallContext& ctx,
                                           uint32_t count, uint32_t size,
                                           int32_t code,
                                           lpc::ServerWriter<Item>& writer) {
  if (size > (1u << 20)) return absl::InvalidArgumentError("size > 1 MiB");
  for (uint32_t i = 0; i < count; ++i) {
    if (!writer.Write(MakeItem(i, size))) {
      return absl::CancelledError("Range: the call ended");
    }
  }
  if (code == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(code), "range ended");
}

absl::Status ConformanceServiceImpl::Forever(lpc::CallContext& ctx,
                                             uint32_t size,
                                             lpc::ServerWriter<Item>& writer) {
  if (size > (1u << 20)) return absl::InvalidArgumentError("size > 1 MiB");
  for (uint32_t i = 0;; ++i) {
    if (!writer.Write(MakeItem(i, size))) break;
  }
  // A transport may fail the Write a moment before it cancels the context.
  if (ctx.WaitForCancellation(absl::Now() + absl::Seconds(5))) {
    MutexLock lock(&mu_);
    ++stream_ends_seen_;
  }
  return absl::CancelledError("Forever: the call ended");
}

absl::StatusOr<uint32_t> ConformanceServiceImpl::StreamEndsSeen(
    lpc::CallContext& ctx) {
  MutexLock lock(&mu_);
  return stream_ends_seen_;
}

absl::StatusOr<Totals> ConformanceServiceImpl::Total(
    lpc::CallContext& ctx, lpc::ServerReader<Item>& items) {
  Totals totals;
  Item item;
  while (items.Read(&item)) {
    totals.set_count(totals.count() + 1);
    totals.set_size(totals.size() + item.data().size());
  }
  return totals;
}

absl::Status ConformanceServiceImpl::Mirror(
    lpc::CallContext& ctx, lpc::ServerReaderWriter<Item, Item>& items) {
  Item item;
  while (items.Read(&item)) {
    item.set_seq(item.seq() + 1000);
    if (!items.Write(item)) break;
  }
  return absl::OkStatus();
}

absl::Status ConformanceServiceImpl::Early(
    lpc::CallContext& ctx, lpc::ServerReaderWriter<Item, Item>& items) {
  Item item;
  items.Read(&item);
  return absl::OutOfRangeError("enough");
}

void ConformanceServiceImpl::Later(lpc::AsyncUnaryCall<LaterResult> call,
                                   uint32_t v) {
  MutexLock lock(&mu_);
  repliers_.emplace_back([call, v] {
    LaterResult r;
    r.value = v + 1;
    call.Reply(r);
  });
}

}  // namespace lpc::conformance
