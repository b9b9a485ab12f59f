// The kvstore's transactions over gRPC, where a context handle belongs to
// a lease (docs/handles.md, "Leases (gRPC)"): a stock gRPC client gets a
// lease in the initial metadata and sends it back; calls without it, or
// with another, get NOT_FOUND; a lease that lapses runs its contexts down;
// the lpc channel renews its lease while it lives and releases it when it
// is destroyed.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/time/clock.h"
#include "examples/kvstore/kv_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/context_handle.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"

namespace example::kv {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::MatchesRegex;


struct AbortWatch {
  lpc::Mutex mu;
  lpc::CondVar cv;
  int aborted ABSL_GUARDED_BY(mu) = 0;

  void Aborted() {
    lpc::MutexLock lock(&mu);
    ++aborted;
    cv.SignalAll();
  }
  // Waits until `n` aborts ran or `deadline`; returns the count.
  int WaitFor(int n, absl::Time deadline) {
    lpc::MutexLock lock(&mu);
    while (aborted < n && cv.WaitWithDeadline(&mu, deadline)) {
    }
    return aborted;
  }
};

// A unary call by a stock gRPC client: raw protobuf messages, and the
// metadata it sends and receives.
struct RawResult {
  grpc::Status status;
  std::string reply;
  std::string lease;  // lpc-lease in the reply's initial metadata.
};

class TxnGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    impl_.set_on_txn_aborted([this] { watch_.Aborted(); });
    ASSERT_TRUE(server_.RegisterService(&impl_).ok());
    lpc::GrpcServerOptions go;
    go.listen_addresses = {"127.0.0.1:0"};
    go.context_lease_timeout = LeaseTimeout();
    auto transport = std::make_unique<lpc::GrpcServerTransport>(go);
    lpc::GrpcServerTransport* raw = transport.get();
    ASSERT_TRUE(server_.AddTransport(std::move(transport)).ok());
    ASSERT_TRUE(server_.Start().ok());
    target_ = "127.0.0.1:" + std::to_string(raw->ports().at(0));
    stock_ = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  }
  // Long enough that no lease lapses while a test runs.
  virtual absl::Duration LeaseTimeout() { return absl::Seconds(60); }

  void TearDown() override {
    server_.Shutdown();
    ASSERT_TRUE(lpc::internal::DrainRundowns(absl::Now() + absl::Seconds(10)));
  }

  RawResult Raw(const std::string& method,
                const google::protobuf::Message& request,
                const std::string* lease) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    if (lease != nullptr) ctx.AddMetadata("lpc-lease", *lease);
    std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    grpc::GenericStub(stock_).UnaryCall(
        &ctx, "/example.kv.KeyValue/" + method, grpc::StubOptions(),
        &request_buffer, &response,
        [&done](grpc::Status s) { done.set_value(s); });
    RawResult r;
    r.status = done.get_future().get();
    std::vector<grpc::Slice> slices;
    if (r.status.ok() && response.Dump(&slices).ok()) {
      for (const auto& s : slices) r.reply.append(s.begin(), s.end());
    }
    const auto& initial = ctx.GetServerInitialMetadata();
    auto it = initial.find("lpc-lease");
    if (it != initial.end()) r.lease.assign(it->second.data(), it->second.size());
    return r;
  }

  // Begin by a stock client without a lease: the handle and the lease.
  std::pair<uint64_t, std::string> RawBegin() {
    RawResult r = Raw("Begin", BeginRequest(), nullptr);
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    BeginResponse reply;
    EXPECT_TRUE(reply.ParseFromString(r.reply));
    return {reply.result(), r.lease};
  }

  grpc::StatusCode RawPut(uint64_t txn, const std::string* lease) {
    TxnPutRequest put;
    put.set_txn(txn);
    put.set_key("k");
    put.set_value("v");
    return Raw("TxnPut", put, lease).status.error_code();
  }

  AbortWatch watch_;
  KeyValueImpl impl_;
  lpc::Server server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> stock_;
};

