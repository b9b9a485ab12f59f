#!/usr/bin/env bash
# Runs calculator_server with a local port and a gRPC listener, then the same
# calculator_client binary with each config, and checks that both transports
# give the same answers.
set -euo pipefail
bin="${TEST_SRCDIR}/lpc/examples/calculator"
work=$(mktemp -d /tmp/lpc-calc.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/server.textproto" <<CFG
server { name: "calculator" local_port: "calc" runtime_dir: "$work" grpc_address: "127.0.0.1:$port" }
CFG
cat > "$work/local.textproto" <<CFG
endpoint { service: "example.calculator.Calculator" target: "local:calc" local { runtime_dir: "$work" } }
CFG
cat > "$work/grpc.textproto" <<CFG
endpoint { service: "example.calculator.Calculator" target: "grpc:127.0.0.1:$port" }
CFG
"$bin/calculator_server" --lpc_config="$work/server.textproto" > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q ready "$work/server.log" && break; sleep 0.05; done
grep -q ready "$work/server.log"
"$bin/calculator_client" --lpc_config="$work/local.textproto" > "$work/local.out"
"$bin/calculator_client" --lpc_config="$work/grpc.textproto" > "$work/grpc.out"
grep -q "via local" "$work/local.out"
grep -q "via grpc" "$work/grpc.out"
for expect in "Add(1.5, 2.25) = 3.75" "Divide(17, 5) = 3 remainder 2" \
    "Divide(1, 0) -> INVALID_ARGUMENT: division by zero" "added 3, total 106" \
    "Apply(MUL, 6, 7) = 42" "area 9" "to=2 be=2 or=1 not=1" "Times(-100, 200) = -20000"; do
  grep -qF "$expect" "$work/local.out" || { echo "local: missing '$expect'"; exit 1; }
  grep -qF "$expect" "$work/grpc.out" || { echo "grpc: missing '$expect'"; exit 1; }
done
# The answers agree line by line, except the transport and the caller's identity.
diff <(grep -v -e "via" -e CountWords "$work/local.out") <(grep -v -e "via" -e CountWords "$work/grpc.out")
grep -q "counted for local" "$work/local.out"
grep -q "counted for grpc ipv4:127.0.0.1" "$work/grpc.out"
kill -TERM "$pid"; wait "$pid"; pid=""
echo PASS
