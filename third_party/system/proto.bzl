"""cc_proto for lpc's own .proto files, with Debian's protoc.

Bazel's native proto rules want protobuf's source repository, which an
offline build does not have; this macro runs the system protoc instead.
The generated files include each other by their paths inside lpc, also when
lpc is an external repository of another workspace.
"""

load("//codegen:lpc.bzl", "repository_root")

_PROTOC = str(Label("@lpc_system//:protoc"))
_PROTOBUF = str(Label("@lpc_system//:protobuf"))

def lpc_cc_proto_library(name, srcs, deps = [], visibility = None):
    """A cc_library `name` with the C++ classes of the .proto files `srcs`."""
    hdrs = [s[:-len(".proto")] + ".pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".pb.cc" for s in srcs]
    root = repository_root()
    out = "$(GENDIR)" if root == "." else "$(GENDIR)/" + root
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = hdrs + ccs,
        cmd = "$(location {}) -I{} --cpp_out={} ".format(_PROTOC, root, out) +
              " ".join(["$(location {})".format(s) for s in srcs]),
        tools = [_PROTOC],
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = deps + [_PROTOBUF],
        visibility = visibility,
    )
