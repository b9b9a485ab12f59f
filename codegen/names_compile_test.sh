#!/bin/bash
# The names property: every IDL file lpcc accepts gives C++ that compiles.
# name_corpus writes IDL files with hazardous names at every position, keeps
# what lpcc accepts, and writes one translation unit that includes every
# accepted .pb.cc and .lpc.cc after the C++ standard library; this compiles
# it once (-fsyntax-only: the property is about names, not code).
# Arguments: <name_corpus> <g++ flags...>
set -eu
corpus_tool="$1"
out="${TEST_TMPDIR:-/tmp}/names"
rm -rf "$out"
"$corpus_tool" "$out"
cxx="${CXX:-g++}"
if ! "$cxx" -std=c++20 -fsyntax-only -I "$out/gen" -I . "$out/unity.cc" \
    2> "$out/errors.txt"; then
  echo "FAIL: C++ generated for names lpcc accepted does not compile." >&2
  echo "First errors (each path names the IDL file, $out/idl/<stem>.idl):" >&2
  grep -m 30 'error' "$out/errors.txt" >&2 || head -50 "$out/errors.txt" >&2
  for stem in $(grep -oE 'h[0-9]+\.(pb|lpc)\.(h|cc)' "$out/errors.txt" |
                sed 's/\..*//' | sort -u | head -20); do
    echo "--- $stem.idl:" >&2
    cat "$out/idl/$stem.idl" >&2
  done
  exit 1
fi
echo "PASS: every accepted file compiles"
