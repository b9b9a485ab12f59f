#!/usr/bin/env bash
# The CMake consumer test: lpc installed into a temporary prefix, used by the
# out-of-tree projects under tests/consumer/.
#
#   tests/consumer/cmake_consumer_test.sh [<lpc CMake build dir>]
#
# With a build directory (already built, as tools/test leaves it), installs
# from it; without one, configures and builds lpc first. Then:
#   1. builds tests/consumer/cmake (find_package(lpc), lpc_generate, a server
#      and a client) against the prefix; its client calls its server over the
#      local port and over gRPC (a Unix socket), and the replies are checked;
#   2. builds the client again with only pkg-config (lpc.pc) and lpcc, and
#      calls the same server over the local port;
#   3. builds tests/consumer/cmake_bad_idl, whose .idl lpcc rejects, and
#      checks that the build fails with lpcc's file:line:col error.
# Prints "PASS: <step>" or "FAIL: <step>" per step, and exits 1 on a failure.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-}
jobs=${LPC_CMAKE_JOBS:-2}

work=$(mktemp -d /tmp/lpc-consumer.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { echo "PASS: $1"; }
fail() {
  echo "FAIL: $1"
  shift
  for log in "$@"; do
    [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 40 "$log"; }
  done
  failures=$((failures + 1))
}
finish() {
  [ "$failures" -eq 0 ] && exit 0
  exit 1
}

if [ -z "$build" ]; then
  build=$work/lpc-build
  if ! { cmake -S "$src" -B "$build" -DLPC_BUILD_TESTS=OFF &&
         cmake --build "$build" -j "$jobs"; } >"$work/lpc-build.log" 2>&1; then
    fail "build lpc" "$work/lpc-build.log"
    finish
  fi
fi

prefix=$work/prefix
if cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 &&
   [ -x "$prefix/bin/lpcc" ] && [ -f "$prefix/lib/cmake/lpc/lpcConfig.cmake" ] &&
   [ -f "$prefix/lib/pkgconfig/lpc.pc" ] &&
   [ -f "$prefix/include/lpc/runtime/serve.h" ]; then
  pass "install lpc into a temporary prefix"
else
  fail "install lpc into a temporary prefix" "$work/install.log"
  finish
fi

# 1. The CMake consumer.
consumer=$work/consumer
if cmake -S "$src/tests/consumer/cmake" -B "$consumer" \
     -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer.log" 2>&1 &&
   cmake --build "$consumer" -j "$jobs" >>"$work/consumer.log" 2>&1; then
  pass "build the CMake consumer against the installed lpc"
else
  fail "build the CMake consumer against the installed lpc" "$work/consumer.log"
  finish
fi

# The server: a local port and gRPC on a Unix socket, both in $work.
cat >"$work/server.textproto" <<CFG
server { name: "greeter" local_port: "greeter" runtime_dir: "$work" grpc_address: "unix:$work/grpc.sock" }
CFG
cat >"$work/local.textproto" <<CFG
endpoint { service: "consumer.greeter.Greeter" target: "local:greeter" local { runtime_dir: "$work" } }
CFG
cat >"$work/grpc.textproto" <<CFG
endpoint { service: "consumer.greeter.Greeter" target: "grpc:unix:$work/grpc.sock" }
CFG

"$consumer/greeter_server" --lpc_config="$work/server.textproto" >"$work/server.log" 2>&1 &
server_pid=$!
# Wait for its ready line (or its exit), for at most 10 s.
for _ in $(seq 200); do
  grep -q "ready" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.05
done
if grep -q "greeter_server: ready" "$work/server.log"; then
  pass "the consumer's server starts"
else
  fail "the consumer's server starts" "$work/server.log"
  finish
fi

# call <step> <config> <expected output> [client binary]
call() {
  local step=$1 config=$2 expected=$3 client=${4:-$consumer/greeter_client}
  local out
  out=$("$client" --lpc_config="$config" --name="$step" 2>&1)
  if [ "$out" = "$expected" ]; then
    pass "$step: $out"
  else
    echo "expected: $expected"
    echo "got:      $out"
    fail "$step"
  fi
}
call "local" "$work/local.textproto" "greeter_client: via local: hello, local (call 1)"
call "grpc" "$work/grpc.textproto" "greeter_client: via grpc: hello, grpc (call 2)"

# 2. The same client built with pkg-config only.
pc=$work/pc
mkdir -p "$pc"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
lpcc=$(pkg-config --variable=lpcc lpc)
if (cd "$src/tests/consumer/cmake" &&
    "$lpcc" --cpp_out="$pc" --proto_out="$pc" greeter.idl) >"$work/pc.log" 2>&1 &&
   g++ -std=c++20 -o "$pc/greeter_client" -I"$pc" \
     "$src/tests/consumer/cmake/greeter_client.cc" "$pc/greeter.pb.cc" \
     "$pc/greeter.lpc.cc" $(pkg-config --cflags --libs lpc) \
     -Wl,-rpath,"$prefix/lib" >>"$work/pc.log" 2>&1; then
  pass "build the client with pkg-config (lpc.pc) and lpcc"
  call "pkg-config" "$work/local.textproto" \
    "greeter_client: via local: hello, pkg-config (call 3)" "$pc/greeter_client"
else
  fail "build the client with pkg-config (lpc.pc) and lpcc" "$work/pc.log"
fi

kill -TERM "$server_pid"
wait "$server_pid"
status=$?
server_pid=""
if [ "$status" -eq 0 ]; then
  pass "the consumer's server stops on SIGTERM"
else
  fail "the consumer's server stops on SIGTERM (status $status)" "$work/server.log"
fi

# 3. A malformed .idl: the build fails and shows lpcc's diagnostic.
bad=$work/bad
cmake -S "$src/tests/consumer/cmake_bad_idl" -B "$bad" \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/bad.log" 2>&1
if cmake --build "$bad" >>"$work/bad.log" 2>&1; then
  fail "a malformed .idl fails the consumer's build" "$work/bad.log"
elif grep -qE '^bad\.idl:5:[0-9]+: error: ' "$work/bad.log"; then
  pass "a malformed .idl fails the build with: $(grep -E '^bad\.idl:5:' "$work/bad.log" | head -n 1)"
else
  fail "a malformed .idl fails the build with lpcc's file:line:col error" "$work/bad.log"
fi

finish
