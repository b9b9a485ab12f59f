#!/usr/bin/env bash
# Command-line handling of kv_server and kv_client (absl flags through
# lpc::ParseFlags): --help lists the program's flags and --lpc_config, an
# unknown or misspelt flag is an error that names it, and neither case starts
# a server or makes a call. Every run is bounded by `timeout`, so a binary
# that starts serving by mistake fails the test instead of hanging it.
set -euo pipefail
source "${TEST_SRCDIR}/lpc/examples/common/test_lib.sh"
bin="${TEST_SRCDIR}/lpc/examples/kvstore"
example_setup example.kv.KeyValue kv kv-flags
unset LPC_CONFIG

# run <name> <command...>: exit code in $rc, output in $work/<name>.{out,err}.
run() {
  local name=$1
  shift
  rc=0
  timeout 20 "$@" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
}
fail() { echo "FAIL: $*" >&2; cat "$work/$name.out" "$work/$name.err" >&2; exit 1; }

for b in kv_server kv_client; do
  name=$b-help
  run "$name" "$bin/$b" --help
  # abseil exits 1 after --help; 124 would be the timeout.
  [ "$rc" -eq 1 ] || fail "$b --help exited $rc"
  grep -q "^$b: usage: $b --lpc_config=<file>" "$work/$name.out" || fail "$b --help: usage"
  grep -q -- "--lpc_config (lpc's config file" "$work/$name.out" || fail "$b --help: --lpc_config"
  grep -q ready "$work/$name.out" && fail "$b --help started a server"

  name=$b-unknown
  run "$name" "$bin/$b" --lpc_config="$work/server.textproto" --bogus=1
  [ "$rc" -eq 1 ] || fail "$b --bogus exited $rc"
  grep -qx "ERROR: Unknown command line flag 'bogus'" "$work/$name.err" || fail "$b --bogus: message"
done
grep -q -- "--name (the config's server entry to serve); default: \"kv\"" \
  "$work/kv_server-help.out" || fail "kv_server --help: --name"

# A misspelt --lpc_config is not taken for a positional argument.
name=kv_client-misspelt
run "$name" "$bin/kv_client" --lpc_confg="$work/local.textproto" get greeting
[ "$rc" -eq 1 ] || fail "kv_client --lpc_confg exited $rc"
grep -qx "ERROR: Unknown command line flag 'lpc_confg'" "$work/$name.err" || fail "misspelt: message"

name=kv_server-no-entry
run "$name" "$bin/kv_server" --lpc_config="$work/server.textproto" --name=nope
[ "$rc" -eq 2 ] || fail "kv_server --name=nope exited $rc"
grep -qx "kv_server: the config has no server named 'nope'" "$work/$name.err" || fail "no entry: message"

name=kv_server-no-config
run "$name" "$bin/kv_server"
[ "$rc" -eq 2 ] || fail "kv_server without a config exited $rc"
grep -q "no config file: pass --lpc_config=<path> or set LPC_CONFIG" "$work/$name.err" ||
  fail "no config: message"

name=kv_server-positional
run "$name" "$bin/kv_server" --lpc_config="$work/server.textproto" extra
[ "$rc" -eq 2 ] || fail "kv_server extra exited $rc"
grep -qx "kv_server: unexpected argument 'extra'" "$work/$name.err" || fail "positional: message"
echo PASS
