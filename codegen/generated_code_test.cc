// Compiles the code lpcc generates for testdata/test_service.idl and calls
// every method through the in-process transport: sync, async, future and
// oneway stubs, [out] and [in,out] parameters, errors from handlers, and the
// decoding checks of both sides (unknown methods, malformed or out-of-range
// requests and replies).
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "codegen/testdata/test_service.lpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc::codegen {
namespace {

namespace t = ::lpc::codegen::test;
namespace tt = ::lpc::codegen::testtypes;
using ::lpc::testing::IsOk;
using ::lpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr auto kWait = std::chrono::seconds(10);

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a value that matches") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

class TesterImpl : public t::TesterService {
 public:
  absl::StatusOr<int64_t> Add(CallContext& ctx, int64_t a, int64_t b) override {
    return a + b;
  }
  absl::Status Divide(CallContext& ctx, int64_t num, int64_t den,
                      int64_t* quotient, int64_t* remainder) override {
    if (den == 0) return absl::InvalidArgumentError("division by zero");
    *quotient = num / den;
    *remainder = num % den;
    return absl::OkStatus();
  }
  absl::StatusOr<uint32_t> Concat(CallContext& ctx, std::string* text,
                                  const std::string& suffix,
                                  int32_t* count) override {
    *text += suffix;
    ++*count;
    return static_cast<uint32_t>(text->size());
  }
  absl::StatusOr<t::Record> EchoRecord(CallContext& ctx, const t::Record& r,
                                       t::Record* copy) override {
    *copy = r;
    t::Record out = r;
    out.set_s("echoed");
    return out;
  }
  absl::StatusOr<std::vector<int8_t>> Narrow(
      CallContext& ctx, int8_t x, uint8_t y, int16_t z, uint16_t w,
      const std::vector<int8_t>& xs, std::map<int16_t, uint8_t>* m) override {
    (*m)[z] = y;
    (*m)[static_cast<int16_t>(w - 1)] = static_cast<uint8_t>(x);
    std::vector<int8_t> out = xs;
    out.push_back(x);
    return out;
  }
  absl::StatusOr<std::optional<std::string>> Lookup(
      CallContext& ctx, const std::map<std::string, std::string>& table,
      const std::string& key, const std::optional<int32_t>& hint) override {
    auto it = table.find(key);
    if (it == table.end()) return std::nullopt;
    if (hint.has_value()) return it->second + "#" + std::to_string(*hint);
    return it->second;
  }
  absl::StatusOr<t::Mode> Toggle(CallContext& ctx, t::Mode m,
                                 const std::vector<t::Mode>& history,
                                 tt::Level* level) override {
    *level = history.size() > 1 ? tt::HIGH : tt::MEDIUM;
    return m == t::ON ? t::OFF : t::ON;
  }
  absl::Status Fail(CallContext& ctx, int32_t code,
                    const std::string& message) override {
    return absl::Status(static_cast<absl::StatusCode>(code), message);
  }
  absl::Status Nothing(CallContext& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++nothing_calls_;
    return absl::OkStatus();
  }
  void Notify(CallContext& ctx, const std::string& event,
              const tt::Tag& tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(event + ":" + tag.key() + ":" +
                      std::to_string(tag.weight()));
    cv_.notify_all();
  }
  absl::StatusOr<bool> Dodge(CallContext& ctx_, int32_t ctx,
                             bool* done) override {
    *done = !*done;
    return ctx > 0;
  }
  absl::StatusOr<std::string> Swap(CallContext& ctx,
                                   const std::string& data) override {
    std::string out = data;
    if (!out.empty()) std::swap(out.front(), out.back());
    return out;
  }

  // Waits (bounded) until `n` oneway events arrived; returns them.
  std::vector<std::string> WaitForEvents(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kWait, [&] { return events_.size() >= n; });
    return events_;
  }
  int nothing_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return nothing_calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
  int nothing_calls_ = 0;
};

class PingerImpl : public t::PingerService {
 public:
  absl::StatusOr<int32_t> Ping(CallContext& ctx, int32_t x) override {
    return x + 1;
  }
};

class GeneratedCodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.RegisterService(&impl_));
    ASSERT_OK(server_.RegisterService(&pinger_));
    auto transport = std::make_unique<InProcessTransport>("codegen_test");
    InProcessTransport* raw = transport.get();
    ASSERT_OK(server_.AddTransport(std::move(transport)));
    ASSERT_OK(server_.Start());
    channel_ = raw->NewChannel();
  }
  void TearDown() override { server_.Shutdown(); }

  TesterImpl impl_;
  PingerImpl pinger_;
  Server server_;
  std::shared_ptr<Channel> channel_;
};

t::Record SampleRecord() {
  t::Record r;
  r.set_kind(t::Record::FANCY);
  r.mutable_inner()->set_small(-300);
  r.mutable_inner()->set_usmall(60000);
  t::Record::Inner* i = r.add_inners();
  i->set_small(7);
  (*r.mutable_by_name())["x"].set_usmall(9);
  (*r.mutable_labels())[3] = "three";
  r.set_maybe(0);  // Present though zero.
  r.mutable_maybe_inner()->set_small(1);
  r.set_maybe_kind(t::Record::PLAIN);
  r.add_small_values(255);
  r.add_names("a");
  r.set_blob(std::string("\0\xff", 2));
  r.mutable_tag()->set_key("k");
  r.mutable_tag()->set_weight(-128);
  r.add_levels(tt::HIGH);
  r.set_flag(true);
  r.set_i8(127);
  r.set_i16(-32768);
  r.set_i32(-5);
  r.set_i64(int64_t{1} << 40);
  r.set_u8(200);
  r.set_u16(65535);
  r.set_u32(4000000000u);
  r.set_u64(~uint64_t{0});
  r.set_f(1.5f);
  r.set_d(-2.25);
  r.set_s("text");
  return r;
}

TEST_F(GeneratedCodeTest, DescriptorAndConstants) {
  const InterfaceDescriptor& d = t::TesterClient::Descriptor();
  EXPECT_EQ(&d, &t::TesterService::Descriptor());
  EXPECT_EQ(&d, &impl_.descriptor());
  EXPECT_EQ(d.full_name, "lpc.codegen.test.Tester");
  EXPECT_EQ(d.uuid, "5c0ffee0-1234-4abc-8def-0123456789ab");
  EXPECT_EQ(d.version.major, 2u);
  EXPECT_EQ(d.version.minor, 1u);
  ASSERT_EQ(d.methods.size(), 12u);
  const MethodDescriptor* notify = d.FindMethod(20);
  ASSERT_NE(notify, nullptr);
  EXPECT_EQ(notify->name, "Notify");
  EXPECT_TRUE(notify->oneway);
  EXPECT_EQ(d.FindMethodByName("Divide")->id, 2u);
  EXPECT_FALSE(d.FindMethodByName("Divide")->oneway);
  EXPECT_EQ(d.MethodPath(*d.FindMethod(1)), "/lpc.codegen.test.Tester/Add");
  EXPECT_EQ(t::PingerClient::Descriptor().full_name, "lpc.codegen.test.Pinger");

  static_assert(t::kAnswer == 42);
  static_assert(t::kSmallest == -128);
  static_assert(t::kMinInt64 == INT64_MIN);
  static_assert(t::kBig == 4000000000u);
  static_assert(t::kHuge == UINT64_MAX);
  static_assert(!t::kNo);
  static_assert(t::kHalf == 0.5f);
  static_assert(t::kDefaultMode == t::ON);
  static_assert(t::Record_kLimit == 7);
  EXPECT_EQ(t::kQuoted, "quote\" backslash\\ tab\t\?\?/");
  EXPECT_EQ(t::kTiny, 1e-300);
}

