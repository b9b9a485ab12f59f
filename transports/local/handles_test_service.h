// A hand-written service whose methods carry descriptors (handle tables,
// runtime/handles.h), over raw bytes, for the local transport's handle
// tests (handles_test.cc, served by handles_test_peer). Each handler uses
// the tables the way generated code does: it Take()s the descriptors its
// request names and checks CheckAllTaken(). Methods of "lpc.test.Handles":
//   1 ReadPipe   request table [a pipe's read end]: reads it to its end
//                and replies with what it read.
//   2 WritePipe  request table [a pipe's write end]: writes the request
//                into it and closes it.
//   3 MakePipe   replies with [a pipe's read end] holding the request's
//                bytes (its write end closed).
//   4 MakeMemfd  replies with [a sealed memfd] holding the request's bytes.
//   5 ReadMemfd  request table [a memfd that must be sealed]: replies with
//                its contents.
//   6 Echo       replies with the request's descriptors, in order.
//   7 TakeFirst  takes only the first descriptor of its table: a request
//                with more fails the reference check (unreferenced_handle).
//   8 TooMany    replies with N descriptors (N: the request, in decimal).
//   9 Stats      replies with the server's handle counters, "k=v" lines
//                (set_stats gives the source).
//  10 AsyncEcho  as Echo, by an asynchronous handler (StartCall).
//  11 AsyncTakeFirst  as TakeFirst, by an asynchronous handler.
//  12 OnewayWrite  oneway: as WritePipe.
#ifndef LPC_TRANSPORTS_LOCAL_HANDLES_TEST_SERVICE_H_
#define LPC_TRANSPORTS_LOCAL_HANDLES_TEST_SERVICE_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/call.h"
#include "runtime/call_context.h"
#include "runtime/fd.h"
#include "runtime/handles.h"
#include "runtime/service.h"

namespace lpc::testing {

inline constexpr MethodDescriptor kHandleMethods[] = {
    {"ReadPipe", 1, false, MethodKind::kUnary, true},
    {"WritePipe", 2, false, MethodKind::kUnary, true},
    {"MakePipe", 3, false, MethodKind::kUnary, true},
    {"MakeMemfd", 4, false, MethodKind::kUnary, true},
    {"ReadMemfd", 5, false, MethodKind::kUnary, true},
    {"Echo", 6, false, MethodKind::kUnary, true},
    {"TakeFirst", 7, false, MethodKind::kUnary, true},
    {"TooMany", 8, false, MethodKind::kUnary, true},
    {"Stats", 9, false, MethodKind::kUnary, false},
    {"AsyncEcho", 10, false, MethodKind::kUnary, true},
    {"AsyncTakeFirst", 11, false, MethodKind::kUnary, true},
    {"OnewayWrite", 12, true, MethodKind::kUnary, true},
};

inline const InterfaceDescriptor& HandlesDescriptor() {
  static const InterfaceDescriptor d{
      "lpc.test.Handles", "5f0e0d0c-0b0a-4908-8706-050403020202", {1, 0},
      kHandleMethods};
  return d;
}

inline const MethodDescriptor& HandleMethod(uint32_t id) {
  return kHandleMethods[id - 1];
}

// Reads `fd` to its end (at most 1 MiB).
inline absl::StatusOr<std::string> ReadToEnd(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) return absl::InternalError("too long");
  }
}

