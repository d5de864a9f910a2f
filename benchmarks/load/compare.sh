#!/usr/bin/env bash
# brokerd against Debian's mosquitto, same machine, same run, alternating broker order each
# repetition. Every scenario gets a fresh broker; its CPU (utime+stime from /proc/PID/stat) is
# read around the scenario and its peak RSS (VmHWM) at the end.
#   compare.sh [--quick] [--reps N] [--scenarios "a b c"] [--brokerd PATH] [--load PATH] [--out FILE]
#              [--runs FILE]
# Writes a markdown report to stdout and to FILE (default benchmarks/RESULTS.md); raw JSON
# lines of every run go to $WORK/runs.jsonl (kept, path printed on stderr).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
REPS=3
QUICK=0
BROKERD=${BROKERD:-}
MQTT_LOAD=${MQTT_LOAD:-}
OUT="$here/../RESULTS.md"
RUNS_COPY=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; REPS=1 ;;
    --reps) REPS=$2; shift ;;
    --brokerd) BROKERD=$2; shift ;;
    --load) MQTT_LOAD=$2; shift ;;
    --out) OUT=$2; shift ;;
    --runs) RUNS_COPY=$2; shift ;;
    --scenarios) read -r -a ONLY <<<"$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -z "$MQTT_LOAD" ] && [ -n "$BROKERD" ] && MQTT_LOAD="$(dirname "$BROKERD")/../benchmarks/mqtt_load"
[ -x "$BROKERD" ] && [ -x "$MQTT_LOAD" ] || { echo "need --brokerd and --load (or env BROKERD, MQTT_LOAD)" >&2; exit 2; }
command -v mosquitto >/dev/null || { echo "mosquitto not installed" >&2; exit 2; }
ulimit -n 20000 || exit 1

if [ $QUICK -eq 1 ]; then HOLD=5; DUR=3; else HOLD=30; DUR=10; fi
IDLE_CLIENTS=${IDLE_CLIENTS:-18000}
SOURCES=127.0.0.2-127.0.0.9
WORK=$(mktemp -d /tmp/mqtt-compare.XXXXXX)
RUNS="$WORK/runs.jsonl"
echo "raw results: $RUNS" >&2
trap 'stop_broker' EXIT

# Scenario name -> generator arguments (the idle one is split over two processes below).
declare -A ARGS=(
  [idle18k]="--scenario idle --keepalive 10 --duration $HOLD --drain 15"
  [p2p_q0]="--scenario p2p --clients 16 --qos 0 --duration $DUR --drain 5"
  [p2p_q1]="--scenario p2p --clients 16 --qos 1 --window 64 --duration $DUR --drain 5"
  [fanout_q0]="--scenario fanout --clients 1000 --qos 0 --duration $DUR --drain 5"
  [connect18k]="--scenario idle --keepalive 60 --duration 1 --drain 15"
  [latency_q1_10k]="--scenario p2p --clients 16 --qos 1 --window 64 --rate 10000 --duration $DUR --drain 5"
  [p2p_q2]="--scenario p2p --clients 16 --qos 2 --window 32 --duration $DUR --drain 5"
  [fanin_q1]="--scenario fanin --clients 200 --qos 1 --window 32 --duration $DUR --drain 5"
  [shared_q1]="--scenario shared --publishers 16 --clients 16 --qos 1 --window 32 --duration $DUR --drain 5"
  [large_q1]="--scenario p2p --clients 4 --qos 1 --window 8 --payload 65536 --duration $DUR --drain 5"
  # The same at a rate both brokers sustain: latency compared at equal load (flat out, the
  # generator itself saturates with the faster broker and its own delays fill the tail).
  [large_q1_8k]="--scenario p2p --clients 4 --qos 1 --window 8 --payload 65536 --rate 8000 --duration $DUR --drain 5"
  [broadcast_q1]="--scenario fanout --clients 5000 --qos 1 --rate 20 --duration $DUR --drain 5"
)
SCENARIOS=(idle18k connect18k p2p_q0 p2p_q1 fanout_q0 latency_q1_10k p2p_q2 fanin_q1 shared_q1 large_q1 large_q1_8k broadcast_q1)
[ -n "${ONLY+x}" ] && SCENARIOS=("${ONLY[@]}")
for sc in "${SCENARIOS[@]}"; do [ -n "${ARGS[$sc]+x}" ] || { echo "unknown scenario $sc" >&2; exit 2; }; done

