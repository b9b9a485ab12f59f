#!/usr/bin/env bash
# Runs frames_server with a local port and a gRPC listener, then the same
# frames_client binary with each config: every frame must come back exact,
# and a frame over kMaxFrameBytes must be refused with INVALID_ARGUMENT.
# Frames are `buffer`s: on the local port each travels as a chunk of the
# connection's same-uid buffer pool, read in place by the server.
#
# Under TSan (the BUILD passes --tsan) the gRPC run sends small frames and no
# oversized one. Debian's gRPC is built without TSan, so when one of its
# threads writes a message that lpc's instrumented code filled, TSan sees a
# race it then suppresses (testing/tsan_suppressions.cc), but first scans
# the whole buffer for the racy address: minutes for a multi-megabyte
# message, past the calls' deadline.
set -euo pipefail
source "${TEST_SRCDIR}/lpc/examples/common/test_lib.sh"
bin="${TEST_SRCDIR}/lpc/examples/frames"
example_setup example.frames.FrameProcessor frames frames
# Both sides opt in to the same-uid buffer pool (docs/zero-copy.md): frames
# and results travel as chunks of it; the oversized frame, bigger than a
# chunk, as a sealed memfd.
sed -i 's|local_port: "frames"|local_port: "frames" same_uid_buffer_pool: true|' \
    "$work/server.textproto"
sed -i 's|local {|local { same_uid_buffer_pool: true buffer_pool_chunk_bytes: 8388608 buffer_pool_chunks: 4|' \
    "$work/local.textproto"
example_start "$bin/frames_server"
"$bin/frames_client" --lpc_config="$work/local.textproto" 6 2097152 | tee "$work/local.out"
grpc_bytes=262144
grpc_flags=()
if [ "${1:-}" = "--tsan" ]; then grpc_bytes=1024; grpc_flags=(--no_oversize); fi
"$bin/frames_client" --lpc_config="$work/grpc.textproto" "${grpc_flags[@]}" 2 "$grpc_bytes" | tee "$work/grpc.out"
grep -q "via local" "$work/local.out"
grep -q "via grpc" "$work/grpc.out"
grep -qF "6 frames of 2097152 bytes: inverted 6/6 exact, checksums 6/6 right" "$work/local.out"
grep -qF "2 frames of $grpc_bytes bytes: inverted 2/2 exact, checksums 2/2 right" "$work/grpc.out"
grep -q "33554433 bytes -> INVALID_ARGUMENT" "$work/local.out"
[ "${1:-}" = "--tsan" ] || grep -q "33554433 bytes -> INVALID_ARGUMENT" "$work/grpc.out"
example_stop
# 6 + 2 frames, each inverted and checksummed.
grep -q "processed 16 frames" "$work/server.log"
echo PASS
