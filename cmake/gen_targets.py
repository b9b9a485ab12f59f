#!/usr/bin/env python3
"""Writes cmake/bazel_targets.cmake from the Bazel BUILD files.

Bazel is lpc's primary build and the only place where files and targets are
listed. This script asks `bazel query` for every rule, and turns each one into
a call of a CMake function defined in cmake/bazel.cmake:

  cc_library                      -> lpc_bazel_cc_library
  cc_binary                       -> lpc_bazel_cc_binary
  cc_test                         -> lpc_bazel_cc_test
  lpc_cc_library (codegen/lpc.bzl)          -> lpc_bazel_idl_library
  lpc_cc_proto_library (third_party/system) -> lpc_bazel_proto_library

The packages in SKIPPED_PACKAGES (the benchmarks, which need Cap'n Proto and
iceoryx) and targets tagged "manual" are not written. sh_test targets are not
written either: they run on Bazel's runfiles and $(location) expansion.
select() branches are flattened by `bazel query` (all branches are listed);
the only select() in a written target adds TSan suppressions, which are
harmless in a build without TSan.

  cmake/gen_targets.py           rewrite cmake/bazel_targets.cmake
  cmake/gen_targets.py --check   exit 1 if it is stale, or if a source file
                                 tracked by git is in no Bazel target, or
                                 is in one that CMake builds but not in
                                 the CMake build
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "cmake", "bazel_targets.cmake")
SKIPPED_PACKAGES = ("bench",)
# Source files that belong to no build: out-of-tree consumer projects.
UNBUILT_DIRS = ("tests/consumer/", "third_party/", "docs/")
SOURCE_EXTENSIONS = (".cc", ".h", ".idl", ".proto")
MACROS = ("lpc_cc_library", "lpc_cc_proto_library")


def query():
    out = subprocess.run(
        ["bazel", "query", "--noshow_progress", "--output=xml", "//..."],
        cwd=ROOT, check=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE).stdout
    rules = {}
    for rule in ET.fromstring(out).iter("rule"):
        attrs = {}
        for child in rule:
            name = child.get("name")
            if child.tag == "list":
                attrs[name] = [normalize(e.get("value")) for e in child]
            elif child.tag == "dict":
                attrs[name] = [(p[0].get("value"), p[1].get("value"))
                               for p in child.findall("pair")]
            elif child.tag in ("string", "boolean", "label", "int"):
                attrs[name] = child.get("value")
        attrs["class"] = rule.get("class")
        rules[rule.get("name")] = attrs
    return rules


def normalize(label):
    """@lpc//a:b and @//a:b are //a:b."""
    for prefix in ("@lpc//", "@//"):
        if label and label.startswith(prefix):
            return "//" + label[len(prefix):]
    return label


def split(label):
    pkg, _, name = label.partition(":")
    return pkg[2:], name


def in_skipped(label):
    pkg, _ = split(label)
    return any(pkg == p or pkg.startswith(p + "/") for p in SKIPPED_PACKAGES)


class Resolver:
    def __init__(self, rules):
        self.rules = rules
        self.outputs = set()
        for attrs in rules.values():
            self.outputs.update(attrs.get("outs", []))

    def cmake_name(self, label):
        """//runtime:runtime -> lpc_runtime, //runtime:config -> lpc_runtime_config."""
        pkg, name = split(label)
        parts = pkg.split("/") if pkg else []
        if not parts or parts[-1] != name:
            parts.append(name)
        return "lpc_" + "_".join(parts)

    def dep(self, label):
        if label.startswith("@"):
            return "SYSTEM:" + label.split(":")[-1]
        if label not in self.rules:
            sys.exit("gen_targets: %s is not a rule" % label)
        return self.cmake_name(label)

    def file(self, label):
        """A source or generated file as a path relative to the root."""
        pkg, name = split(label)
        return pkg + "/" + name if pkg else name

    def data(self, label):
        """Runfiles entries for a data label: SRC:<path>, GEN:<path> or a target."""
        if label.startswith("@"):
            sys.exit("gen_targets: external data %s is not supported" % label)
        if label in self.outputs:
            return ["GEN:" + self.file(label)]
        rule = self.rules.get(label)
        if rule is None:
            return ["SRC:" + self.file(label)]
        if rule["class"] == "filegroup":
            return [e for s in rule.get("srcs", []) for e in self.data(s)]
        return [self.cmake_name(label)]


def cmake_list(key, values):
    if not values:
        return []
    return ["  " + key] + ["    " + quote(v) for v in values]


