#!/usr/bin/env bash
# CI smoke for the load generator: brokerd on a free port, ~3 s of p2p QoS 1 with 200 clients
# (100 publishers -> 100 subscribers). Fails when the tool fails, anything is lost, duplicated
# or refused, or brokerd does not stop cleanly. No timing assertions.
# Usage: smoke.sh BROKERD MQTT_LOAD
set -u
BROKERD=${1:?brokerd path}
LOAD=${2:?mqtt_load path}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

work=$(mktemp -d /tmp/mqtt-load-smoke.XXXXXX)
trap 'stop_broker; rm -rf "$work"' EXIT
start_brokerd "$BROKERD" "$work/data" "$work/brokerd.log" || exit 1

result=$(timeout 60 "$LOAD" --scenario p2p --port "$BROKER_PORT" --clients 100 --qos 1 \
  --window 16 --duration 3 --drain 10 --strict)
rc=$?
echo "$result"
alive=yes
kill -0 "$BROKER_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$BROKER_PID/stat")" != Z ] || alive=no
stop_broker
status=0
if [ $rc -ne 0 ]; then
  echo "FAIL: mqtt_load exit status $rc" >&2
  status=1
fi
if [ "$alive" != yes ]; then
  echo "FAIL: brokerd died during the run; log:" >&2
  status=1
elif [ "$BROKER_EXIT" != 0 ]; then
  echo "FAIL: brokerd exit status $BROKER_EXIT after SIGTERM" >&2
  status=1
fi
[ $status -eq 0 ] || tail -n 20 "$work/brokerd.log" >&2
exit $status
