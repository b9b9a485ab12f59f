#!/usr/bin/env python3
"""Thread hand-offs per call in a server, from an strace of an echo contender.

Usage:

    strace -f -o /tmp/trace bazel-bin/bench/lpc_echo --transport=grpc-unix \\
        --mode=latency --payloads=64 --warmup=0 --iters=3000 --seconds=1000
    bench/thread_hops.py /tmp/trace 3000

(the same with `grpc_echo --api=sync --transport=unix` for plain gRPC).
The traced process is the client; the process it forks is the server.
Prints, per call: the server's futex wake and wait calls (each pair is one
thread waking another), and the share of calls whose request the server
read on another thread than the one that sent the reply (a hand-off on the
call's path). Only the Python standard library is used.
"""
import collections
import re
import sys


def analyse(lines):
    proc = {}  # thread id -> process id
    client = None
    unfinished = {}
    counts = collections.Counter()
    reader = None
    for line in lines:
        m = re.match(r"(\d+)\s+(.*)", line)
        if not m:
            continue
        tid, rest = int(m.group(1)), m.group(2)
        if client is None:
            client = tid
            proc[tid] = tid
        pid = proc.setdefault(tid, tid)
        if "<unfinished" in rest:
            unfinished[tid] = rest
            continue
        if rest.startswith("<... "):
            rest = unfinished.pop(tid, "") + rest
        clone = re.match(r"(clone3?|fork|vfork)\((.*)\)\s*=\s*(\d+)", rest)
        if clone:
            child = int(clone.group(3))
            proc[child] = pid if "CLONE_THREAD" in clone.group(2) else child
        if pid == client:
            continue
        if rest.startswith("futex(") and "FUTEX_WAKE" in rest:
            counts["wake"] += 1
        elif rest.startswith("futex(") and "FUTEX_WAIT" in rest:
            counts["wait"] += 1
        elif (rest.startswith("recvmsg(") and "iov_base=" in rest
              and "= -1" not in rest):
            reader = tid
        elif rest.startswith("sendmsg(") and reader is not None:
            counts["same" if reader == tid else "other"] += 1
    return counts


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    calls = float(sys.argv[2])
    with open(sys.argv[1]) as f:
        c = analyse(f.read().splitlines())
    replies = c["same"] + c["other"]
    print("server futex wakes per call: %.2f, waits per call: %.2f" %
          (c["wake"] / calls, c["wait"] / calls))
    if replies:
        print("replies sent by another thread than the one that read the "
              "request: %.0f%% of %d" % (100.0 * c["other"] / replies,
                                         replies))


if __name__ == "__main__":
    main()
