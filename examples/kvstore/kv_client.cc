// kv_client: calls the kvstore example through whatever transport its config
// names. The same binary talks to the local port or to gRPC; only the config
// differs.
//
//   kv_client --lpc_config=examples/kvstore/local.textproto put k v
//   kv_client --lpc_config=... get k | delete k | scan [prefix] | stats
//   kv_client --lpc_config=... touch k1 k2 ...
//   kv_client --lpc_config=... watch prefix [n]  prints changes under prefix
//                                               as they happen (n: then stop)
//   kv_client --lpc_config=... demo [calls]   a scripted session plus a
//                                             round-trip measurement
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "examples/kvstore/kvstore.lpc.h"
#include "runtime/config.h"
#include "runtime/flags.h"
#include "transports/connect.h"

namespace {

using example::kv::KeyValueClient;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "kv_client: %s\n", s.ToString().c_str());
  return 1;
}

// Round trips of Get on a small value: p50 and p99 in microseconds.
absl::Status MeasureRoundTrips(KeyValueClient& kv, int calls) {
  absl::StatusOr<uint64_t> put = kv.Put("bench", std::string(64, 'b'), std::nullopt);
  if (!put.ok()) return put.status();
  std::vector<double> us;
  us.reserve(calls);
  for (int i = 0; i < calls + calls / 10; ++i) {
    uint64_t version = 0;
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::string> v = kv.Get("bench", &version);
    auto end = std::chrono::steady_clock::now();
    if (!v.ok()) return v.status();
    if (i >= calls / 10) {  // The first tenth warms up.
      us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
    }
  }
  std::sort(us.begin(), us.end());
  std::printf("  round trip of a 64 B Get over %zu calls: p50 %.1f us, p99 %.1f us\n",
              us.size(), us[us.size() / 2], us[us.size() * 99 / 100]);
  return absl::OkStatus();
}

int RunDemo(KeyValueClient& kv, int calls) {
  absl::StatusOr<uint64_t> v1 = kv.Put("greeting", "hello", std::nullopt);
  if (!v1.ok()) return Fail(v1.status());
  std::printf("  Put greeting=hello -> version %llu\n",
              static_cast<unsigned long long>(*v1));
  absl::StatusOr<uint64_t> stale = kv.Put("greeting", "hi", uint64_t{0});
  std::printf("  Put with a stale expected version -> %s\n",
              stale.ok() ? "unexpectedly OK" : stale.status().ToString().c_str());
  uint64_t version = 0;
  absl::StatusOr<std::string> got = kv.Get("greeting", &version);
  if (!got.ok()) return Fail(got.status());
  std::printf("  Get greeting -> \"%s\" (version %llu)\n", got->c_str(),
              static_cast<unsigned long long>(version));
  absl::StatusOr<std::string> missing = kv.Get("no-such-key", &version);
  std::printf("  Get no-such-key -> %s\n",
              missing.ok() ? "unexpectedly OK" : missing.status().ToString().c_str());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<uint64_t> p = kv.Put(absl::StrCat("city/", i), absl::StrCat("c", i), std::nullopt);
    if (!p.ok()) return Fail(p.status());
  }
  bool truncated = false;
  absl::StatusOr<std::vector<example::kv::Entry>> scan = kv.Scan("city/", 2, &truncated);
  if (!scan.ok()) return Fail(scan.status());
  std::printf("  Scan city/ limit 2 -> %zu entries, truncated=%s\n", scan->size(),
              truncated ? "true" : "false");
  absl::Status touched = kv.Touch({"greeting", "city/0"});
  if (!touched.ok()) return Fail(touched);
  std::printf("  Touch (oneway) greeting, city/0 -> sent\n");
  absl::Status m = MeasureRoundTrips(kv, calls);
  if (!m.ok()) return Fail(m);
  absl::StatusOr<example::kv::Stats> stats = kv.GetStats();
  if (!stats.ok()) return Fail(stats.status());
  std::string by_transport;
  for (const auto& [t, n] : stats->calls_by_transport()) {
    absl::StrAppend(&by_transport, " ", t, "=", n);
  }
  std::printf("  Stats: %llu keys, %llu puts, %llu gets; calls by transport:%s\n",
              static_cast<unsigned long long>(stats->keys()),
              static_cast<unsigned long long>(stats->puts()),
              static_cast<unsigned long long>(stats->gets()), by_transport.c_str());
  return 0;
}

