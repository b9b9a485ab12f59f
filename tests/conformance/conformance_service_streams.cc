// The streaming and asynchronous handlers of the conformance service, and
// the recording interceptor.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/conformance/conformance_service.h"

namespace lpc::conformance {
namespace {

// The status a handler ends a cancelled call with, as the caller ends it.
absl::Status CancelledStatus(const CallContext& ctx, const std::string& what) {
  if (ctx.WasCancelledExplicitly()) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  }
  return absl::DeadlineExceededError(absl::StrCat(what, ": deadline exceeded"));
}

std::string Tag(const CallContext& ctx) {
  auto it = ctx.metadata().find("conf-tag");
  return it == ctx.metadata().end() ? std::string() : it->second;
}

}  // namespace

// ------------------------------------------------------------ interceptor

absl::Status RecordingInterceptor::OnStart(const InterceptedCall& call,
                                           CallContext& ctx) {
  Add(ctx, "start");
  return absl::OkStatus();
}

void RecordingInterceptor::OnMessage(const InterceptedCall& call,
                                     CallContext& ctx,
                                     MessageDirection direction,
                                     std::string_view message) {
  Add(ctx, absl::StrCat(direction == MessageDirection::kClientToServer
                            ? "c2s "
                            : "s2c ",
                        message.size()));
}

void RecordingInterceptor::OnFinish(const InterceptedCall& call,
                                    CallContext& ctx,
                                    const absl::Status& status,
                                    const CallStats& stats) {
  Add(ctx, absl::StrCat("finish ", absl::StatusCodeToString(status.code())));
}

void RecordingInterceptor::Add(const CallContext& ctx, std::string event) {
  std::string tag = Tag(ctx);
  if (tag.empty()) return;
  MutexLock lock(&mu_);
  log_[tag].push_back(std::move(event));
}

std::vector<std::string> RecordingInterceptor::Log(
    const std::string& tag) const {
  MutexLock lock(&mu_);
  auto it = log_.find(tag);
  return it == log_.end() ? std::vector<std::string>() : it->second;
}

// ---------------------------------------------------------------- service

void ConformanceServiceImpl::StreamStarted() {
  MutexLock lock(&mu_);
  ++active_streams_;
}

void ConformanceServiceImpl::StreamEnded() {
  MutexLock lock(&mu_);
  --active_streams_;
}

void ConformanceServiceImpl::SawCancellation(const std::string& what) {
  MutexLock lock(&mu_);
  ++cancellations_seen_;
  recorded_.push_back("stream-cancelled:" + what);
}

absl::Status ConformanceServiceImpl::Generate(lpc::CallContext& ctx,
                                              uint32_t count, uint64_t size,
                                              int32_t end_code,
                                              ServerWriter<Item>& writer) {
  if (size > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError("Generate is limited to 1 GiB items");
  }
  StreamStarted();
  absl::Status result = absl::OkStatus();
  Item item;
  item.set_data(std::string(size, 'g'));
  for (uint32_t i = 0; i < count; ++i) {
    item.set_seq(i);
    if (!writer.Write(item)) break;
  }
  if (ctx.IsCancelled()) {
    SawCancellation("Generate");
    result = CancelledStatus(ctx, "Generate");
  } else if (end_code != 0) {
    result = absl::Status(static_cast<absl::StatusCode>(end_code),
                          "ended by the server");
  }
  StreamEnded();
  return result;
}

absl::StatusOr<ItemSum> ConformanceServiceImpl::Sum(lpc::CallContext& ctx,
                                                  ServerReader<Item>& items) {
  StreamStarted();
  ItemSum total;
  Item item;
  absl::Status failed;
  while (items.Read(&item)) {
    if (item.data() == "fail") {
      failed = absl::AbortedError(absl::StrCat("failed at ", item.seq()));
      break;
    }
    total.set_count(total.count() + 1);
    total.set_seq_sum(total.seq_sum() + item.seq());
    total.set_byte_count(total.byte_count() + item.data().size());
  }
  if (failed.ok() && ctx.IsCancelled()) {
    SawCancellation("Sum");
    failed = CancelledStatus(ctx, "Sum");
  }
  StreamEnded();
  if (!failed.ok()) return failed;
  return total;
}

