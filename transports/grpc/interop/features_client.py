"""gRPC's production features on an lpc server, seen by a stock Python gRPC
client. Usage: features_client.py <generated-module-dir> <certs-dir> <server-pid>

The server (interop_server with the config python_features_test.sh writes)
listens on unix:plain.sock (health, reflection), unix:tls.sock (TLS) and
unix:mtls.sock (TLS, client certificate required). Exits 0 when every check
passes; otherwise prints what failed and exits 1. Ends by sending SIGTERM to
the server and watching it drain.
"""
import importlib.util
import os
import signal
import sys
import time

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory


def load_generated(relative_path):
    # By file: the generated "grpc/..." package would clash with grpcio's.
    path = os.path.join(sys.argv[1], relative_path)
    name = os.path.basename(path)[:-len(".py")]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health_pb2 = load_generated("grpc/health/v1/health_pb2.py")
reflection_pb2 = load_generated("grpc/reflection/v1alpha/reflection_pb2.py")

CERTS = sys.argv[2]
SERVER_PID = int(sys.argv[3])
SERVICE = "lpc.interop.Greeter"
TLS_OPTIONS = [("grpc.ssl_target_name_override", "lpc.test")]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def read(name):
    with open(os.path.join(CERTS, name), "rb") as f:
        return f.read()


def wait_until(fn, what, limit=10.0):
    """Calls fn until it returns true; false after `limit` seconds."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)
    return False


def health_status(channel, service):
    check_call = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    reply = check_call(health_pb2.HealthCheckRequest(service=service),
                       timeout=10)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def reflect(channel, requests):
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest
        .SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse
        .FromString)
    return list(info(iter(requests), timeout=10))


def message_class(pool, name):
    desc = pool.FindMessageTypeByName(name)
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:
        return get(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def build_pool(channel, service=SERVICE):
    """The descriptors of SERVICE's file and its imports, from reflection."""
    files = {}
    pending = [reflection_pb2.ServerReflectionRequest(
        file_containing_symbol=service)]
    while pending:
        for reply in reflect(channel, pending):
            check(reply.HasField("file_descriptor_response"),
                  "reflection reply %r" % reply)
            for raw in reply.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files[fd.name] = fd
        missing = {d for fd in files.values() for d in fd.dependency
                   if d not in files}
        pending = [reflection_pb2.ServerReflectionRequest(file_by_filename=d)
                   for d in sorted(missing)]
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


def unary(channel, pool, method_name, service=SERVICE):
    """A callable for SERVICE's method, typed by the reflected descriptors."""
    method = pool.FindServiceByName(service).FindMethodByName(method_name)
    request = message_class(pool, method.input_type.full_name)
    response = message_class(pool, method.output_type.full_name)
    call = channel.unary_unary(
        "/%s/%s" % (service, method_name),
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString)
    return request, call


plain = grpc.insecure_channel("unix:plain.sock")

# Health: the server as a whole and the lpc service are SERVING; an unknown
# service is NOT_FOUND.
check(health_status(plain, "") == "SERVING", "overall health")
check(health_status(plain, SERVICE) == "SERVING", "service health")
try:
    health_status(plain, "no.such.Service")
    check(False, "health of an unknown service succeeded")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.NOT_FOUND,
          "unknown service health: %s" % e.code())

# Reflection: list the services, then call Greet knowing only its name.
listed = reflect(plain, [reflection_pb2.ServerReflectionRequest(
    list_services="")])
names = sorted(s.name for s in listed[0].list_services_response.service)
print("reflection lists:", ", ".join(names))
check(SERVICE in names, "reflection lists %r, not %s" % (names, SERVICE))
check("grpc.health.v1.Health" in names, "health service not listed")
pool = build_pool(plain)
GreetRequest, greet = unary(plain, pool, "Greet")
reply = greet(GreetRequest(name="reflection"), timeout=10)
print("Greet by reflection:", repr(reply.result))
check(reply.result == "hello, reflection", "Greet result %r" % reply.result)
WhoAmIRequest, _ = unary(plain, pool, "WhoAmI")

