#include "runtime/handles.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/call_context.h"

namespace lpc {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

struct Pipe {
  Fd r, w;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
    r.reset(p[0]);
    w.reset(p[1]);
  }
};

Fd Memfd(bool sealed) {
  Fd fd(::memfd_create("handles_test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid() || ::ftruncate(fd.get(), 4096) != 0) std::abort();
  if (sealed &&
      ::fcntl(fd.get(), F_ADD_SEALS,
              F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    std::abort();
  }
  return fd;
}

TEST(HandleTableTest, AddDuplicatesAndNumbersFromOne) {
  Pipe p;
  HandleTable table;
  absl::StatusOr<uint32_t> a = table.Add(p.r);
  absl::StatusOr<uint32_t> b = table.Add(p.w);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(p.r.valid());  // The caller keeps its own.
  EXPECT_NE(table.raw(0), p.r.get());
  EXPECT_EQ(::fcntl(table.raw(0), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // An empty Fd adds nothing and is named 0.
  absl::StatusOr<uint32_t> none = table.Add(Fd());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(table.size(), 2u);
}

TEST(HandleTableTest, TakeMovesOutOnce) {
  Pipe p;
  HandleTable table;
  ASSERT_TRUE(table.Add(p.w).ok());
  absl::StatusOr<Fd> w = table.Take(1, "out");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(::write(w->get(), "y", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p.r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'y');
  absl::StatusOr<Fd> again = table.Take(1, "other");
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(internal::IsHandleProtocolError(again.status()));
  EXPECT_EQ(internal::HandleProtocolErrorReason(again.status()), "missing_handle");
  EXPECT_TRUE(absl::StrContains(again.status().message(), "other"));
  EXPECT_TRUE(table.CheckAllTaken().ok());
}

TEST(HandleTableTest, ZeroIsEmptyAndOutOfRangeIsMissing) {
  HandleTable table;
  absl::StatusOr<Fd> none = table.Take(0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->valid());
  absl::StatusOr<Fd> past = table.Take(1, "f");
  EXPECT_EQ(internal::HandleProtocolErrorReason(past.status()), "missing_handle");
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInternal);
}

TEST(HandleTableTest, UntakenIsUnreferencedAndClosedWithTheTable) {
  Pipe p;
  int raw;
  {
    HandleTable table;
    ASSERT_TRUE(table.Add(p.r).ok());
    ASSERT_TRUE(table.Add(p.w).ok());
    raw = table.raw(1);
    ASSERT_TRUE(table.Take(1).ok());
    absl::Status st = table.CheckAllTaken();
    EXPECT_TRUE(internal::IsHandleProtocolError(st));
    EXPECT_EQ(internal::HandleProtocolErrorReason(st), "unreferenced_handle");
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(HandleTableTest, ReleaseAndAdoptForTransports) {
  Pipe p;
  HandleTable table;
  ASSERT_TRUE(table.Add(p.r).ok());
  ASSERT_TRUE(table.Add(p.w).ok());
  ASSERT_TRUE(table.Take(1).ok());
  std::vector<int> raw = table.Release();
  ASSERT_EQ(raw.size(), 1u);  // Only what was not taken.
  EXPECT_TRUE(table.empty());
  HandleTable received;
  received.Adopt(raw[0]);
  EXPECT_EQ(received.size(), 1u);
  received.Clear();
  EXPECT_FALSE(IsOpen(raw[0]));
}

TEST(HandleTableTest, OtherStatusesAreNotProtocolErrors) {
  EXPECT_FALSE(internal::IsHandleProtocolError(absl::InternalError("x")));
  EXPECT_FALSE(internal::IsHandleProtocolError(absl::OkStatus()));
  EXPECT_EQ(internal::HandleProtocolErrorReason(absl::InternalError("x")), "");
  absl::Status st = internal::HandleProtocolError(internal::kTooManyHandles, "17 > 16");
  EXPECT_TRUE(internal::IsHandleProtocolError(st));
  EXPECT_EQ(internal::HandleProtocolErrorReason(st), "too_many_handles");
  EXPECT_TRUE(absl::StrContains(st.message(), "17 > 16"));
}

TEST(HandleKindTest, ChecksKinds) {
  Pipe p;
  Fd sealed = Memfd(true);
  Fd unsealed = Memfd(false);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Fd sock(sv[0]);
  Fd sock2(sv[1]);
  EXPECT_TRUE(CheckHandleKind(p.r, HandleKind::kPipe, "x").ok());
  EXPECT_TRUE(CheckHandleKind(sock, HandleKind::kSocket, "x").ok());
  EXPECT_TRUE(CheckHandleKind(unsealed, HandleKind::kFile, "x").ok());
  EXPECT_TRUE(CheckHandleKind(unsealed, HandleKind::kMemfd, "x").ok());
  EXPECT_TRUE(CheckHandleKind(sealed, HandleKind::kSealedMemfd, "x").ok());
  EXPECT_TRUE(CheckHandleKind(Fd(), HandleKind::kPipe, "x").ok());
  EXPECT_TRUE(CheckHandleKind(sock, HandleKind::kAny, "x").ok());

  absl::Status st = CheckHandleKind(unsealed, HandleKind::kSealedMemfd, "blob");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), "blob")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "handle<memfd, sealed>")) << st;
  EXPECT_EQ(CheckHandleKind(p.r, HandleKind::kMemfd, "m").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHandleKind(p.r, HandleKind::kSocket, "s").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHandleKind(sock, HandleKind::kFile, "f").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckHandleKind(sealed, HandleKind::kPipe, "p").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CallHandlesTest, CreatedOnFirstUseAndReset) {
  CallContext ctx;
  EXPECT_EQ(internal::CallHandles::request_if_any(ctx), nullptr);
  EXPECT_EQ(internal::CallHandles::reply_if_any(ctx), nullptr);
  Pipe p;
  ASSERT_TRUE(internal::CallHandles::request(ctx).Add(p.r).ok());
  ASSERT_NE(internal::CallHandles::request_if_any(ctx), nullptr);
  EXPECT_EQ(internal::CallHandles::request_if_any(ctx)->size(), 1u);
  EXPECT_TRUE(internal::CallHandles::reply(ctx).empty());
  const int raw = internal::CallHandles::request(ctx).raw(0);
  internal::CallHandles::Reset(ctx);
  EXPECT_TRUE(internal::CallHandles::request(ctx).empty());
  EXPECT_FALSE(IsOpen(raw));
}

}  // namespace
}  // namespace lpc
