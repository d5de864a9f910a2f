#!/usr/bin/env bash
# Every figure in benchmarks/RESULTS.md, in one command, on a fresh Debian machine:
#
#   bash benchmarks/run.sh [--quick] [--reps N] [--out FILE]
#
# Installs what is missing (build deps, mosquitto, jq, bc), builds a Release tree in
# build-bench/, then runs, in this order:
#   1. benchmarks/load/compare.sh: brokerd against Debian's mosquitto over loopback, alternating,
#      medians of N repetitions (CPU-s per million delivered, losses, latency, RSS per connection);
#   2. benchmarks/load/durability.sh: the cost of durable / async / memory persistence;
#   3. the in-process benchmarks (no sockets): 1M virtual sessions, 10M subscriptions in the
#      topic index, one message fanned out to 1M sessions, the LMDB store;
# and benchmarks/report.py assembles the lot, with the capacity extrapolation computed from the
# measured figures, into RESULTS.md. --quick shrinks every size (minutes instead of ~40 min);
# its figures show that everything runs, not what the product does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
reps=3
out="$root/benchmarks/RESULTS.md"
while (($#)); do
  case $1 in
    --quick) quick=1; reps=1 ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--quick] [--reps N] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done

bash "$root/scripts/install-deps.sh" --bench
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBROKER_BUILD_TESTS=OFF >/dev/null
targets=(brokerd mqtt_load)
for src in "$root"/benchmarks/micro/*.cpp; do targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

work=$(mktemp -d /tmp/broker-bench.XXXXXX)
echo "run.sh: intermediate results in $work" >&2
brokerd="$build/server/brokerd"
quick_flag=()
((quick)) && quick_flag=(--quick)

bash "$root/benchmarks/load/compare.sh" "${quick_flag[@]}" --reps "$reps" --brokerd "$brokerd" \
  --load "$build/benchmarks/mqtt_load" --out "$work/load.md" --runs "$work/load.jsonl" >/dev/null
bash "$root/benchmarks/load/durability.sh" "${quick_flag[@]}" --reps "$reps" --brokerd "$brokerd" \
  >"$work/durability.md"

# In-process benchmarks: one JSON line each. Sizes: the issue's targets, or small in --quick.
micro() {  # micro NAME FULL_ARGS QUICK_ARGS
  local bin="$build/benchmarks/$1" args=$2
  ((quick)) && args=$3
  [ -x "$bin" ] || { echo "run.sh: $1 not built; skipped" >&2; return 0; }
  echo "run.sh: $1 $args" >&2
  # shellcheck disable=SC2086
  "$bin" $args | tail -n 1 | jq -c --arg bench "$1" '. + {bench: $bench}' >>"$work/micro.jsonl"
}
: >"$work/micro.jsonl"
micro session_memory_bench 1000000 20000
micro topic_index_bench "10000000 2000000" "200000 200000"
micro fanout_bench 1000000 20000
micro store_bench "20000 64 $work" "2000 64 $work"

/usr/bin/python3 "$root/benchmarks/report.py" --load "$work/load.md" --load-runs "$work/load.jsonl" \
  --durability "$work/durability.md" --micro "$work/micro.jsonl" --quick "$quick" >"$out"
echo "run.sh: written $out" >&2
