// Wire compatibility of the stubs' handle fields and of their stream
// messages, each direction: a handle field is a uint32 naming a
// descriptor of the message's table (any order of the table is valid, so
// the test follows the indices and compares the descriptors by inode), and
// each message of a stream is the protoc serialization of the stream's
// element type (the request of a server stream, the reply of a client
// stream: their Request and Response messages).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"
#include "codegen/wire_compat_testing.h"
#include "codegen/wire_compat_values.h"
#include "gtest/gtest.h"
#include "runtime/handles.h"
#include "testing/status_matchers.h"

namespace lpc::codegen::wire {
namespace {

using ::lpc::testing::IsOk;
using ::lpc::wire_testing::CapturingChannel;
using ::lpc::wire_testing::ContainerCases;
using ::lpc::wire_testing::DispatchExact;
using ::lpc::wire_testing::FakeServerStream;
using ::lpc::wire_testing::MakeLeaf;
using ::lpc::wire_testing::SameMessage;
using ::lpc::wire_testing::ScalarCases;
using ::lpc::wire_testing::Serialize;
using ::lpc::wire_testing::TreeCases;
using ::lpc::wire_testing::Utf8Text;
using ::lpc::wire_testing::WireEquals;

// A descriptor's identity: its inode.
std::pair<dev_t, ino_t> Id(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0) << fd;
  return {st.st_dev, st.st_ino};
}
std::pair<dev_t, ino_t> Id(const Fd& fd) { return Id(fd.get()); }
// {} for an empty handle.
std::pair<dev_t, ino_t> IdOrNone(const Fd& fd) {
  return fd.valid() ? Id(fd) : std::pair<dev_t, ino_t>{};
}

Fd Memfd() {
  Fd fd(memfd_create("wire_compat", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  return fd;
}

// The read end of a new pipe (each pipe is its own inode).
Fd PipeEnd() {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  close(fds[1]);
  return Fd(fds[0]);
}

// The descriptor that handle field value `index` names in `table` (1-based).
std::pair<dev_t, ino_t> Named(const std::vector<Fd>& table, uint32_t index) {
  EXPECT_GE(index, 1u);
  EXPECT_LE(index, table.size());
  if (index < 1 || index > table.size()) return {};
  return Id(table[index - 1]);
}

TEST(WireHandlesTest, ClientSendsIndicesAndDecodesThem) {
  auto channel = std::make_shared<CapturingChannel>();
  HandlesClient client(channel);
  Fd a = Memfd();
  Carrier c;
  c.fd = Memfd();
  c.tag = -128;
  c.leaf = MakeLeaf(4, Utf8Text());
  c.pipes.push_back(PipeEnd());
  c.pipes.push_back(PipeEnd());
  c.maybe = Memfd();
  std::optional<Fd> o = Memfd();
  std::vector<Fd> many;
  many.push_back(Memfd());
  many.push_back(Fd());  // an empty handle: 0, no descriptor
  many.push_back(Memfd());

  // The reply names four descriptors of its own table.
  std::vector<Fd> reply_fds;
  reply_fds.push_back(Memfd());
  reply_fds.push_back(PipeEnd());
  reply_fds.push_back(Memfd());
  reply_fds.push_back(PipeEnd());
  for (const Fd& fd : reply_fds) channel->QueueReplyHandle(fd);
  PassResponse reply;
  reply.mutable_result()->set_fd(1);
  reply.mutable_result()->set_tag(127);
  *reply.mutable_result()->mutable_leaf() = MakeLeaf(-1, "");
  reply.mutable_result()->add_pipes(2);
  reply.mutable_result()->set_maybe(0);  // present, empty
  reply.set_o(3);
  reply.set_p(4);
  channel->QueueReply(Serialize(reply));

  Fd p;
  const auto o_in = Id(*o);
  absl::StatusOr<Carrier> got = client.Pass(a, c, &o, &p, many, -32768);
  ASSERT_THAT(got.status(), IsOk());

  ASSERT_EQ(channel->calls().size(), 1u);
  const auto& call = channel->calls()[0];
  EXPECT_EQ(call.handles.size(), 8u);
  PassRequest sent;
  ASSERT_TRUE(sent.ParseFromString(call.request));
  EXPECT_EQ(Named(call.handles, sent.a()), Id(a));
  EXPECT_EQ(Named(call.handles, sent.c().fd()), Id(c.fd));
  ASSERT_EQ(sent.c().pipes_size(), 2);
  EXPECT_EQ(Named(call.handles, sent.c().pipes(0)), Id(c.pipes[0]));
  EXPECT_EQ(Named(call.handles, sent.c().pipes(1)), Id(c.pipes[1]));
  ASSERT_TRUE(sent.c().has_maybe());
  EXPECT_EQ(Named(call.handles, sent.c().maybe()), Id(*c.maybe));
  ASSERT_TRUE(sent.has_o());
  EXPECT_EQ(Named(call.handles, sent.o()), o_in);
  ASSERT_EQ(sent.many_size(), 3);
  EXPECT_EQ(Named(call.handles, sent.many(0)), Id(many[0]));
  EXPECT_EQ(sent.many(1), 0u);
  EXPECT_EQ(Named(call.handles, sent.many(2)), Id(many[2]));
  // With the indices it chose, every byte is protoc's.
  PassRequest want;
  want.set_a(sent.a());
  want.mutable_c()->set_fd(sent.c().fd());
  want.mutable_c()->set_tag(-128);
  *want.mutable_c()->mutable_leaf() = c.leaf;
  want.mutable_c()->add_pipes(sent.c().pipes(0));
  want.mutable_c()->add_pipes(sent.c().pipes(1));
  want.mutable_c()->set_maybe(sent.c().maybe());
  want.set_o(sent.o());
  for (uint32_t i : sent.many()) want.add_many(i);
  want.set_n(-32768);
  EXPECT_TRUE(WireEquals(call.request, want));

  EXPECT_EQ(Id(got->fd), Id(reply_fds[0]));
  EXPECT_EQ(got->tag, 127);
  EXPECT_TRUE(SameMessage(got->leaf, reply.result().leaf()));
  ASSERT_EQ(got->pipes.size(), 1u);
  EXPECT_EQ(Id(got->pipes[0]), Id(reply_fds[1]));
  ASSERT_TRUE(got->maybe.has_value());
  EXPECT_FALSE(got->maybe->valid());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(Id(*o), Id(reply_fds[2]));
  EXPECT_EQ(Id(p), Id(reply_fds[3]));

  // Oneway, and an empty handle: 0 is left out like any zero.
  ASSERT_THAT(client.Drop(Fd(), 0), IsOk());
  EXPECT_EQ(channel->calls().back().request, "");
  EXPECT_TRUE(channel->calls().back().handles.empty());
}

class RecordingHandles final : public HandlesService {
 public:
  std::vector<std::pair<dev_t, ino_t>> got;  // a, c.fd, c.pipes..., c.maybe, o, many...
  PassRequest values;  // the other values, with the handle fields 0
  Carrier result;
  Fd o_out;
  Fd p_out;
  std::pair<dev_t, ino_t> dropped{};
  bool maybe_present = false;
  bool o_present = false;

  absl::StatusOr<Carrier> Pass(CallContext&, const Fd& a, const Carrier& c,
                               std::optional<Fd>* o, Fd* p,
                               const std::vector<Fd>& many, int16_t n) override {
    got = {IdOrNone(a), IdOrNone(c.fd)};
    for (const Fd& e : c.pipes) got.push_back(Id(e));
    maybe_present = c.maybe.has_value();
    if (c.maybe.has_value()) got.push_back(IdOrNone(*c.maybe));
    o_present = o->has_value();
    if (o->has_value()) got.push_back(IdOrNone(**o));
    for (const Fd& e : many) got.push_back(IdOrNone(e));
    values.Clear();
    values.mutable_c()->set_tag(c.tag);
    *values.mutable_c()->mutable_leaf() = c.leaf;
    values.set_n(n);
    *o = std::move(o_out);
    *p = std::move(p_out);
    return std::move(result);
  }

  void Drop(CallContext&, const Fd& fd, int32_t x) override {
    dropped = IdOrNone(fd);
    EXPECT_EQ(x, -1);
  }
};

TEST(WireHandlesTest, ServerTakesIndicesAndWritesThem) {
  RecordingHandles service;
  std::vector<Fd> in;  // the request's table, in order
  in.push_back(Memfd());
  in.push_back(Memfd());
  in.push_back(PipeEnd());
  in.push_back(Memfd());
  in.push_back(Memfd());
  PassRequest request;  // names them out of order
  request.set_a(5);
  request.mutable_c()->set_fd(4);
  request.mutable_c()->set_tag(-1);
  *request.mutable_c()->mutable_leaf() = MakeLeaf(1, "l");
  request.mutable_c()->add_pipes(3);
  request.mutable_c()->set_maybe(0);
  request.set_o(2);
  request.add_many(1);
  request.add_many(0);
  request.set_n(32767);

  service.result.fd = Memfd();
  service.result.tag = 5;
  service.result.pipes.push_back(PipeEnd());
  service.o_out = Memfd();
  service.p_out = PipeEnd();
  const auto result_fd = Id(service.result.fd);
  const auto result_pipe = Id(service.result.pipes[0]);
  const auto o_out = Id(service.o_out);
  const auto p_out = Id(service.p_out);

  CallContext ctx;
  for (const Fd& fd : in) {
    absl::StatusOr<Fd> dup = fd.Dup();
    ASSERT_THAT(dup.status(), IsOk());
    internal::CallHandles::request(ctx).Append(*std::move(dup));
  }
  std::string response;
  ASSERT_THAT(DispatchExact(service, 1, ctx, Serialize(request), &response), IsOk());
  const std::vector<std::pair<dev_t, ino_t>> want_in = {
      Id(in[4]), Id(in[3]), Id(in[2]), {}, Id(in[1]), Id(in[0]), {}};
  EXPECT_EQ(service.got, want_in);
  PassRequest values;
  values.mutable_c()->set_tag(-1);
  *values.mutable_c()->mutable_leaf() = MakeLeaf(1, "l");
  values.set_n(32767);
  EXPECT_TRUE(SameMessage(service.values, values));

  HandleTable& table = internal::CallHandles::reply(ctx);
  std::vector<Fd> out;
  for (size_t i = 0; i < table.size(); ++i) {
    absl::StatusOr<Fd> dup = Fd::Duplicate(table.raw(i));
    ASSERT_THAT(dup.status(), IsOk());
    out.push_back(*std::move(dup));
  }
  EXPECT_EQ(out.size(), 4u);
  PassResponse sent;
  ASSERT_TRUE(sent.ParseFromString(response));
  EXPECT_EQ(Named(out, sent.result().fd()), result_fd);
  ASSERT_EQ(sent.result().pipes_size(), 1);
  EXPECT_EQ(Named(out, sent.result().pipes(0)), result_pipe);
  EXPECT_FALSE(sent.result().has_maybe());
  EXPECT_EQ(Named(out, sent.o()), o_out);
  EXPECT_EQ(Named(out, sent.p()), p_out);
  PassResponse want;
  want.mutable_result()->set_fd(sent.result().fd());
  want.mutable_result()->set_tag(5);
  want.mutable_result()->mutable_leaf();  // a struct field is always present
  want.mutable_result()->add_pipes(sent.result().pipes(0));
  want.set_o(sent.o());
  want.set_p(sent.p());
  EXPECT_TRUE(WireEquals(response, want));

  CallContext drop_ctx;
  internal::CallHandles::request(drop_ctx).Append(Memfd());
  const auto dropped = Id(internal::CallHandles::request(drop_ctx).raw(0));
  DropRequest drop;
  drop.set_fd(1);
  drop.set_x(-1);
  std::string drop_response = "stale";
  ASSERT_THAT(DispatchExact(service, 2, drop_ctx, Serialize(drop), &drop_response),
              IsOk());
  EXPECT_EQ(drop_response, "");
  EXPECT_EQ(service.dropped, dropped);
}

// Handle fields left out (proto3 writes no zeros) are empty handles, on
// either side, and an empty message names no descriptor.
TEST(WireHandlesTest, AbsentHandleFieldsAreEmpty) {
  RecordingHandles service;
  CallContext ctx;
  std::string response;
  ASSERT_THAT(DispatchExact(service, 1, ctx, "", &response), IsOk());
  const std::vector<std::pair<dev_t, ino_t>> none = {{}, {}};  // a, c.fd
  EXPECT_EQ(service.got, none);
  EXPECT_FALSE(service.maybe_present);
  EXPECT_FALSE(service.o_present);

  auto channel = std::make_shared<CapturingChannel>();
  HandlesClient client(channel);
  channel->QueueReply(std::string());
  std::optional<Fd> o;
  Fd p = Memfd();
  absl::StatusOr<Carrier> got = client.Pass(Fd(), Carrier(), &o, &p, {}, 0);
  ASSERT_THAT(got.status(), IsOk());
  EXPECT_FALSE(got->fd.valid());
  EXPECT_TRUE(got->pipes.empty());
  EXPECT_FALSE(got->maybe.has_value());
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(p.valid());
  PassRequest want;
  // A struct parameter is always present, and so is a struct field of a
  // struct that carries handles (a plain C++ struct: no presence).
  want.mutable_c()->mutable_leaf();
  ASSERT_EQ(channel->calls().size(), 1u);
  EXPECT_TRUE(WireEquals(channel->calls()[0].request, want));
  EXPECT_TRUE(channel->calls()[0].handles.empty());
}

TEST(WireStreamsTest, ClientStreamMessages) {
  auto channel = std::make_shared<CapturingChannel>();
  WireStreamsClient client(channel);

  // Server streaming: one request, then the element type.
  std::vector<std::string> down;
  for (const auto& c : ScalarCases()) down.push_back(Serialize(c.value));
  channel->QueueStream(down);
  auto reader = client.Down(Utf8Text(), -128);
  DownRequest down_want;
  down_want.set_prefix(Utf8Text());
  down_want.set_n(-128);
  ASSERT_EQ(channel->last_stream()->written().size(), 1u);
  EXPECT_TRUE(WireEquals(channel->last_stream()->written()[0], down_want));
  for (const auto& c : ScalarCases()) {
    SCOPED_TRACE(c.name);
    Scalars got;
    ASSERT_TRUE(reader.Read(&got));
    EXPECT_TRUE(SameMessage(got, c.value));
  }
  Scalars none;
  EXPECT_FALSE(reader.Read(&none));
  EXPECT_THAT(reader.Finish(), IsOk());

  // Client streaming: the element type up, one Response down.
  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    UpResponse up_reply;
    *up_reply.mutable_result() = c.value;
    channel->QueueStream({Serialize(up_reply)});
    auto writer = client.Up();
    const std::vector<Leaf> leaves = {Leaf(), MakeLeaf(-1, Utf8Text())};
    for (const Leaf& leaf : leaves) ASSERT_TRUE(writer.Write(leaf));
    absl::StatusOr<Containers> got = writer.Finish();
    ASSERT_THAT(got.status(), IsOk());
    EXPECT_TRUE(SameMessage(*got, c.value));
    const std::vector<std::string> written = channel->last_stream()->written();
    ASSERT_EQ(written.size(), leaves.size());
    for (size_t i = 0; i < leaves.size(); ++i) {
      EXPECT_TRUE(WireEquals(written[i], leaves[i]));
    }
  }

  // Bidirectional, and a void client stream.
  std::vector<std::string> trees;
  for (const auto& c : TreeCases()) trees.push_back(Serialize(c.value));
  channel->QueueStream(trees);
  auto both = client.Both();
  for (const auto& c : ScalarCases()) ASSERT_TRUE(both.Write(c.value));
  both.WritesDone();
  for (const auto& c : TreeCases()) {
    Tree got;
    ASSERT_TRUE(both.Read(&got));
    EXPECT_TRUE(SameMessage(got, c.value));
  }
  EXPECT_THAT(both.Finish(), IsOk());
  const std::vector<std::string> written = channel->last_stream()->written();
  ASSERT_EQ(written.size(), ScalarCases().size());
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_TRUE(WireEquals(written[i], ScalarCases()[i].value));
  }

  channel->QueueStream({""});
  auto sink = client.Sink();
  ASSERT_TRUE(sink.Write(Leaf()));
  EXPECT_THAT(sink.Finish().status(), IsOk());
  EXPECT_EQ(channel->last_stream()->written(), std::vector<std::string>{""});

  // [async] changes nothing on the client: a unary call, and a stream.
  LaterResponse later_reply;
  later_reply.set_result(-128);
  later_reply.set_note(Utf8Text());
  channel->QueueReply(Serialize(later_reply));
  std::string note = "";
  absl::StatusOr<int8_t> later = client.Later(127, &note);
  ASSERT_THAT(later.status(), IsOk());
  LaterRequest later_want;
  later_want.set_x(127);
  EXPECT_TRUE(WireEquals(channel->calls().back().request, later_want));
  EXPECT_EQ(*later, -128);
  EXPECT_EQ(note, Utf8Text());

  channel->QueueStream({Serialize(MakeLeaf(1, "a")), ""});
  auto later_down = client.LaterDown(-1);
  LaterDownRequest later_down_want;
  later_down_want.set_n(-1);
  EXPECT_TRUE(WireEquals(channel->last_stream()->written()[0], later_down_want));
  Leaf leaf;
  ASSERT_TRUE(later_down.Read(&leaf));
  EXPECT_TRUE(SameMessage(leaf, MakeLeaf(1, "a")));
  ASSERT_TRUE(later_down.Read(&leaf));  // an empty message: a default Leaf
  EXPECT_TRUE(SameMessage(leaf, Leaf()));
}

class StreamsEcho final : public WireStreamsService {
 public:
  DownRequest down;
  std::vector<Leaf> leaves;
  Containers up_result;
  std::vector<Scalars> scalars;

