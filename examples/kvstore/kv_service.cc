// The kvstore example's handlers.
#include "examples/kvstore/kv_service.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace example::kv {

void KeyValueImpl::CountCall(const lpc::CallContext& ctx) {
  ++calls_by_transport_[ctx.peer().transport.empty() ? "unknown"
                                                     : ctx.peer().transport];
}

void KeyValueImpl::Publish(const lpc::CallContext& ctx, const Entry* entry,
                           const std::string& key) {
  Change change;
  change.set_key(key);
  if (entry != nullptr) {
    change.set_value(entry->value());
    change.set_version(entry->version());
  } else {
    change.set_deleted(true);
  }
  change.set_transport(ctx.peer().transport);
  watchers_.Publish(change);
}

absl::StatusOr<uint64_t> KeyValueImpl::Put(
    lpc::CallContext& ctx, const std::string& key, const std::string& value,
    const std::optional<uint64_t>& expected_version) {
  if (absl::Status s = CheckPut(key, value); !s.ok()) return s;
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  auto it = entries_.find(key);
  uint64_t current = it == entries_.end() ? 0 : it->second.version();
  if (expected_version.has_value() && *expected_version != current) {
    return absl::FailedPreconditionError(
        absl::StrCat("key '", key, "' is at version ", current,
                     ", not the expected ", *expected_version));
  }
  return ApplyPutLocked(ctx, key, value);
}

absl::Status KeyValueImpl::CheckPut(const std::string& key,
                                    const std::string& value) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  if (value.size() > kMaxValueSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value of ", value.size(), " bytes exceeds the store's limit of ",
        kMaxValueSize));
  }
  return absl::OkStatus();
}

uint64_t KeyValueImpl::ApplyPutLocked(const lpc::CallContext& ctx,
                                      const std::string& key,
                                      const std::string& value) {
  Entry& e = entries_[key];
  value_bytes_ = value_bytes_ - e.value().size() + value.size();
  e.set_key(key);
  e.set_value(value);
  e.set_version(e.version() + 1);
  if (ctx.peer().uid.has_value()) {
    e.set_writer_uid(*ctx.peer().uid);
  } else {
    e.clear_writer_uid();
  }
  ++puts_;
  Publish(ctx, &e, key);
  return e.version();
}

absl::StatusOr<std::string> KeyValueImpl::Get(lpc::CallContext& ctx,
                                              const std::string& key,
                                              uint64_t* version) {
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  ++gets_;
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("no key '", key, "'"));
  }
  *version = it->second.version();
  return it->second.value();
}

absl::StatusOr<bool> KeyValueImpl::Delete(lpc::CallContext& ctx,
                                          const std::string& key) {
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  value_bytes_ -= it->second.value().size();
  entries_.erase(it);
  Publish(ctx, nullptr, key);
  return true;
}

absl::StatusOr<std::vector<Entry>> KeyValueImpl::Scan(lpc::CallContext& ctx,
                                                      const std::string& prefix,
                                                      uint32_t limit,
                                                      bool* truncated) {
  if (limit == 0) limit = 1000;
  std::vector<Entry> out;
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  *truncated = false;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    if (out.size() == limit) {
      *truncated = true;
      break;
    }
    if (ctx.IsCancelled()) return absl::CancelledError("scan cancelled");
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<Stats> KeyValueImpl::GetStats(lpc::CallContext& ctx) {
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  Stats s;
  s.set_keys(entries_.size());
  s.set_value_bytes(value_bytes_);
  s.set_puts(puts_);
  s.set_gets(gets_);
  s.set_touches(touches_);
  s.set_watches(watchers_.size());
  s.set_open_txns(open_txns_);
  s.set_aborted_txns(aborted_txns_);
  for (const auto& [transport, n] : calls_by_transport_) {
    (*s.mutable_calls_by_transport())[transport] = n;
  }
  return s;
}

void KeyValueImpl::Touch(lpc::CallContext& ctx,
                         const std::vector<std::string>& keys) {
  lpc::MutexLock lock(&mu_);
  CountCall(ctx);
  touches_ += keys.size();
}

void KeyValueImpl::Watch(lpc::AsyncServerStream<Change> call,
                         const std::string& prefix) {
  {
    lpc::MutexLock lock(&mu_);
    CountCall(call.context());
  }
  const std::string transport = call.context().peer().transport;
  watchers_.Add(std::move(call), prefix);
  // Printed once the watch sees changes (the demo waits for it).
  std::fprintf(stderr, "kv_server: watch of '%s' over %s\n", prefix.c_str(),
               transport.c_str());
}

}  // namespace example::kv
