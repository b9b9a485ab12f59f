#!/usr/bin/env bash
# Installs the Debian packages lpc needs, and only the missing ones, so a
# second run costs a dpkg query. Uses sudo when not run as root.
# Sourced by tools/demo and tools/test, or run by itself.

LPC_PACKAGES=(
  bazel-bootstrap bazel-bootstrap-source bazel-platforms
  g++ pkg-config cmake
  libprotobuf-dev libprotoc-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-protobuf
  openssl libssl-dev
  iproute2 util-linux procps
  clang libclang-rt-14-dev
  gnuplot-nox
  libcapnp-dev capnproto
  iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev
)

lpc_missing_packages() {
  local missing=()
  for p in "${LPC_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]:-}"
}

lpc_install_deps() {
  local missing
  missing=$(lpc_missing_packages)
  [ -z "$missing" ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "lpc: missing packages ($missing) and no sudo to install them" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  echo "lpc: installing missing Debian packages: $missing" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  lpc_install_deps
fi
