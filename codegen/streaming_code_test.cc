// The code lpcc generates for testdata/test_streams.idl, without a
// transport: the descriptor's method kinds, UsesStartCall and Dispatch's
// refusal, and the generated StartCall driven through a fake ServerStream
// (requests and stream messages in, replies and statuses out), including
// malformed and out-of-range messages that a well-behaved client never
// sends. streaming_inprocess_test calls the same service end to end.
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codegen/streams_test_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/mutex.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::streams_test {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A server call whose client already sent `in` and half-closed: Reads
// return those messages, then the end; Writes are recorded; the first
// Finish counts.
class FakeServerStream final : public ServerStream {
 public:
  explicit FakeServerStream(std::vector<std::string> in)
      : in_(in.begin(), in.end()) {}

  CallContext& context() override { return ctx_; }
  void Read(ReadCallback done) override {
    std::optional<std::string> next;
    {
      MutexLock lock(&mu_);
      if (!in_.empty()) {
        next = std::move(in_.front());
        in_.pop_front();
      }
    }
    done(std::move(next));
  }
  void Write(std::string message, WriteCallback done) override {
    {
      MutexLock lock(&mu_);
      if (status_.has_value()) {
        done(absl::CancelledError("finished"));
        return;
      }
      out_.push_back(std::move(message));
    }
    done(absl::OkStatus());
  }
  void Finish(absl::Status status) override {
    MutexLock lock(&mu_);
    if (!status_.has_value()) status_ = std::move(status);
  }

  std::vector<std::string> written() {
    MutexLock lock(&mu_);
    return out_;
  }
  std::optional<absl::Status> status() {
    MutexLock lock(&mu_);
    return status_;
  }

 private:
  CallContext ctx_;
  Mutex mu_;
  std::deque<std::string> in_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> out_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
};

template <typename M>
std::string Bytes(const M& m) {
  std::string out;
  EXPECT_TRUE(m.SerializeToString(&out));
  return out;
}

template <typename M>
M Parse(const std::string& bytes) {
  M m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

class StreamingCodeTest : public ::testing::Test {
 protected:
  uint32_t Id(std::string_view name) {
    const MethodDescriptor* m = impl_.descriptor().FindMethodByName(name);
    EXPECT_NE(m, nullptr) << name;
    return m == nullptr ? 0 : m->id;
  }
  // Runs method `name` on a fake call that carries `in`.
  std::shared_ptr<FakeServerStream> Start(std::string_view name,
                                          std::vector<std::string> in) {
    auto call = std::make_shared<FakeServerStream>(std::move(in));
    impl_.StartCall(Id(name), call);
    return call;
  }

  StreamsImpl impl_;
};

TEST_F(StreamingCodeTest, DescriptorCarriesEachMethodsKind) {
  const InterfaceDescriptor& d = s::StreamsClient::Descriptor();
  EXPECT_EQ(&d, &s::StreamsService::Descriptor());
  auto kind = [&](std::string_view name) {
    const MethodDescriptor* m = d.FindMethodByName(name);
    EXPECT_NE(m, nullptr) << name;
    return m == nullptr ? MethodKind::kUnary : m->kind;
  };
  EXPECT_EQ(kind("Watch"), MethodKind::kServerStreaming);
  EXPECT_EQ(kind("Upload"), MethodKind::kClientStreaming);
  EXPECT_EQ(kind("Process"), MethodKind::kBidiStreaming);
  EXPECT_EQ(kind("Drain"), MethodKind::kClientStreaming);
  EXPECT_EQ(kind("Add"), MethodKind::kUnary);
  EXPECT_EQ(kind("Tail"), MethodKind::kServerStreaming);
  EXPECT_EQ(kind("Collect"), MethodKind::kClientStreaming);
  EXPECT_EQ(kind("Echo"), MethodKind::kBidiStreaming);
  EXPECT_EQ(kind("Count"), MethodKind::kUnary);
}

TEST_F(StreamingCodeTest, StreamingAndAsyncMethodsUseStartCall) {
  for (const MethodDescriptor& m : impl_.descriptor().methods) {
    EXPECT_EQ(impl_.UsesStartCall(m.id), m.name != "Count") << m.name;
  }
  EXPECT_FALSE(impl_.UsesStartCall(999));
  // Only the synchronous streaming handlers hold their thread.
  for (const char* name : {"Watch", "Upload", "Process", "Tags", "Drain", "Names"}) {
    EXPECT_TRUE(impl_.StartCallBlocks(Id(name))) << name;
  }
  for (const char* name : {"Add", "Tail", "Collect", "Echo", "Calls"}) {
    EXPECT_FALSE(impl_.StartCallBlocks(Id(name))) << name;
  }
  // Dispatch refuses them: they need StartCall.
  CallContext ctx;
  std::string response;
  EXPECT_THAT(impl_.Dispatch(Id("Watch"), ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("StartCall")));
  EXPECT_THAT(impl_.Dispatch(Id("Add"), ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("StartCall")));
  // And StartCall refuses the others.
  auto call = std::make_shared<FakeServerStream>(std::vector<std::string>{});
  impl_.StartCall(Id("Count"), call);
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_F(StreamingCodeTest, SyncServerStreamingRunsOnTheCallingThread) {
  s::WatchRequest request;
  request.set_prefix("k");
  request.set_limit(2);
  auto call = Start("Watch", {Bytes(request)});
  // The synchronous handler ran inside StartCall and finished the call.
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  std::vector<std::string> keys;
  for (const std::string& m : call->written()) {
    keys.push_back(Parse<s::Change>(m).key());
  }
  EXPECT_THAT(keys, ElementsAre("k0", "k1"));
}

TEST_F(StreamingCodeTest, MalformedRequestIsInvalidArgument) {
  auto call = Start("Watch", {std::string("\xff\xff\xff", 3)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("lpc: bad request to "
                                 "lpc.codegen.streams.Streams.Watch: it does "
                                 "not parse")));
  EXPECT_TRUE(call->written().empty());
  // No request at all.
  auto empty = Start("Tail", {});
  ASSERT_TRUE(empty->status().has_value());
  EXPECT_THAT(*empty->status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StreamingCodeTest, ClientStreamReplyIsTheResponseMessage) {
  std::vector<std::string> in;
  for (int i = 1; i <= 3; ++i) {
    s::Sample sample;
    sample.set_value(i);
    sample.set_weight(10);
    in.push_back(Bytes(sample));
  }
  auto call = Start("Upload", in);
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  ASSERT_EQ(call->written().size(), 1u);
  // On the wire: UploadResponse, the return value in `result`.
  s::UploadResponse reply = Parse<s::UploadResponse>(call->written()[0]);
  EXPECT_EQ(reply.result().count(), 3u);
  EXPECT_EQ(reply.result().total(), 60.0);
}

TEST_F(StreamingCodeTest, ClientStreamMessageOutOfRangeIsInvalidArgument) {
  s::Sample sample;
  sample.set_weight(40000);  // int16 in the IDL.
  auto call = Start("Upload", {Bytes(sample)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("message.weight: value out of range for "
                                 "int16")));
  EXPECT_TRUE(call->written().empty());
}

TEST_F(StreamingCodeTest, VoidClientStreamRepliesWithAnEmptyMessage) {
  s::Frame frame;
  frame.set_data("abcd");
  auto call = Start("Drain", {Bytes(frame), Bytes(frame)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  EXPECT_THAT(call->written(), ElementsAre(""));
  EXPECT_EQ(impl_.drained.load(), 8u);
}

TEST_F(StreamingCodeTest, SyncBidiAnswersEachMessage) {
  s::Frame a = MakeFrame(1, "ab");
  s::Frame b = MakeFrame(2, "xyz");
  auto call = Start("Process", {Bytes(a), Bytes(b)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  ASSERT_EQ(call->written().size(), 2u);
  EXPECT_EQ(Parse<s::Frame>(call->written()[0]).data(), "ba");
  EXPECT_EQ(Parse<s::Frame>(call->written()[1]).data(), "zyx");
}

TEST_F(StreamingCodeTest, AsyncUnaryReturnsAtOnceAndRepliesLater) {
  s::AddRequest request;
  request.set_a(2);
  request.set_b(40);
  auto call = Start("Add", {Bytes(request)});
  // StartCall returned with the call parked in the handler.
  EXPECT_FALSE(call->status().has_value());
  EXPECT_EQ(impl_.PendingAdds(), 1u);
  EXPECT_EQ(impl_.ReplyToAdds(), 1u);
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  ASSERT_EQ(call->written().size(), 1u);
  EXPECT_EQ(Parse<s::AddResponse>(call->written()[0]).result(), 42);
}

TEST_F(StreamingCodeTest, AsyncUnaryDroppedCallIsInternal) {
  s::AddRequest request;
  request.set_a(-1);
  auto call = Start("Add", {Bytes(request)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), StatusIs(absl::StatusCode::kInternal,
                                        HasSubstr("handler dropped the call")));
}

TEST_F(StreamingCodeTest, AsyncInOutParameterIsAnInputAndAReplyField) {
  s::CallsRequest request;
  request.set_call(21);
  request.set_note("hi");
  auto call = Start("Calls", {Bytes(request)});
  ASSERT_TRUE(call->status().has_value());
  EXPECT_THAT(*call->status(), IsOk());
  ASSERT_EQ(call->written().size(), 1u);
  s::CallsResponse reply = Parse<s::CallsResponse>(call->written()[0]);
  EXPECT_EQ(reply.result(), 42);
  EXPECT_EQ(reply.note(), "hi!");
}

TEST_F(StreamingCodeTest, AsyncClientStreamAndBidi) {
  s::Sample sample;
  sample.set_value(2.5);
  auto collect = Start("Collect", {Bytes(sample), Bytes(sample)});
  ASSERT_TRUE(collect->status().has_value());
  EXPECT_THAT(*collect->status(), IsOk());
  ASSERT_EQ(collect->written().size(), 1u);
  EXPECT_EQ(Parse<s::CollectResponse>(collect->written()[0]).result().total(),
            5.0);

  auto echo = Start("Echo", {Bytes(MakeFrame(7, "q")), Bytes(MakeFrame(8, "r"))});
  ASSERT_TRUE(echo->status().has_value());
  EXPECT_THAT(*echo->status(), IsOk());
  ASSERT_EQ(echo->written().size(), 2u);
  EXPECT_EQ(Parse<s::Frame>(echo->written()[1]).seq(), 8u);
}

TEST_F(StreamingCodeTest, AsyncServerStreamFinishesFromItsOwnThread) {
  s::TailRequest request;
  request.set_prefix("t");
  auto call = Start("Tail", {Bytes(request)});
  ASSERT_TRUE(WaitFor([&] { return call->status().has_value(); }));
  EXPECT_THAT(*call->status(), IsOk());
  std::vector<std::string> keys;
  for (const std::string& m : call->written()) {
    keys.push_back(Parse<s::Change>(m).key());
  }
  EXPECT_THAT(keys, ElementsAre("t0", "t1", "t2"));
}

}  // namespace
}  // namespace lpc::codegen::streams_test
