// Byte budgets of a local server: what its connections hold in decoded
// requests, queued replies and reply memfds the clients have not collected,
// counted per connection and over the whole server, and the payload fds
// waiting in connections' stashes (docs/local-transport.md, "Limits").
//
// Thread safety: the counters are atomics; a ByteCharge is owned by one
// thread at a time.
#ifndef LPC_TRANSPORTS_LOCAL_INTERNAL_BUDGET_H_
#define LPC_TRANSPORTS_LOCAL_INTERNAL_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <utility>

namespace lpc::local::internal {

// One budget: `limit` bytes (0 = none) and what is used now.
struct Budget {
  uint64_t limit = 0;
  std::atomic<uint64_t> used{0};

  // Whether the budget is used up: reading more would pass it.
  bool Reached() const {
    return limit != 0 && used.load(std::memory_order_relaxed) >= limit;
  }
  // Whether `n` more bytes would pass the limit.
  bool WouldExceed(uint64_t n) const {
    return limit != 0 && used.load(std::memory_order_relaxed) + n > limit;
  }
};

// Whether a connection whose own budget is `conn` may read another request
// while the server's is `server`: not past its own budget; past the
// server's, only if it holds nothing (so that connections that filled the
// server's budget, holding their calls for long, say, do not stop a
// neighbour's next call). A large request read then is admitted or refused
// by AdmitRequest.
inline bool MayRead(const Budget& conn, const Budget& server) {
  if (conn.Reached()) return false;
  return !server.Reached() || conn.used.load(std::memory_order_relaxed) == 0;
}

// Requests up to this size are always admitted (and counted): a
// connection's are bounded anyway by its in-flight calls and data area.
inline constexpr uint64_t kAlwaysAdmittedRequest = uint64_t{64} << 10;

// Whether a request of `n` bytes may be copied in, with the server's
// budget `server`; a refused one fails with RESOURCE_EXHAUSTED.
inline bool AdmitRequest(const Budget& server, uint64_t n) {
  return n <= kAlwaysAdmittedRequest || !server.WouldExceed(n);
}

// The server-wide budgets, shared by every connection.
struct ServerBudgets {
  Budget request_bytes;      // Decoded requests queued or running.
  Budget reply_bytes;        // Replies queued for a full reply ring.
  Budget reply_memfd_bytes;  // Reply memfds sent and not yet collected.
  Budget stashed_fds;        // Payload fds received and not yet claimed.
  Budget outbox_fds;         // fds in control packets waiting to be sent.
};

// `n` units charged to a connection's budget and the server's, given back
// on destruction or Release. Move-only.
class ByteCharge {
 public:
  ByteCharge() = default;
  ByteCharge(Budget* conn, Budget* server, uint64_t n)
      : conn_(conn), server_(server), n_(n) {
    if (conn_ != nullptr) conn_->used.fetch_add(n_, std::memory_order_relaxed);
    if (server_ != nullptr) {
      server_->used.fetch_add(n_, std::memory_order_relaxed);
    }
  }
  ByteCharge(ByteCharge&& o) noexcept
      : conn_(std::exchange(o.conn_, nullptr)),
        server_(std::exchange(o.server_, nullptr)),
        n_(std::exchange(o.n_, 0)) {}
  ByteCharge& operator=(ByteCharge&& o) noexcept {
    if (this != &o) {
      Release();
      conn_ = std::exchange(o.conn_, nullptr);
      server_ = std::exchange(o.server_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ByteCharge(const ByteCharge&) = delete;
  ByteCharge& operator=(const ByteCharge&) = delete;
  ~ByteCharge() { Release(); }

  void Release() {
    if (conn_ != nullptr) conn_->used.fetch_sub(n_, std::memory_order_relaxed);
    if (server_ != nullptr) {
      server_->used.fetch_sub(n_, std::memory_order_relaxed);
    }
    conn_ = server_ = nullptr;
    n_ = 0;
  }

 private:
  Budget* conn_ = nullptr;
  Budget* server_ = nullptr;
  uint64_t n_ = 0;
};

}  // namespace lpc::local::internal

#endif  // LPC_TRANSPORTS_LOCAL_INTERNAL_BUDGET_H_
