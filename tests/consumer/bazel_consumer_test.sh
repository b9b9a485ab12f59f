#!/usr/bin/env bash
# Builds tests/consumer/bazel, a workspace of its own that uses this lpc
# checkout as an external repository (local_repository + lpc_deps()), then
# runs its server and calls it with its client over the local port and over
# gRPC on a Unix socket, and checks the replies. Prints PASS or FAIL.
#
#   tests/consumer/bazel_consumer_test.sh
#
# The consumer gets a Bazel output base of its own under ~/.cache (one per
# checkout) and shares lpc's disk cache, so a second run is mostly cache
# hits. Its Bazel server is shut down at the end.
set -euo pipefail
lpc_root=$(cd "$(dirname "$0")/../.." && pwd)
consumer="$lpc_root/tests/consumer/bazel"
output_base="$HOME/.cache/lpc-bazel-consumer/$(echo -n "$lpc_root" | md5sum | cut -c1-12)"
work=$(mktemp -d "${TMPDIR:-/tmp}/lpc-bazel-consumer.XXXXXX")
server_pid=""

cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  (cd "$consumer" && bazel --output_base="$output_base" shutdown) >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "bazel_consumer_test: $*" >&2
  echo FAIL
  exit 1
}

# Only flags that any workspace may choose, none of them for lpc's sake:
# where outputs and caches go, no sandbox (Debian's Bazel logs its sandbox's
# debug output on every action), and lpcc built unoptimised (it runs on one
# small file).
cd "$consumer"
bazel --output_base="$output_base" build \
    --disk_cache="$HOME/.cache/lpc-bazel-disk" \
    --repository_cache="$HOME/.cache/lpc-bazel-repo" \
    --spawn_strategy=local \
    --host_compilation_mode=fastbuild \
    --symlink_prefix="$work/bazel-" \
    //:greeter_server //:greeter_client 2>"$work/build.log" ||
  { tail -n 40 "$work/build.log" >&2; fail "the consumer workspace did not build"; }
bin="$work/bazel-bin"

port="greeter-$$"
cat > "$work/server.textproto" <<CFG
server {
  name: "greeter"
  local_port: "$port"
  runtime_dir: "$work"
  grpc_address: "unix:$work/grpc.sock"
}
CFG
cat > "$work/local.textproto" <<CFG
endpoint { service: "greeter.Greeter" target: "local:$port" local { runtime_dir: "$work" } }
CFG
cat > "$work/grpc.textproto" <<CFG
endpoint { service: "greeter.Greeter" target: "grpc:unix:$work/grpc.sock" }
CFG

: >"$work/server.log"
"$bin/greeter_server" --lpc_config="$work/server.textproto" >>"$work/server.log" 2>&1 &
server_pid=$!
# Wait for the "ready" line (or the server's exit), for at most 20 s.
deadline=$((SECONDS + 20))
until grep -q "greeter_server: ready" "$work/server.log"; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$work/server.log" >&2; fail "the server never became ready"; }
  sleep 0.1
done

for transport in local grpc; do
  out="$work/$transport.out"
  "$bin/greeter_client" --lpc_config="$work/$transport.textproto" consumer >"$out" 2>&1 ||
    { cat "$out" >&2; fail "the client failed over $transport"; }
  for expect in "via $transport" "Greet: hello, consumer (caller $transport" \
      'Greet(""): INVALID_ARGUMENT: name is empty' "Sum: 42"; do
    grep -qF "$expect" "$out" || { cat "$out" >&2; fail "$transport: no line '$expect'"; }
  done
done
# The handler saw who called (CallContext::peer): the port and the kernel's
# credentials on the local port, the Unix socket over gRPC.
for check in "local:caller local local:$port uid=$(id -u) gid=$(id -g) pid=" \
    "grpc:caller grpc unix:"; do
  out="$work/${check%%:*}.out"
  grep -qF "${check#*:}" "$out" || { cat "$out" >&2; fail "no '${check#*:}'"; }
done

kill -TERM "$server_pid"
wait "$server_pid" || fail "the server exited with status $? after SIGTERM"
server_pid=""
echo PASS
