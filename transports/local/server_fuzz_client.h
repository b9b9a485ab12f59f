// What the server-side fuzz targets (control_path_fuzzer.cc,
// handle_message_fuzzer.cc) share: a reader of the fuzz input, descriptors
// of every kind a peer can pass, an fd count, and a hostile client's end of
// one connection to a server that internal::ServerFuzzPeer drives by hand.
//
// Thread safety: none; one fuzz input at a time.
#ifndef LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_CLIENT_H_
#define LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "transports/local/endpoint.h"
#include "transports/local/internal/server_connection.h"
#include "transports/local/internal/server_fuzz_peer.h"
#include "transports/local/memfd.h"
#include "transports/local/section.h"
#include "transports/local/unique_fd.h"

namespace lpc::local::fuzz {

// Reads the input front to back; past the end everything is zero.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16();
  uint32_t U32();
  uint64_t U64();
  // Up to `n` bytes (fewer at the end of the input).
  std::string Bytes(size_t n);
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Open descriptors of this process (entries of /proc/self/fd).
int CountOpenFds();

// The kinds of descriptor a peer can attach to a control packet.
enum class FdKind {
  kSealedMemfd,    // Size and contents from the input, sealed as the
                   // server expects (some inputs add or drop seals).
  kUnsealedMemfd,  // Shrinkable: would raise SIGBUS if mapped.
  kSparseMemfd,    // Sealed, ftruncate'd to a large size, never written.
  kPipe,           // The read end of a pipe.
  kSocket,         // One end of a fresh socket pair.
  kDevNull,
  kEventFd,
  kOwnSocket,      // A duplicate of the client's own control socket.
  kCount,
};

// A descriptor of the kind the input picks. `own_socket` is duplicated for
// kOwnSocket. Never fails for a kind the machine has (an empty UniqueFd
// otherwise, which callers skip).
UniqueFd MakePeerFd(Input& in, int own_socket);
// A sealed memfd holding `bytes` (what an honest client sends).
UniqueFd MakePayloadMemfd(const std::string& bytes);

// Sends one SOCK_SEQPACKET packet with `fds` attached, without waiting.
// False if it was not sent (the socket's buffer is full, or the server
// closed it).
bool SendRaw(int sock, const std::string& bytes, const std::vector<int>& fds);

// A control packet from the input: a valid header and a body chosen for
// `type` (PAYLOAD_FD with the expected number or another, CANCEL with an
// id, HANDLES with an id and a count, BUFFER with an id and a range), then bytes cut or appended, so that sizes from 0 to past
// kMaxControlPacket occur.
std::string MakeControlPacket(Input& in, uint32_t next_memfd);

// How the client's endpoint hands its payload memfds over (the record that
// uses each follows on the ring).
enum class MemfdHandOver {
  kHonest,        // PAYLOAD_FD with the memfd, number and length.
  kNone,          // Nothing: a memfd record with no fd behind it.
  kOtherFd,       // PAYLOAD_FD with a descriptor of another kind.
  kWrongNumber,   // PAYLOAD_FD for a number other than the record's.
  kTwoFds,        // PAYLOAD_FD with the memfd and a second descriptor.
  kCount,
};

// The client's end: its control socket, its mapping of the section and
// its endpoint on it, whose payload memfds go out as `hand_over` says.
class FuzzClient : public MemfdPort {
 public:
  // Makes a socket pair, runs the server's handshake on one end (through
  // `server`) and maps the section from the kWelcome packet on the other.
  // The server waits at most 2 ms for a record's payload memfd.
  static absl::StatusOr<std::unique_ptr<FuzzClient>> Connect(
      internal::ServerFuzzPeer& server, uint32_t max_inline_record);

  const std::shared_ptr<internal::Connection>& conn() const { return conn_; }
  int sock() const { return sock_.get(); }
  Endpoint& ep() { return *ep_; }
  const SectionLayout& layout() const { return conn_->layout; }
  std::byte* section() const { return map_.data(); }

  // The next payload memfd's hand-over; the input picks the other kind of
  // descriptor for kOtherFd and kTwoFds.
  void SetHandOver(MemfdHandOver how, Input* in) {
    hand_over_ = how;
    in_ = in;
  }
  uint32_t memfds_sent() const { return memfds_sent_; }

  // Reads every reply the server put in the reply ring. An error means the
  // server wrote something its own client cannot decode.
  absl::Status ReadReplies(size_t* count);

  // MemfdPort.
  absl::Status SendPayloadFd(uint32_t number, uint64_t length,
                             int fd) override;
  absl::StatusOr<UniqueFd> TakePayloadFd(uint32_t number, uint64_t length,
                                         absl::Time deadline) override;

 private:
  FuzzClient() = default;

  std::shared_ptr<internal::Connection> conn_;
  UniqueFd sock_;
  UniqueFd eventfd_;
  Mapping map_;
  std::unique_ptr<Endpoint> ep_;
  MemfdHandOver hand_over_ = MemfdHandOver::kHonest;
  Input* in_ = nullptr;
  uint32_t memfds_sent_ = 0;
};

// A small section (8 slots each way, 4-slot records) so that every input
// is cheap, and limits and byte budgets that a few records reach;
// `data_area` 0 sends every payload past the inline limit in a memfd.
LocalPortOptions SmallPortOptions(uint64_t data_area);

}  // namespace lpc::local::fuzz

#endif  // LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_CLIENT_H_
