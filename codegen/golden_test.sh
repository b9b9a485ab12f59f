#!/bin/bash
# Compares files lpcc generated in this build with the golden copies in
# codegen/testdata/golden/. Arguments: pairs of <generated> <golden>.
# Regenerate the golden files with: bazel run //codegen:update_golden
set -u
status=0
while [ $# -ge 2 ]; do
  generated="$1"
  golden="$2"
  shift 2
  if ! diff -u "$golden" "$generated"; then
    echo "FAIL: $generated differs from $golden" >&2
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "If the change is intended, run: bazel run //codegen:update_golden" >&2
fi
exit $status
