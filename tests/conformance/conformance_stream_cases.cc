// The conformance suite's streaming cases: streams, asynchronous handlers,
// propagation and interceptors, through the code lpcc generates from
// conformance.idl, on every transport that instantiates ConformanceTest.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "runtime/stream.h"
#include "testing/status_matchers.h"
#include "tests/conformance/conformance.lpc.h"
#include "tests/conformance/conformance_suite.h"

namespace lpc::conformance {
namespace {

using ::lpc::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

constexpr absl::Duration kEventTimeout = absl::Seconds(20);

// Polls `done` until it is true or kEventTimeout passes.
template <typename Pred>
bool EventuallyTrue(Pred done) {
  absl::Time limit = absl::Now() + kEventTimeout;
  while (absl::Now() < limit) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return done();
}

Item MakeItem(uint64_t seq, std::string data) {
  Item item;
  item.set_seq(seq);
  item.set_data(std::move(data));
  return item;
}

uint32_t ActiveStreams(ConformanceClient& client) {
  absl::StatusOr<uint32_t> n = client.ActiveStreams();
  return n.ok() ? *n : 0xffffffffu;
}

uint32_t Cancellations(ConformanceClient& client) {
  absl::StatusOr<uint32_t> n = client.CancellationsSeen();
  return n.ok() ? *n : 0xffffffffu;
}

bool Recorded(ConformanceClient& client, const std::string& event) {
  absl::StatusOr<std::vector<std::string>> r = client.Recorded();
  return r.ok() && std::find(r->begin(), r->end(), event) != r->end();
}

// The resident set of process `pid` in bytes, from /proc; 0 if unreadable.
size_t ResidentBytes(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;
    }
  }
  return 0;
}

// Sanitizers keep freed memory (ASan's quarantine) or shadow it, so the
// resident set says nothing about the transport's buffers there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssMeaningful = false;
constexpr bool kSanitized = true;
#else
constexpr bool kRssMeaningful = true;
constexpr bool kSanitized = false;
#endif

// The bulk cases move less under the sanitizers (10 to 50 times slower
// here), and their calls get a deadline long enough for that.
constexpr absl::Duration kBulkTimeout = absl::Seconds(kSanitized ? 240 : 60);

// ------------------------------------------------------------------ order

// Writes 2000 items from one thread while this one reads their echoes.
void ExpectBothWaysInOrder(ClientReaderWriter<Item, Item> chat,
                           const std::string& method) {
  std::thread writes([&chat] {
    for (uint64_t i = 0; i < 2000; ++i) {
      if (!chat.Write(MakeItem(i, "x"))) return;
    }
    chat.WritesDone();
  });
  uint64_t expected = 0;
  Item item;
  while (chat.Read(&item)) {
    if (item.seq() != expected) break;
    ++expected;
  }
  writes.join();
  EXPECT_EQ(expected, 2000u) << method;
  EXPECT_OK(chat.Finish()) << method;
}

TEST_P(ConformanceTest, StreamMessagesArriveInOrder) {
  ConformanceClient client(channel_);
  // Server to client.
  auto reader = client.Generate(1000, 16, 0);
  Item item;
  uint64_t next = 0;
  while (reader.Read(&item)) {
    ASSERT_EQ(item.seq(), next);
    ++next;
  }
  EXPECT_OK(reader.Finish());
  EXPECT_EQ(next, 1000u);

  // Client to server.
  auto writer = client.Sum();
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(writer.Write(MakeItem(i, "ab")));
  absl::StatusOr<ItemSum> total = writer.Finish();
  ASSERT_OK(total.status());
  EXPECT_EQ(total->count(), 1000u);
  EXPECT_EQ(total->seq_sum(), 999u * 1000u / 2);
  EXPECT_EQ(total->byte_count(), 2000u);

  // Both ways at once.
  ExpectBothWaysInOrder(client.Chat(), "Chat");
}

