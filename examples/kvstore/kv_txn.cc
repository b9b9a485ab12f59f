// The kvstore example's transactions: a context handle (`context Txn;`)
// per transaction, kept in the client connection's context table. The
// rundown aborts a transaction whose client disconnected or died.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/kvstore/kv_service.h"
#include "runtime/context_handle.h"

namespace example::kv {
namespace {

// Puts one transaction may stage.
constexpr size_t kMaxTxnPuts = 1000;

}  // namespace

struct KeyValueImpl::TxnState {
  lpc::Mutex mu;
  // Set once by Commit, Abort or the rundown, whichever comes first.
  bool ended ABSL_GUARDED_BY(mu) = false;
  std::vector<std::pair<std::string, std::string>> puts ABSL_GUARDED_BY(mu);
};

absl::StatusOr<Txn> KeyValueImpl::Begin(lpc::CallContext& ctx) {
  {
    lpc::MutexLock lock(&mu_);
    CountCall(ctx);
    ++open_txns_;  // Before its rundown can run.
  }
  absl::StatusOr<Txn> txn = lpc::OpenContext<Txn>(
      ctx, std::make_shared<TxnState>(),
      [this](TxnState& t) { RunDown(t); });
  if (!txn.ok()) {
    lpc::MutexLock lock(&mu_);
    --open_txns_;
  }
  return txn;
}

absl::Status KeyValueImpl::TxnPut(lpc::CallContext& ctx, Txn txn,
                                  const std::string& key,
                                  const std::string& value) {
  {
    lpc::MutexLock lock(&mu_);
    CountCall(ctx);
  }
  if (absl::Status s = CheckPut(key, value); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<TxnState>> t =
      lpc::LookupContext<TxnState>(ctx, txn);
  if (!t.ok()) return t.status();
  lpc::MutexLock lock(&(*t)->mu);
  if ((*t)->ended) return absl::NotFoundError("the transaction has ended");
  if ((*t)->puts.size() >= kMaxTxnPuts) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a transaction stages at most ", kMaxTxnPuts, " puts; commit first"));
  }
  (*t)->puts.emplace_back(key, value);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KeyValueImpl::Commit(lpc::CallContext& ctx, Txn txn) {
  absl::StatusOr<std::shared_ptr<TxnState>> t =
      lpc::LookupContext<TxnState>(ctx, txn);
  if (!t.ok()) return t.status();
  std::vector<std::pair<std::string, std::string>> puts;
  {
    lpc::MutexLock lock(&(*t)->mu);
    if ((*t)->ended) return absl::NotFoundError("the transaction has ended");
    (*t)->ended = true;
    puts = std::move((*t)->puts);
  }
  // Ended above, so its rundown (now) aborts nothing.
  (void)lpc::CloseContext(ctx, txn);
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  --open_txns_;
  for (const auto& [key, value] : puts) ApplyPutLocked(ctx, key, value);
  return puts.size();
}

absl::Status KeyValueImpl::Abort(lpc::CallContext& ctx, Txn txn) {
  {
    lpc::MutexLock lock(&mu_);
    CountCall(ctx);
  }
  // The rundown runs now, on this thread, and aborts it.
  return lpc::CloseContext(ctx, txn);
}

void KeyValueImpl::RunDown(TxnState& t) {
  {
    lpc::MutexLock lock(&t.mu);
    if (t.ended) return;  // Committed.
    t.ended = true;
    t.puts.clear();
  }
  {
    lpc::MutexLock lock(&mu_);
    --open_txns_;
    ++aborted_txns_;
  }
  if (on_txn_aborted_) on_txn_aborted_();
}

}  // namespace example::kv
