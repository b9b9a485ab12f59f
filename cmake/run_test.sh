#!/bin/sh
# Runs one lpc test binary as `bazel test` would: in the runfiles root,
# with TEST_SRCDIR and a fresh TEST_TMPDIR that is removed afterwards.
#   run_test.sh <runfiles root (…/runfiles/lpc)> <binary> [args...]
set -u
runfiles=$1
shift
TEST_SRCDIR=$(dirname "$runfiles")
TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/lpc-ctest.XXXXXX") || exit 1
export TEST_SRCDIR TEST_TMPDIR
cd "$runfiles" || exit 1
"$@"
status=$?
rm -rf "$TEST_TMPDIR"
exit $status