start_named() {  # start_named brokerd|mosquitto TAG
  if [ "$1" = brokerd ]; then
    start_brokerd "$BROKERD" "$WORK/$2.data" "$WORK/$2.log"
  else
    start_mosquitto "$WORK/$2.mq" "$WORK/$2.log"
  fi
}

run_one() {  # run_one BROKER SCENARIO REP
  local broker=$1 sc=$2 rep=$3 tag="$1-$2-$3"
  start_named "$broker" "$tag" || { echo "{\"broker\":\"$broker\",\"scenario\":\"$sc\",\"rep\":$rep,\"error\":\"start failed\"}" >>"$RUNS"; return; }
  sleep 0.3
  local base_rss cpu0 cpu1 hwm alive=true
  base_rss=$(status_kb "$BROKER_PID" VmRSS)
  cpu0=$(cpu_ticks "$BROKER_PID")
  if [ "$sc" = idle18k ] || [ "$sc" = connect18k ]; then
    local half=$((IDLE_CLIENTS / 2))
    # shellcheck disable=SC2086
    "$MQTT_LOAD" ${ARGS[$sc]} --port "$BROKER_PORT" --clients "$half" --prefix cmpa --source-addrs "$SOURCES" >"$WORK/$tag.a.json" &
    local ga=$!
    # shellcheck disable=SC2086
    "$MQTT_LOAD" ${ARGS[$sc]} --port "$BROKER_PORT" --clients $((IDLE_CLIENTS - half)) --id-offset "$half" --prefix cmpb --source-addrs "$SOURCES" >"$WORK/$tag.b.json" &
    local gb=$!
    # Kernel memory held for the sockets (slab: socket, inode, dentry, tcp structures), read
    # mid-hold; both ends live on this machine, so half of it is the broker side's share.
    local slab0 slab1="" held_rss=""
    slab0=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
    if [ "$sc" = idle18k ]; then
      sleep $((HOLD / 2 + 3))
      slab1=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
      held_rss=$(status_kb "$BROKER_PID" VmRSS)
    fi
    wait $ga $gb
    jq -s -c '{clients: (map(.clients)|add), connect_ok: (map(.connect_ok)|add),
        connect_failed: (map(.connect_failed)|add), connect_seconds: (map(.connect_seconds)|max),
        connect_rate: ((map(.connect_ok)|add) / ([(map(.connect_seconds)|max), 0.001]|max)),
        all_connected: (map(.all_alive)|all), dropped: (map(.dropped)|add),
        connect_p99_ms: (map(.connect_p99_ms)|max),
        gen_cpu_s: (map(.gen_cpu_s)|add), received: 0, lost: 0, sent: 0, errors: (map(.errors)|add)}
        + (if $slab1 == "" then {} else {kernel_slab_kb: (($slab1|tonumber) - ($slab0|tonumber)),
                                         held_rss_kb: ($held_rss|tonumber)} end)' \
      --arg slab0 "$slab0" --arg slab1 "$slab1" --arg held_rss "$held_rss" "$WORK/$tag.a.json" "$WORK/$tag.b.json" >"$WORK/$tag.json"
  else
    # shellcheck disable=SC2086
    # The generator waits up to 120 s for in-flight messages after the run.
    timeout $((DUR + 180)) "$MQTT_LOAD" ${ARGS[$sc]} --port "$BROKER_PORT" --prefix "cmp$rep" >"$WORK/$tag.json"
  fi
  if kill -0 "$BROKER_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat")" != Z ]; then
    cpu1=$(cpu_ticks "$BROKER_PID")
    hwm=$(status_kb "$BROKER_PID" VmHWM)
  else
    alive=false; cpu1=$cpu0; hwm=0
  fi
  stop_broker
  jq -c --arg broker "$broker" --arg sc "$sc" --argjson rep "$rep" --argjson cpu "$(echo "($cpu1 - $cpu0) / $CLK_TCK" | bc -l)" \
    --argjson hwm "${hwm:-0}" --argjson base "${base_rss:-0}" --argjson alive "$alive" --argjson exit "${BROKER_EXIT:-255}" \
    '. + {scenario: $sc, tool_scenario: .scenario, broker: $broker, rep: $rep, broker_cpu_s: $cpu, broker_hwm_kb: $hwm, broker_base_kb: $base,
          broker_alive: $alive, broker_exit: $exit}' "$WORK/$tag.json" >>"$RUNS" ||
    echo "{\"broker\":\"$broker\",\"scenario\":\"$sc\",\"rep\":$rep,\"error\":\"no generator result\"}" >>"$RUNS"
  echo "  $tag done" >&2
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
SOURCE_REV=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
for rep in $(seq 1 "$REPS"); do
  for sc in "${SCENARIOS[@]}"; do
    if [ $((rep % 2)) -eq 1 ]; then order="brokerd mosquitto"; else order="mosquitto brokerd"; fi
    for b in $order; do run_one "$b" "$sc" "$rep"; done
  done
