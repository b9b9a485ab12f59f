#!/usr/bin/env bash
# Runs each benchmark contender briefly and checks that it prints one
# well-formed JSON line per payload in the common schema and exits cleanly.
# iceoryx is left out: it needs the machine-wide RouDi daemon.
set -euo pipefail

check() {
  local want_lines=$1
  shift
  local out rc=0
  out=$("$@" --seconds="$secs" --warmup=5 --iters=200 --timeout=60) || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAILED (exit $rc): $*" >&2
    echo "$out" >&2
    exit 1
  fi
  python3 -c '
import json, sys
want, cmd, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
keys = {"contender", "placement", "payload", "callers", "samples", "p50_us",
        "p99_us", "p999_us", "mean_us", "calls_per_s", "gbps", "note"}
assert len(rows) == want, "%s: %d rows, want %d" % (cmd, len(rows), want)
for r in rows:
    missing = keys - set(r)
    assert not missing, "%s: missing %s" % (cmd, missing)
    assert r["samples"] > 0, "%s: no samples" % cmd
    assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"], "%s: %r" % (cmd, r)
print("ok: %s (%d rows)" % (cmd, len(rows)))
' "$want_lines" "$*" "$out"
}

dir=$(dirname "$0")
# Seconds per measurement; a few rows need longer windows to see a whole
# gRPC call under the sanitizers.
secs=0.02
payloads=--payloads=0,64,65536
# Cross-core needs CPUs 0 and 1; on a one-CPU machine let the kernel place.
place=--placement=cross-core
[ "$(nproc)" -ge 2 ] || place=--placement=unpinned
check 3 "$dir/lower_bounds" --mode=spin "$place" "$payloads"
check 3 "$dir/lower_bounds" --mode=spin-yield --placement=same-core "$payloads"
check 3 "$dir/lower_bounds" --mode=futex "$place" "$payloads"
check 3 "$dir/lower_bounds" --mode=socketpair --placement=same-core "$payloads"
check 1 "$dir/lower_bounds" --mode=memcpy --payloads=1048576
check 3 "$dir/grpc_echo" --api=sync --transport=unix "$place" "$payloads"
check 3 "$dir/grpc_echo" --api=callback --transport=tcp "$place" "$payloads"
secs=0.3
check 2 "$dir/grpc_echo" --mode=throughput --placement=unpinned --callers=1,4
secs=0.02
check 3 "$dir/capnp_echo" "$place" "$payloads"
# lpc: local transport in its three wait modes, lpc over gRPC, and every
# measurement mode once.
check 3 "$dir/lpc_echo" --transport=local "$place" "$payloads"
check 3 "$dir/lpc_echo" --transport=local --wait=block --placement=same-core "$payloads"
check 2 "$dir/lpc_echo" --transport=local --wait=spin "$place" --payloads=64,1048576
check 2 "$dir/lpc_echo" --transport=grpc-unix "$place" --payloads=0,65536
check 1 "$dir/lpc_echo" --transport=grpc-tcp "$place" --payloads=64
# Callers start their window once all made a call; on a loaded machine a
# 20 ms window may still end before any call completes.
secs=0.3
check 2 "$dir/lpc_echo" --mode=throughput --callers=1,4
check 2 "$dir/lpc_echo" --mode=throughput --callers_as=processes --callers=1,3
check 1 "$dir/lpc_echo" --transport=grpc-unix --mode=throughput --callers_as=processes --callers=2
check 2 "$dir/lpc_zerocopy" "$place" --payloads=64,1048576
check 1 "$dir/lpc_zerocopy" --transport=grpc-unix "$place" --payloads=65536
# A pipelined window only counts calls that complete inside it; on a
# loaded machine 20 ms may see none.
secs=0.3
check 1 "$dir/lpc_echo" --mode=pipelined "$place" --window=16
secs=0.02
check 1 "$dir/lpc_echo" --mode=connect "$place" --connections=4
check 1 "$dir/lpc_echo" --transport=grpc-unix --mode=connect "$place" --connections=2

# Streams: one row per payload with messages per second (no latency
# figures). Local streams are left out while the local transport may print
# no row.
check_stream() {
  local want_lines=$1
  shift
  local out rc=0
  out=$("$@" --seconds="$secs" --timeout=60) || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAILED (exit $rc): $*" >&2
    echo "$out" >&2
    exit 1
  fi
  python3 -c '
import json, sys
want, cmd, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
assert len(rows) == want, "%s: %d rows, want %d" % (cmd, len(rows), want)
for r in rows:
    assert r["kind"] in ("stream-down", "stream-up"), "%s: %r" % (cmd, r)
    assert r["calls_per_s"] > 0, "%s: no messages: %r" % (cmd, r)
print("ok: %s (%d rows)" % (cmd, len(rows)))
' "$want_lines" "$*" "$out"
}
secs=0.1
check_stream 2 "$dir/lpc_stream" --transport=grpc-unix --direction=down "$place" --payloads=64,65536
check_stream 1 "$dir/lpc_stream" --transport=grpc-tcp --direction=up "$place" --payloads=64
check_stream 1 "$dir/lpc_stream" --transport=inprocess --direction=up --payloads=1048576
secs=0.02

# The micro-benchmarks run, each for a moment, without an error.
micro=$("$dir/stub_benchmark" --benchmark_min_time=0.001 2>&1) || {
  echo "FAILED: stub_benchmark" >&2
  echo "$micro" >&2
  exit 1
}
if echo "$micro" | grep -q "ERROR OCCURRED"; then
  echo "FAILED: stub_benchmark reported an error" >&2
  echo "$micro" >&2
  exit 1
fi
echo "ok: stub_benchmark ($(echo "$micro" | grep -c '^BM_') benchmarks)"
