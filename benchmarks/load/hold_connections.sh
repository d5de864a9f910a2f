#!/usr/bin/env bash
# Holds 18,000 idle MQTT connections on one brokerd for 30 s and checks it survives them.
#   hold_connections.sh [BROKERD [MQTT_LOAD]]     (or env BROKERD, MQTT_LOAD; MQTT_LOAD defaults
#                                                  to mqtt_load in brokerd's build tree)
# Env: CLIENTS (18000), PROCS (2), HOLD (30), SOURCES (127.0.0.2-127.0.0.9), KEEPALIVE (10),
#      CONNECT_RATE (0 = flat out), PROTOCOL (4).
# Two generator processes of 9,000 clients each (one process must stay under 20,000 fds), each
# client bound round-robin to 127.0.0.2..9 so no (source, destination) pair runs out of ports.
# Passes when every client connected and stayed connected (answered a final PINGREQ), brokerd is
# alive and serves a fresh mosquitto_pub/mosquitto_sub round trip, and exits 0 on SIGTERM.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BROKERD=${1:-${BROKERD:-}}
MQTT_LOAD=${2:-${MQTT_LOAD:-}}
# Same build tree as brokerd by default: <build>/server/brokerd -> <build>/benchmarks/mqtt_load.
[ -z "$MQTT_LOAD" ] && [ -n "$BROKERD" ] && MQTT_LOAD="$(dirname "$BROKERD")/../benchmarks/mqtt_load"
if [ -z "$BROKERD" ] || [ -z "$MQTT_LOAD" ]; then
  echo "usage: $0 BROKERD MQTT_LOAD   (or env BROKERD, MQTT_LOAD)" >&2
  exit 2
fi
CLIENTS=${CLIENTS:-18000}
PROCS=${PROCS:-2}
HOLD=${HOLD:-30}
SOURCES=${SOURCES:-127.0.0.2-127.0.0.9}
KEEPALIVE=${KEEPALIVE:-10}
CONNECT_RATE=${CONNECT_RATE:-0}
PROTOCOL=${PROTOCOL:-4}

ulimit -n 20000 || { echo "cannot raise the open file limit to 20000" >&2; exit 1; }
work=$(mktemp -d /tmp/mqtt-hold.XXXXXX)
gens=()
cleanup() {
  local g
  for g in "${gens[@]}"; do kill "$g" 2>/dev/null; done
  stop_broker
}
trap cleanup EXIT

start_brokerd "$BROKERD" "$work/data" "$work/brokerd.log" || exit 1
sleep 0.5
base_rss=$(status_kb "$BROKER_PID" VmRSS)
echo "brokerd pid $BROKER_PID port $BROKER_PORT, RSS before clients: ${base_rss} kB" >&2

per=$((CLIENTS / PROCS))
for p in $(seq 0 $((PROCS - 1))); do
  n=$per
  [ "$p" -eq $((PROCS - 1)) ] && n=$((CLIENTS - per * (PROCS - 1)))
  "$MQTT_LOAD" --scenario idle --port "$BROKER_PORT" --clients "$n" --id-offset $((p * per)) \
    --prefix "hold$p" --source-addrs "$SOURCES" --duration "$HOLD" --keepalive "$KEEPALIVE" \
    --connect-rate "$CONNECT_RATE" --protocol "$PROTOCOL" --drain 15 \
    >"$work/gen$p.json" 2>"$work/gen$p.err" &
  gens+=($!)
done

# Sample brokerd while the generators run: peak fds (= connections held at once) and RSS.
peak_fds=0
peak_rss=0
rss_at_peak=0
alive_during=yes
running=1
while [ $running -eq 1 ]; do
  running=0
  for g in "${gens[@]}"; do kill -0 "$g" 2>/dev/null && running=1; done
  if ! kill -0 "$BROKER_PID" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat")" = Z ]; then
    alive_during=no
  else
    fds=$(fd_count "$BROKER_PID")
    rss=$(status_kb "$BROKER_PID" VmRSS)
    [ -n "$rss" ] && [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
    if [ "$fds" -gt "$peak_fds" ]; then
      peak_fds=$fds
      rss_at_peak=$rss
    fi
  fi
  sleep 1
done
for g in "${gens[@]}"; do wait "$g"; done
gens=()

alive_after=no
kill -0 "$BROKER_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat")" != Z ] && alive_after=yes
round_trip_ok=no
[ $alive_after = yes ] && round_trip "$BROKER_PORT" && round_trip_ok=yes
hwm=$(status_kb "$BROKER_PID" VmHWM)
stop_broker

# Sum the generators' results.
jq -s --argjson base "${base_rss:-0}" --argjson peak "$peak_rss" --argjson at_peak "${rss_at_peak:-0}" \
  --argjson fds "$peak_fds" --argjson hwm "${hwm:-0}" --arg alive_during "$alive_during" \
  --arg alive_after "$alive_after" --arg rt "$round_trip_ok" --argjson exit "${BROKER_EXIT:-255}" '
  (map(.connect_ok) | add) as $ok |
  {
    clients: (map(.clients) | add),
    connect_ok: $ok,
    connect_failed: (map(.connect_failed) | add),
    connect_seconds: (map(.connect_seconds) | max),
    connect_rate: (if (map(.connect_seconds) | max) > 0 then $ok / (map(.connect_seconds) | max) else 0 end),
    connect_p99_ms: (map(.connect_p99_ms) | max),
    dropped: (map(.dropped) | add),
    final_ping_ok: (map(.final_ping_ok) | add),
    all_connected: (map(.all_alive) | all),
    brokerd_peak_fds: $fds,
    brokerd_rss_before_kb: $base,
    brokerd_rss_peak_kb: $peak,
    brokerd_vmhwm_kb: $hwm,
    rss_per_conn_kb: (if $ok > 0 then (($peak - $base) / $ok * 100 | round) / 100 else 0 end),
    rss_per_conn_total_kb: (if $ok > 0 then ($peak / $ok * 100 | round) / 100 else 0 end),
    alive_during: ($alive_during == "yes"),
    alive_after: ($alive_after == "yes"),
    round_trip_ok: ($rt == "yes"),
    brokerd_exit: $exit,
    gen_cpu_s: (map(.gen_cpu_s) | add),
    errors: (map(.errors) | add)
  } | . + {pass: (.all_connected and .alive_during and .alive_after and .round_trip_ok and .brokerd_exit == 0)}
' "$work"/gen*.json >"$work/summary.json" || { cat "$work"/gen*.json "$work"/gen*.err >&2; exit 1; }
cat "$work/summary.json"
if ! jq -e .pass "$work/summary.json" >/dev/null; then
  echo "FAIL; generator output:" >&2
  cat "$work"/gen*.json "$work"/gen*.err >&2
  echo "brokerd log (tail):" >&2
  tail -n 30 "$work/brokerd.log" >&2
  exit 1
fi
rm -rf "$work"
