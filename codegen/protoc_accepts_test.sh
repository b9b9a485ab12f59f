#!/bin/bash
# Checks that stock protoc, and gRPC's C++ plugin, accept .proto files that
# lpcc emitted. Arguments: <protoc> <grpc_cpp_plugin> <file.proto>...
# The files are named by their paths from the workspace root, which is also
# their import root.
set -eu
protoc="$1"
plugin="$2"
shift 2
out="${TEST_TMPDIR:-/tmp}/protoc_out"
mkdir -p "$out"
"$protoc" -I . --cpp_out="$out" --grpc_out="$out" \
  --plugin=protoc-gen-grpc="$plugin" \
  --descriptor_set_out="$out/set.pb" "$@"
for f in "$@"; do
  stem="${f%.proto}"
  for ext in .pb.h .pb.cc .grpc.pb.h .grpc.pb.cc; do
    if [ ! -s "$out/$stem$ext" ]; then
      echo "FAIL: protoc did not produce $stem$ext" >&2
      exit 1
    fi
  done
done
echo "protoc accepted: $*"
