"""A stock gRPC client (Python, stubs from the streams.proto lpcc emits for
streams.idl) using all three streaming kinds against an lpc server. Usage:
streams_client.py <generated-module-dir> <grpc-target>

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""
import queue
import sys
import threading

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import streams_pb2 as pb  # noqa: E402
import streams_pb2_grpc  # noqa: E402

TARGET = sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def expect_error(fn, code, detail_part, what):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "%s: code %s, want %s" % (what, e.code(), code))
        check(detail_part in (e.details() or ""),
              "%s: details %r lack %r" % (what, e.details(), detail_part))
        return
    check(False, "%s: succeeded, want %s" % (what, code))


with grpc.insecure_channel(TARGET) as channel:
    stub = streams_pb2_grpc.StreamerStub(channel)

    # Server streaming: every change, in order, and the handler's response
    # metadata as initial metadata.
    call = stub.Watch(pb.WatchRequest(prefix="k", count=50), timeout=10)
    changes = list(call)
    check([c.key for c in changes] == ["k%d" % i for i in range(50)],
          "Watch keys %r" % [c.key for c in changes][:5])
    check([c.version for c in changes] == list(range(50)), "Watch versions")
    check(changes[3].value == b"vvv", "Watch value %r" % changes[3].value)
    initial = dict(call.initial_metadata() or ())
    check(initial.get("x-watch-prefix") == "k",
          "Watch initial metadata %r" % (initial,))
    check(call.code() == grpc.StatusCode.OK, "Watch status %s" % call.code())

    # The server ends a stream early with a status, after two messages.
    got = []

    def watch_fail():
        for c in stub.Watch(pb.WatchRequest(prefix="fail", count=5),
                            timeout=10):
            got.append(c.key)
    expect_error(watch_fail, grpc.StatusCode.FAILED_PRECONDITION,
                 "watch failed after 2", "Watch(fail)")
    check(got == ["fail0", "fail1"], "Watch(fail) messages %r" % got)
    expect_error(lambda: list(stub.Watch(pb.WatchRequest(prefix="x",
                                                         count=-1),
                                         timeout=10)),
                 grpc.StatusCode.INVALID_ARGUMENT, "count must be >= 0",
                 "Watch(-1)")

    # Cancelling a server stream mid-way.
    call = stub.Watch(pb.WatchRequest(prefix="c", count=1000000), timeout=30)
    first = [next(call).key for _ in range(3)]
    check(first == ["c0", "c1", "c2"], "Watch before cancel %r" % first)
    call.cancel()
    try:
        for _ in call:
            pass
        check(False, "a cancelled Watch kept going")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.CANCELLED,
              "cancelled Watch: %s" % e.code())

    # Client streaming: the summary comes after the half-close.
    samples = [pb.Sample(value=float(i)) for i in range(1, 101)]
    reply = stub.Upload(iter(samples), timeout=10)
    check(reply.result.count == 100 and reply.result.sum == 5050.0,
          "Upload %s" % reply)
    reply = stub.Upload(iter([]), timeout=10)
    check(reply.result.count == 0, "empty Upload %s" % reply)

    # Bidirectional, all at once ...
    frames = [pb.Frame(seq=i, data=b"abc%d" % i) for i in range(100)]
    back = list(stub.Process(iter(frames), timeout=10))
    check([f.seq for f in back] == list(range(100)), "Process order")
    check(all(f.data == (b"abc%d" % f.seq)[::-1] for f in back),
          "Process data")

    # ... and in lock step: each frame is sent after the previous answer.
    outbox = queue.Queue()

    def requests():
        while True:
            item = outbox.get(timeout=10)
            if item is None:
                return
            yield item

    call = stub.Process(requests(), timeout=10)
    for i in range(20):
        outbox.put(pb.Frame(seq=i, data=b"x" * i))
        f = next(call)
        check(f.seq == i and f.data == b"x" * i, "lock-step frame %d" % i)
    outbox.put(None)
    check(list(call) == [], "Process after the half-close")
    check(call.code() == grpc.StatusCode.OK, "Process status %s" % call.code())

    # A deadline that passes mid-stream.
    stop = threading.Event()

    def slow_requests():
        yield pb.Frame(seq=1, data=b"one")
        stop.wait(10)

    call = stub.Process(slow_requests(), timeout=0.5)
    try:
        f = next(call)
        check(f.seq == 1, "deadline stream first frame %s" % f)
        for _ in call:
            pass
        check(False, "Process outlived its deadline")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              "Process past its deadline: %s" % e.code())
    stop.set()

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all stream checks passed")
