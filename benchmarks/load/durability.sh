#!/usr/bin/env bash
# Durability's cost: QoS 1 p2p (16 publishers -> 16 persistent subscribers, flat out, window
# 32) against brokerd with durability "durable" (fsync before PUBACK), "async" and "memory",
# alternating, in the same run. Reports delivered msg/s, losses, broker CPU-s per million
# delivered, and the store's commit group size (from brokerd's shutdown log line).
#
#   benchmarks/load/durability.sh [--brokerd PATH] [--reps N] [--duration S] [--quick]
set -u  # lib.sh helpers poll with commands that fail until the broker is up
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

brokerd=${BROKERD:-}
reps=3
duration=10
while (($#)); do
  case $1 in
    --brokerd) brokerd=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --quick) reps=1; duration=3; shift ;;
    *) echo "usage: $0 [--brokerd PATH] [--reps N] [--duration S] [--quick]" >&2; exit 2 ;;
  esac
done
[ -x "$brokerd" ] || { echo "durability.sh: --brokerd PATH (or BROKERD) is required" >&2; exit 2; }
load=$(dirname "$brokerd")/../benchmarks/mqtt_load
[ -x "$load" ] || { echo "durability.sh: $load not built (ninja mqtt_load)" >&2; exit 2; }

work=$(mktemp -d)
trap 'stop_broker; rm -rf "$work"' EXIT

printf '| mode | rep | delivered msg/s | lost | broker CPU-s per M delivered | commits: avg group / largest |\n'
printf '|---|---|---:|---:|---:|---|\n'
for rep in $(seq 1 "$reps"); do
  for mode in durable async memory; do
    BROKER_DURABILITY=$mode start_brokerd "$brokerd" "$work/data" "$work/broker.log"
    t0=$(cpu_ticks "$BROKER_PID")
    out=$("$load" --scenario p2p --port "$BROKER_PORT" --clients 16 --qos 1 --window 32 \
      --duration "$duration" --drain 10 --payload 100 --persistent)
    t1=$(cpu_ticks "$BROKER_PID")
    stop_broker
    group=$(grep -o 'average group [0-9.]*, largest [0-9]*' "$work/broker.log" | sed 's/average group //; s/, largest / \/ /' || true)
    /usr/bin/python3 - "$out" "$t0" "$t1" "$CLK_TCK" "$mode" "$rep" "${group:-n/a}" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); t0, t1, tck = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
delivered = r.get("received", 0)
cpu = (t1 - t0) / tck
rate = r.get("deliver_rate", 0)
per_m = cpu / delivered * 1e6 if delivered else float("nan")
print(f"| {sys.argv[5]} | {sys.argv[6]} | {rate:,.0f} | {r.get('lost', 'n/a')} | {per_m:.2f} | {sys.argv[7]} |")
PY
  done
done