# The built-in introspection service, listed and called by reflection too.
INTROSPECTION = "lpc.introspection.Introspection"
check(INTROSPECTION in names, "reflection does not list %s" % INTROSPECTION)
ipool = build_pool(plain, INTROSPECTION)
CheckRequest, health_check = unary(plain, ipool, "Check", INTROSPECTION)
reply = health_check(CheckRequest(service=SERVICE), timeout=10)
check(reply.result == "SERVING", "introspection Check: %r" % reply.result)
InfoRequest, server_info = unary(plain, ipool, "GetServerInfo", INTROSPECTION)
info = server_info(InfoRequest(), timeout=10).result
served = [i.name for i in info.interfaces]
print("introspection lists:", ", ".join(served))
check(SERVICE in served and INTROSPECTION in served,
      "introspection lists %r" % served)

# TLS: the server's certificate checked against the test CA.
tls = grpc.secure_channel(
    "unix:tls.sock", grpc.ssl_channel_credentials(read("ca.pem")),
    options=TLS_OPTIONS)
_, who = unary(tls, pool, "WhoAmI")
identity = who(WhoAmIRequest(), timeout=10).result
print("over TLS the handler sees:", identity)
check(identity.startswith("grpc unix:"), "TLS peer %r" % identity)
check("tls_cn=" not in identity, "TLS without client cert: %r" % identity)

# mTLS: the handler sees the client certificate's names.
mtls = grpc.secure_channel(
    "unix:mtls.sock",
    grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"),
                                 read("client.pem")),
    options=TLS_OPTIONS)
_, who = unary(mtls, pool, "WhoAmI")
identity = who(WhoAmIRequest(), timeout=10).result
print("over mTLS the handler sees:", identity)
check("tls_cn=client-one" in identity, "mTLS common name in %r" % identity)
check("client-one.example" in identity, "mTLS DNS name in %r" % identity)
check("spiffe://lpc.test/client-one" in identity,
      "mTLS URI name in %r" % identity)

# mTLS without a client certificate: refused in the handshake.
no_cert = grpc.secure_channel(
    "unix:mtls.sock", grpc.ssl_channel_credentials(read("ca.pem")),
    options=TLS_OPTIONS)
_, who = unary(no_cert, pool, "WhoAmI")
try:
    who(WhoAmIRequest(), timeout=10)
    check(False, "mTLS server answered a client without a certificate")
except grpc.RpcError as e:
    print("mTLS without a client certificate:", e.code(), e.details())
    check(e.code() == grpc.StatusCode.UNAVAILABLE,
          "no-cert client: %s %s" % (e.code(), e.details()))

# Drain: a call holds the server; SIGTERM starts Shutdown with its grace;
# health turns NOT_SERVING while the held call still runs.
watch_call = plain.unary_stream(
    "/grpc.health.v1.Health/Watch",
    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
    response_deserializer=health_pb2.HealthCheckResponse.FromString)
watch = watch_call(health_pb2.HealthCheckRequest(service=""), timeout=60)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
check(next(watch).status == SERVING, "Watch starts with SERVING")
HoldRequest, hold = unary(plain, pool, "Hold")
HoldingRequest, holding = unary(plain, pool, "Holding")
held = hold.future(HoldRequest(ms=60000), timeout=60)
wait_until(lambda: holding(HoldingRequest(), timeout=10).result >= 1,
           "the Hold call to reach its handler")
os.kill(SERVER_PID, signal.SIGTERM)
wait_until(lambda: health_status(plain, "") == "NOT_SERVING",
           "overall health NOT_SERVING during the drain")
check(health_status(plain, SERVICE) == "NOT_SERVING",
      "service health during the drain")
check(not held.done(), "the held call ended before the drain was seen")
check(next(watch).status == NOT_SERVING, "Watch sends NOT_SERVING")
print("draining: health NOT_SERVING")
try:
    greet(GreetRequest(name="late"), timeout=10)
    check(False, "a new call succeeded during the drain")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.UNAVAILABLE,
          "new call during the drain: %s" % e.code())
held.cancel()
# The drain is over: the server ends the Watch stream.
try:
    for reply in watch:
        check(False, "Watch sent %r after NOT_SERVING" % reply)
    check(False, "Watch ended with OK")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.UNAVAILABLE,
          "Watch at shutdown: %s %s" % (e.code(), e.details()))
print("Watch ended:", watch.code())

for c in (plain, tls, mtls, no_cert):
    c.close()
if failures:
    sys.exit(1)
print("python features: all checks passed")