absl::Status ConformanceServiceImpl::Chat(
    lpc::CallContext& ctx, ServerReaderWriter<Item, Item>& items) {
  StreamStarted();
  absl::Status result = absl::OkStatus();
  Item item;
  while (items.Read(&item)) {
    if (item.data() == "end") break;
    if (item.data() == "fail") {
      result = absl::AbortedError(absl::StrCat("failed at ", item.seq()));
      break;
    }
    if (!items.Write(item)) break;
  }
  if (result.ok() && ctx.IsCancelled()) {
    SawCancellation("Chat");
    result = CancelledStatus(ctx, "Chat");
  }
  StreamEnded();
  return result;
}

namespace {

// AsyncChat's loop: read, write back, read again; no thread held between.
class AsyncChatLoop : public std::enable_shared_from_this<AsyncChatLoop> {
 public:
  AsyncChatLoop(AsyncServerReaderWriter<Item, Item> call,
                ConformanceServiceImpl* service)
      : call_(std::move(call)), service_(service) {}

  void ReadNext() {
    std::shared_ptr<AsyncChatLoop> self = shared_from_this();
    call_.Read([self](std::optional<Item> item) {
      if (!item.has_value()) {
        self->End(absl::OkStatus());
      } else if (item->data() == "end") {
        self->End(absl::OkStatus());
      } else if (item->data() == "fail") {
        self->End(absl::AbortedError(absl::StrCat("failed at ", item->seq())));
      } else {
        self->call_.Write(*item, [self](bool ok) {
          if (ok) {
            self->ReadNext();
          } else {
            self->End(absl::OkStatus());
          }
        });
      }
    });
  }

 private:
  void End(absl::Status status) {
    if (status.ok() && call_.context().IsCancelled()) {
      service_->SawCancellation("AsyncChat");
      status = CancelledStatus(call_.context(), "AsyncChat");
    }
    call_.Finish(std::move(status));
    service_->StreamEnded();
  }

  AsyncServerReaderWriter<Item, Item> call_;
  ConformanceServiceImpl* const service_;
};

}  // namespace

void ConformanceServiceImpl::AsyncChat(
    AsyncServerReaderWriter<Item, Item> call) {
  StreamStarted();
  std::make_shared<AsyncChatLoop>(std::move(call), this)->ReadNext();
}

void ConformanceServiceImpl::Park(AsyncUnaryCall<ParkResult> call,
                                  const std::string& tag) {
  MutexLock lock(&mu_);
  recorded_.push_back("parked:" + tag);
  parked_.push_back(std::move(call));
}

absl::StatusOr<uint32_t> ConformanceServiceImpl::Release(
    lpc::CallContext& ctx) {
  std::vector<AsyncUnaryCall<ParkResult>> calls;
  {
    MutexLock lock(&mu_);
    calls.swap(parked_);
  }
  const uint32_t n = static_cast<uint32_t>(calls.size());
  for (const AsyncUnaryCall<ParkResult>& call : calls) {
    call.Reply(ParkResult{n});
  }
  return n;
}

absl::StatusOr<uint32_t> ConformanceServiceImpl::Parked(lpc::CallContext& ctx) {
  MutexLock lock(&mu_);
  return static_cast<uint32_t>(parked_.size());
}

absl::StatusOr<uint32_t> ConformanceServiceImpl::ActiveStreams(
    lpc::CallContext& ctx) {
  MutexLock lock(&mu_);
  return active_streams_;
}

void ConformanceServiceImpl::set_relay_channel(
    std::shared_ptr<Channel> channel) {
  MutexLock lock(&mu_);
  relay_channel_ = std::move(channel);
}

absl::StatusOr<bool> ConformanceServiceImpl::Relay(lpc::CallContext& ctx,
                                                   const std::string& tag,
                                                   uint32_t max_millis) {
  std::shared_ptr<Channel> channel;
  {
    MutexLock lock(&mu_);
    channel = relay_channel_;
  }
  if (channel == nullptr) {
    return absl::FailedPreconditionError("Relay: no channel to relay to");
  }
  ConformanceClient client(std::move(channel));
  CallContext inner(&ctx);
  return client.WaitForCancel(tag, max_millis, &inner);
}

absl::StatusOr<std::vector<std::string>> ConformanceServiceImpl::Intercepted(
    lpc::CallContext& ctx, const std::string& tag) {
  return interceptor_->Log(tag);
}

}  // namespace lpc::conformance
