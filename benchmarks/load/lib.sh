# shellcheck shell=bash disable=SC2034
# Shared helpers for the load scripts (sourced, not run). Brokers are started in their own
# session (setsid) so that only they get our signals, and are stopped by pid.

# start_brokerd BROKERD DATA_DIR LOG: starts brokerd on a free port; sets BROKER_PID, BROKER_PORT.
start_brokerd() {
  local bin=$1 dir=$2 log=$3
  rm -rf "$dir"
  mkdir -p "$dir"
  # A stale log would hand us the previous broker's port before the new one truncates it.
  rm -f "$log"
  setsid "$bin" --listen 127.0.0.1:0 --data-dir "$dir" --workers "${BROKER_WORKERS:-0}" \
    --log-level info >"$log" 2>&1 </dev/null &
  BROKER_PID=$!
  BROKER_PORT=""
  local i
  for i in $(seq 1 100); do
    BROKER_PORT=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -n 1 | sed 's/.*://')
    [ -n "$BROKER_PORT" ] && return 0
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "brokerd did not start; log:" >&2
  cat "$log" >&2
  return 1
}

# workers_text: what --workers ${BROKER_WORKERS:-0} means on this machine, for reports.
workers_text() {
  local n=${BROKER_WORKERS:-0} cores
  cores=$(nproc)
  if [ "$n" = 0 ]; then
    echo "automatic: $((cores > 2 ? cores - 1 : 1)) of $cores cores"
  else
    echo "$n workers on $cores cores"
  fi
}

# free_port: a port nothing listens on right now (for mosquitto, which cannot pick one).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_mosquitto DIR LOG: Debian's mosquitto with limits like brokerd's defaults.
start_mosquitto() {
  local dir=$1 log=$2
  rm -rf "$dir" "$log"
  mkdir -p "$dir"
  BROKER_PORT=$(free_port)
  cat >"$dir/mosquitto.conf" <<CONF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 1000
max_queued_bytes 8388608
max_inflight_messages 64
max_keepalive 65535
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
CONF
  setsid mosquitto -c "$dir/mosquitto.conf" >"$log" 2>&1 </dev/null &
  BROKER_PID=$!
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "mosquitto did not start; log:" >&2
  cat "$log" >&2
  return 1
}

# stop_broker: SIGTERM, wait up to 20 s (then SIGKILL); sets BROKER_EXIT.
stop_broker() {
  BROKER_EXIT=""
  [ -n "${BROKER_PID:-}" ] || return 0
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null
    local i
    for i in $(seq 1 200); do
      kill -0 "$BROKER_PID" 2>/dev/null || break
      # a zombie has exited already
      [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat" 2>/dev/null)" = "Z" ] && break
      sleep 0.1
    done
    if kill -0 "$BROKER_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat" 2>/dev/null)" != "Z" ]; then
      echo "broker $BROKER_PID ignored SIGTERM for 20 s; SIGKILL" >&2
      kill -KILL "$BROKER_PID" 2>/dev/null
    fi
  fi
  wait "$BROKER_PID" 2>/dev/null
  BROKER_EXIT=$?
  BROKER_PID=""
}

# cpu_ticks PID: utime+stime in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 may hold spaces, so count from after its closing parenthesis).
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}
CLK_TCK=$(getconf CLK_TCK)

# status_kb PID FIELD: a kB value from /proc/PID/status (VmRSS, VmHWM).
status_kb() {
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null
}

# fd_count PID
fd_count() {
  ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# round_trip PORT: a fresh mosquitto_sub/mosquitto_pub exchange; 0 when the message came back.
round_trip() {
  local port=$1 topic="rt/$$/$RANDOM" out
  out=$(mktemp)
  timeout 10 mosquitto_sub -h 127.0.0.1 -p "$port" -t "$topic" -C 1 -W 8 >"$out" 2>&1 &
  local sub=$!
  sleep 0.5
  timeout 5 mosquitto_pub -h 127.0.0.1 -p "$port" -t "$topic" -m hello -q 1
  wait "$sub"
  local rc=$?
  local got
  got=$(cat "$out")
  rm -f "$out"
  [ $rc -eq 0 ] && [ "$got" = "hello" ]
}
