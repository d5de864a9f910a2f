#!/usr/bin/env bash
# Builds brokerd (Release) into ./build and runs it in the foreground on the defaults:
# MQTT on 0.0.0.0:1883, data in ./data. Ctrl-C stops it cleanly. Extra arguments go to brokerd.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
# Every switch is given, since test.sh shares build/ and its cache.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBROKER_WERROR=OFF \
  -DBROKER_BUILD_SERVER=ON -DBROKER_BUILD_TESTS=OFF -DBROKER_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build --target brokerd
exec ./build/server/brokerd "$@"
