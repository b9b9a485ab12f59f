// The local transport's zero-copy message path (docs/zero-copy.md): a
// request that writes itself into the ring slot, the data area or a payload
// memfd (LocalChannel::CallWith, StartCallWith, SendOnewayWith), a handler
// whose reply writes itself straight into the reply ring (the server's
// ReplySink), and the fall-backs that keep metadata, status messages and
// the size limits working.
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/message.h"
#include "runtime/mutex.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "transports/local/local_transport.h"

namespace lpc::local {
namespace {

using ::lpc::testing::StatusIs;
using ::lpc::testing::TempDir;
using ::testing::HasSubstr;

constexpr MethodDescriptor kMethods[] = {
    {"Echo", 1, false},
    {"EchoWithMetadata", 2, false},
    {"Fail", 3, false},
    {"Note", 4, true},
    {"Big", 5, false},
};

const InterfaceDescriptor& Descriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.MessagePath", "6b1c3e0a-5d2f-4e61-9a0b-7c8d9e0f1a2b", {1, 0},
      kMethods};
  return d;
}

const MethodDescriptor& M(int id) { return Descriptor().methods[id - 1]; }

// Writes `size` bytes of a pattern seeded by `seed`, without any string.
class PatternWriter final : public MessageWriter {
 public:
  PatternWriter(size_t size, uint8_t seed) : size_(size), seed_(seed) {}
  size_t size() const override { return size_; }
  void WriteTo(uint8_t* dst) const override {
    for (size_t i = 0; i < size_; ++i) {
      dst[i] = static_cast<uint8_t>(i * 7 + seed_);
    }
  }

 private:
  const size_t size_;
  const uint8_t seed_;
};

std::string Pattern(size_t size, uint8_t seed) {
  std::string s(size, '\0');
  PatternWriter(size, seed).WriteTo(reinterpret_cast<uint8_t*>(s.data()));
  return s;
}

// A service on the zero-copy interface: reads its request from the
// ReceivedMessage and writes its reply through the ReplySink.
class PathService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return Descriptor();
  }
  absl::Status Dispatch(uint32_t, CallContext&, std::string_view,
                        std::string*) override {
    return absl::InternalError("the string path was taken");
  }
  absl::Status DispatchWith(uint32_t method_id, CallContext& ctx,
                            ReceivedMessage& request,
                            ReplySink& reply) override {
    std::string flat;
    const std::string_view in = Flatten(request, &flat);
    switch (method_id) {
      case 1:
        return reply.Write(BytesWriter(in));
      case 2:
        ctx.response_metadata().emplace("x-echo-size",
                                        absl::StrCat(in.size()));
        return reply.Write(BytesWriter(in));
      case 3:
        return absl::NotFoundError("no " + std::string(in));
      case 4: {
        MutexLock lock(&mu_);
        notes_.emplace_back(in);
        return absl::OkStatus();
      }
      case 5:  // A reply of the size the request names, as a pattern.
        return reply.Write(PatternWriter(std::stoul(std::string(in)), 11));
    }
    return absl::UnimplementedError("unknown method");
  }
  std::vector<std::string> notes() {
    MutexLock lock(&mu_);
    return notes_;
  }

 private:
  Mutex mu_;
  std::vector<std::string> notes_ ABSL_GUARDED_BY(mu_);
};

struct Fixture {
  explicit Fixture(LocalPortOptions po = {}, ServerOptions so = {})
      : server(so) {
    po.runtime_dir = dir.path();
    EXPECT_OK(server.RegisterService(&service));
    auto t = MakeLocalServerTransport("path", po);
    EXPECT_OK(t.status());
    transport = t->get();
    EXPECT_OK(server.AddTransport(std::move(*t)));
    EXPECT_OK(server.Start());
    LocalChannelOptions lo;
    lo.runtime_dir = dir.path();
    auto ch = CreateLocalChannel("path", ChannelOptions{}, lo);
    EXPECT_OK(ch.status());
    channel = *ch;
  }
  TempDir dir{"lpc-path-"};
  PathService service;
  Server server;
  LocalServerTransport* transport = nullptr;
  std::shared_ptr<Channel> channel;
};

// CallWith: the reply's bytes, copied out of the decoder.
absl::StatusOr<std::string> CallWith(Channel& ch, const MethodDescriptor& m,
                                     const MessageWriter& w,
                                     CallContext* ctx = nullptr) {
  CallContext local;
  if (ctx == nullptr) ctx = &local;
  ctx->set_timeout(absl::Seconds(20));
  std::string out;
  absl::Status s = ch.CallWith(Descriptor(), m, ctx, w,
                               [&](ReceivedMessage& r) {
                                 out.assign(r.bytes());
                                 return absl::OkStatus();
                               });
  if (!s.ok()) return s;
  return out;
}

TEST(MessagePathTest, RequestsWriteThemselvesInEveryPayloadMode) {
  Fixture f;
  // Inline, data area, memfd (over a 2 MiB half), and 16 MiB; each size
  // twice with other bytes, so that a kept memfd (and its mapping) written
  // again carries none of the earlier payload.
  for (size_t size : {size_t{0}, size_t{5}, size_t{900}, size_t{64} << 10,
                      size_t{1} << 20, size_t{3} << 20, size_t{16} << 20}) {
    for (uint8_t seed : {3, 4}) {
      absl::StatusOr<std::string> r =
          CallWith(*f.channel, M(1), PatternWriter(size, seed));
      ASSERT_TRUE(r.ok()) << size << ": " << r.status();
      ASSERT_EQ(r->size(), size);
      ASSERT_TRUE(*r == Pattern(size, seed)) << size << " seed " << int{seed};
    }
  }
  // The string API on the same connection still works.
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  absl::StatusOr<std::string> r =
      f.channel->Call(Descriptor(), M(1), &ctx, "plain");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "plain");
}

