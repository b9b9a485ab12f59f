// KeyValueImpl: the in-memory store behind the kvstore example.
//
// Thread safety: all handlers may run concurrently; one mutex guards the
// map and the counters. Watch streams every Put and Delete to the watchers
// whose prefix matches (watchers.h).
#ifndef LPC_EXAMPLES_KVSTORE_KV_SERVICE_H_
#define LPC_EXAMPLES_KVSTORE_KV_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "examples/kvstore/kvstore.lpc.h"
#include "examples/kvstore/watchers.h"
#include "runtime/mutex.h"

namespace example::kv {

class KeyValueImpl final : public KeyValueService {
 public:
  absl::StatusOr<uint64_t> Put(lpc::CallContext& ctx, const std::string& key,
                               const std::string& value,
                               const std::optional<uint64_t>& expected_version) override;
  absl::StatusOr<std::string> Get(lpc::CallContext& ctx, const std::string& key,
                                  uint64_t* version) override;
  absl::StatusOr<bool> Delete(lpc::CallContext& ctx,
                              const std::string& key) override;
  absl::StatusOr<std::vector<Entry>> Scan(lpc::CallContext& ctx,
                                          const std::string& prefix,
                                          uint32_t limit,
                                          bool* truncated) override;
  absl::StatusOr<Stats> GetStats(lpc::CallContext& ctx) override;
  void Touch(lpc::CallContext& ctx, const std::vector<std::string>& keys) override;
  void Watch(lpc::AsyncServerStream<Change> call,
             const std::string& prefix) override;
  // Transactions (kv_txn.cc).
  absl::StatusOr<Txn> Begin(lpc::CallContext& ctx) override;
  absl::Status TxnPut(lpc::CallContext& ctx, Txn txn, const std::string& key,
                      const std::string& value) override;
  absl::StatusOr<uint64_t> Commit(lpc::CallContext& ctx, Txn txn) override;
  absl::Status Abort(lpc::CallContext& ctx, Txn txn) override;

  // Runs `fn` after each transaction that ends aborted (by Abort or by its
  // rundown), on the thread that aborted it. Set before serving.
  void set_on_txn_aborted(std::function<void()> fn) {
    on_txn_aborted_ = std::move(fn);
  }

 private:
  struct TxnState;
  // Validates a put's key and value.
  static absl::Status CheckPut(const std::string& key, const std::string& value);
  // Stores `value` under `key` (no version check) and publishes the change.
  uint64_t ApplyPutLocked(const lpc::CallContext& ctx, const std::string& key,
                          const std::string& value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The rundown of a transaction: aborts it unless it already ended.
  void RunDown(TxnState& txn) ABSL_LOCKS_EXCLUDED(mu_);

  void CountCall(const lpc::CallContext& ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes a change of `key` made by the call `ctx` to the watchers.
  void Publish(const lpc::CallContext& ctx, const Entry* entry,
               const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  lpc::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t value_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t puts_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t gets_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t touches_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> calls_by_transport_ ABSL_GUARDED_BY(mu_);
  uint64_t open_txns_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t aborted_txns_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> on_txn_aborted_;
  // Published to under mu_, so that watchers see changes in store order.
  Watchers watchers_;
};

}  // namespace example::kv

#endif  // LPC_EXAMPLES_KVSTORE_KV_SERVICE_H_
