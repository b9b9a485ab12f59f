"""lpc_cc_library: C++ stubs and protobuf classes for lpc .idl files.

    load("//codegen:lpc.bzl", "lpc_cc_library")

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

Imports are resolved relative to the workspace root (lpcc -I .), so an .idl
imports another by its workspace path: import "examples/calculator/common.idl";
"""

def _sibling(label, suffix):
    """The label of target `label` + suffix, for any label spelling."""
    if ":" in label:
        return label + suffix
    if label.startswith("//") or label.startswith("@"):
        # "//a/b" is short for "//a/b:b".
        return label + ":" + label.split("/")[-1] + suffix
    return ":" + label + suffix

def lpc_cc_library(name, srcs, deps = [], visibility = None, testonly = False):
    """Generates and compiles C++ for `srcs` (.idl files); see the file comment."""
    hdrs = []
    cc_srcs = []
    protos = []
    commands = []
    for src in srcs:
        if not src.endswith(".idl"):
            fail("lpc_cc_library srcs must be .idl files, got " + src)
        stem = src[:-len(".idl")]
        hdrs += [stem + ".pb.h", stem + ".lpc.h"]
        cc_srcs += [stem + ".pb.cc", stem + ".lpc.cc"]
        protos.append(stem + ".proto")
        commands.append(
            "$(location //codegen:lpcc) -I . --cpp_out=$(GENDIR) " +
            "--proto_out=$(GENDIR) $(location {})".format(src),
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
        tools = ["//codegen:lpcc"],
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
        deps = deps + [
            "//runtime",
            "@system//:absl",
            "@system//:protobuf",
        ],
        visibility = visibility,
        testonly = testonly,
    )
