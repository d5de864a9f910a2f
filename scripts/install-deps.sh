#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build and test libbroker and brokerd; with --bench,
# also what benchmarks/run.sh needs; with --tests, also Node.js and MQTT.js (from the npm
# registry, at the version tests/integration/mqttjs/package-lock.json pins) for the interop
# tests. Does nothing when everything is already installed; uses sudo only when not root.
set -euo pipefail

build_deps=(build-essential cmake ninja-build pkg-config libuv1-dev libmbedtls-dev liblmdb-dev
            libfmt-dev nlohmann-json3-dev catch2 clang libclang-rt-14-dev)
test_deps=(mosquitto mosquitto-clients python3-paho-mqtt python3-pytest)
bench_deps=()
node_tests=0
for arg in "$@"; do
  case $arg in
    --bench) bench_deps=(jq bc) ;;
    --tests) node_tests=1; test_deps+=(nodejs) ;;
    *) echo "usage: install-deps.sh [--bench] [--tests]" >&2; exit 2 ;;
  esac
done
mqttjs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/integration/mqttjs"

# MQTT.js into tests/integration/mqttjs/node_modules, again only when the lock file changed.
install_mqttjs() {
  ((node_tests)) || return 0
  local stamp="$mqttjs/node_modules/.installed-package-lock.json"
  cmp -s "$mqttjs/package-lock.json" "$stamp" && return 0
  echo "install-deps: installing MQTT.js (npm ci in tests/integration/mqttjs)"
  (cd "$mqttjs" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$mqttjs/package-lock.json" "$stamp"
}

missing=()
for pkg in "${build_deps[@]}" "${test_deps[@]}" "${bench_deps[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done
# Debian's nodejs comes without npm (NodeSource's includes it).
if ((node_tests)) && ! command -v npm >/dev/null; then
  missing+=(npm)
fi
if ((${#missing[@]} == 0)); then
  install_mqttjs
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
install_mqttjs
echo "install-deps: done"
