// The handle table of one message, and the checks on it
// (docs/handles.md, "File descriptors").
//
// A message's bytes name its descriptors by index: a handle field holds 0
// for an empty handle, otherwise i + 1 for the i-th descriptor of the
// message's table. The generated encoder Add()s descriptors while it
// encodes, the transport moves the table beside the bytes, and the
// generated decoder Take()s each one out and then checks CheckAllTaken().
//
// The tables of a call live on its CallContext (request_handles,
// reply_handles), created on first use so that a call without handles
// pays nothing. User code never sees a table; generated code and
// transports reach them through lpc::internal::CallHandles below.
//
// The contract between generated code and transports:
//  - Client: the stub fills the request table of the call's context
//    before Call / StartCall / SendOneway. By the time that returns, the
//    transport has sent the descriptors or taken them out (Release); the
//    stub then closes whatever is left. The transport puts the reply's
//    descriptors in the reply table before it completes the call, and the
//    generated decoder takes them out.
//  - Server: the transport puts the request's descriptors in the request
//    table of the handler's context before Dispatch; the generated code
//    takes them out, and fills the reply table, which the transport sends
//    with the reply after Dispatch returns OK.
//
// Not thread-safe: a table belongs to one call's one side at a time.
#ifndef LPC_RUNTIME_HANDLES_H_
#define LPC_RUNTIME_HANDLES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/fd.h"
#include "runtime/interface.h"

namespace lpc {

class CallContext;

class HandleTable {
 public:
  HandleTable() = default;
  // Closes the descriptors still in the table.
  ~HandleTable() = default;
  HandleTable(HandleTable&&) = default;
  HandleTable& operator=(HandleTable&&) = default;
  HandleTable(const HandleTable&) = delete;
  HandleTable& operator=(const HandleTable&) = delete;

  // Appends a close-on-exec duplicate of `fd` (the caller keeps its own)
  // and returns its index, 1-based: the value of the handle field that
  // names it. An empty `fd` adds nothing and returns 0. Fails (see
  // Fd::Dup) when the descriptor cannot be duplicated.
  absl::StatusOr<uint32_t> Add(const Fd& fd);
  // Appends `fd` itself (no duplicate); returns its 1-based index, or 0
  // for an empty `fd`.
  uint32_t Append(Fd fd);

  // Moves the descriptor at 1-based `index` out. 0 gives an empty Fd. An
  // index past the table, or one already taken, is a handle protocol
  // error ("missing_handle"); `what` names the field, for the message.
  absl::StatusOr<Fd> Take(uint32_t index, std::string_view what = "");
  // OK when every descriptor of the table was taken; otherwise a handle
  // protocol error ("unreferenced_handle").
  absl::Status CheckAllTaken() const;

  // The number of entries (taken or not).
  size_t size() const { return fds_.size(); }
  bool empty() const { return fds_.empty(); }
  // Borrows the descriptor at 0-based `i` (-1 if taken). For transports
  // that send the table (SCM_RIGHTS) without giving it up.
  int raw(size_t i) const { return fds_[i].get(); }

  // For transports. Release() gives up every descriptor not yet taken, in
  // order, and empties the table: the caller closes them (on a thread
  // where a blocking close harms no one). Adopt() appends a raw
  // descriptor received from a peer; the table owns it from now on.
  std::vector<int> Release();
  void Adopt(int fd) { fds_.emplace_back(fd); }
  // Closes every descriptor still in the table and empties it.
  void Clear() { fds_.clear(); }

 private:
  std::vector<Fd> fds_;
};

// What a handle field of the IDL requires of its descriptor.
enum class HandleKind : uint8_t {
  kAny = 0,      // handle
  kMemfd,        // handle<memfd>: F_GET_SEALS succeeds
  kSealedMemfd,  // handle<memfd, sealed>: F_SEAL_WRITE|GROW|SHRINK|SEAL set
  kPipe,         // handle<pipe>: S_ISFIFO
  kSocket,       // handle<socket>: S_ISSOCK
  kFile,         // handle<file>: S_ISREG
};

// "handle", "handle<memfd>", "handle<memfd, sealed>", ...
std::string_view HandleKindName(HandleKind kind);

// OK when `fd` is empty or of `kind`; otherwise INVALID_ARGUMENT naming
// `what` (the parameter or field) and the kind expected.
absl::Status CheckHandleKind(const Fd& fd, HandleKind kind, std::string_view what);

namespace internal {

// The reasons of a handle protocol error, as the local transport counts
// its cut-offs.
inline constexpr std::string_view kTooManyHandles = "too_many_handles";
inline constexpr std::string_view kUnreferencedHandle = "unreferenced_handle";
inline constexpr std::string_view kMissingHandle = "missing_handle";

// A status (INTERNAL) for a message whose handle table does not match its
// bytes: the peer broke the protocol. `reason` is one of the above;
// `detail` is for the message.
absl::Status HandleProtocolError(std::string_view reason, std::string_view detail);
// True for a status made by HandleProtocolError.
bool IsHandleProtocolError(const absl::Status& status);
// Its reason ("too_many_handles", ...), or "" for any other status.
std::string HandleProtocolErrorReason(const absl::Status& status);

// Replaces the contents of `to` with close-on-exec duplicates of the
// descriptors of `from` (F_DUPFD_CLOEXEC), in order: what the in-process
// transport does instead of sending them. `from` is a table as an encoder
// filled it (nothing taken). On failure `to` is left empty.
absl::Status DuplicateHandles(const HandleTable& from, HandleTable& to);

// FAILED_PRECONDITION for a call of a handle method (MethodDescriptor::
// handles) on a transport that carries no descriptors (gRPC): "method
// /pkg.Iface/Method carries handles (file descriptors); handles need the
// local transport".
absl::Status HandlesNeedLocalTransport(const InterfaceDescriptor& iface,
                                       const MethodDescriptor& method);

// For generated decoders: Take(index) and CheckHandleKind(kind) in one.
absl::StatusOr<Fd> TakeHandle(HandleTable& table, uint32_t index, HandleKind kind,
                              std::string_view what);

// The two tables of a call, allocated on first use.
struct CallHandleTables {
  HandleTable request;
  HandleTable reply;
};

// The handle tables of a call, on its CallContext. For generated code and
// transports only.
class CallHandles {
 public:
  CallHandles() = delete;
  // The table, created on first use.
  static HandleTable& request(CallContext& ctx);
  static HandleTable& reply(CallContext& ctx);
  // The table, or nullptr when none was created.
  static HandleTable* request_if_any(CallContext& ctx);
  static HandleTable* reply_if_any(CallContext& ctx);
  // Closes the descriptors of both tables (a client reusing `ctx` for
  // another call starts with empty tables).
  static void Reset(CallContext& ctx);
};

}  // namespace internal

}  // namespace lpc

#endif  // LPC_RUNTIME_HANDLES_H_
