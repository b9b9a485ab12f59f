// The test service's handlers.
#include "transports/grpc/test_service.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lpc::grpc_test {
namespace {

constexpr MethodDescriptor kMethods[] = {
    {"Echo", kEcho, false},     {"Fail", kFail, false},
    {"Block", kBlock, false},   {"Inspect", kInspect, false},
    {"Notify", kNotify, true},  {"Sized", kSized, false},
    {"Hold", kHold, false},
};

const InterfaceDescriptor kInterface{
    "lpc.test.TestService", "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", {1, 2},
    absl::Span<const MethodDescriptor>(kMethods)};

constexpr absl::Duration kMaxWait = absl::Seconds(30);

}  // namespace

const InterfaceDescriptor& TestInterface() { return kInterface; }

const MethodDescriptor& TestMethod(TestMethodId id) {
  return *kInterface.FindMethod(id);
}

absl::Status TestService::Dispatch(uint32_t method_id, CallContext& ctx,
                                   std::string_view request,
                                   std::string* response) {
  switch (method_id) {
    case kEcho:
      response->assign(request);
      return absl::OkStatus();
    case kFail: {
      size_t colon = request.find(':');
      int code = 0;
      if (colon == std::string_view::npos ||
          !absl::SimpleAtoi(
              absl::string_view(request.data(), colon), &code)) {
        return absl::InvalidArgumentError("Fail wants <code>:<message>");
      }
      std::string_view message = request.substr(colon + 1);
      return absl::Status(static_cast<absl::StatusCode>(code),
                          absl::string_view(message.data(), message.size()));
    }
    case kBlock: {
      std::function<void(CallContext&)> hook;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++block_started_;
        hook = on_block_started_;
      }
      cv_.notify_all();
      if (hook) hook(ctx);
      bool cancelled = ctx.WaitForCancellation(absl::Now() + kMaxWait);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (cancelled) ++block_cancelled_;
      }
      cv_.notify_all();
      return cancelled ? absl::CancelledError("Block saw the cancellation")
                       : absl::InternalError("Block was never cancelled");
    }
    case kInspect: {
      const PeerIdentity& peer = ctx.peer();
      absl::StrAppend(response, "transport=", peer.transport, "\n");
      absl::StrAppend(response, "address=", peer.address, "\n");
      absl::StrAppend(response, "has_deadline=", ctx.has_deadline() ? 1 : 0,
                      "\n");
      absl::StrAppend(response, "path=", ctx.method_path(), "\n");
      for (const auto& [key, value] : ctx.metadata()) {
        absl::StrAppend(response, "md:", key, "=", value, "\n");
        ctx.response_metadata().emplace(absl::StrCat("echo-", key), value);
      }
      return absl::OkStatus();
    }
    case kNotify: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        notifies_.emplace_back(request);
      }
      cv_.notify_all();
      return absl::OkStatus();
    }
    case kSized: {
      size_t n = 0;
      if (!absl::SimpleAtoi(absl::string_view(request.data(), request.size()),
                            &n) ||
          n > (size_t{256} << 20)) {
        return absl::InvalidArgumentError("Sized wants a size up to 256 MiB");
      }
      response->assign(n, 'x');
      return absl::OkStatus();
    }
    case kHold: {
      std::unique_lock<std::mutex> lock(mu_);
      ++holds_;
      cv_.notify_all();
      bool released = cv_.wait_until(
          lock, absl::ToChronoTime(absl::Now() + kMaxWait),
          [&] { return released_; });
      if (!released) return absl::InternalError("Hold was never released");
      response->assign("held");
      return absl::OkStatus();
    }
  }
  return absl::UnimplementedError(absl::StrCat("no method ", method_id));
}

bool TestService::WaitFor(const std::function<bool()>& done,
                          absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout), done);
}

bool TestService::WaitForBlockStarted(int n, absl::Duration timeout) {
  return WaitFor([&] { return block_started_ >= n; }, timeout);
}

bool TestService::WaitForBlockCancelled(int n, absl::Duration timeout) {
  return WaitFor([&] { return block_cancelled_ >= n; }, timeout);
}

bool TestService::WaitForNotifies(int n, absl::Duration timeout) {
  return WaitFor([&] { return static_cast<int>(notifies_.size()) >= n; },
                 timeout);
}

bool TestService::WaitForHolds(int n, absl::Duration timeout) {
  return WaitFor([&] { return holds_ >= n; }, timeout);
}

std::vector<std::string> TestService::notifies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return notifies_;
}

void TestService::ReleaseHolds() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

}  // namespace lpc::grpc_test
