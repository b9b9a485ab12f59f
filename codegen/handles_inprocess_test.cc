// Handles (file descriptors) through generated stubs over the in-process
// transport: a pipe each way, a sealed memfd and its kind check, struct
// fields and sequences of handles, the decoder's protocol checks, and the
// process's descriptor count after many calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "codegen/testdata/test_handles.lpc.h"
#include "gtest/gtest.h"
#include "runtime/handles.h"
#include "runtime/inprocess.h"
#include "runtime/server.h"
#include "testing/status_matchers.h"

namespace lpc {
namespace {

namespace h = ::lpc::codegen::handles;

struct Pipe {
  Fd r, w;
};

Pipe MakePipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  return {Fd(p[0]), Fd(p[1])};
}

Fd MakeMemfd(const std::string& contents, bool sealed) {
  Fd fd(::memfd_create("handles_test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) std::abort();
  if (::write(fd.get(), contents.data(), contents.size()) !=
      static_cast<ssize_t>(contents.size())) {
    std::abort();
  }
  if (sealed && ::fcntl(fd.get(), F_ADD_SEALS,
                        F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    std::abort();
  }
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

int OpenFdCount() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // The directory's own descriptor.
}

class FilesImpl : public h::FilesService {
 public:
  absl::Status WriteTo(CallContext&, const Fd& out, const std::string& text) override {
    if (::write(out.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return absl::InternalError("write failed");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Fd> PipeWith(CallContext&, const std::string& text) override {
    Pipe p = MakePipe();
    if (::write(p.w.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return absl::InternalError("write failed");
    }
    return std::move(p.r);
  }

  absl::StatusOr<std::string> ReadBuffer(CallContext&, const h::Buffer& b) override {
    std::string out(b.size, '\0');
    if (::pread(b.data.get(), out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) {
      return absl::InternalError("pread failed");
    }
    return out + "/" + std::to_string(b.tag) + "/" + std::to_string(b.plain.x());
  }

  absl::StatusOr<h::Bundle> Echo(CallContext&, const h::Bundle& in,
                                 uint32_t* count) override {
    h::Bundle out;
    *count = 0;
    for (const h::Bundle_Entry& e : in.entries) {
      h::Bundle_Entry copy;
      copy.name = e.name;
      for (char& c : copy.name) c = static_cast<char>(std::toupper(c));
      if (e.fd.valid()) {
        ++*count;
        absl::StatusOr<Fd> dup = e.fd.Dup();
        if (!dup.ok()) return dup.status();
        copy.fd = *std::move(dup);
      }
      out.entries.push_back(std::move(copy));
    }
    for (const Fd& p : in.pipes) {
      ++*count;
      absl::StatusOr<Fd> dup = p.Dup();
      if (!dup.ok()) return dup.status();
      out.pipes.push_back(*std::move(dup));
    }
    if (in.buffer.has_value()) ++*count;
    Pipe extra = MakePipe();
    out.pipes.push_back(std::move(extra.r));
    for (const h::Bundle& child : in.children) {
      for (const Fd& p : child.pipes) *count += p.valid() ? 1 : 0;
    }
    return out;
  }

  absl::Status Swap(CallContext&, std::optional<Fd>* fd, Fd* file) override {
    if (!fd->has_value() || !(*fd)->valid()) {
      return absl::InvalidArgumentError("no descriptor");
    }
    Pipe p = MakePipe();
    *fd = std::move(p.r);
    *file = MakeMemfd("file", false);
    return absl::OkStatus();
  }

  void Drop(CallContext&, const Fd& fd) override {
    struct stat st;
    std::lock_guard<std::mutex> lock(mu_);
    dropped_ok_ = ::fstat(fd.get(), &st) == 0;
    ++drops_;
    cv_.notify_all();
  }

  absl::StatusOr<int32_t> Add(CallContext&, int32_t a, int32_t b) override { return a + b; }

  bool WaitForDrops(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return drops_ >= n; }) &&
           dropped_ok_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int drops_ = 0;
  bool dropped_ok_ = false;
};

class HandlesInProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.RegisterService(&impl_));
    auto transport = std::make_unique<InProcessTransport>("handles_test");
    InProcessTransport* raw = transport.get();
    ASSERT_OK(server_.AddTransport(std::move(transport)));
    ASSERT_OK(server_.Start());
    client_ = std::make_unique<h::FilesClient>(raw->NewChannel());
  }
  void TearDown() override { server_.Shutdown(); }

  FilesImpl impl_;
  Server server_;
  std::unique_ptr<h::FilesClient> client_;
};

TEST_F(HandlesInProcessTest, MethodDescriptorsSayWhichCarryHandles) {
  const InterfaceDescriptor& d = h::FilesClient::Descriptor();
  EXPECT_TRUE(d.FindMethodByName("WriteTo")->handles);
  EXPECT_TRUE(d.FindMethodByName("Echo")->handles);
  EXPECT_TRUE(d.FindMethodByName("Drop")->handles);
  EXPECT_FALSE(d.FindMethodByName("Add")->handles);
}

TEST_F(HandlesInProcessTest, PipeEachWay) {
  // Client to server: the server writes into the client's pipe.
  Pipe p = MakePipe();
  ASSERT_OK(client_->WriteTo(p.w, "to the client"));
  EXPECT_TRUE(p.w.valid());  // The caller keeps its descriptor.
  p.w.reset();
  EXPECT_EQ(ReadAll(p.r.get()), "to the client");
  // Server to client: the client reads the server's pipe.
  absl::StatusOr<Fd> r = client_->PipeWith("from the server");
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->valid());
  EXPECT_EQ(::fcntl(r->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(ReadAll(r->get()), "from the server");
}

TEST_F(HandlesInProcessTest, SealedMemfdPassesAndUnsealedIsRefused) {
  h::Buffer b;
  b.data = MakeMemfd("sealed bytes", true);
  b.size = 6;
  b.tag = -3;
  b.plain.set_x(9);
  absl::StatusOr<std::string> got = client_->ReadBuffer(b);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, "sealed/-3/9");

  b.data = MakeMemfd("not sealed", false);
  got = client_->ReadBuffer(b);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "buffer.data")) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "handle<memfd, sealed>"))
      << got.status();
  // A pipe is not a memfd at all.
  b.data = std::move(MakePipe().r);
  EXPECT_EQ(client_->ReadBuffer(b).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HandlesInProcessTest, StructFieldsAndSequences) {
  h::Bundle in;
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  in.entries.push_back({"one", std::move(a.w)});
  in.entries.push_back({"none", Fd()});
  in.pipes.push_back(std::move(b.w));
  in.buffer.emplace();
  in.buffer->data = MakeMemfd("x", true);
  in.buffer->size = 1;
  h::Bundle child;
  child.pipes.push_back(std::move(MakePipe().r));
  in.children.push_back(std::move(child));
  uint32_t count = 0;
  absl::StatusOr<h::Bundle> out = client_->Echo(in, &count);
  ASSERT_OK(out.status());
  EXPECT_EQ(count, 4u);
  ASSERT_EQ(out->entries.size(), 2u);
  EXPECT_EQ(out->entries[0].name, "ONE");
  EXPECT_FALSE(out->entries[1].fd.valid());
  // The descriptors that came back work: write through them, read here.
  ASSERT_EQ(::write(out->entries[0].fd.get(), "A", 1), 1);
  ASSERT_EQ(out->pipes.size(), 2u);
  ASSERT_EQ(::write(out->pipes[0].get(), "B", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(a.r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'A');
  ASSERT_EQ(::read(b.r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'B');
  EXPECT_TRUE(out->pipes[1].valid());
}

TEST_F(HandlesInProcessTest, InOutOptionalAndOneway) {
  std::optional<Fd> fd = MakeMemfd("in", false);
  Fd file;
  ASSERT_OK(client_->Swap(&fd, &file));
  ASSERT_TRUE(fd.has_value() && fd->valid());
  struct stat st;
  ASSERT_EQ(::fstat(fd->get(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_TRUE(file.valid());
  std::optional<Fd> none;
  EXPECT_EQ(client_->Swap(&none, &file).code(), absl::StatusCode::kInvalidArgument);

  Pipe p = MakePipe();
  ASSERT_OK(client_->Drop(p.r));
  EXPECT_TRUE(impl_.WaitForDrops(1));
}

TEST_F(HandlesInProcessTest, AsyncAndFutureForms) {
  absl::StatusOr<h::FilesClient::PipeWithResult> r =
      client_->PipeWithFuture("future").get();
  ASSERT_OK(r.status());
  EXPECT_EQ(ReadAll(r->value.get()), "future");
  Pipe p = MakePipe();
  std::promise<absl::Status> done;
  client_->WriteToAsync(p.w, "async", [&](absl::StatusOr<h::FilesClient::WriteToResult> r) {
    done.set_value(r.status());
  });
  ASSERT_OK(done.get_future().get());
  p.w.reset();
  EXPECT_EQ(ReadAll(p.r.get()), "async");
}

// The decoder's checks, through Dispatch with hand-made tables.
TEST_F(HandlesInProcessTest, DecoderRefusesMissingAndUnreferencedHandles) {
  h::WriteToRequest req;
  req.set_out(2);  // Names a second descriptor; the table holds one.
  req.set_text("x");
  std::string bytes = req.SerializeAsString();
  Pipe p = MakePipe();
  {
    CallContext ctx;
    ASSERT_OK(internal::CallHandles::request(ctx).Add(p.w).status());
    std::string response;
    absl::Status st = impl_.Dispatch(1, ctx, bytes, &response);
    EXPECT_TRUE(internal::IsHandleProtocolError(st)) << st;
    EXPECT_EQ(internal::HandleProtocolErrorReason(st), "missing_handle");
  }
  {
    req.set_out(1);
    bytes = req.SerializeAsString();
    CallContext ctx;
    ASSERT_OK(internal::CallHandles::request(ctx).Add(p.w).status());
    ASSERT_OK(internal::CallHandles::request(ctx).Add(p.w).status());
    std::string response;
    absl::Status st = impl_.Dispatch(1, ctx, bytes, &response);
    EXPECT_EQ(internal::HandleProtocolErrorReason(st), "unreferenced_handle") << st;
  }
  {
    // The same index twice: the second finds nothing.
    h::EchoRequest echo;
    echo.mutable_bundle()->add_pipes(1);
    echo.mutable_bundle()->add_pipes(1);
    CallContext ctx;
    ASSERT_OK(internal::CallHandles::request(ctx).Add(p.w).status());
    std::string response;
    absl::Status st = impl_.Dispatch(4, ctx, echo.SerializeAsString(), &response);
    EXPECT_EQ(internal::HandleProtocolErrorReason(st), "missing_handle") << st;
  }
}

TEST_F(HandlesInProcessTest, DescriptorCountReturnsToBaseline) {
  // Warm up (handler threads, lazily made state), then measure.
  Pipe p = MakePipe();
  ASSERT_OK(client_->WriteTo(p.w, "w"));
  ASSERT_OK(client_->PipeWith("w").status());
  const int baseline = OpenFdCount();
  ASSERT_GT(baseline, 0);
  Pipe q = MakePipe();
  for (int i = 0; i < 10000; ++i) {
    if (i % 2 == 0) {
      ASSERT_OK(client_->WriteTo(q.w, "")) << i;
    } else {
      absl::StatusOr<Fd> r = client_->PipeWith("");
      ASSERT_OK(r.status()) << i;
    }
  }
  q.r.reset();
  q.w.reset();
  EXPECT_EQ(OpenFdCount(), baseline);
}

}  // namespace
}  // namespace lpc
