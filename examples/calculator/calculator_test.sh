#!/usr/bin/env bash
# Runs calculator_server with a local port and a gRPC listener, then the same
# calculator_client binary with each config, and checks that both transports
# give the same answers.
set -euo pipefail
source "${TEST_SRCDIR}/lpc/examples/common/test_lib.sh"
bin="${TEST_SRCDIR}/lpc/examples/calculator"
example_setup example.calculator.Calculator calculator calc
example_start "$bin/calculator_server"
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
example_stop
echo PASS
