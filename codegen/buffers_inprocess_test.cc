// The code lpcc generates for `buffer` (codegen/testdata/test_buffers.idl)
// called through the in-process transport: lpc::Buffer arguments moved in,
// lpc::BufferView to the handler, lpc::Buffer results and lpc::BufferView
// replies, the sync, async, future and oneway stubs, NewBuffer, and the
// bytes the writers produce (the buffer as an ordinary bytes field); and
// that a buffer crosses the in-process transport as a view, its bytes not
// copied, each way and on every stub.
#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "codegen/testdata/test_buffers.lpc.h"
#include "codegen/testdata/test_buffers.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/inprocess.h"
#include "runtime/message.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc::codegen {
namespace {

namespace b = ::lpc::codegen::buffers;

class FramesImpl : public b::FramesService {
 public:
  absl::StatusOr<Buffer> Invert(CallContext&, int32_t tag,
                                const BufferView& frame,
                                int32_t* echoed) override {
    seen_.store(frame.data());
    Buffer out = Buffer::Heap(frame.size());
    sent_.store(out.data());
    for (size_t i = 0; i < frame.size(); ++i) {
      out.data()[i] = static_cast<uint8_t>(~frame.data()[i]);
    }
    *echoed = tag;
    return out;
  }
  absl::StatusOr<uint64_t> Sum(CallContext&, const BufferView& frame) override {
    seen_.store(frame.data());
    uint64_t sum = 0;
    for (uint8_t c : frame.span()) sum += c;
    return sum;
  }
  absl::StatusOr<Buffer> Make(CallContext&, uint32_t size, uint8_t fill) override {
    Buffer out = Buffer::Heap(size);
    for (uint8_t& c : out.span()) c = fill;
    return out;
  }
  void Drop(CallContext&, const BufferView& frame) override {
    seen_.store(frame.data());
    dropped_ = frame.size();
  }
  absl::StatusOr<uint64_t> Dropped(CallContext&) override { return dropped_.load(); }

  // The first byte of the last frame a handler got, and of the last
  // result Invert returned.
  const uint8_t* seen() const { return seen_.load(); }
  const uint8_t* sent() const { return sent_.load(); }

 private:
  std::atomic<uint64_t> dropped_{0};
  std::atomic<const uint8_t*> seen_{nullptr};
  std::atomic<const uint8_t*> sent_{nullptr};
};

class BuffersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.RegisterService(&impl_));
    auto transport = std::make_unique<InProcessTransport>("buffers_test");
    InProcessTransport* raw = transport.get();
    ASSERT_OK(server_.AddTransport(std::move(transport)));
    ASSERT_OK(server_.Start());
    client_ = std::make_unique<b::FramesClient>(raw->NewChannel());
  }
  void TearDown() override { server_.Shutdown(); }

  Buffer Frame(size_t n) {
    absl::StatusOr<Buffer> buf = client_->NewBuffer(n);
    EXPECT_TRUE(buf.ok()) << buf.status();
    for (size_t i = 0; i < n; ++i) buf->data()[i] = static_cast<uint8_t>(i * 7);
    return *std::move(buf);
  }

  FramesImpl impl_;
  Server server_;
  std::unique_ptr<b::FramesClient> client_;
};

TEST_F(BuffersTest, SyncRoundTrip) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{1} << 20}) {
    int32_t echoed = 0;
    absl::StatusOr<BufferView> r = client_->Invert(9, Frame(n), &echoed);
    ASSERT_OK(r.status());
    ASSERT_EQ(r->size(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(r->data()[i], static_cast<uint8_t>(~static_cast<uint8_t>(i * 7)));
    }
    EXPECT_EQ(echoed, 9);
  }
  absl::StatusOr<uint64_t> sum = client_->Sum(Frame(3));
  ASSERT_OK(sum.status());
  EXPECT_EQ(*sum, 0u + 7u + 14u);
  absl::StatusOr<BufferView> made = client_->Make(5, 0xab);
  ASSERT_OK(made.status());
  EXPECT_EQ(made->view(), std::string(5, '\xab'));
}