done

machine="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r), $(free -g | awk '/Mem:/ {print $2}') GiB"
/usr/bin/python3 - "$RUNS" "$machine" "$REPS" "$QUICK" "$LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(mosquitto -h 2>/dev/null | head -n 1)" "$BROKERD (source tree at $SOURCE_REV), \`--workers ${BROKER_WORKERS:-0}\` ($(workers_text))" "$(date -u +%Y-%m-%dT%H:%MZ)" \
  >"$WORK/report.md" <<'PY'
import json, statistics, sys
runs_path, machine, reps, quick, loadavg, mosq, brokerd, when = sys.argv[1:9]
runs = [json.loads(l) for l in open(runs_path) if l.strip()]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def get(b, sc, f):
    return med([r.get(f) for r in runs if r.get("broker") == b and r.get("scenario") == sc and "error" not in r])
def derived(b, sc, fn):
    return med([fn(r) for r in runs if r.get("broker") == b and r.get("scenario") == sc and "error" not in r])
def fmt(v, nd=1):
    if v is None: return "n/a"
    if isinstance(v, bool): return "yes" if v else "no"
    if abs(v) >= 1000: return f"{v:,.0f}"
    return f"{v:.{nd}f}"
def ratio(a, c):
    if a is None or c is None or c == 0: return "n/a"
    return f"{a / c:.2f}"
out = []
out.append("# Load comparison: brokerd vs mosquitto\n")
out.append(f"- Run {when}. Machine: {machine}")
out.append(f"- Load average (1/5/15 min) at start / end: {loadavg} (other work on the machine shares the CPUs)")
out.append(f"- Peer: {mosq or 'mosquitto'} (Debian), `max_queued_messages 1000`, `max_queued_bytes 8 MiB`, `max_inflight_messages 64`, persistence off")
out.append(f"- brokerd: {brokerd}, defaults (queue 1000 msgs / 8 MiB drop_oldest, max_inflight 64)")
out.append(f"- {'quick mode, ' if quick == '1' else ''}{reps} repetition(s), medians; broker order alternates per repetition; fresh broker per scenario")
out.append("- Generator: `benchmarks/load/mqtt_load` (one epoll thread per process, same machine, competes for the same CPUs)")
out.append("- CPU/M = broker CPU seconds (utime+stime over the whole scenario, connects included) per million delivered messages\n")
out.append("| scenario | metric | brokerd | mosquitto | brokerd/mosquitto |")
out.append("|---|---|---:|---:|---:|")
def row(sc, name, fb, fm=None, nd=1):
    a, c = fb("brokerd"), fb("mosquitto")
    out.append(f"| {sc} | {name} | {fmt(a, nd)} | {fmt(c, nd)} | {ratio(a, c) if not isinstance(a, bool) else ''} |")
for sc in ["idle18k", "connect18k"]:
    if not any(r.get("scenario") == sc for r in runs): continue
    row(sc, "clients connected", lambda b: get(b, sc, "connect_ok"), nd=0)
    row(sc, "all stayed connected", lambda b: all(r.get("all_connected") for r in runs if r.get("broker") == b and r.get("scenario") == sc))
    row(sc, "connect failures", lambda b: get(b, sc, "connect_failed"), nd=0)
    row(sc, "connect rate (conn/s)", lambda b: get(b, sc, "connect_rate"))
    row(sc, "broker peak RSS (MiB)", lambda b: (get(b, sc, "broker_hwm_kb") or 0) / 1024)
    row(sc, "RSS per connection (KiB, peak - idle)", lambda b: derived(b, sc, lambda r: (r["broker_hwm_kb"] - r["broker_base_kb"]) / max(r["connect_ok"], 1)), nd=2)
    if sc == "idle18k":
        row(sc, "RSS per connection (KiB, mid-hold - idle)", lambda b: derived(b, sc, lambda r: (r["held_rss_kb"] - r["broker_base_kb"]) / max(r["connect_ok"], 1) if "held_rss_kb" in r else None), nd=2)
        row(sc, "kernel slab per connection, broker side (KiB, half the growth)", lambda b: derived(b, sc, lambda r: r["kernel_slab_kb"] / 2 / max(r["connect_ok"], 1) if "kernel_slab_kb" in r else None), nd=2)
    row(sc, "connect latency p99 (ms)", lambda b: get(b, sc, "connect_p99_ms"), nd=2)
    row(sc, "broker CPU (s)", lambda b: get(b, sc, "broker_cpu_s"), nd=2)
    row(sc, "broker CPU per connection (us)", lambda b: derived(b, sc, lambda r: r["broker_cpu_s"] / max(r["connect_ok"], 1) * 1e6), nd=1)
    row(sc, "generator CPU (s)", lambda b: get(b, sc, "gen_cpu_s"), nd=2)