  absl::Status Down(CallContext&, const std::string& prefix, int8_t n,
                    ServerWriter<Scalars>& writer) override {
    down.set_prefix(prefix);
    down.set_n(n);
    for (const auto& c : ScalarCases()) writer.Write(c.value);
    return absl::OkStatus();
  }
  absl::StatusOr<Containers> Up(CallContext&, ServerReader<Leaf>& in) override {
    Leaf leaf;
    while (in.Read(&leaf)) leaves.push_back(leaf);
    return up_result;
  }
  absl::Status Both(CallContext&, ServerReaderWriter<Tree, Scalars>& s) override {
    Scalars m;
    while (s.Read(&m)) scalars.push_back(m);
    for (const auto& c : TreeCases()) s.Write(c.value);
    return absl::OkStatus();
  }
  void Later(AsyncUnaryCall<LaterResult> call, int8_t x,
             const std::string& note) override {
    call.Reply(LaterResult{static_cast<int8_t>(-x - 1), note + "!"});
  }
  void LaterDown(AsyncServerStream<Leaf> call, int16_t n) override {
    call.Write(MakeLeaf(n, ""));
    call.Write(Leaf());
    call.Finish(absl::OkStatus());
  }
  absl::Status Sink(CallContext&, ServerReader<Leaf>& in) override {
    Leaf leaf;
    while (in.Read(&leaf)) leaves.push_back(leaf);
    return absl::OkStatus();
  }
};

// Runs method `id` of `service` on `in`; what it wrote, once it finished OK.
std::vector<std::string> RunCall(StreamsEcho& service, uint32_t id,
                                 std::vector<std::string> in) {
  auto call = std::make_shared<FakeServerStream>(std::move(in));
  service.StartCall(id, call);
  EXPECT_TRUE(call->status().has_value());
  if (call->status().has_value()) {
    EXPECT_THAT(*call->status(), IsOk());
  }
  return call->written();
}

TEST(WireStreamsTest, ServerStreamMessages) {
  StreamsEcho service;
  DownRequest down;
  down.set_prefix(Utf8Text());
  down.set_n(-128);
  std::vector<std::string> out = RunCall(service, 1, {Serialize(down)});
  EXPECT_TRUE(SameMessage(service.down, down));
  ASSERT_EQ(out.size(), ScalarCases().size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_TRUE(WireEquals(out[i], ScalarCases()[i].value));
  }

  for (const auto& c : ContainerCases()) {
    SCOPED_TRACE(c.name);
    service.leaves.clear();
    service.up_result = c.value;
    out = RunCall(service, 2, {"", Serialize(MakeLeaf(-1, Utf8Text()))});
    ASSERT_EQ(service.leaves.size(), 2u);
    EXPECT_TRUE(SameMessage(service.leaves[0], Leaf()));
    EXPECT_TRUE(SameMessage(service.leaves[1], MakeLeaf(-1, Utf8Text())));
    UpResponse want;
    *want.mutable_result() = c.value;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(WireEquals(out[0], want));
  }

  std::vector<std::string> in;
  for (const auto& c : ScalarCases()) in.push_back(Serialize(c.value));
  out = RunCall(service, 3, in);
  ASSERT_EQ(service.scalars.size(), ScalarCases().size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_TRUE(SameMessage(service.scalars[i], ScalarCases()[i].value));
  }
  ASSERT_EQ(out.size(), TreeCases().size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_TRUE(WireEquals(out[i], TreeCases()[i].value));
  }

  LaterRequest later;
  later.set_x(127);
  later.set_note(Utf8Text());
  out = RunCall(service, 4, {Serialize(later)});
  LaterResponse later_want;
  later_want.set_result(-128);
  later_want.set_note(Utf8Text() + "!");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(WireEquals(out[0], later_want));

  LaterDownRequest later_down;
  later_down.set_n(-32768);
  out = RunCall(service, 5, {Serialize(later_down)});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(WireEquals(out[0], MakeLeaf(-32768, "")));
  EXPECT_EQ(out[1], "");

  service.leaves.clear();
  out = RunCall(service, 6, {Serialize(MakeLeaf(1, ""))});
  EXPECT_EQ(service.leaves.size(), 1u);
  EXPECT_EQ(out, std::vector<std::string>{""});  // the empty SinkResponse
}

}  // namespace
}  // namespace lpc::codegen::wire