TEST_F(GeneratedCodeTest, SyncCalls) {
  t::TesterClient client(channel_);
  EXPECT_THAT(client.Add(40, 2), IsOkAndHolds(42));

  int64_t q = 0, r = 0;
  ASSERT_OK(client.Divide(17, 5, &q, &r));
  EXPECT_EQ(q, 3);
  EXPECT_EQ(r, 2);
  // Null [out] pointers discard the value.
  ASSERT_OK(client.Divide(17, 5, nullptr, nullptr));

  std::string text = "ab";
  int32_t count = 41;
  ASSERT_OK_AND_ASSIGN(uint32_t len, client.Concat(&text, "cde", &count));
  EXPECT_EQ(len, 5u);
  EXPECT_EQ(text, "abcde");
  EXPECT_EQ(count, 42);

  t::Record copy;
  copy.set_s("overwritten");
  t::Record sample = SampleRecord();
  ASSERT_OK_AND_ASSIGN(t::Record echoed, client.EchoRecord(sample, &copy));
  EXPECT_EQ(copy.SerializeAsString(), sample.SerializeAsString());
  EXPECT_EQ(echoed.s(), "echoed");
  EXPECT_TRUE(echoed.has_maybe());
  EXPECT_EQ(echoed.maybe(), 0);
  EXPECT_TRUE(echoed.has_maybe_kind());
  EXPECT_FALSE(t::Record().has_maybe());
  EXPECT_EQ(echoed.blob(), std::string("\0\xff", 2));
  EXPECT_EQ(echoed.u64(), ~uint64_t{0});

  std::map<int16_t, uint8_t> m;
  ASSERT_OK_AND_ASSIGN(std::vector<int8_t> narrow,
                       client.Narrow(-128, 255, -32768, 65535, {1, -2}, &m));
  EXPECT_THAT(narrow, ElementsAre(1, -2, -128));
  EXPECT_THAT(m, UnorderedElementsAre(Pair(-32768, 255), Pair(-2, 128)));

  std::map<std::string, std::string> table = {{"k", "v"}};
  EXPECT_THAT(client.Lookup(table, "k", std::nullopt),
              IsOkAndHolds(std::optional<std::string>("v")));
  EXPECT_THAT(client.Lookup(table, "k", 0),
              IsOkAndHolds(std::optional<std::string>("v#0")));
  EXPECT_THAT(client.Lookup(table, "missing", 3),
              IsOkAndHolds(std::optional<std::string>()));

  tt::Level level = tt::LOW;
  EXPECT_THAT(client.Toggle(t::ON, {t::ON, t::OFF}, &level),
              IsOkAndHolds(t::OFF));
  EXPECT_EQ(level, tt::HIGH);

  ASSERT_OK(client.Nothing());
  EXPECT_EQ(impl_.nothing_calls(), 1);

  bool done = true;
  EXPECT_THAT(client.Dodge(5, &done), IsOkAndHolds(true));
  EXPECT_FALSE(done);

  t::PingerClient pinger(channel_);
  EXPECT_THAT(pinger.Ping(1), IsOkAndHolds(2));
}

TEST_F(GeneratedCodeTest, HandlerErrorsPassThrough) {
  t::TesterClient client(channel_);
  EXPECT_THAT(client.Fail(static_cast<int32_t>(absl::StatusCode::kNotFound),
                          "no such thing"),
              StatusIs(absl::StatusCode::kNotFound, "no such thing"));
  int64_t q = 99;
  EXPECT_THAT(client.Divide(1, 0, &q, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("division by zero")));
  EXPECT_EQ(q, 99) << "[out] params are untouched on error";
  EXPECT_THAT(client.FailFuture(static_cast<int32_t>(absl::StatusCode::kAborted),
                                "async too")
                  .get(),
              StatusIs(absl::StatusCode::kAborted, "async too"));
}