for sc in ["p2p_q0", "p2p_q1", "fanout_q0", "latency_q1_10k", "p2p_q2", "fanin_q1", "shared_q1", "large_q1", "large_q1_8k", "broadcast_q1"]:
    if not any(r.get("scenario") == sc for r in runs): continue
    row(sc, "sent (msgs)", lambda b: get(b, sc, "sent"), nd=0)
    row(sc, "delivered msg/s", lambda b: get(b, sc, "deliver_rate"))
    row(sc, "lost (% of expected)", lambda b: derived(b, sc, lambda r: 100.0 * r["lost"] / max(r["expected"], 1)), nd=2)
    row(sc, "duplicated", lambda b: derived(b, sc, lambda r: r["duplicated"]), nd=0)
    # In a shared group, arrivals interleave across members: order is promised per member only.
    if not sc.startswith("shared"):
        row(sc, "out of order", lambda b: derived(b, sc, lambda r: r["out_of_order"]), nd=0)
    row(sc, "latency p50 (ms)", lambda b: (lambda v: v / 1000 if v is not None else None)(get(b, sc, "latency_p50_us")), nd=2)
    row(sc, "latency p99 (ms)", lambda b: (lambda v: v / 1000 if v is not None else None)(get(b, sc, "latency_p99_us")), nd=2)
    row(sc, "latency p999 (ms)", lambda b: (lambda v: v / 1000 if v is not None else None)(get(b, sc, "latency_p999_us")), nd=2)
    row(sc, "broker CPU (s)", lambda b: get(b, sc, "broker_cpu_s"), nd=2)
    row(sc, "broker CPU-s per M delivered", lambda b: derived(b, sc, lambda r: r["broker_cpu_s"] / max(r["received"], 1) * 1e6), nd=2)
    row(sc, "broker peak RSS (MiB)", lambda b: (get(b, sc, "broker_hwm_kb") or 0) / 1024)
    row(sc, "generator CPU (s)", lambda b: get(b, sc, "gen_cpu_s"), nd=2)
bad = [r for r in runs if "error" in r or not r.get("broker_alive", True) or r.get("broker_exit", 0) != 0]
if bad:
    out.append("\n**Problems:**")
    for r in bad:
        out.append(f"- {r.get('broker')} {r.get('scenario')} rep {r.get('rep')}: error={r.get('error')} alive={r.get('broker_alive')} exit={r.get('broker_exit')} gen errors={r.get('errors')}")
out.append("\nScenarios (64 B payloads unless said): idle18k = 18,000 clients (2 generator processes, sources 127.0.0.2-9),"
           " one subscription each, held with PINGREQs, then a final PINGREQ round; connect18k = the same 18,000 connecting"
           " as fast as they can, subscribing and leaving after 1 s (broker CPU per connection covers connect, subscribe and"
           " disconnect); p2p = 16 publishers -> 16 subscribers, one topic per pair, flat out (QoS 1 window 64, QoS 2 window 32);"
           " fanout = 1 publisher -> 1,000 subscribers flat out; latency = p2p QoS 1 at a fixed 10,000 msg/s total, publishers"
           " evenly interleaved; fanin = 200 publishers -> 1 wildcard subscriber; shared = 16 publishers -> one $share group of"
           " 16 members; large = 4 pairs of 64 KiB payloads, window 8; broadcast = 1 publisher -> 5,000 subscribers at 20 msg/s"
           " (100,000 deliveries/s). Flat-out QoS 0 can overload a broker: \"lost\" there is its overflow policy at work.")
print("\n".join(out))
PY
cat "$WORK/report.md"
cp "$WORK/report.md" "$OUT"
[ -n "$RUNS_COPY" ] && cp "$RUNS" "$RUNS_COPY"
echo "written: $OUT" >&2
