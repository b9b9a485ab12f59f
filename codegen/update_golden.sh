#!/bin/bash
# Copies the files lpcc generated in this build over the golden copies in
# codegen/testdata/golden/. Run as: bazel run //codegen:update_golden
# Arguments: pairs of <generated> <golden>, as for golden_test.sh.
set -eu
if [ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]; then
  echo "run me with: bazel run //codegen:update_golden" >&2
  exit 1
fi
while [ $# -ge 2 ]; do
  cp "$1" "$BUILD_WORKSPACE_DIRECTORY/$2"
  chmod 644 "$BUILD_WORKSPACE_DIRECTORY/$2"
  echo "updated $2"
  shift 2
done