TEST_F(GeneratedCodeTest, AsyncCalls) {
  t::TesterClient client(channel_);
  std::promise<absl::StatusOr<t::TesterClient::DivideResult>> divided;
  client.DivideAsync(22, 7, [&](absl::StatusOr<t::TesterClient::DivideResult> r) {
    divided.set_value(std::move(r));
  });
  auto f = divided.get_future();
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<t::TesterClient::DivideResult> d = f.get();
  ASSERT_OK(d.status());
  EXPECT_EQ(d->quotient, 3);
  EXPECT_EQ(d->remainder, 1);

  // [in,out] params go in by value and come back in the result.
  std::promise<absl::StatusOr<t::TesterClient::ConcatResult>> concat;
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  ctx.metadata().emplace("x-test", "1");
  client.ConcatAsync(
      "x", "yz", 1,
      [&](absl::StatusOr<t::TesterClient::ConcatResult> r) {
        concat.set_value(std::move(r));
      },
      &ctx);
  auto cf = concat.get_future();
  ASSERT_EQ(cf.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<t::TesterClient::ConcatResult> c = cf.get();
  ASSERT_OK(c.status());
  EXPECT_EQ(c->value, 3u);
  EXPECT_EQ(c->text, "xyz");
  EXPECT_EQ(c->count, 2);

  // Errors arrive through the callback too.
  std::promise<absl::Status> failed;
  client.FailAsync(static_cast<int32_t>(absl::StatusCode::kPermissionDenied),
                   "nope", [&](absl::StatusOr<t::TesterClient::FailResult> r) {
                     failed.set_value(r.status());
                   });
  auto ff = failed.get_future();
  ASSERT_EQ(ff.wait_for(kWait), std::future_status::ready);
  EXPECT_THAT(ff.get(), StatusIs(absl::StatusCode::kPermissionDenied, "nope"));
}

TEST_F(GeneratedCodeTest, FutureCalls) {
  t::TesterClient client(channel_);
  auto add = client.AddFuture(1, 2);
  auto narrow = client.NarrowFuture(1, 2, 3, 4, {5});
  auto toggle = client.ToggleFuture(t::OFF, {});
  auto nothing = client.NothingFuture();
  auto record = client.EchoRecordFuture(SampleRecord(), SampleRecord());
  ASSERT_EQ(add.wait_for(kWait), std::future_status::ready);
  EXPECT_THAT(add.get(), IsOkAndHolds(::testing::Field(
                             &t::TesterClient::AddResult::value, 3)));
  ASSERT_EQ(narrow.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<t::TesterClient::NarrowResult> n = narrow.get();
  ASSERT_OK(n.status());
  EXPECT_THAT(n->value, ElementsAre(5, 1));
  EXPECT_THAT(n->m, UnorderedElementsAre(Pair(3, 1)));  // w - 1 == z
  ASSERT_EQ(toggle.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<t::TesterClient::ToggleResult> tg = toggle.get();
  ASSERT_OK(tg.status());
  EXPECT_EQ(tg->value, t::ON);
  EXPECT_EQ(tg->level, tt::MEDIUM);
  ASSERT_EQ(nothing.wait_for(kWait), std::future_status::ready);
  EXPECT_OK(nothing.get().status());
  ASSERT_EQ(record.wait_for(kWait), std::future_status::ready);
  absl::StatusOr<t::TesterClient::EchoRecordResult> rec = record.get();
  ASSERT_OK(rec.status());
  EXPECT_EQ(rec->value.s(), "echoed");
  EXPECT_EQ(rec->copy.tag().weight(), -128);
}

TEST_F(GeneratedCodeTest, OnewayReachesTheHandler) {
  t::TesterClient client(channel_);
  tt::Tag tag;
  tag.set_key("k");
  tag.set_weight(-3);
  ASSERT_OK(client.Notify("first", tag));
  ASSERT_OK(client.Notify("second", tag));
  std::vector<std::string> events = impl_.WaitForEvents(2);
  EXPECT_THAT(events, UnorderedElementsAre("first:k:-3", "second:k:-3"));
}

TEST_F(GeneratedCodeTest, UnknownMethodIsUnimplemented) {
  // Straight into the generated Dispatch.
  CallContext ctx;
  std::string response;
  EXPECT_THAT(impl_.Dispatch(999, ctx, "", &response),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("999")));
  // And through a channel, with a method the descriptor does not list.
  MethodDescriptor bogus{"Bogus", 999, false};
  CallContext ctx2;
  EXPECT_THAT(channel_->Call(t::TesterClient::Descriptor(), bogus, &ctx2, ""),
              StatusIs(absl::StatusCode::kUnimplemented));
}

// A reply that is one bytes value is written straight into the response
// (no reply message): byte for byte what protobuf would write, over
// whatever the response buffer held before.
TEST_F(GeneratedCodeTest, BytesReplyIsWrittenAsProtobufWouldWriteIt) {
  uint32_t swap_id = 0;
  for (const MethodDescriptor& m : t::TesterClient::Descriptor().methods) {
    if (m.name == "Swap") swap_id = m.id;
  }
  ASSERT_NE(swap_id, 0u);
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128},
                   size_t{16383}, size_t{16384}, (size_t{1} << 20) + 1}) {
    t::SwapRequest request;
    request.set_data(std::string(n, 'q'));
    if (n > 1) request.mutable_data()->front() = 'A';
    CallContext ctx;
    std::string response = "old bytes that must not survive";
    ASSERT_OK(impl_.Dispatch(swap_id, ctx, request.SerializeAsString(),
                             &response));
    std::string expected = request.data();
    if (!expected.empty()) std::swap(expected.front(), expected.back());
    t::SwapResponse reply;
    reply.set_result(expected);
    EXPECT_EQ(response, reply.SerializeAsString()) << n;
  }
}

