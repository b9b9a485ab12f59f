// Tests for Server::Dispatch without a transport: lookup, limits, and what
// it tells the handler through the context (the method path).
#include "runtime/server.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/testing_service.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::RawDescriptor;
using ::lpc::testing::StatusIs;

// Replies with the method path the handler sees.
class PathService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return RawDescriptor();
  }
  absl::Status Dispatch(uint32_t, CallContext& ctx, std::string_view,
                        std::string* response) override {
    *response = ctx.method_path();
    return absl::OkStatus();
  }
};

TEST(ServerTest, DispatchGivesTheHandlerItsMethodPath) {
  PathService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  for (const MethodDescriptor& m : RawDescriptor().methods) {
    CallContext ctx;
    std::string response;
    ASSERT_THAT(server.Dispatch(RawDescriptor().full_name, m.id, ctx, "",
                                &response),
                IsOk());
    EXPECT_EQ(response, "/lpc.test.Raw/" + std::string(m.name));
  }
  EXPECT_EQ(server.calls_dispatched(), RawDescriptor().methods.size());
}

TEST(ServerTest, DispatchKeepsAPathTheTransportSet) {
  PathService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  CallContext ctx;
  ctx.set_method_path("/set/By/Transport");
  std::string response;
  ASSERT_THAT(server.Dispatch(RawDescriptor().full_name, 1, ctx, "", &response),
              IsOk());
  EXPECT_EQ(response, "/set/By/Transport");
}

TEST(ServerTest, UnknownInterfaceOrMethodIsUnimplemented) {
  PathService service;
  Server server;
  ASSERT_THAT(server.RegisterService(&service), IsOk());
  CallContext ctx;
  std::string response;
  EXPECT_THAT(server.Dispatch("lpc.test.Nope", 1, ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(server.Dispatch(RawDescriptor().full_name, 99, ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(server.calls_failed(), 2u);
}

}  // namespace
}  // namespace lpc