inline absl::Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(absl::StrCat("write: ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// A memfd holding `bytes`, sealed against writes, growth, shrinking and
// further seals.
inline absl::StatusOr<Fd> MakeSealedMemfd(std::string_view bytes) {
  Fd fd(::memfd_create("lpc-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return absl::InternalError("memfd_create failed");
  if (absl::Status s = WriteAll(fd.get(), bytes); !s.ok()) return s;
  if (::fcntl(fd.get(), F_ADD_SEALS,
              F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    return absl::InternalError("sealing failed");
  }
  return fd;
}

// A pipe's read end holding `bytes`, its write end closed.
inline absl::StatusOr<Fd> MakeFilledPipe(std::string_view bytes) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  Fd r(p[0]), w(p[1]);
  if (absl::Status s = WriteAll(w.get(), bytes); !s.ok()) return s;
  return r;
}

class HandlesService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override {
    return HandlesDescriptor();
  }
  bool UsesStartCall(uint32_t method_id) const override {
    return method_id == 10 || method_id == 11;
  }

  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override {
    call->Read([call, method_id](
                   absl::StatusOr<std::optional<std::string>> m) {
      if (!m.ok() || !m->has_value()) {
        call->Finish(absl::InvalidArgumentError("no request"));
        return;
      }
      HandleTable& in = internal::CallHandles::request(call->context());
      HandleTable& out = internal::CallHandles::reply(call->context());
      const size_t n = method_id == 10 ? in.size() : 1;
      for (size_t i = 1; i <= n; ++i) {
        absl::StatusOr<Fd> fd = in.Take(static_cast<uint32_t>(i));
        if (!fd.ok()) {
          call->Finish(fd.status());
          return;
        }
        if (method_id == 10) out.Append(*std::move(fd));
      }
      if (absl::Status s = in.CheckAllTaken(); !s.ok()) {
        call->Finish(s);
        return;
      }
      call->Write(**m, [call](absl::Status s) { call->Finish(s); });
    });
  }

  // Where Stats gets its text.
  void set_stats(std::function<std::string()> stats) {
    stats_ = std::move(stats);
  }

  absl::Status Dispatch(uint32_t method_id, CallContext& ctx,
                        std::string_view request,
                        std::string* response) override {
    HandleTable& in = internal::CallHandles::request(ctx);
    HandleTable& out = internal::CallHandles::reply(ctx);
    switch (method_id) {
      case 1: {  // ReadPipe
        absl::StatusOr<Fd> fd = in.Take(1, "pipe");
        if (!fd.ok()) return fd.status();
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        if (!fd->valid()) return absl::InvalidArgumentError("no pipe");
        absl::StatusOr<std::string> got = ReadToEnd(fd->get());
        if (!got.ok()) return got.status();
        *response = std::move(*got);
        return absl::OkStatus();
      }
      case 2:     // WritePipe
      case 12: {  // OnewayWrite
        absl::StatusOr<Fd> fd = in.Take(1, "pipe");
        if (!fd.ok()) return fd.status();
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        if (!fd->valid()) return absl::InvalidArgumentError("no pipe");
        return WriteAll(fd->get(), request);
      }
      case 3: {  // MakePipe
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        absl::StatusOr<Fd> fd = MakeFilledPipe(request);
        if (!fd.ok()) return fd.status();
        *response = absl::StrCat(out.Append(*std::move(fd)));
        return absl::OkStatus();
      }
      case 4: {  // MakeMemfd
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        absl::StatusOr<Fd> fd = MakeSealedMemfd(request);
        if (!fd.ok()) return fd.status();
        *response = absl::StrCat(out.Append(*std::move(fd)));
        return absl::OkStatus();
      }
      case 5: {  // ReadMemfd
        absl::StatusOr<Fd> fd = in.Take(1, "memfd");
        if (!fd.ok()) return fd.status();
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        if (absl::Status s =
                CheckHandleKind(*fd, HandleKind::kSealedMemfd, "memfd");
            !s.ok()) {
          return s;
        }
        std::string got(4096, '\0');
        const ssize_t n = ::pread(fd->get(), got.data(), got.size(), 0);
        if (n < 0) return absl::InternalError("pread failed");
        got.resize(static_cast<size_t>(n));
        *response = std::move(got);
        return absl::OkStatus();
      }
      case 6: {  // Echo
        const size_t n = in.size();
        for (size_t i = 1; i <= n; ++i) {
          absl::StatusOr<Fd> fd = in.Take(static_cast<uint32_t>(i));
          if (!fd.ok()) return fd.status();
          out.Append(*std::move(fd));
        }
        *response = std::string(request);
        return in.CheckAllTaken();
      }
      case 7: {  // TakeFirst
        absl::StatusOr<Fd> fd = in.Take(1, "first");
        if (!fd.ok()) return fd.status();
        return in.CheckAllTaken();
      }
      case 8: {  // TooMany
        if (absl::Status s = in.CheckAllTaken(); !s.ok()) return s;
        int n = 0;
        if (!absl::SimpleAtoi(std::string(request), &n) || n < 0 || n > 300) {
          return absl::InvalidArgumentError("bad count");
        }
        for (int i = 0; i < n; ++i) {
          out.Append(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
        }
        return absl::OkStatus();
      }
      case 9:  // Stats
        *response = stats_ ? stats_() : std::string();
        return absl::OkStatus();
      default:
        return absl::UnimplementedError("unknown method");
    }
  }

 private:
  std::function<std::string()> stats_;
};

}  // namespace lpc::testing

#endif  // LPC_TRANSPORTS_LOCAL_HANDLES_TEST_SERVICE_H_