TEST_F(GeneratedCodeTest, MalformedRequestIsInvalidArgument) {
  CallContext ctx;
  std::string response;
  EXPECT_THAT(impl_.Dispatch(1, ctx, std::string("\xff\xff\xff", 3), &response),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not parse")));
}

TEST_F(GeneratedCodeTest, OutOfRangeNarrowIntegerIsInvalidArgument) {
  const InterfaceDescriptor& d = t::TesterClient::Descriptor();
  const MethodDescriptor& narrow = *d.FindMethodByName("Narrow");
  const MethodDescriptor& echo = *d.FindMethodByName("EchoRecord");
  const MethodDescriptor& notify = *d.FindMethodByName("Notify");

  // An int8 parameter of 300, through the whole stack.
  t::NarrowRequest req;
  req.set_x(300);
  CallContext ctx;
  EXPECT_THAT(channel_->Call(d, narrow, &ctx, req.SerializeAsString()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("x: value out of range for int8")));

  // Negative into uint8, and an element of sequence<int8>.
  for (auto mutate : std::vector<std::function<void(t::NarrowRequest*)>>{
           [](t::NarrowRequest* r) { r->set_y(256); },
           [](t::NarrowRequest* r) { r->set_z(-32769); },
           [](t::NarrowRequest* r) { r->set_w(65536); },
           [](t::NarrowRequest* r) { r->add_xs(-129); }}) {
    t::NarrowRequest bad;
    mutate(&bad);
    std::string response;
    CallContext c;
    EXPECT_THAT(impl_.Dispatch(narrow.id, c, bad.SerializeAsString(), &response),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("out of range")))
        << bad.ShortDebugString();
  }

  // Nested inside structs, including a struct from the imported file.
  t::EchoRecordRequest bad_nested;
  bad_nested.mutable_r()->add_inners()->set_small(40000);
  std::string response;
  CallContext c1;
  EXPECT_THAT(impl_.Dispatch(echo.id, c1, bad_nested.SerializeAsString(), &response),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("r.inners.small: value out of range for int16")));
  t::EchoRecordRequest bad_import;
  bad_import.mutable_copy()->mutable_tag()->set_weight(128);
  CallContext c2;
  EXPECT_THAT(impl_.Dispatch(echo.id, c2, bad_import.SerializeAsString(), &response),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("copy.tag.weight: value out of range for int8")));
  t::EchoRecordRequest bad_map;
  (*bad_map.mutable_r()->mutable_by_name())["k"].set_usmall(70000);
  CallContext c3;
  EXPECT_THAT(impl_.Dispatch(echo.id, c3, bad_map.SerializeAsString(), &response),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("r.by_name.usmall")));
  t::NotifyRequest bad_oneway;
  bad_oneway.mutable_tag()->set_weight(-1000);
  CallContext c4;
  EXPECT_THAT(impl_.Dispatch(notify.id, c4, bad_oneway.SerializeAsString(), &response),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tag.weight")));
}

