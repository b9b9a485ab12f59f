"""A stock gRPC client (Python, stubs from the .proto lpcc emits) calling an
lpc server. Usage: interop_client.py <generated-module-dir> <grpc-target>

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import interop_pb2  # noqa: E402
import interop_pb2_grpc  # noqa: E402

TARGET = sys.argv[2]
UUID = "3b0c9a52-7d1e-4f8a-b6c3-1e2d3f4a5b6c"
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
        check(detail_part in e.details(),
              "%s: details %r lack %r" % (what, e.details(), detail_part))
        return
    check(False, "%s: succeeded, want %s" % (what, code))


with grpc.insecure_channel(TARGET) as channel:
    stub = interop_pb2_grpc.GreeterStub(channel)

    # A plain call, with request metadata echoed back as trailing metadata.
    reply, call = stub.Greet.with_call(
        interop_pb2.GreetRequest(name="python"), timeout=10,
        metadata=[("x-lang", "python")])
    check(reply.result == "hello, python", "Greet result %r" % reply.result)
    trailing = dict(call.trailing_metadata() or ())
    check(trailing.get("x-seen-lang") == "python",
          "trailing metadata %r" % (trailing,))

    # Status codes and messages cross one to one.
    for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.FAILED_PRECONDITION,
                 grpc.StatusCode.UNAUTHENTICATED):
        number = code.value[0]
        expect_error(
            lambda: stub.Fail(interop_pb2.FailRequest(
                code=number, message="failure %d" % number), timeout=10),
            code, "failure %d" % number, "Fail(%s)" % code.name)

    # An unknown method.
    nope = channel.unary_unary("/lpc.interop.Greeter/Nope")
    expect_error(lambda: nope(b"", timeout=10), grpc.StatusCode.UNIMPLEMENTED,
                 "Nope", "unknown method")

    # lpc's binding headers, when a client sends them, are checked.
    expect_error(
        lambda: stub.Greet(interop_pb2.GreetRequest(name="x"), timeout=10,
                           metadata=[("lpc-interface-uuid", UUID),
                                     ("lpc-interface-version", "2.0")]),
        grpc.StatusCode.FAILED_PRECONDITION, "2.0", "version mismatch")

    # A oneway method answers at once with an empty reply; its handler runs
    # afterwards, which Greet's count shows.
    note = stub.Note(interop_pb2.NoteRequest(line="from python"), timeout=10)
    check(isinstance(note, interop_pb2.NoteResponse), "Note reply %r" % note)
    count = 0
    for _ in range(200):  # At most 10 s.
        count = stub.Greet(interop_pb2.GreetRequest(name="again"),
                           timeout=10).count
        if count >= 1:
            break
        time.sleep(0.05)
    check(count == 1, "Note never reached the handler (count %d)" % count)

if failures:
    sys.exit(1)
print("python interop: all checks passed")
