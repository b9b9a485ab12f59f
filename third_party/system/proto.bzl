"""cc_proto for lpc's own .proto files, with Debian's protoc.

Bazel's native proto rules want protobuf's source repository, which an
offline build does not have; this macro runs the system protoc instead.
"""

def lpc_cc_proto_library(name, srcs, deps = [], visibility = None):
    """A cc_library `name` with the C++ classes of the .proto files `srcs`."""
    hdrs = [s[:-len(".proto")] + ".pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".pb.cc" for s in srcs]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = hdrs + ccs,
        cmd = "$(location @system//:protoc) -I. --cpp_out=$(GENDIR) " +
              " ".join(["$(location {})".format(s) for s in srcs]),
        tools = ["@system//:protoc"],
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
    )