// A channel that answers every call with canned bytes.
class CannedChannel : public Channel {
 public:
  explicit CannedChannel(std::string reply) : Channel({}), reply_(std::move(reply)) {}
  void StartCall(const InterfaceDescriptor& iface, const MethodDescriptor& method,
                 CallContext* ctx, std::string request,
                 ResponseCallback done) override {
    last_method_ = method.id;
    last_ctx_ = ctx;
    last_request_ = std::move(request);
    done(reply_);
  }
  absl::Status SendOneway(const InterfaceDescriptor& iface,
                          const MethodDescriptor& method, CallContext* ctx,
                          std::string request) override {
    last_method_ = method.id;
    last_ctx_ = ctx;
    last_request_ = std::move(request);
    return absl::UnavailableError("canned");
  }
  std::string_view transport_name() const override { return "canned"; }

  uint32_t last_method_ = 0;
  CallContext* last_ctx_ = nullptr;
  std::string last_request_;

 private:
  std::string reply_;
};

TEST(GeneratedClientTest, MalformedReplyIsInternal) {
  t::TesterClient garbage(std::make_shared<CannedChannel>(std::string("\xff\xff", 2)));
  EXPECT_THAT(garbage.Add(1, 2), StatusIs(absl::StatusCode::kInternal,
                                          HasSubstr("malformed reply")));
  EXPECT_THAT(garbage.AddFuture(1, 2).get(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("does not parse")));

  t::NarrowResponse out_of_range;
  out_of_range.add_result(1000);
  t::TesterClient narrow(std::make_shared<CannedChannel>(out_of_range.SerializeAsString()));
  EXPECT_THAT(narrow.Narrow(1, 1, 1, 1, {}, nullptr),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("the return value: value out of range for int8")));

  t::NarrowResponse bad_map;
  (*bad_map.mutable_m())[70000] = 1;
  t::TesterClient narrow2(std::make_shared<CannedChannel>(bad_map.SerializeAsString()));
  std::map<int16_t, uint8_t> m = {{1, 1}};
  EXPECT_THAT(narrow2.Narrow(1, 1, 1, 1, {}, &m),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("m key")));
  EXPECT_THAT(m, UnorderedElementsAre(Pair(1, 1))) << "untouched on error";
}

TEST(GeneratedClientTest, UsesTheCallersContextOrItsOwn) {
  auto channel = std::make_shared<CannedChannel>("");
  t::TesterClient client(channel);
  CallContext ctx;
  ASSERT_OK(client.Nothing(&ctx));
  EXPECT_EQ(channel->last_ctx_, &ctx);
  EXPECT_EQ(channel->last_method_, 9u);
  ASSERT_OK(client.Nothing());
  EXPECT_NE(channel->last_ctx_, nullptr);
  EXPECT_NE(channel->last_ctx_, &ctx);
  EXPECT_THAT(client.Notify("e", tt::Tag()),
              StatusIs(absl::StatusCode::kUnavailable, "canned"));
  EXPECT_EQ(channel->last_method_, 20u);
}

