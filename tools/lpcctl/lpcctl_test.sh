#!/usr/bin/env bash
# lpcctl end to end against the kvstore example's server, over the local
# port and over gRPC: list (with a stale socket), show, call (Put, Get, a
# stream, errors mapped to the exit status), health, and every --json form
# parsed. Every lpcctl run is bounded by `timeout`.
set -euo pipefail
source "${TEST_SRCDIR}/lpc/examples/common/test_lib.sh"
lpcctl="${TEST_SRCDIR}/lpc/tools/lpcctl/lpcctl"
example_setup example.kv.KeyValue kv kvtest
example_start "${TEST_SRCDIR}/lpc/examples/kvstore/kv_server"
grpc_target=$(sed -n 's/.*target: "\(grpc:[^"]*\)".*/\1/p' "$work/grpc.textproto")

# run <name> <lpcctl args...>: exit status in $rc, output in
# $work/<name>.out and .err.
run() {
  name=$1
  shift
  rc=0
  timeout 30 "$lpcctl" --runtime_dir="$work" "$@" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
}
fail() { echo "FAIL: $*" >&2; cat "$work/$name.out" "$work/$name.err" >&2; exit 1; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$name exited $rc, expected $1"; }
# check <python expression over the parsed JSON output `d`>
check() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$work/$name.out" "$1" || fail "$name: JSON does not satisfy: $1"
}

# A socket nobody listens on, as a killed server leaves behind.
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1]); s.close()' "$work/gone"

run list list
expect_rc 0
grep -Eq "^kvtest +live +$pid +$(id -u) .* example\.kv\.KeyValue 1\.2$" "$work/list.out" || fail "list: kvtest row"
grep -Eq "^gone +stale " "$work/list.out" || fail "list: stale row"
run list-json list --json
expect_rc 0
check 'd["runtime_dir"] == "'"$work"'"'
check '{p["name"]: p["state"] for p in d["ports"]} == {"kvtest": "live", "gone": "stale"}'
check '[p for p in d["ports"] if p["name"] == "kvtest"][0]["server"]["pid"] == '"$pid"
check 'any(i["name"] == "example.kv.KeyValue" and i["version_major"] == 1 and i["version_minor"] == 2
           and {m["name"] for m in i["methods"]} >= {"Put", "Get", "Watch"}
           for i in [p for p in d["ports"] if p["name"] == "kvtest"][0]["server"]["interfaces"])'

for target in kvtest "$grpc_target"; do
  t=${target%%:*}  # "kvtest" or "grpc": keys of their own per transport.
  run "health-$t" health "$target"
  expect_rc 0
  grep -qx SERVING "$work/$name.out" || fail "health"
  run "health-json-$t" health "$target" --json
  expect_rc 0
  check 'd["status"] == "SERVING"'
  run "health-unknown-$t" health "$target" --service=no.such.Service
  expect_rc 5

  run "put-$t" call "$target" example.kv.KeyValue.Put '{"key": "k-'"$t"'", "value": "aGk="}' \
    --metadata=x-lpcctl-test=1,x-other=a=b
  expect_rc 0
  grep -qx '{"result":"1"}' "$work/$name.out" || fail "Put reply"
  grep -qx 'OK' "$work/$name.out" || fail "Put status"
  run "get-$t" call "$target" KeyValue.Get '{"key": "k-'"$t"'"}' --json
  expect_rc 0
  check 'd["status"]["code"] == 0 and d["status"]["name"] == "OK"'
  check 'd["reply"] == {"result": "aGk=", "version": "1"}'
  run "get-missing-$t" call "$target" example.kv.KeyValue.Get '{"key": "missing"}' --json
  expect_rc 5
  check 'd["status"]["name"] == "NOT_FOUND" and "reply" not in d'
  run "put-stale-$t" call "$target" example.kv.KeyValue.Put \
    '{"key": "k-'"$t"'", "value": "", "expected_version": "7"}'
  expect_rc 9
  grep -q '^FAILED_PRECONDITION' "$work/$name.out" || fail "stale Put status"
  run "bad-json-$t" call "$target" example.kv.KeyValue.Put '{"nokey": 1}'
  expect_rc 2
  grep -q 'example.kv.PutRequest' "$work/$name.err" || fail "bad JSON names the type"
  run "bad-method-$t" call "$target" example.kv.KeyValue.Frobnicate '{}'
  expect_rc 5
  grep -q 'has no method "Frobnicate"; it has Put, Get' "$work/$name.err" || fail "unknown method"
  run "stats-$t" call "$target" example.kv.KeyValue.GetStats --json
  expect_rc 0
  check 'int(d["reply"]["result"]["puts"]) >= 1'

  run "show-$t" show "$target" --json
  expect_rc 0
  check 'd["server"]["pid"] == '"$pid"
  check 'isinstance(d["connections"], list)'
  if [ "$t" = kvtest ]; then
    # lpcctl's own connection, with its uid and pid from the kernel.
    check 'any(c["transport"] == "local" and c["peer_uid"] == '"$(id -u)"' and int(c["calls"]) >= 1
               for c in d["connections"])'
  fi
  check 'isinstance(d["cutoffs"], dict)'
  run "show-text-$t" show "$target"
  expect_rc 0
  grep -Eq "^server pid $pid, uid $(id -u), up " "$work/$name.out" || fail "show header"
  if [ "$t" = kvtest ]; then
    grep -Eq "^[0-9]+ +local +$(id -u) +[0-9]+ " "$work/$name.out" ||
      fail "show: a line for lpcctl's own local connection"
  fi
  grep -Eq "^(CONN +TRANSPORT +PEER_UID +PEER_PID |no connections$)" "$work/$name.out" ||
    fail "show: connections"
  grep -Eq "^COUNTER +VALUE$" "$work/$name.out" || fail "show: counters"
done

# A server stream: Watch (over gRPC; a change made over the local port)
# prints each change as a JSON line until its deadline ends it
# (DEADLINE_EXCEEDED, 4). The Put is made once the server counts the watch,
# and the watch's output is waited for, both with a bound.
rc=0
timeout 60 "$lpcctl" --runtime_dir="$work" call "$grpc_target" example.kv.KeyValue.Watch \
  '{"prefix": "w/"}' --deadline=10s > "$work/watch.out" 2> "$work/watch.err" &
watch_pid=$!
name=watch-stats
for _ in $(seq 200); do
  run watch-stats call kvtest example.kv.KeyValue.GetStats --json
  python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["reply"]["result"]["watches"] == "1" else 1)' \
    "$work/watch-stats.out" && break
  sleep 0.05
done
check 'd["reply"]["result"]["watches"] == "1"'
run watch-put call kvtest example.kv.KeyValue.Put '{"key": "w/x", "value": "eA=="}'
expect_rc 0
for _ in $(seq 200); do grep -q '"key":"w/x"' "$work/watch.out" && break; sleep 0.05; done
name=watch
grep -q '^{"key":"w/x","value":"eA==","version":"1","deleted":false,"transport":"local"}$' "$work/watch.out" || fail "Watch line"
wait "$watch_pid" || rc=$?
expect_rc 4
grep -qx 'DEADLINE_EXCEEDED.*' "$work/watch.out" || fail "Watch status"

# Usage errors.
run usage-none
expect_rc 2
run usage-call call kvtest
expect_rc 2
run usage-method call kvtest NoDot '{}'
expect_rc 2
run usage-metadata call kvtest example.kv.KeyValue.GetStats --metadata=novalue
expect_rc 2

# A port nobody serves: UNAVAILABLE (14).
run unavailable health nobody-here
expect_rc 14

example_stop
echo PASS
