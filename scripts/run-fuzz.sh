#!/usr/bin/env bash
# Builds decoder_fuzz with clang in its own build dir and runs it for a bounded time.
# Usage: scripts/run-fuzz.sh [seconds=60]
# Env: BROKER_FUZZ_BUILD_DIR (default: $TMPDIR/broker-build-fuzz), FUZZ_JOBS (default 1).
# Exits non-zero when the build fails or the fuzzer finds a crash (artifacts in <build>/artifacts).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BROKER_FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/broker-build-fuzz}"
jobs="${FUZZ_JOBS:-1}"

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBROKER_BUILD_FUZZ=ON -DBROKER_BUILD_SERVER=OFF -DBROKER_BUILD_BENCHMARKS=OFF \
  -DBROKER_BUILD_EXAMPLES=OFF >/dev/null
ninja -C "$build" decoder_fuzz mqtt_seed_corpus

corpus="$build/corpus/decoder"
mkdir -p "$corpus" "$build/artifacts"
"$build/tests/fuzz/mqtt_seed_corpus" "$corpus"

args=(-max_total_time="$seconds" -dict="$root/tests/fuzz/mqtt.dict"
      -artifact_prefix="$build/artifacts/" -print_final_stats=1)
if [[ "$jobs" -gt 1 ]]; then
  args+=(-fork="$jobs")
fi
"$build/tests/fuzz/decoder_fuzz" "${args[@]}" "$corpus"