TEST_F(TxnGrpcTest, StockClientGetsALeaseAndSendsItBack) {
  auto [txn, lease] = RawBegin();
  EXPECT_THAT(lease, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(txn, 0u);
  EXPECT_EQ(RawPut(txn, &lease), grpc::StatusCode::OK);
  // Without the lease (a new one each call), or with another: not found.
  EXPECT_EQ(RawPut(txn, nullptr), grpc::StatusCode::NOT_FOUND);
  std::string other(32, 'a');
  EXPECT_EQ(RawPut(txn, &other), grpc::StatusCode::NOT_FOUND);
  // A malformed lease is refused.
  std::string bad = "not-a-lease";
  EXPECT_EQ(RawPut(txn, &bad), grpc::StatusCode::INVALID_ARGUMENT);
  CommitRequest commit;
  commit.set_txn(txn);
  RawResult r = Raw("Commit", commit, &lease);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  CommitResponse reply;
  ASSERT_TRUE(reply.ParseFromString(r.reply));
  EXPECT_EQ(reply.result(), 1u);
  EXPECT_EQ(watch_.WaitFor(0, absl::Now()), 0);
}

// Leases that lapse after a second.
class TxnGrpcLapseTest : public TxnGrpcTest {
 protected:
  absl::Duration LeaseTimeout() override { return absl::Seconds(1); }
};

TEST_F(TxnGrpcLapseTest, ALapsedLeaseRunsItsContextsDown) {
  auto [txn, lease] = RawBegin();
  ASSERT_EQ(RawPut(txn, &lease), grpc::StatusCode::OK);
  // Nobody renews it: it lapses kLeaseTimeout after that call.
  EXPECT_EQ(watch_.WaitFor(1, absl::Now() + absl::Seconds(10)), 1);
  EXPECT_EQ(RawPut(txn, &lease), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TxnGrpcTest, ReleaseEndsALeaseAtOnce) {
  auto [txn, lease] = RawBegin();
  grpc::ClientContext ctx;
  ctx.AddMetadata("lpc-lease", lease);
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  grpc::GenericStub(stock_).UnaryCall(
      &ctx, "/lpc.Lease/Release", grpc::StubOptions(), &request, &response,
      [&done](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_EQ(watch_.WaitFor(1, absl::Now() + absl::Seconds(10)), 1);
  EXPECT_EQ(RawPut(txn, &lease), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TxnGrpcLapseTest, TheLpcChannelRenewsItsLease) {
  auto channel = lpc::GrpcChannel::Create(target_);
  ASSERT_TRUE(channel.ok()) << channel.status();
  KeyValueClient kv(*channel);
  absl::StatusOr<Txn> t = kv.Begin();
  ASSERT_TRUE(t.ok()) << t.status();
  // Idle for three lease timeouts: the channel renews it meanwhile.
  EXPECT_EQ(watch_.WaitFor(1, absl::Now() + 3 * LeaseTimeout()), 0);
  EXPECT_TRUE(kv.TxnPut(*t, "k", "v").ok());
  EXPECT_EQ(kv.Commit(*t).value_or(0), 1u);
}

TEST_F(TxnGrpcTest, TheLpcChannelReleasesItsLeaseWhenDestroyed) {
  {
    auto channel = lpc::GrpcChannel::Create(target_);
    ASSERT_TRUE(channel.ok()) << channel.status();
    KeyValueClient kv(*channel);
    absl::StatusOr<Txn> t = kv.Begin();
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE(kv.TxnPut(*t, "k", "v").ok());
    // A stock client cannot reach it without the lease.
    EXPECT_EQ(RawPut(t->wire_id(), nullptr), grpc::StatusCode::NOT_FOUND);
  }  // The channel goes: its lease is released (long before it would
     // lapse), the transaction aborted.
  EXPECT_EQ(watch_.WaitFor(1, absl::Now() + absl::Seconds(10)), 1);
}

}  // namespace
}  // namespace example::kv