TEST_F(BuffersTest, AsyncFutureAndOneway) {
  std::promise<absl::StatusOr<b::FramesClient::InvertResult>> done;
  client_->InvertAsync(4, Frame(10), [&](absl::StatusOr<b::FramesClient::InvertResult> r) {
    done.set_value(std::move(r));
  });
  absl::StatusOr<b::FramesClient::InvertResult> r = done.get_future().get();
  ASSERT_OK(r.status());
  EXPECT_EQ(r->value.size(), 10u);
  EXPECT_EQ(r->echoed, 4);
  auto fut = client_->SumFuture(Frame(2));
  absl::StatusOr<b::FramesClient::SumResult> s = fut.get();
  ASSERT_OK(s.status());
  EXPECT_EQ(s->value, 7u);
  ASSERT_OK(client_->Drop(Frame(33)));
  // The oneway call ran before a later call on the same channel returns?
  // Not promised: poll with a bound instead of a sleep.
  uint64_t seen = 0;
  for (int i = 0; i < 2000 && seen != 33; ++i) {
    absl::StatusOr<uint64_t> d = client_->Dropped();
    ASSERT_OK(d.status());
    seen = *d;
    if (seen != 33) std::this_thread::yield();
  }
  EXPECT_EQ(seen, 33u);
}

// In process, the handler reads the bytes the client filled, and the client
// reads the bytes the handler filled: the Buffers travel as views.
TEST_F(BuffersTest, BuffersAreNotCopiedInProcess) {
  for (size_t n : {size_t{1}, size_t{4096}, size_t{1} << 20}) {
    Buffer frame = Frame(n);
    const uint8_t* filled = frame.data();
    int32_t echoed = 0;
    absl::StatusOr<BufferView> r = client_->Invert(1, std::move(frame), &echoed);
    ASSERT_OK(r.status());
    EXPECT_EQ(impl_.seen(), filled) << n;
    EXPECT_EQ(r->data(), impl_.sent()) << n;
    EXPECT_EQ(r->data()[0], static_cast<uint8_t>(~0));
  }

  Buffer frame = Frame(100);
  const uint8_t* filled = frame.data();
  std::promise<absl::StatusOr<b::FramesClient::InvertResult>> done;
  client_->InvertAsync(2, std::move(frame),
                       [&](absl::StatusOr<b::FramesClient::InvertResult> r) {
                         done.set_value(std::move(r));
                       });
  absl::StatusOr<b::FramesClient::InvertResult> r = done.get_future().get();
  ASSERT_OK(r.status());
  EXPECT_EQ(impl_.seen(), filled);
  EXPECT_EQ(r->value.data(), impl_.sent());

  frame = Frame(50);
  filled = frame.data();
  ASSERT_OK(client_->SumFuture(std::move(frame)).get().status());
  EXPECT_EQ(impl_.seen(), filled);

  frame = Frame(77);
  filled = frame.data();
  ASSERT_OK(client_->Drop(std::move(frame)));
  uint64_t seen = 0;
  for (int i = 0; i < 2000 && seen != 77; ++i) {
    absl::StatusOr<uint64_t> d = client_->Dropped();
    ASSERT_OK(d.status());
    seen = *d;
    if (seen != 77) std::this_thread::yield();
  }
  ASSERT_EQ(seen, 77u);
  EXPECT_EQ(impl_.seen(), filled);
}

// The request writer's bytes, with the buffer appended as the transports
// that cannot pass it out of band do, parse as the .proto's message.
TEST(BuffersWireTest, BufferTravelsAsBytes) {
  struct Capture final : public Channel {
    Capture() : Channel(ChannelOptions()) {}
    void StartCall(const InterfaceDescriptor&, const MethodDescriptor&, CallContext*,
                   std::string request, ResponseCallback done) override {
      last = request;
      b::InvertResponse reply;
      reply.set_result(std::string("\x01\x02", 2));
      reply.set_echoed(-1);
      done(reply.SerializeAsString());
    }
    absl::Status SendOneway(const InterfaceDescriptor&, const MethodDescriptor&,
                            CallContext*, std::string request) override {
      last = request;
      return absl::OkStatus();
    }
    std::string_view transport_name() const override { return "capture"; }
    std::string last;
  };
  auto channel = std::make_shared<Capture>();
  b::FramesClient client(channel);
  Buffer frame = Buffer::Heap(3);
  frame.data()[0] = 'a';
  frame.data()[1] = 'b';
  frame.data()[2] = 'c';
  int32_t echoed = 0;
  absl::StatusOr<BufferView> r = client.Invert(-5, std::move(frame), &echoed);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->view(), std::string("\x01\x02", 2));
  EXPECT_EQ(echoed, -1);
  b::InvertRequest req;
  ASSERT_TRUE(req.ParseFromString(channel->last));
  EXPECT_EQ(req.tag(), -5);
  EXPECT_EQ(req.frame(), "abc");
  ASSERT_OK(client.Drop(Buffer()));  // Empty: no field at all.
  EXPECT_EQ(channel->last, "");
}

}  // namespace
}  // namespace lpc::codegen