TEST(MessagePathTest, RepliesWriteThemselvesInEveryPayloadMode) {
  Fixture f;
  for (size_t size : {size_t{0}, size_t{700}, size_t{100} << 10,
                      size_t{3} << 20, size_t{16} << 20, size_t{3} << 20}) {
    absl::StatusOr<std::string> r = CallWith(
        *f.channel, M(5), BytesWriter(absl::StrCat(size)));
    ASSERT_TRUE(r.ok()) << size << ": " << r.status();
    ASSERT_TRUE(*r == Pattern(size, 11)) << size;
  }
  // Every reply wrote itself into the section or a memfd: the server made
  // no reply buffer (and the requests were too small to need one).
  EXPECT_EQ(f.transport->stats().payload_buffers_made, 0u);
  EXPECT_GT(f.transport->stats().payload_memfds_made, 0u);
}

TEST(MessagePathTest, MetadataStatusAndLimitsStillHold) {
  ServerOptions so;
  so.max_message_size = size_t{4} << 20;
  Fixture f({}, so);
  // Request metadata goes as a prefix; response metadata sends the reply
  // by the buffered path.
  for (size_t size : {size_t{10}, size_t{200} << 10, size_t{3} << 20}) {
    CallContext ctx;
    ctx.metadata().emplace("x-req", "v");
    absl::StatusOr<std::string> r =
        CallWith(*f.channel, M(2), PatternWriter(size, 5), &ctx);
    ASSERT_TRUE(r.ok()) << size << ": " << r.status();
    ASSERT_TRUE(*r == Pattern(size, 5)) << size;
    auto it = ctx.response_metadata().find("x-echo-size");
    ASSERT_NE(it, ctx.response_metadata().end());
    EXPECT_EQ(it->second, absl::StrCat(size));
  }
  // A status with its message.
  EXPECT_THAT(CallWith(*f.channel, M(3), BytesWriter("thing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no thing")));
  // The server's limit, both ways; the connection stays.
  EXPECT_THAT(CallWith(*f.channel, M(1), PatternWriter(size_t{5} << 20, 1)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(CallWith(*f.channel, M(5), BytesWriter(absl::StrCat(5 << 20))),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(std::string r,
                       CallWith(*f.channel, M(1), BytesWriter("after")));
  EXPECT_EQ(r, "after");
  // The channel's own limit is checked before anything is sent.
  LocalChannelOptions lo;
  lo.runtime_dir = f.dir.path();
  ChannelOptions co;
  co.max_message_size = 1000;
  auto small = CreateLocalChannel("path", co, lo);
  ASSERT_OK(small.status());
  EXPECT_THAT(CallWith(**small, M(1), PatternWriter(1001, 1)),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(MessagePathTest, AsyncAndOnewayWrite) {
  Fixture f;
  for (size_t size : {size_t{16}, size_t{300} << 10, size_t{5} << 20}) {
    CallContext ctx;
    ctx.set_timeout(absl::Seconds(20));
    Mutex mu;
    CondVar cv;
    bool done = false;
    absl::StatusOr<std::string> got;
    f.channel->StartCallWith(Descriptor(), M(1), &ctx, PatternWriter(size, 9),
                             [&](absl::StatusOr<ReceivedMessage> r) {
                               MutexLock lock(&mu);
                               if (r.ok()) {
                                 got = std::string(r->bytes());
                               } else {
                                 got = r.status();
                               }
                               done = true;
                               cv.SignalAll();
                             });
    {
      MutexLock lock(&mu);
      while (!done) cv.WaitWithDeadline(&mu, absl::InfiniteFuture());
    }
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(*got == Pattern(size, 9)) << size;
  }
  CallContext ctx;
  ctx.set_timeout(absl::Seconds(5));
  ASSERT_OK(f.channel->SendOnewayWith(Descriptor(), M(4), &ctx,
                                      PatternWriter(3000, 2)));
  // A call after the oneway one returns once the oneway one has been read.
  ASSERT_OK(CallWith(*f.channel, M(1), BytesWriter("x")).status());
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (f.service.notes().empty() && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(f.service.notes().size(), 1u);
  EXPECT_TRUE(f.service.notes()[0] == Pattern(3000, 2));
}

// A writer with a buffer field in heap memory: the transport appends the
// field as an ordinary length-delimited field.
class WithBuffer final : public MessageWriter {
 public:
  WithBuffer(std::string head, Buffer* b) : head_(std::move(head)) {
    field_.field_number = 7;
    field_.buffer = b;
  }
  size_t size() const override { return head_.size(); }
  void WriteTo(uint8_t* dst) const override {
    std::memcpy(dst, head_.data(), head_.size());
  }
  const BufferField* buffer() const override { return &field_; }

 private:
  std::string head_;
  BufferField field_;
};

TEST(MessagePathTest, HeapBufferFieldIsAppended) {
  Fixture f;
  for (size_t size : {size_t{100}, size_t{200} << 10, size_t{4} << 20}) {
    Buffer b = Buffer::Heap(size);
    for (size_t i = 0; i < size; ++i) b.data()[i] = static_cast<uint8_t>(i);
    const WithBuffer w("\x08\x01", &b);
    ASSERT_OK_AND_ASSIGN(std::string r, CallWith(*f.channel, M(1), w));
    EXPECT_TRUE(r == SerializeToString(w)) << size;
  }
}

}  // namespace
}  // namespace lpc::local
