#!/usr/bin/env bash
# The kvstore demo: starts kv_server (local port + gRPC), runs the same
# kv_client binary first with local.textproto, then with grpc.textproto,
# shows a watcher connected over gRPC receiving a change made over the
# local port, and stops the server it started.
#
#   demo.sh [--test] [--bin-dir DIR] [--config-dir DIR]
#
# --test (used by the Bazel sh_test) checks the output, and moves the port
# name, the gRPC port and the runtime directory to private values so that
# parallel runs never meet.
set -euo pipefail

test_mode=0
bin_dir=""
config_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --test) test_mode=1 ;;
    --bin-dir) bin_dir=$2; shift ;;
    --config-dir) config_dir=$2; shift ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin_dir" ]; then
  # Under bazel test: the runfiles tree.
  bin_dir="${TEST_SRCDIR:-.}/lpc/examples/kvstore"
fi
[ -z "$config_dir" ] && config_dir="$bin_dir"

# Unix socket paths are limited to 108 bytes, so the scratch directory
# stays short (not under Bazel's long TEST_TMPDIR).
work=$(mktemp -d /tmp/lpc-kvdemo.XXXXXX)
server_pid=""
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
    kill -TERM "$watch_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

server_cfg="$config_dir/server.textproto"
local_cfg="$config_dir/local.textproto"
grpc_cfg="$config_dir/grpc.textproto"
if [ $test_mode -eq 1 ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  name="kv-test-$$"
  for f in server local grpc; do
    sed -e "s/7411/$port/; s/kv-demo/$name/" "$config_dir/$f.textproto" > "$work/$f.textproto"
  done
  # A private runtime directory for the port socket.
  printf '  runtime_dir: "%s"\n}\n' "$work/run" > "$work/tail"
  sed -i '$d' "$work/server.textproto"; cat "$work/tail" >> "$work/server.textproto"
  sed -i 's/^  target: "local:\(.*\)"$/  target: "local:\1"\n  local { runtime_dir: "'"${work//\//\\/}"'\/run" }/' "$work/local.textproto"
  server_cfg="$work/server.textproto"; local_cfg="$work/local.textproto"; grpc_cfg="$work/grpc.textproto"
fi

echo "== starting kv_server ($server_cfg)"
"$bin_dir/kv_server" --lpc_config="$server_cfg" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do
  grep -q "kv_server: ready" "$work/server.log" && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    echo "demo: kv_server exited before it was ready" >&2
    exit 1
  fi
  sleep 0.05
done
grep "kv_server: ready" "$work/server.log" || { cat "$work/server.log" >&2; echo "demo: kv_server not ready after 10 s" >&2; exit 1; }

calls=${LPC_DEMO_CALLS:-2000}
echo
echo "== the client over the local port ($(grep -o 'target: "[^"]*"' "$local_cfg"))"
"$bin_dir/kv_client" --lpc_config="$local_cfg" demo "$calls" | tee "$work/local.out"
echo
echo "== the same client binary over gRPC ($(grep -o 'target: "[^"]*"' "$grpc_cfg"))"
"$bin_dir/kv_client" --lpc_config="$grpc_cfg" demo "$calls" | tee "$work/grpc.out"

echo
echo "== a watcher over gRPC, a change over the local port"
"$bin_dir/kv_client" --lpc_config="$grpc_cfg" watch news/ 1 >"$work/watch.out" 2>&1 &
watch_pid=$!
# The server logs the watch once it sees changes.
for _ in $(seq 200); do
  grep -q "kv_server: watch of 'news/'" "$work/server.log" && break
  kill -0 "$watch_pid" 2>/dev/null || break
  sleep 0.05
done
echo "  local: put news/today -> $("$bin_dir/kv_client" --lpc_config="$local_cfg" put news/today "streams work" | tail -1)"
# The watcher exits after its one change.
for _ in $(seq 200); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$watch_pid" 2>/dev/null; then
  kill -TERM "$watch_pid"
  echo "demo: the watcher saw no change within 10 s" >&2
fi
wait "$watch_pid" 2>/dev/null || true
watch_pid=""
sed 's/^/  watcher: /' "$work/watch.out"

echo
local_p50=$(sed -n 's/.*: p50 \([0-9.]*\) us.*/\1/p' "$work/local.out")
grpc_p50=$(sed -n 's/.*: p50 \([0-9.]*\) us.*/\1/p' "$work/grpc.out")
echo "== round trip, p50: local ${local_p50} us, gRPC ${grpc_p50} us" \
     "(gRPC takes $(python3 -c "print(round($grpc_p50 / $local_p50, 1))")x as long)"

kill -TERM "$server_pid"
for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
wait "$server_pid" 2>/dev/null || true
server_pid=""
cat "$work/server.log"

if [ $test_mode -eq 1 ]; then
  for f in local grpc; do
    grep -q "kv_client: demo via $f" "$work/$f.out" || { echo "FAIL: $f client did not use $f"; exit 1; }
    grep -q 'Get greeting -> "hello"' "$work/$f.out" || { echo "FAIL: $f Get"; exit 1; }
    grep -q "FAILED_PRECONDITION" "$work/$f.out" || { echo "FAIL: $f stale put"; exit 1; }
    grep -q "NOT_FOUND" "$work/$f.out" || { echo "FAIL: $f missing key"; exit 1; }
    grep -q "2 entries, truncated=true" "$work/$f.out" || { echo "FAIL: $f scan"; exit 1; }
  done
  # The server counted calls from both transports (map order is unspecified).
  grep "calls by transport:" "$work/grpc.out" | grep -q "grpc=[1-9]" || { echo "FAIL: grpc stats"; exit 1; }
  grep "calls by transport:" "$work/grpc.out" | grep -q "local=[1-9]" || { echo "FAIL: local stats"; exit 1; }
  grep -q "kv_client: watch via grpc" "$work/watch.out" || { echo "FAIL: the watcher did not use grpc"; exit 1; }
  grep -q 'news/today = "streams work" (version 1, over local)' "$work/watch.out" || { echo "FAIL: the watcher did not see the local put"; exit 1; }
  echo "PASS"
fi