// The stubs write top-level string, bytes and struct arguments straight into
// the request buffer, after the rest of the message; whatever the order, a
// protobuf parser must see exactly the arguments.
TEST(GeneratedClientTest, RequestsParseAsTheirMessages) {
  auto channel = std::make_shared<CannedChannel>("");
  t::TesterClient client(channel);

  std::string text = "ab";
  int32_t count = 3;
  ASSERT_OK(client.Concat(&text, "cde", &count).status());
  t::ConcatRequest concat;
  ASSERT_TRUE(concat.ParseFromString(channel->last_request_));
  EXPECT_EQ(concat.text(), "ab");
  EXPECT_EQ(concat.suffix(), "cde");
  EXPECT_EQ(concat.count(), 3);
  // Null [in,out] pointers and empty strings are left out, as protobuf does.
  ASSERT_OK(client.Concat(nullptr, "", nullptr).status());
  EXPECT_EQ(channel->last_request_, "");
  // The async stub takes [in,out] values.
  ASSERT_OK(client.ConcatFuture("x", "y", 0).get().status());
  ASSERT_TRUE(concat.ParseFromString(channel->last_request_));
  EXPECT_EQ(concat.text(), "x");
  EXPECT_EQ(concat.suffix(), "y");
  EXPECT_EQ(concat.count(), 0);

  // A 1 MiB argument: one length-delimited field in a buffer allocated once
  // at its final size.
  std::string big(size_t{1} << 20, 'b');
  big[12345] = '\0';
  ASSERT_OK(client.Fail(7, big));
  t::FailRequest fail;
  ASSERT_TRUE(fail.ParseFromString(channel->last_request_));
  EXPECT_EQ(fail.code(), 7);
  EXPECT_EQ(fail.message(), big);
  EXPECT_EQ(channel->last_request_.size(), fail.ByteSizeLong());
  EXPECT_EQ(channel->last_request_.capacity(), channel->last_request_.size());

  // Structs with every kind of field; an empty struct is still present.
  const t::Record sample = SampleRecord();
  t::Record copy = SampleRecord();
  copy.set_s("copy");
  const std::string copy_bytes = copy.SerializeAsString();
  ASSERT_OK(client.EchoRecord(sample, &copy).status());
  t::EchoRecordRequest echo;
  ASSERT_TRUE(echo.ParseFromString(channel->last_request_));
  EXPECT_EQ(echo.r().SerializeAsString(), sample.SerializeAsString());
  EXPECT_EQ(echo.copy().SerializeAsString(), copy_bytes);
  ASSERT_OK(client.EchoRecord(t::Record(), nullptr).status());
  ASSERT_TRUE(echo.ParseFromString(channel->last_request_));
  EXPECT_TRUE(echo.has_r());
  EXPECT_FALSE(echo.has_copy());

  // A struct from the imported file, in a oneway call.
  tt::Tag tag;
  tag.set_key("k");
  tag.set_weight(-3);
  EXPECT_THAT(client.Notify("evt", tag), StatusIs(absl::StatusCode::kUnavailable));
  t::NotifyRequest notify;
  ASSERT_TRUE(notify.ParseFromString(channel->last_request_));
  EXPECT_EQ(notify.event(), "evt");
  EXPECT_EQ(notify.tag().key(), "k");
  EXPECT_EQ(notify.tag().weight(), -3);
}

// The request encoders compute sizes on the caller's const objects (as
// protobuf's own serializer does, through its atomic cached sizes): several
// threads may send the same object at once.
TEST_F(GeneratedCodeTest, OneConstStructSentFromManyThreads) {
  t::TesterClient client(channel_);
  const t::Record sample = SampleRecord();
  const std::string expected = sample.SerializeAsString();
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 50; ++n) {
        t::Record copy;
        absl::StatusOr<t::Record> r = client.EchoRecord(sample, &copy);
        if (r.ok() && copy.SerializeAsString() == expected) ++ok[i];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_THAT(ok, ElementsAre(50, 50, 50, 50));
}

// Large values travel intact both ways through the in-process transport:
// an [in] string handed to the handler by reference, an [in,out] string
// moved in and out, a return value moved into the reply.
TEST_F(GeneratedCodeTest, LargeStringsRoundTrip) {
  t::TesterClient client(channel_);
  std::string text(size_t{3} << 20, 't');
  text[7] = 'u';  // A string field: UTF-8 only.
  const std::string suffix((size_t{1} << 20) + 3, 's');
  int32_t count = 0;
  ASSERT_OK_AND_ASSIGN(uint32_t len, client.Concat(&text, suffix, &count));
  EXPECT_EQ(len, (size_t{4} << 20) + 3);
  ASSERT_EQ(text.size(), len);
  EXPECT_EQ(text[7], 'u');
  EXPECT_EQ(text.substr(3 << 20), suffix);
  EXPECT_EQ(count, 1);
  std::map<std::string, std::string> table = {{"k", std::string(1 << 20, 'v')}};
  EXPECT_THAT(client.Lookup(table, "k", std::nullopt),
              IsOkAndHolds(std::optional<std::string>(table["k"])));
  std::string data((size_t{1} << 20) + 1, 'd');
  data.front() = '\0';
  data.back() = '\xff';
  ASSERT_OK_AND_ASSIGN(std::string swapped, client.Swap(data));
  ASSERT_EQ(swapped.size(), data.size());
  EXPECT_EQ(swapped.front(), '\xff');
  EXPECT_EQ(swapped.back(), '\0');
  EXPECT_EQ(swapped.substr(1, data.size() - 2), data.substr(1, data.size() - 2));
  EXPECT_THAT(client.Swap(""), IsOkAndHolds(""));
}