def quote(value):
    if all(c.isalnum() or c in "_-./:+=@" for c in value) and value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def generate(rules):
    res = Resolver(rules)
    written = set()
    always = sorted(res.cmake_name(l) for l, a in rules.items()
                    if a.get("alwayslink") == "true" and not in_skipped(l)
                    and "manual" not in a.get("tags", []))
    lines = [
        "# Generated by cmake/gen_targets.py from the Bazel BUILD files; do not",
        "# edit. Regenerate with: cmake/gen_targets.py",
        "",
    ]
    lines.extend(["lpc_bazel_alwayslink("] + ["  " + a for a in always] + [")", ""])
    for label in sorted(rules):
        attrs = rules[label]
        kind = attrs["class"]
        tags = attrs.get("tags", [])
        if in_skipped(label) or "manual" in tags:
            continue
        macro = attrs.get("generator_function")
        if kind == "cc_library" and macro in MACROS:
            func = ("lpc_bazel_idl_library" if macro == "lpc_cc_library"
                    else "lpc_bazel_proto_library")
            gen = rules[label + "_gen"]
            srcs = [res.file(s) for s in gen.get("srcs", [])
                    if s not in rules]
            deps = [res.dep(d) for d in attrs.get("deps", [])]
        elif kind in ("cc_library", "cc_binary", "cc_test"):
            func = "lpc_bazel_" + kind
            srcs = [res.file(s) for s in attrs.get("srcs", [])]
            deps = [res.dep(d) for d in attrs.get("deps", [])]
        else:
            continue
        body = ["%s(%s" % (func, res.cmake_name(label))]
        body.append("  PACKAGE " + quote(split(label)[0]))
        body.append("  NAME " + quote(split(label)[1]))
        if attrs.get("alwayslink") == "true":
            body.append("  ALWAYSLINK")
        if attrs.get("testonly") == "true":
            body.append("  TESTONLY")
        body += cmake_list("SRCS", srcs)
        body += cmake_list("HDRS", [res.file(h) for h in attrs.get("hdrs", [])])
        body += cmake_list("DEPS", deps)
        body += cmake_list("LINKOPTS", attrs.get("linkopts", []))
        if kind == "cc_test":
            body.append("  SIZE " + attrs.get("size", "medium"))
            body += cmake_list("TAGS", tags)
            body += cmake_list("ARGS", attrs.get("args", []))
            body += cmake_list("ENV", ["%s=%s" % kv for kv in attrs.get("env", [])])
        if kind in ("cc_test", "cc_binary"):
            data = [e for d in attrs.get("data", []) for e in res.data(d)]
            body += cmake_list("DATA", sorted(set(data)))
            written.update(d[4:] for d in data if d.startswith("SRC:"))
        written.update(srcs)
        written.update(res.file(h) for h in attrs.get("hdrs", []))
        body.append(")")
        lines += body + [""]
    return "\n".join(lines), written


def referenced_files(rules, only=None):
    """Every source file that some Bazel rule (of classes `only`) names."""
    files = set()
    for label, attrs in rules.items():
        if only is not None and not only(label, attrs):
            continue
        for key, value in attrs.items():
            if isinstance(value, list):
                for v in value:
                    if isinstance(v, str) and v.startswith("//") and v not in rules:
                        pkg, name = split(v)
                        files.add(pkg + "/" + name if pkg else name)
    return files


def tracked_sources():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return [f for f in out.split()
            if f.endswith(SOURCE_EXTENSIONS) and not f.startswith(UNBUILT_DIRS)]


def main():
    rules = query()
    text, written = generate(rules)
    if sys.argv[1:] == ["--check"]:
        problems = []
        known = referenced_files(rules)
        # Files of sh_test/sh_binary targets (run by Bazel only), of manual
        # targets and of skipped packages need not be in the CMake build.
        built = referenced_files(rules, lambda label, a: (
            a["class"] not in ("sh_test", "sh_binary")
            and "manual" not in a.get("tags", []) and not in_skipped(label)))
        for f in tracked_sources():
            if f not in known:
                problems.append("%s is in no Bazel target" % f)
            elif f in built and f not in written:
                problems.append("%s is not in cmake/bazel_targets.cmake" % f)
        with open(OUTPUT) as f:
            if f.read() != text:
                problems.append("cmake/bazel_targets.cmake is stale; "
                                "run cmake/gen_targets.py")
        for p in problems:
            print("gen_targets: " + p, file=sys.stderr)
        sys.exit(1 if problems else 0)
    with open(OUTPUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