TEST_P(ConformanceTest, AsyncBidiStreamKeepsOrderBothWaysAtOnce) {
  ConformanceClient client(channel_);
  ExpectBothWaysInOrder(client.AsyncChat(), "AsyncChat");
}

// ------------------------------------------------------------- half-close

TEST_P(ConformanceTest, ClientHalfCloseEndsTheServersReads) {
  ConformanceClient client(channel_);
  for (bool async : {false, true}) {
    auto chat = async ? client.AsyncChat() : client.Chat();
    ASSERT_TRUE(chat.Write(MakeItem(1, "one")));
    ASSERT_TRUE(chat.Write(MakeItem(2, "two")));
    chat.WritesDone();
    Item item;
    ASSERT_TRUE(chat.Read(&item));
    EXPECT_EQ(item.data(), "one");
    ASSERT_TRUE(chat.Read(&item));
    EXPECT_EQ(item.data(), "two");
    EXPECT_FALSE(chat.Read(&item));
    EXPECT_OK(chat.Finish());
    // Writing after WritesDone is refused.
    EXPECT_FALSE(chat.Write(MakeItem(3, "three")));
  }
  // A client stream with no messages at all.
  auto sum = client.Sum();
  absl::StatusOr<ItemSum> total = sum.Finish();
  ASSERT_OK(total.status());
  EXPECT_EQ(total->count(), 0u);
}

TEST_P(ConformanceTest, ServerClosingFirstEndsTheClientsReads) {
  ConformanceClient client(channel_);
  for (bool async : {false, true}) {
    auto chat = async ? client.AsyncChat() : client.Chat();
    ASSERT_TRUE(chat.Write(MakeItem(1, "one")));
    Item item;
    ASSERT_TRUE(chat.Read(&item));
    ASSERT_TRUE(chat.Write(MakeItem(2, "end")));
    // The server finished while the client has not half-closed.
    EXPECT_FALSE(chat.Read(&item));
    EXPECT_OK(chat.Finish());
    EXPECT_FALSE(chat.Write(MakeItem(3, "after the end")));
    chat.WritesDone();
  }
  EXPECT_TRUE(EventuallyTrue([&] { return ActiveStreams(client) == 0; }));
}

TEST_P(ConformanceTest, ServerEndsAStreamEarlyWithAStatus) {
  ConformanceClient client(channel_);
  auto reader = client.Generate(5, 8,
                                static_cast<int32_t>(absl::StatusCode::kFailedPrecondition));
  Item item;
  int n = 0;
  while (reader.Read(&item)) ++n;
  EXPECT_EQ(n, 5);
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("ended by the server")));

  for (bool async : {false, true}) {
    auto chat = async ? client.AsyncChat() : client.Chat();
    ASSERT_TRUE(chat.Write(MakeItem(6, "six")));
    ASSERT_TRUE(chat.Write(MakeItem(7, "fail")));
    ASSERT_TRUE(chat.Read(&item));
    EXPECT_EQ(item.seq(), 6u);
    EXPECT_FALSE(chat.Read(&item));
    EXPECT_THAT(chat.Finish(), StatusIs(absl::StatusCode::kAborted,
                                        HasSubstr("failed at 7")));
  }

  auto sum = client.Sum();
  ASSERT_TRUE(sum.Write(MakeItem(1, "a")));
  ASSERT_TRUE(sum.Write(MakeItem(9, "fail")));
  EXPECT_THAT(sum.Finish(), StatusIs(absl::StatusCode::kAborted,
                                     HasSubstr("failed at 9")));
}

// ---------------------------------------------------- cancel and deadline