// A reply that is one string or bytes field and nothing else is taken in
// place; every other shape goes through protobuf's parser, with the same
// result, and what the parser rejects stays rejected.
TEST(GeneratedClientTest, ReplyOfOneBytesFieldDecodesLikeTheParser) {
  auto call_swap = [](std::string reply) {
    return t::TesterClient(std::make_shared<CannedChannel>(std::move(reply)))
        .Swap("x");
  };
  auto call_concat = [](std::string reply) -> absl::StatusOr<std::string> {
    std::string text = "unchanged";
    absl::StatusOr<uint32_t> n =
        t::TesterClient(std::make_shared<CannedChannel>(std::move(reply)))
            .Concat(&text, "", nullptr);
    if (!n.ok()) return n.status();
    return absl::StrCat(*n, ":", text);
  };
  t::SwapResponse swap;
  swap.set_result(std::string(300, 'r') + std::string("\0\xff", 2));
  const std::string sole = swap.SerializeAsString();
  EXPECT_THAT(call_swap(sole), IsOkAndHolds(swap.result()));
  // Trailing bytes: the parser's answer (an unknown field is skipped, an
  // invalid wire type fails).
  EXPECT_THAT(call_swap(sole + std::string("\x18\x01", 2)),
              IsOkAndHolds(swap.result()));
  EXPECT_THAT(call_swap(sole + std::string("\x0f", 1)),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("does not parse")));
  // The same field twice: protobuf keeps the last.
  t::SwapResponse last;
  last.set_result("second");
  EXPECT_THAT(call_swap(sole + last.SerializeAsString()),
              IsOkAndHolds("second"));
  // A length that runs past the end, or stops short of it.
  EXPECT_THAT(call_swap(sole.substr(0, sole.size() - 1)),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(call_swap(std::string("\x0a\x01xy", 4)),
              StatusIs(absl::StatusCode::kInternal));
  // A non-minimal length encoding (0x85 0x00 = 5) is still valid protobuf.
  EXPECT_THAT(call_swap(std::string("\x0a\x85\x00hello", 8)),
              IsOkAndHolds("hello"));
  // Another field number alone.
  EXPECT_THAT(call_swap(std::string("\x12\x02hi", 4)), IsOkAndHolds(""));

  // A string [in,out] value: the result member by name, and only valid
  // UTF-8 (which protobuf's parser requires of proto3 strings).
  t::ConcatResponse text;
  text.set_text("new text");
  EXPECT_THAT(call_concat(text.SerializeAsString()),
              IsOkAndHolds("0:new text"));
  EXPECT_THAT(call_concat(std::string("\x12\x02\xc3\x28", 4)),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("does not parse")));
  text.set_result(9);
  EXPECT_THAT(call_concat(text.SerializeAsString()),
              IsOkAndHolds("9:new text"));
}

TEST(GeneratedClientTest, NoChannelFailsCleanly) {
  t::TesterClient client(nullptr);
  EXPECT_THAT(client.Add(1, 2), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client.AddFuture(1, 2).get(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(client.Notify("x", tt::Tag()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // An empty callback is tolerated.
  client.AddAsync(1, 2, nullptr);
}

}  // namespace
}  // namespace lpc::codegen
