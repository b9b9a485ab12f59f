#!/usr/bin/env bash
# Runs frames_server with a local port and a gRPC listener, then the same
# frames_client binary with each config: 4 MiB frames (larger than the local
# port's data area, so they travel in memfds) must all come back exact, and
# a frame over kMaxFrameBytes must be refused with INVALID_ARGUMENT.
set -euo pipefail
source "${TEST_SRCDIR}/lpc/examples/common/test_lib.sh"
bin="${TEST_SRCDIR}/lpc/examples/frames"
example_setup example.frames.FrameProcessor frames frames
example_start "$bin/frames_server"
"$bin/frames_client" --lpc_config="$work/local.textproto" 8 4194304 | tee "$work/local.out"
"$bin/frames_client" --lpc_config="$work/grpc.textproto" 2 4194304 | tee "$work/grpc.out"
grep -q "via local" "$work/local.out"
grep -q "via grpc" "$work/grpc.out"
grep -qF "inverted 8/8 exact, checksums 8/8 right" "$work/local.out"
grep -qF "inverted 2/2 exact, checksums 2/2 right" "$work/grpc.out"
grep -q "33554433 bytes -> INVALID_ARGUMENT" "$work/local.out"
grep -q "33554433 bytes -> INVALID_ARGUMENT" "$work/grpc.out"
example_stop
# 8 + 2 frames, each inverted and checksummed.
grep -q "processed 20 frames" "$work/server.log"
echo PASS