TEST_P(ConformanceTest, CancelMidStreamReachesBothSides) {
  ConformanceClient client(channel_);
  for (bool async : {false, true}) {
    const std::string method = async ? "AsyncChat" : "Chat";
    const uint32_t before = Cancellations(client);
    CallContext ctx;
    auto chat = async ? client.AsyncChat(&ctx) : client.Chat(&ctx);
    ASSERT_TRUE(chat.Write(MakeItem(1, "one")));
    Item item;
    ASSERT_TRUE(chat.Read(&item));  // The handler is running.
    chat.Cancel();
    EXPECT_FALSE(chat.Read(&item));
    EXPECT_THAT(chat.Finish(), StatusIs(absl::StatusCode::kCancelled)) << method;
    EXPECT_TRUE(EventuallyTrue([&] {
      return Cancellations(client) == before + 1 &&
             Recorded(client, "stream-cancelled:" + method) &&
             ActiveStreams(client) == 0;
    })) << method << ": the handler never saw the cancellation";
  }
}

TEST_P(ConformanceTest, DeadlineMidStreamReachesBothSides) {
  ConformanceClient client(channel_);
  // A bidi stream idle on both sides when the deadline passes.
  for (bool async : {false, true}) {
    const std::string method = async ? "AsyncChat" : "Chat";
    const uint32_t before = Cancellations(client);
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(2));
    auto chat = async ? client.AsyncChat(&ctx) : client.Chat(&ctx);
    ASSERT_TRUE(chat.Write(MakeItem(1, "one")));
    Item item;
    ASSERT_TRUE(chat.Read(&item));
    EXPECT_FALSE(chat.Read(&item));  // Until the deadline.
    EXPECT_THAT(chat.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded))
        << method;
    EXPECT_TRUE(EventuallyTrue([&] {
      return Cancellations(client) == before + 1 &&
             Recorded(client, "stream-cancelled:" + method) &&
             ActiveStreams(client) == 0;
    })) << method << ": the handler never saw the deadline";
  }
  // A server stream whose writer is held back by a client that stopped
  // reading: the deadline frees the blocked writer.
  const uint32_t before = Cancellations(client);
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(2));
  auto reader = client.Generate(1000000, 1024, 0, &ctx);
  Item item;
  ASSERT_TRUE(reader.Read(&item));
  EXPECT_TRUE(EventuallyTrue([&] {
    return Cancellations(client) == before + 1 &&
           Recorded(client, "stream-cancelled:Generate");
  })) << "the blocked writer never saw the deadline";
  while (reader.Read(&item)) {
  }
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// ------------------------------------------------------------ slow reader

