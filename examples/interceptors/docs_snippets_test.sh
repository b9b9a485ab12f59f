#!/bin/bash
# Every ```cpp block of a docs page (docs/interceptors.md, docs/streams.md)
# must appear, line for line, in the example source the build compiles and
# the tests run (interceptors_example.cc, streams_example.cc).
# Usage: docs_snippets_test.sh <page.md> <source.cc>
set -euo pipefail
doc="$1"
src="$2"
python3 - "$doc" "$src" <<'PY'
import sys
doc = open(sys.argv[1]).read()
src = open(sys.argv[2]).read()
blocks, inside, cur = [], False, []
for line in doc.splitlines():
    if line.strip() == "```cpp":
        inside, cur = True, []
    elif inside and line.strip() == "```":
        inside = False
        blocks.append("\n".join(cur))
    elif inside:
        cur.append(line)
if not blocks:
    sys.exit("no ```cpp blocks in " + sys.argv[1])
missing = [b for b in blocks if b not in src]
for b in missing:
    print("not in " + sys.argv[2] + ":\n" + b + "\n", file=sys.stderr)
if missing:
    sys.exit(1)
print("%d code blocks found in %s" % (len(blocks), sys.argv[2]))
PY
