#include "runtime/handles.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "runtime/call_context.h"

namespace lpc {
namespace {

// The payload that marks a handle protocol error; its value is the reason.
constexpr char kProtocolErrorPayload[] =
    "type.googleapis.com/lpc.HandleProtocolError";

// Debian's abseil has its own string_view.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<uint32_t> HandleTable::Add(const Fd& fd) {
  if (!fd.valid()) return 0u;
  absl::StatusOr<Fd> dup = fd.Dup();
  if (!dup.ok()) return dup.status();
  return Append(*std::move(dup));
}

uint32_t HandleTable::Append(Fd fd) {
  if (!fd.valid()) return 0;
  fds_.push_back(std::move(fd));
  return static_cast<uint32_t>(fds_.size());
}

absl::StatusOr<Fd> HandleTable::Take(uint32_t index, std::string_view what) {
  if (index == 0) return Fd();
  if (index > fds_.size()) {
    return internal::HandleProtocolError(
        internal::kMissingHandle,
        absl::StrCat(what.empty() ? absl::string_view("a handle") : Sv(what), " names descriptor ", index,
                     " of a table of ", fds_.size()));
  }
  Fd& slot = fds_[index - 1];
  if (!slot.valid()) {
    return internal::HandleProtocolError(
        internal::kMissingHandle,
        absl::StrCat(what.empty() ? absl::string_view("a handle") : Sv(what), " names descriptor ", index,
                     ", which another handle of the message named already"));
  }
  return std::move(slot);
}

absl::Status HandleTable::CheckAllTaken() const {
  for (size_t i = 0; i < fds_.size(); ++i) {
    if (fds_[i].valid()) {
      return internal::HandleProtocolError(
          internal::kUnreferencedHandle,
          absl::StrCat("descriptor ", i + 1, " of ", fds_.size(),
                       " is named by no handle of the message"));
    }
  }
  return absl::OkStatus();
}

std::vector<int> HandleTable::Release() {
  std::vector<int> out;
  out.reserve(fds_.size());
  for (Fd& fd : fds_) {
    if (fd.valid()) out.push_back(fd.release());
  }
  fds_.clear();
  return out;
}

std::string_view HandleKindName(HandleKind kind) {
  switch (kind) {
    case HandleKind::kAny:
      return "handle";
    case HandleKind::kMemfd:
      return "handle<memfd>";
    case HandleKind::kSealedMemfd:
      return "handle<memfd, sealed>";
    case HandleKind::kPipe:
      return "handle<pipe>";
    case HandleKind::kSocket:
      return "handle<socket>";
    case HandleKind::kFile:
      return "handle<file>";
  }
  return "handle";
}

absl::Status CheckHandleKind(const Fd& fd, HandleKind kind, std::string_view what) {
  if (!fd.valid() || kind == HandleKind::kAny) return absl::OkStatus();
  auto mismatch = [&](std::string_view is) {
    return absl::InvalidArgumentError(absl::StrCat("lpc: ", Sv(what), " must be a ",
                                                   Sv(HandleKindName(kind)), ", but is ", Sv(is)));
  };
  if (kind == HandleKind::kMemfd || kind == HandleKind::kSealedMemfd) {
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return mismatch("not a memfd");
    if (kind == HandleKind::kSealedMemfd) {
      constexpr int kAll = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
      if ((seals & kAll) != kAll) {
        return mismatch(absl::StrCat("a memfd with seals 0x", absl::Hex(seals),
                                     " (needs 0x", absl::Hex(kAll), ")"));
      }
    }
    return absl::OkStatus();
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return mismatch(absl::StrCat("a descriptor fstat rejects: ", std::strerror(errno)));
  }
  const auto type = st.st_mode & S_IFMT;
  const bool ok = (kind == HandleKind::kPipe && type == S_IFIFO) ||
                  (kind == HandleKind::kSocket && type == S_IFSOCK) ||
                  (kind == HandleKind::kFile && type == S_IFREG);
  if (ok) return absl::OkStatus();
  std::string_view is = type == S_IFIFO    ? "a pipe"
                        : type == S_IFSOCK ? "a socket"
                        : type == S_IFREG  ? "a regular file"
                        : type == S_IFDIR  ? "a directory"
                        : type == S_IFCHR  ? "a character device"
                        : type == S_IFBLK  ? "a block device"
                                           : "another kind of descriptor";
  return mismatch(is);
}

namespace internal {

absl::Status HandleProtocolError(std::string_view reason, std::string_view detail) {
  absl::Status status = absl::InternalError(
      absl::StrCat("lpc: handle protocol error (", Sv(reason), "): ", Sv(detail)));
  status.SetPayload(kProtocolErrorPayload, absl::Cord(Sv(reason)));
  return status;
}

bool IsHandleProtocolError(const absl::Status& status) {
  return status.GetPayload(kProtocolErrorPayload).has_value();
}

std::string HandleProtocolErrorReason(const absl::Status& status) {
  absl::optional<absl::Cord> reason = status.GetPayload(kProtocolErrorPayload);
  return reason.has_value() ? std::string(*reason) : std::string();
}

absl::Status HandlesNeedLocalTransport(const InterfaceDescriptor& iface,
                                       const MethodDescriptor& method) {
  return absl::FailedPreconditionError(
      absl::StrCat("method ", iface.MethodPath(method),
                   " carries handles (file descriptors); handles need the "
                   "local transport"));
}

absl::Status DuplicateHandles(const HandleTable& from, HandleTable& to) {
  to.Clear();
  for (size_t i = 0; i < from.size(); ++i) {
    absl::StatusOr<Fd> dup = Fd::Duplicate(from.raw(i));
    if (!dup.ok()) {
      to.Clear();
      return dup.status();
    }
    to.Append(*std::move(dup));
  }
  return absl::OkStatus();
}

absl::StatusOr<Fd> TakeHandle(HandleTable& table, uint32_t index, HandleKind kind,
                              std::string_view what) {
  absl::StatusOr<Fd> fd = table.Take(index, what);
  if (!fd.ok()) return fd;
  if (absl::Status st = CheckHandleKind(*fd, kind, what); !st.ok()) return st;
  return fd;
}

HandleTable& CallHandles::request(CallContext& ctx) {
  if (ctx.handles_ == nullptr) ctx.handles_ = std::make_unique<CallHandleTables>();
  return ctx.handles_->request;
}

HandleTable& CallHandles::reply(CallContext& ctx) {
  if (ctx.handles_ == nullptr) ctx.handles_ = std::make_unique<CallHandleTables>();
  return ctx.handles_->reply;
}

HandleTable* CallHandles::request_if_any(CallContext& ctx) {
  return ctx.handles_ == nullptr ? nullptr : &ctx.handles_->request;
}

HandleTable* CallHandles::reply_if_any(CallContext& ctx) {
  return ctx.handles_ == nullptr ? nullptr : &ctx.handles_->reply;
}

void CallHandles::Reset(CallContext& ctx) {
  if (ctx.handles_ == nullptr) return;
  ctx.handles_->request.Clear();
  ctx.handles_->reply.Clear();
}

}  // namespace internal
}  // namespace lpc