TEST_P(ConformanceTest, SlowReaderKeepsTheWritersMemoryBounded) {
  ConformanceClient client(channel_);
  const int pid = transport_->ServerPid();
  ASSERT_OK(client.EchoBytes("warm up").status());
  const size_t base = ResidentBytes(pid);
  ASSERT_GT(base, 0u);
#if defined(__SANITIZE_THREAD__)
  // Under TSan, 32 MiB over gRPC took 74 s to more than 240 s on a quiet
  // machine; TSan checks the concurrency, which 8 MiB exercises as well.
  constexpr uint32_t kCount = 32;
#else
  constexpr uint32_t kCount = kSanitized ? 128 : 1024;
#endif
  constexpr uint64_t kSize = 256 * 1024;  // 256 MiB in all (32 ASan, 8 TSan).
  CallContext ctx;
  ctx.set_timeout(kBulkTimeout);
  auto reader = client.Generate(kCount, kSize, 0, &ctx);
  Item item;
  uint64_t received = 0;
  size_t peak = base;
  absl::Time start = absl::Now();
  for (uint32_t i = 0; reader.Read(&item); ++i) {
    received += item.data().size();
    if (i % 16 == 0) {
      peak = std::max(peak, ResidentBytes(pid));
      // Reads slowly: the server produces far faster than this.
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  ASSERT_OK(reader.Finish());
  EXPECT_EQ(received, kCount * kSize);
  const double growth_mib = (static_cast<double>(peak) - base) / (1 << 20);
  std::printf("[ figures  ] %s: %llu MiB to a slow reader in %.1f s; server RSS "
              "%.1f MiB at start, growth %.1f MiB at peak\n",
              GetParam().name.c_str(),
              static_cast<unsigned long long>(received >> 20),
              absl::ToDoubleSeconds(absl::Now() - start),
              static_cast<double>(base) / (1 << 20), growth_mib);
  if (kRssMeaningful) {
    EXPECT_LT(growth_mib, 64.0);
  }
}

// ------------------------------------------------------ many, oversized

TEST_P(ConformanceTest, AThousandConcurrentStreamsOnOneChannel) {
  ConformanceClient client(channel_);
  constexpr int kStreams = kSanitized ? 100 : 1000;
  using Chat = ClientReaderWriter<Item, Item>;
  // Contexts first: they outlive the streams that point at them.
  std::vector<std::unique_ptr<CallContext>> contexts;
  std::vector<Chat> streams;
  streams.reserve(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    contexts.back()->set_timeout(kBulkTimeout);
    streams.push_back(client.AsyncChat(contexts.back().get()));
    ASSERT_TRUE(streams.back().Write(MakeItem(i, "hello"))) << i;
  }
  EXPECT_TRUE(EventuallyTrue([&] { return ActiveStreams(client) == kStreams; }));
  for (int i = kStreams - 1; i >= 0; --i) {
    Item item;
    ASSERT_TRUE(streams[i].Read(&item)) << i;
    EXPECT_EQ(item.seq(), static_cast<uint64_t>(i));
    streams[i].WritesDone();
  }
  for (int i = 0; i < kStreams; ++i) EXPECT_OK(streams[i].Finish()) << i;
  EXPECT_TRUE(EventuallyTrue([&] { return ActiveStreams(client) == 0; }));
}

TEST_P(ConformanceTest, OversizedStreamMessageFailsOnlyItsStream) {
  ConformanceClient client(channel_);
  CallContext bystander_ctx;
  bystander_ctx.set_timeout(kBulkTimeout);
  auto bystander = client.Chat(&bystander_ctx);
  ASSERT_TRUE(bystander.Write(MakeItem(1, "before")));
  Item item;
  ASSERT_TRUE(bystander.Read(&item));

  // Client to server.
  auto chat = client.Chat();
  ASSERT_TRUE(chat.Write(MakeItem(1, "small")));
  ASSERT_TRUE(chat.Read(&item));
  chat.Write(MakeItem(2, std::string(kConformanceMaxMessageSize + 1, 'o')));
  EXPECT_FALSE(chat.Read(&item));
  EXPECT_THAT(chat.Finish(), StatusIs(absl::StatusCode::kResourceExhausted));

  // Server to client.
  auto reader = client.Generate(2, kConformanceMaxMessageSize + 1, 0);
  while (reader.Read(&item)) {
  }
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kResourceExhausted));

  // The other stream and the channel go on.
  ASSERT_TRUE(bystander.Write(MakeItem(2, "after")));
  ASSERT_TRUE(bystander.Read(&item));
  EXPECT_EQ(item.data(), "after");
  bystander.WritesDone();
  EXPECT_OK(bystander.Finish());
  EXPECT_OK(client.EchoBytes("still here").status());
  EXPECT_TRUE(EventuallyTrue([&] { return ActiveStreams(client) == 0; }));
}

// ------------------------------------------------------------ client death

TEST_P(ConformanceTest, ClientDyingMidStreamCancelsTheHandler) {
  ConformanceClient client(channel_);
  const uint32_t before = Cancellations(client);
  absl::Status child = transport_->StartClientProcess("chat");
  if (absl::IsUnimplemented(child)) {
    // No other process can reach this server: the client goes away by
    // dropping its stream and its channel without finishing.
    ChannelOptions options;
    options.max_message_size = kConformanceMaxMessageSize;
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> other,
                         transport_->NewChannel(options));
    ConformanceClient other_client(other);
    auto chat = other_client.Chat();
    ASSERT_TRUE(chat.Write(MakeItem(1, "child")));
    Item item;
    ASSERT_TRUE(chat.Read(&item));
    EXPECT_EQ(ActiveStreams(client), 1u);
    auto dropped = std::move(chat);
    other.reset();
  } else {
    ASSERT_OK(child);
    EXPECT_EQ(ActiveStreams(client), 1u);
    transport_->KillClientProcess();
  }
  EXPECT_TRUE(EventuallyTrue([&] {
    return ActiveStreams(client) == 0 && Cancellations(client) == before + 1 &&
           Recorded(client, "stream-cancelled:Chat");
  })) << "the handler of a dead client's stream was not cancelled";
  EXPECT_OK(client.EchoBytes("still serving").status());
}

