"""lpc_deps(): the external repositories that lpc needs.

A workspace that depends on lpc calls it after declaring lpc itself:

    local_repository(name = "lpc", path = "/path/to/lpc")

    load("@lpc//bazel:deps.bzl", "lpc_deps")

    lpc_deps()

lpc's own WORKSPACE calls it too, so this is the only list. Every repository
is local (lpc builds offline): the rule repositories come from Debian's
bazel-bootstrap, and the system libraries from pkg-config, under the name
`lpc_system`. A repository that the workspace has already declared, before
the call, is left as it is.
"""

load("//third_party/system:pkg_config.bzl", "system_libraries")

_MOCK_REPOS = "/usr/src/bazel-bootstrap/mock_repos/"

def _coverage_tools_impl(ctx):
    # The directory beside this file's package; found through a label so
    # that it works wherever lpc is checked out.
    src = ctx.path(Label("//third_party/remote_coverage_tools:BUILD")).dirname
    for f in src.readdir():
        ctx.symlink(f, f.basename)

# Bazel's test runner refers to @remote_coverage_tools even when coverage is
# off; lpc supplies a stand-in that only says coverage is not available.
_coverage_tools = repository_rule(implementation = _coverage_tools_impl)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def lpc_deps():
    """Declares the repositories that lpc needs, each unless already declared."""
    for name in [
        "rules_cc",
        "rules_java",
        "rules_proto",
        "bazel_skylib",
        "remote_java_tools_linux",
    ]:
        _maybe(native.local_repository, name, path = _MOCK_REPOS + name)
    _maybe(native.local_repository, "platforms", path = "/usr/share/bazel/tools/platforms")
    _maybe(_coverage_tools, "remote_coverage_tools")
    _maybe(system_libraries, "lpc_system")