// Prints the changes under `prefix` as the server streams them; after
// `count` of them (0: no limit) cancels the watch and returns.
int RunWatch(KeyValueClient& kv, const std::string& prefix, int count) {
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Hours(1));
  lpc::ClientReader<example::kv::Change> watch = kv.Watch(prefix, &ctx);
  example::kv::Change c;
  int seen = 0;
  while ((count <= 0 || seen < count) && watch.Read(&c)) {
    if (c.deleted()) {
      std::printf("  %s deleted (over %s)\n", c.key().c_str(),
                  c.transport().c_str());
    } else {
      std::printf("  %s = \"%s\" (version %llu, over %s)\n", c.key().c_str(),
                  c.value().c_str(), static_cast<unsigned long long>(c.version()),
                  c.transport().c_str());
    }
    std::fflush(stdout);
    ++seen;
  }
  if (count > 0 && seen == count) {
    watch.Cancel();
    return 0;
  }
  absl::Status s = watch.Finish();
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = lpc::ParseFlags(
      argc, argv,
      "kv_client --lpc_config=<file> put|get|delete|scan|stats|touch|watch|demo ...");
  absl::StatusOr<lpc::config::Config> config = lpc::LoadConfigFromArgsOrEnv();
  if (!config.ok()) return Fail(config.status());
  if (args.empty()) {
    std::fprintf(stderr, "usage: kv_client --lpc_config=<file> "
                         "put|get|delete|scan|stats|touch|watch|demo ...\n");
    return 2;
  }
  absl::StatusOr<std::shared_ptr<lpc::Channel>> channel =
      lpc::ConnectFromConfig(*config, KeyValueClient::Descriptor().full_name);
  if (!channel.ok()) return Fail(channel.status());
  KeyValueClient kv(*channel);
  const std::string& cmd = args[0];
  std::printf("kv_client: %s via %s\n", cmd.c_str(),
              std::string((*channel)->transport_name()).c_str());
  if (cmd == "demo") {
    return RunDemo(kv, args.size() > 1 ? std::atoi(args[1].c_str()) : 2000);
  }
  if (cmd == "put" && args.size() == 3) {
    absl::StatusOr<uint64_t> v = kv.Put(args[1], args[2], std::nullopt);
    if (!v.ok()) return Fail(v.status());
    std::printf("version %llu\n", static_cast<unsigned long long>(*v));
    return 0;
  }
  if (cmd == "get" && args.size() == 2) {
    uint64_t version = 0;
    absl::StatusOr<std::string> v = kv.Get(args[1], &version);
    if (!v.ok()) return Fail(v.status());
    std::printf("%s (version %llu)\n", v->c_str(),
                static_cast<unsigned long long>(version));
    return 0;
  }
  if (cmd == "delete" && args.size() == 2) {
    absl::StatusOr<bool> v = kv.Delete(args[1]);
    if (!v.ok()) return Fail(v.status());
    std::printf("%s\n", *v ? "deleted" : "absent");
    return 0;
  }
  if (cmd == "scan") {
    bool truncated = false;
    auto v = kv.Scan(args.size() > 1 ? args[1] : "", 0, &truncated);
    if (!v.ok()) return Fail(v.status());
    for (const auto& e : *v) {
      std::printf("%s = %s (version %llu)\n", e.key().c_str(), e.value().c_str(),
                  static_cast<unsigned long long>(e.version()));
    }
    if (truncated) std::printf("... more\n");
    return 0;
  }
  if (cmd == "stats") {
    auto v = kv.GetStats();
    if (!v.ok()) return Fail(v.status());
    std::printf("%s\n", v->ShortDebugString().c_str());
    return 0;
  }
  if (cmd == "touch" && args.size() > 1) {
    std::vector<std::string> keys(args.begin() + 1, args.end());
    absl::Status s = kv.Touch(keys);
    if (!s.ok()) return Fail(s);
    return 0;
  }
  if (cmd == "watch" && (args.size() == 2 || args.size() == 3)) {
    return RunWatch(kv, args[1], args.size() == 3 ? std::atoi(args[2].c_str()) : 0);
  }
  std::fprintf(stderr, "kv_client: unknown command or wrong arguments: %s\n",
               cmd.c_str());
  return 2;
}
