// The server-side fuzz targets' client (server_fuzz_client.h).
#include "transports/local/server_fuzz_client.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <utility>

#include "transports/local/control_socket.h"
#include "transports/local/frame.h"

namespace lpc::local::fuzz {

uint16_t Input::U16() {
  return static_cast<uint16_t>(Byte() | (uint16_t{Byte()} << 8));
}

uint32_t Input::U32() {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{Byte()} << (8 * i);
  return v;
}

uint64_t Input::U64() {
  const uint64_t lo = U32();
  return lo | (uint64_t{U32()} << 32);
}

std::string Input::Bytes(size_t n) {
  const size_t take = n < left() ? n : left();
  std::string s(reinterpret_cast<const char*>(data_ + pos_), take);
  pos_ += take;
  return s;
}

int CountOpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (const struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // The directory's own descriptor.
}

namespace {

constexpr int kAllSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

UniqueFd NewMemfd(uint64_t size) {
  UniqueFd fd(::memfd_create("lpc-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (fd && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return UniqueFd();
  }
  return fd;
}

}  // namespace

UniqueFd MakePeerFd(Input& in, int own_socket) {
  switch (static_cast<FdKind>(in.Byte() % static_cast<int>(FdKind::kCount))) {
    case FdKind::kSealedMemfd: {
      const uint8_t how = in.Byte();
      const std::string bytes = in.Bytes(in.Byte());
      UniqueFd fd = NewMemfd(bytes.size() + (how & 0x70));
      if (!fd) return fd;
      if (!bytes.empty()) ::pwrite(fd.get(), bytes.data(), bytes.size(), 0);
      int seals = kAllSeals;
      if (how & 1) seals |= F_SEAL_WRITE;
      if (how & 2) seals &= ~F_SEAL_GROW;
      ::fcntl(fd.get(), F_ADD_SEALS, seals);
      return fd;
    }
    case FdKind::kUnsealedMemfd:
      return NewMemfd(in.U16());
    case FdKind::kSparseMemfd: {
      UniqueFd fd = NewMemfd((uint64_t{in.U16()} + 1) << 12);
      if (fd) ::fcntl(fd.get(), F_ADD_SEALS, kAllSeals);
      return fd;
    }
    case FdKind::kPipe: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return UniqueFd();
      ::close(p[1]);
      return UniqueFd(p[0]);
    }
    case FdKind::kSocket: {
      int s[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
        return UniqueFd();
      }
      ::close(s[1]);
      return UniqueFd(s[0]);
    }
    case FdKind::kDevNull:
      return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    case FdKind::kEventFd:
      return UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    case FdKind::kOwnSocket:
    case FdKind::kCount:
      break;
  }
  return UniqueFd(::fcntl(own_socket, F_DUPFD_CLOEXEC, 0));
}

UniqueFd MakePayloadMemfd(const std::string& bytes) {
  absl::StatusOr<UniqueFd> fd =
      CreateSealedMemfd("lpc-fuzz", PayloadMemfdSize(bytes.size()));
  if (!fd.ok()) return UniqueFd();
  if (!bytes.empty()) ::pwrite(fd->get(), bytes.data(), bytes.size(), 0);
  return std::move(*fd);
}

bool SendRaw(int sock, const std::string& bytes, const std::vector<int>& fds) {
  struct iovec iov;
  iov.iov_base = const_cast<char*>(bytes.data());
  iov.iov_len = bytes.size();
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

std::string MakeControlPacket(Input& in, uint32_t next_memfd) {
  const uint8_t pick = in.Byte();
  std::string p;
  switch (pick % 8) {
    case 0:
    case 1:
    case 2: {  // PAYLOAD_FD, mostly for the next number.
      PayloadFdBody b{pick & 8 ? in.U32() : next_memfd, 0, in.U16()};
      if (pick & 16) b.reserved = in.U32();
      p = EncodeControl(ControlType::kPayloadFd, &b, sizeof(b));
      break;
    }
    case 3: {
      p = EncodeCancelPacket(pick & 8 ? in.U64() : in.Byte());
      break;
    }
    case 4:
      p = EncodeStatusPacket(ControlType::kGoodbye,
                             absl::CancelledError(in.Bytes(in.Byte() % 32)));
      break;
    case 6:  // HANDLES: an id the ring may or may not name, any count.
      p = EncodeHandlesPacket(pick & 8 ? in.U64() : in.Byte(), in.Byte() % 20);
      break;
    case 5: {  // Any type, any body.
      const std::string body = in.Bytes(in.Byte());
      p = EncodeControl(static_cast<ControlType>(in.Byte()), body.data(),
                        body.size());
      break;
    }
    case 7:
      if (pick & 32) {  // BUFFER: an id the ring may or may not name.
        BufferBody b{};
        b.message_id = pick & 8 ? in.U64() : in.Byte();
        b.field_number = pick & 16 ? in.U32() : 2;
        b.offset = pick & 64 ? in.U64() : 0;
        b.length = pick & 128 ? in.U64() : in.U16();
        p = EncodeBufferPacket(b);
        break;
      }
      if (pick & 64) {  // The same-uid buffer pool's packets.
        switch (in.Byte() % 3) {
          case 0:  // POOL: a small layout (with whatever descriptor).
            p = EncodePoolPacket(PoolBody{4096u << (in.Byte() % 3),
                                          2u * (1 + in.Byte() % 4),
                                          pick & 8 ? in.U32() : 0});
            break;
          case 1:  // POOL_BUFFER: an id the ring may or may not name.
            p = EncodePoolBufferPacket(PoolBufferBody{
                pick & 8 ? in.U64() : in.Byte(), 2,
                static_cast<uint32_t>(in.Byte() % 10),
                pick & 16 ? in.U64() : in.U16()});
            break;
          default: {  // POOL_RETURN of a few chunks.
            std::vector<uint32_t> chunks(1 + in.Byte() % 4);
            for (uint32_t& c : chunks) c = in.Byte() % 10;
            p = EncodePoolReturnPacket(chunks);
            break;
          }
        }
        break;
      }
      p = in.Bytes(in.Byte());  // Raw bytes.
      break;
    default:  // Raw bytes.
      p = in.Bytes(in.Byte());
      break;
  }
  // Sizes: as made, cut short, or grown up to and past the limit.
  switch (in.Byte() % 8) {
    case 0:
      if (!p.empty()) p.resize(in.Byte() % p.size());
      break;
    case 1:
      p.resize(kMaxControlPacket, static_cast<char>(in.Byte()));
      break;
    case 2:
      p.resize(kMaxControlPacket + 1 + in.U16() % 8192,
               static_cast<char>(in.Byte()));
      break;
    case 3:
      if (!p.empty()) p[in.Byte() % p.size()] ^= static_cast<char>(in.Byte());
      break;
    case 4:
      p += in.Bytes(in.Byte() % 16);
      break;
    default:
      break;
  }
  return p;
}

LocalPortOptions SmallPortOptions(uint64_t data_area) {
  LocalPortOptions o;
  o.geometry.request_slots = 8;
  o.geometry.reply_slots = 8;
  o.geometry.max_record_slots = 4;
  o.geometry.c2s_data_bytes = data_area;
  o.geometry.s2c_data_bytes = data_area;
  o.max_inline_record = 256;
  o.batch_per_turn = 8;
  o.max_in_flight_per_connection = 16;
  o.max_queued_replies = 16;
  // Budgets small enough for inputs to reach them.
  o.max_stashed_fds = 32;
  o.max_request_bytes_per_connection = 32 << 10;
  o.max_request_bytes = 48 << 10;
  o.max_queued_reply_bytes_per_connection = 2 << 10;
  // The same-uid buffer pool: the fuzzer's client is this process.
  o.same_uid_buffer_pool = true;
  o.max_buffer_pool_bytes = 1 << 20;
  return o;
}

absl::StatusOr<std::unique_ptr<FuzzClient>> FuzzClient::Connect(
    internal::ServerFuzzPeer& server, uint32_t max_inline_record) {
  std::unique_ptr<FuzzClient> c(new FuzzClient());
  UniqueFd server_end;
  if (absl::Status s = MakeSocketPair(&server_end, &c->sock_); !s.ok()) {
    return s;
  }
  // Bounded: a record whose memfd never comes costs the input 2 ms.
  absl::StatusOr<std::shared_ptr<internal::Connection>> conn =
      server.Accept(std::move(server_end), absl::Milliseconds(2));
  if (!conn.ok()) return conn.status();
  c->conn_ = std::move(*conn);
  absl::StatusOr<Packet> welcome =
      RecvPacket(c->sock_.get(), absl::Now() + absl::Seconds(1));
  if (!welcome.ok()) return welcome.status();
  if (welcome->fds.size() != 2) {
    return absl::InternalError("welcome without its two descriptors");
  }
  c->eventfd_ = std::move(welcome->fds[1]);
  absl::StatusOr<Mapping> map = Mapping::Map(
      welcome->fds[0].get(), c->conn_->layout.total_size, /*writable=*/true);
  if (!map.ok()) return map.status();
  c->map_ = std::move(*map);
  EndpointOptions eo;
  eo.max_inline_record = max_inline_record;
  eo.peer_eventfd = c->eventfd_.get();
  eo.memfd_wait = absl::ZeroDuration();
  c->ep_ = std::make_unique<Endpoint>(Side::kClient, c->map_.data(),
                                      c->conn_->layout, c.get(), eo);
  return c;
}

absl::Status FuzzClient::SendPayloadFd(uint32_t number, uint64_t length,
                                       int fd) {
  ++memfds_sent_;
  PayloadFdBody b{number, 0, length};
  std::vector<int> fds = {fd};
  UniqueFd other;
  switch (hand_over_) {
    case MemfdHandOver::kHonest:
    case MemfdHandOver::kCount:
      break;
    case MemfdHandOver::kNone:
      return absl::OkStatus();
    case MemfdHandOver::kOtherFd:
      if (in_->Byte() & 1) {
        // Sealed and of the expected size, but never written.
        absl::StatusOr<UniqueFd> sparse =
            CreateSealedMemfd("lpc-fuzz", PayloadMemfdSize(length));
        if (sparse.ok()) other = std::move(*sparse);
      } else {
        other = MakePeerFd(*in_, sock_.get());
      }
      if (other) fds[0] = other.get();
      break;
    case MemfdHandOver::kWrongNumber:
      b.memfd_number = in_->U32();
      break;
    case MemfdHandOver::kTwoFds:
      other = MakePeerFd(*in_, sock_.get());
      if (other) fds.push_back(other.get());
      break;
  }
  if (!SendRaw(sock_.get(),
               EncodeControl(ControlType::kPayloadFd, &b, sizeof(b)), fds)) {
    return absl::UnavailableError("control socket full or closed");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> FuzzClient::TakePayloadFd(uint32_t, uint64_t,
                                                   absl::Time) {
  // The fuzz targets' replies are small (bind replies, refusals): inline.
  return absl::UnimplementedError("the fuzz client takes no reply memfds");
}

absl::Status FuzzClient::ReadReplies(size_t* count) {
  *count = 0;
  for (;;) {
    absl::StatusOr<std::optional<IncomingMessage>> m = ep_->Receive();
    if (!m.ok()) return m.status();
    if (!m->has_value()) break;
    ++*count;
  }
  ep_->ReleaseReceived();
  return absl::OkStatus();
}

}  // namespace lpc::local::fuzz
