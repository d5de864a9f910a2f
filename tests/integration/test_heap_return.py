"""brokerd gives back the memory large messages took once they are delivered
(server/heap_trimmer.hpp): a file push to vehicles that were offline must not leave the broker
hundreds of MB larger for good."""

import os
import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO
from test_durability_crash import brokerd  # noqa: F401 (fixture: queue limits raised)

pytestmark = [
    pytest.mark.skipif(IS_MOSQUITTO, reason="brokerd's own heap policy"),
    # AddressSanitizer keeps freed memory in its quarantine and has its own allocator.
    pytest.mark.skipif("ASAN_OPTIONS" in os.environ, reason="ASan's allocator"),
]

FILE = os.urandom(3_000_000)
KEEP = {m.SESSION_EXPIRY_INTERVAL: 600}


def _rss_anon_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _client(broker, client_id, **kw):
    c = m.Client(broker.port, version=m.V5, timeout=20)
    c.connect(client_id, **kw)
    return c


def test_memory_of_delivered_files_goes_back_to_the_system(brokerd):  # noqa: F811
    baseline = _rss_anon_mib(brokerd.proc.pid)
    for i in range(4):  # vehicles that are offline while the files come
        car = _client(brokerd, "heap-car-%d" % i, clean=False, props=KEEP)
        car.subscribe("files/#", qos=1)
        car.disconnect()
    platform = _client(brokerd, "heap-platform")
    for i in range(40):  # 120 MB queued, once for all four
        platform.publish("files/%d" % i, FILE, qos=1)
    platform.disconnect()
    for i in range(4):
        car = _client(brokerd, "heap-car-%d" % i, clean=False, props=KEEP)
        got = car.receive(40, timeout=60)
        assert all(p.payload == FILE for p in got)
        car.disconnect()
    peak = _rss_anon_mib(brokerd.proc.pid)
    deadline = time.monotonic() + 45  # one trim interval (30 s) and then some
    while time.monotonic() < deadline and _rss_anon_mib(brokerd.proc.pid) > baseline + 32:
        time.sleep(1)
    after = _rss_anon_mib(brokerd.proc.pid)
    assert after <= baseline + 32, "RssAnon %.0f MiB at start, %.0f after the push, %.0f 45 s later" % (
        baseline, peak, after)
