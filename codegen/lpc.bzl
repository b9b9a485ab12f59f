"""lpc_cc_library: C++ stubs and protobuf classes for lpc .idl files.

    load("@lpc//codegen:lpc.bzl", "lpc_cc_library")  # "//codegen:lpc.bzl" inside lpc

    lpc_cc_library(
        name = "calculator_lpc",
        srcs = ["calculator.idl"],
        deps = [":common_lpc"],  # lpc_cc_library targets of imported .idl files
    )

then `#include "examples/calculator/calculator.lpc.h"` (and link the target).

For every src `foo.idl` the macro runs lpcc once and declares, beside it:
`foo.pb.h`, `foo.pb.cc`, `foo.lpc.h`, `foo.lpc.cc`, `foo.proto`. It creates:
  <name>         cc_library with the generated C++ (deps: //runtime, protobuf,
                 absl and `deps`)
  <name>_idl     filegroup of the .idl files and, transitively, those of deps
                 (what a dependant's lpcc run needs to resolve imports)
  <name>_proto   filegroup of the emitted .proto files and, transitively,
                 those of deps (for protoc or a stock gRPC client)
  <name>_gen     the genrule that runs lpcc

Imports are resolved relative to the root of the repository that holds the
.idl (lpcc -I <root>), so an .idl imports another by its path in that
repository: import "examples/calculator/common.idl"; The generated files
include each other by the same paths, which is how a dependant includes them
too, whether the macro runs inside lpc or in a workspace that depends on it.
"""

load("//bazel:copts.bzl", "LPC_COPTS")

# Labels inside lpc, resolved here so that the macro works when it is called
# from another repository.
_LPCC = str(Label("//codegen:lpcc"))
_RUNTIME = str(Label("//runtime"))
_SYSTEM_DEPS = [
    str(Label("@lpc_system//:absl")),
    str(Label("@lpc_system//:protobuf")),
]

def repository_root():
    """The exec-root path of the calling package's repository ("." for the main one)."""
    repo = native.repository_name()
    return "." if repo == "@" else "external/" + repo[1:]

def _out_dir(root):
    return "$(GENDIR)" if root == "." else "$(GENDIR)/" + root

def _sibling(label, suffix):
    """The label of target `label` + suffix, for any label spelling."""
    if ":" in label:
        return label + suffix
    if label.startswith("//") or label.startswith("@"):
        # "//a/b" is short for "//a/b:b".
        return label + ":" + label.split("/")[-1] + suffix
    return ":" + label + suffix

def lpc_cc_library(name, srcs, deps = [], visibility = None, testonly = False,
                   runtime = None):
    """Generates and compiles C++ for `srcs` (.idl files); see the file comment.

    `runtime` replaces //runtime as the runtime the generated code links; only
    the runtime's own .idl (runtime/introspection.idl, compiled into //runtime)
    sets it, to //runtime:core.
    """
    hdrs = []
    cc_srcs = []
    protos = []
    commands = []
    root = repository_root()
    out = _out_dir(root)
    for src in srcs:
        if not src.endswith(".idl"):
            fail("lpc_cc_library srcs must be .idl files, got " + src)
        stem = src[:-len(".idl")]
        hdrs += [stem + ".pb.h", stem + ".lpc.h"]
        cc_srcs += [stem + ".pb.cc", stem + ".lpc.cc"]
        protos.append(stem + ".proto")
        commands.append(
            "$(location {}) -I {} --cpp_out={} --proto_out={} $(location {})".format(
                _LPCC,
                root,
                out,
                out,
                src,
            ),
        )

    dep_idls = [_sibling(d, "_idl") for d in deps]
    dep_protos = [_sibling(d, "_proto") for d in deps]

    native.filegroup(
        name = name + "_idl",
        srcs = srcs + dep_idls,
        visibility = visibility,
        testonly = testonly,
    )

    native.genrule(
        name = name + "_gen",
        srcs = srcs + dep_idls,
        outs = hdrs + cc_srcs + protos,
        cmd = " && ".join(commands),
        tools = [_LPCC],
        message = "lpcc " + " ".join(srcs),
        testonly = testonly,
        visibility = ["//visibility:private"],
    )

    native.filegroup(
        name = name + "_proto",
        srcs = protos + dep_protos,
        visibility = visibility,
        testonly = testonly,
    )

    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        copts = LPC_COPTS,
        # The stubs no longer refer to the .pb.cc's request and response
        # classes (they write and read the wire format themselves), so keep
        # its descriptors linked in: gRPC reflection and protobuf's generated
        # pool look services up there.
        alwayslink = True,
        deps = deps + [runtime or _RUNTIME] + _SYSTEM_DEPS,
        visibility = visibility,
        testonly = testonly,
    )