// ------------------------------------------------------------ async

TEST_P(ConformanceTest, ManyAsyncCallsPendWithoutHoldingWorkers) {
  ConformanceClient client(channel_);
  // More than any transport's handler threads (32 at most by default): a
  // handler that held its thread would keep the rest from starting.
  constexpr int kCalls = 200;
  std::vector<std::unique_ptr<CallContext>> contexts;
  std::vector<std::future<absl::StatusOr<ConformanceClient::ParkResult>>> calls;
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<CallContext>());
    calls.push_back(client.ParkFuture(absl::StrCat("p", i), contexts.back().get()));
  }
  EXPECT_TRUE(EventuallyTrue([&] {
    absl::StatusOr<uint32_t> n = client.Parked();
    return n.ok() && *n == kCalls;
  }));
  // Synchronous calls still run meanwhile.
  EXPECT_OK(client.EchoBytes("a worker is free").status());
  absl::StatusOr<uint32_t> released = client.Release();
  ASSERT_OK(released.status());
  EXPECT_EQ(*released, static_cast<uint32_t>(kCalls));
  for (auto& call : calls) {
    absl::StatusOr<ConformanceClient::ParkResult> r = call.get();
    ASSERT_OK(r.status());
    EXPECT_EQ(r->value, static_cast<uint32_t>(kCalls));
  }
}

TEST_P(ConformanceTest, AsyncCompletionAfterClientDeathIsHarmless) {
  ConformanceClient client(channel_);
  absl::Status child = transport_->StartClientProcess("park");
  if (absl::IsUnimplemented(child)) {
    ChannelOptions options;
    options.max_message_size = kConformanceMaxMessageSize;
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> other,
                         transport_->NewChannel(options));
    ConformanceClient other_client(other);
    auto ctx = std::make_unique<CallContext>();
    auto pending = other_client.ParkFuture("child", ctx.get());
    ASSERT_TRUE(EventuallyTrue([&] { return Recorded(client, "parked:child"); }));
    ctx->Cancel();
    EXPECT_THAT(pending.get(), StatusIs(absl::StatusCode::kCancelled));
    other.reset();
  } else {
    ASSERT_OK(child);
    ASSERT_TRUE(EventuallyTrue([&] { return Recorded(client, "parked:child"); }));
    transport_->KillClientProcess();
  }
  // The handler answers a client that is gone.
  absl::StatusOr<uint32_t> released = client.Release();
  ASSERT_OK(released.status());
  EXPECT_EQ(*released, 1u);
  // And the server goes on.
  CallContext ctx;
  auto next = client.ParkFuture("next", &ctx);
  ASSERT_TRUE(EventuallyTrue([&] { return Recorded(client, "parked:next"); }));
  ASSERT_OK(client.Release().status());
  absl::StatusOr<ConformanceClient::ParkResult> r = next.get();
  ASSERT_OK(r.status());
  EXPECT_EQ(r->value, 1u);
}

// ------------------------------------------------------------ propagation

