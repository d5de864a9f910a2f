#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build and test libbroker and brokerd; with --bench,
# also what benchmarks/run.sh needs. Does nothing when everything is already installed; uses
# sudo only when not root.
set -euo pipefail

build_deps=(build-essential cmake ninja-build pkg-config libuv1-dev libmbedtls-dev liblmdb-dev
            libfmt-dev nlohmann-json3-dev catch2 clang libclang-rt-14-dev)
test_deps=(mosquitto mosquitto-clients python3-paho-mqtt python3-pytest)
bench_deps=()
case ${1:-} in
  --bench) bench_deps=(jq bc) ;;
  "") ;;
  *) echo "usage: install-deps.sh [--bench]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${build_deps[@]}" "${test_deps[@]}" "${bench_deps[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The mosquitto package starts a system broker on 1883; policy-rc.d keeps it from starting so
# it cannot take brokerd's port. Only added when absent, and removed again afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
