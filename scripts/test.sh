#!/usr/bin/env bash
# The CI entry point: a -Werror build with the whole test suite, the same suite under
# ASan+UBSan, then (when clang exists) a clang -Werror build, which adds -Wthread-safety and the
# fuzz targets, and runs the fuzz tests.
# Any failure exits non-zero. Sized for a 2-core machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The test deps are Debian packages (paho, pytest), visible to Debian's python3 only; put it
# ahead of any pyenv/venv python3 on the PATH.
export PATH="/usr/bin:$PATH"

step() { printf '\n==> %s (%ds)\n' "$*" "$SECONDS"; }

# Benchmarks are compiled in the main build so they cannot rot; skip them if absent.
benchmarks=OFF
[[ -f benchmarks/CMakeLists.txt ]] && benchmarks=ON

step "install dependencies"
bash scripts/install-deps.sh --tests

step "build (RelWithDebInfo, -Werror) into build/"
# Every switch is given, since quickstart.sh shares build/ and its cache.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBROKER_WERROR=ON \
  -DBROKER_BUILD_SERVER=ON -DBROKER_BUILD_TESTS=ON -DBROKER_BUILD_BENCHMARKS="$benchmarks" >/dev/null
cmake --build build
step "test build/"
(cd build && ctest --output-on-failure -j2)

# -O1 keeps stack traces exact and compiles faster. No -Werror here: GCC 12 gives false
# -Wmaybe-uninitialized under the sanitizers (in <regex>, via Catch2); build/ gates warnings.
step "build (ASan+UBSan) into build-asan/"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DBROKER_WERROR=OFF -DBROKER_SANITIZE=address,undefined \
  -DBROKER_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-asan
step "test build-asan/"
(cd build-asan &&
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j2)

if command -v clang++ >/dev/null; then
  step "build (clang, -Werror, fuzz targets) into build-fuzz/"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBROKER_WERROR=ON -DBROKER_BUILD_FUZZ=ON -DBROKER_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-fuzz
  step "fuzz tests in build-fuzz/"
  (cd build-fuzz && ctest --output-on-failure -j2 -R fuzz)
else
  step "clang not found: fuzz targets skipped"
fi

step "all passed"
