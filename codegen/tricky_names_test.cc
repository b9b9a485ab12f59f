// The code generated for testdata/tricky_names.idl compiles and works: a
// package component called `lpc`, methods named like types, and parameters
// named like the generated ones (ctx, done, lpc_p0, channel_).
#include <memory>
#include <string>

#include "codegen/testdata/tricky_names.lpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace {

namespace tn = ::lpc::codegen::tricky::lpc;

class TrickyImpl : public tn::TrickyService {
 public:
  absl::StatusOr<tn::Point> Point(lpc::CallContext& ctx, const tn::Point& p,
                                  int32_t* channel_) override {
    *channel_ = p.x() + p.dispatch() + p.value();
    tn::Point out = p;
    out.set_x(-p.x());
    return out;
  }
  absl::Status Status(lpc::CallContext& ctx__, tn::Status ctx,
                      const tn::Channel& done, tn::Channel* ctx_) override {
    if (ctx == tn::BAD) return absl::InvalidArgumentError("bad");
    ctx_->set_name(done.name() + "!");
    return absl::OkStatus();
  }
  absl::StatusOr<int32_t> Result(lpc::CallContext& ctx, int32_t Descriptor_,
                                 int32_t* lpc_p0) override {
    *lpc_p0 += Descriptor_;
    return *lpc_p0 * 2;
  }
  void Oneway(lpc::CallContext& ctx, tn::Status done) override {}
};

TEST(TrickyNamesTest, CallsWork) {
  TrickyImpl impl;
  lpc::Server server;
  ASSERT_OK(server.RegisterService(&impl));
  auto transport = std::make_unique<lpc::InProcessTransport>("tricky");
  std::shared_ptr<lpc::Channel> channel = transport->NewChannel();
  ASSERT_OK(server.AddTransport(std::move(transport)));
  ASSERT_OK(server.Start());

  tn::TrickyClient client(channel);
  tn::Point p;
  p.set_x(1);
  p.set_dispatch(2);
  p.set_value(3);
  int32_t sum = 0;
  ASSERT_OK_AND_ASSIGN(tn::Point back, client.Point(p, &sum));
  EXPECT_EQ(back.x(), -1);
  EXPECT_EQ(sum, 6);

  tn::Channel in;
  in.set_name("n");
  tn::Channel out;
  ASSERT_OK(client.Status(tn::GOOD, in, &out));
  EXPECT_EQ(out.name(), "n!");
  EXPECT_THAT(client.Status(tn::BAD, in, &out),
              lpc::testing::StatusIs(absl::StatusCode::kInvalidArgument, "bad"));

  int32_t acc = 5;
  ASSERT_OK_AND_ASSIGN(int32_t doubled, client.Result(10, &acc));
  EXPECT_EQ(acc, 15);
  EXPECT_EQ(doubled, 30);
  auto fut = client.ResultFuture(1, 2);
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  absl::StatusOr<tn::TrickyClient::ResultResult> r = fut.get();
  ASSERT_OK(r.status());
  EXPECT_EQ(r->lpc_p0, 3);
  EXPECT_EQ(r->value, 6);

  EXPECT_OK(client.Oneway(tn::BAD));
  server.Shutdown();
}

}  // namespace