TEST_P(ConformanceTest, PropagationCarriesDeadlineAndCancelToTheNextCall) {
  // The suite watches the server over a channel of its own: while Relay and
  // its inner call hold two handlers, a server may hold back a second call
  // of Relay's connection (the local port's fairness rule on a small
  // machine: docs/local-transport.md).
  ChannelOptions options;
  options.max_message_size = kConformanceMaxMessageSize;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> watch,
                       transport_->NewChannel(options));
  ConformanceClient client(watch);
  ConformanceClient relay(channel_);
  ASSERT_OK(client.EchoBytes("connect").status());
  ASSERT_OK(relay.EchoBytes("connect").status());
  // Deadline: Relay's inner WaitForCancel would wait 20 s.
  uint32_t before = Cancellations(client);
  {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(2));
    EXPECT_THAT(relay.Relay("relay-deadline", 20000, &ctx),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
  EXPECT_TRUE(Recorded(client, "waiting:relay-deadline"));
  EXPECT_TRUE(EventuallyTrue([&] { return Cancellations(client) == before + 1; }))
      << "the inner call never saw the outer deadline";

  // Cancel.
  before = Cancellations(client);
  CallContext ctx;
  std::optional<absl::StatusOr<bool>> result;
  std::thread caller([&] { result = relay.Relay("relay-cancel", 20000, &ctx); });
  const bool started =
      EventuallyTrue([&] { return Recorded(client, "waiting:relay-cancel"); });
  ctx.Cancel();
  caller.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(EventuallyTrue([&] { return Cancellations(client) == before + 1; }))
      << "the inner call never saw the outer cancel";
}

// ------------------------------------------------------------ interceptors

std::vector<std::string> InterceptedAfterFinish(ConformanceClient& client,
                                                const std::string& tag) {
  std::vector<std::string> log;
  EventuallyTrue([&] {
    absl::StatusOr<std::vector<std::string>> r = client.Intercepted(tag);
    if (!r.ok()) return false;
    log = *r;
    return !log.empty() && log.back().rfind("finish ", 0) == 0;
  });
  return log;
}

int CountPrefix(const std::vector<std::string>& log, const std::string& p) {
  return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const std::string& e) {
    return e.rfind(p, 0) == 0;
  }));
}

TEST_P(ConformanceTest, ServerInterceptorSeesStreamMessagesAndStatus) {
  ConformanceClient client(channel_);
  for (bool async : {false, true}) {
    const std::string tag = async ? "async-chat" : "chat";
    CallContext ctx;
    ctx.metadata().emplace("conf-tag", tag);
    auto chat = async ? client.AsyncChat(&ctx) : client.Chat(&ctx);
    Item item;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(chat.Write(MakeItem(i, "abc")));
      ASSERT_TRUE(chat.Read(&item));
    }
    ASSERT_TRUE(chat.Write(MakeItem(3, "fail")));
    EXPECT_THAT(chat.Finish(), StatusIs(absl::StatusCode::kAborted));
    std::vector<std::string> log = InterceptedAfterFinish(client, tag);
    ASSERT_FALSE(log.empty()) << tag;
    EXPECT_EQ(log.front(), "start") << tag;
    EXPECT_EQ(log.back(), "finish ABORTED") << tag;
    EXPECT_EQ(CountPrefix(log, "c2s "), 4) << tag;
    EXPECT_EQ(CountPrefix(log, "s2c "), 3) << tag;
    const std::string size = absl::StrCat(MakeItem(0, "abc").ByteSizeLong());
    EXPECT_THAT(log, Contains("s2c " + size)) << tag;
  }
  CallContext ctx;
  ctx.metadata().emplace("conf-tag", "generate");
  auto reader = client.Generate(5, 10, 0, &ctx);
  Item item;
  while (reader.Read(&item)) {
  }
  EXPECT_OK(reader.Finish());
  std::vector<std::string> log = InterceptedAfterFinish(client, "generate");
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(), "start");
  EXPECT_EQ(log.back(), "finish OK");
  EXPECT_EQ(CountPrefix(log, "c2s "), 1);
  EXPECT_EQ(CountPrefix(log, "s2c "), 5);
}

}  // namespace
}  // namespace lpc::conformance
