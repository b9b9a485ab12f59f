"""cc_library and cc_binary for lpc's BUILD files: the native rules with
LPC_COPTS (bazel/copts.bzl) put before the target's own copts.

A BUILD file of a package whose libraries or tools other workspaces build
loads them, and so shadows the native rules for every target in it:

    load("//bazel:cc.bzl", "cc_binary", "cc_library")  # as needed

That way a target added to such a package compiles as C++20 in a workspace
that depends on lpc without anyone remembering to say so.
"""

load(":copts.bzl", "LPC_COPTS")

def cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = LPC_COPTS + copts, **kwargs)

def cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = LPC_COPTS + copts, **kwargs)
