"""A graceful stop (SIGTERM) first takes what clients had already sent: the bytes in a
connection's receive queue when the stop begins are read and acted on before the connection
closes with 0x8B, even when the broker is busy with other clients at that moment.

Runs against brokerd only (it restarts the broker itself)."""

import threading
import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO
from test_durability_crash import brokerd  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="restarts brokerd on its data dir")

SENDERS = 40


class Flood:
    """Publishers streaming QoS 0 to a reading subscriber: keeps the broker's workers busy so
    the stop's wake-up and the last clients' bytes reach a worker in the same loop turn."""

    def __init__(self, broker, publishers=4):
        self.stopping = threading.Event()
        self.sub = m.Client(broker.port, version=m.V311, timeout=5)
        self.sub.connect("flood-sub")
        self.sub.subscribe("flood/#", 0)
        self.pubs = []
        for k in range(publishers):
            c = m.Client(broker.port, version=m.V311, timeout=5)
            c.connect("flood-pub-%d" % k)
            self.pubs.append(c)
        self.threads = [threading.Thread(target=self._publish, args=(c, k), daemon=True)
                        for k, c in enumerate(self.pubs)]
        self.threads.append(threading.Thread(target=self._read, daemon=True))
        for t in self.threads:
            t.start()
        time.sleep(0.3)

    def _publish(self, client, k):
        burst = m.publish("flood/%d" % k, b"y" * 100, qos=0) * 100
        deadline = time.monotonic() + 30  # bounded even if the test forgets to stop it
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                client.sock.sendall(burst)
        except OSError:
            pass  # the broker closed it: the stop

    def _read(self):
        try:
            while not self.stopping.is_set() and self.sub.sock.recv(1 << 20):
                pass
        except OSError:
            pass

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(5)


def test_messages_sent_just_before_a_graceful_stop_are_not_lost(brokerd):  # noqa: F811
    senders = []
    for i in range(SENDERS):
        c = m.Client(brokerd.port, version=m.V311, timeout=5)
        c.connect("stop-sender-%d" % i)
        senders.append(c)
    flood = Flood(brokerd)
    for i, c in enumerate(senders):
        c.sock.sendall(m.publish("stop/%d" % i, b"kept", qos=0, retain=True))
    assert brokerd.stop() == 0  # every PUBLISH above is in the broker's receive queues
    flood.stop()
    brokerd.start()

    reader = m.Client(brokerd.port, version=m.V311, timeout=5)
    reader.connect("stop-reader")
    reader.subscribe("stop/#", 0)
    topics = {reader.expect(m.PUBLISH).topic for _ in range(SENDERS)}
    assert topics == {"stop/%d" % i for i in range(SENDERS)}


def test_qos2_flows_completed_just_before_a_graceful_stop_do_not_resume(brokerd):  # noqa: F811
    keep = {m.SESSION_EXPIRY_INTERVAL: 300}
    cars = []
    for i in range(SENDERS):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        c.connect("stop-car-%d" % i, clean=False, props=keep)
        c.subscribe("stop-cmd/%d" % i, qos=2)
        cars.append(c)
    platform = m.Client(brokerd.port, version=m.V5, timeout=5)
    platform.connect("stop-platform")
    for i in range(SENDERS):
        platform.publish("stop-cmd/%d" % i, b"cmd", qos=2)
    pubrels = []
    for c in cars:
        pkt = c.expect(m.PUBLISH)
        c.send(m.pubrec(pkt.pid, version=m.V5))
        pubrels.append(c.expect(m.PUBREL).pid)
    flood = Flood(brokerd)
    for c, pid in zip(cars, pubrels):
        c.sock.sendall(m.pubcomp(pid, version=m.V5))  # the flow is complete
    assert brokerd.stop() == 0
    flood.stop()
    brokerd.start()

    cars = []
    for i in range(SENDERS):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        ack = c.connect("stop-car-%d" % i, clean=False, props=keep)
        assert ack.session_present
        cars.append(c)
    time.sleep(0.5)  # a resumed flow's PUBREL has arrived by now
    for c in cars:
        c.expect_nothing(timeout=0.01)


@pytest.mark.parametrize("durability", ["memory", "durable"])
def test_a_graceful_stop_publishes_wills_to_every_client_still_connected(brokerd, durability):  # noqa: F811
    # The stop closes the vehicles' connections, so their wills go out [MQTT-3.1.2-8], and a
    # back office still connected, on either worker, connected before or after them, gets
    # every one before its own DISCONNECT.
    brokerd.stop()
    brokerd.env["BROKER_DURABILITY"] = durability
    brokerd.env["BROKER_PERSISTED_FILTERS"] = ""  # a message log would open a store
    brokerd.start()

    def watcher(name):
        w = m.Client(brokerd.port, version=m.V5, timeout=5)
        w.connect(name)
        w.subscribe("gone/#", 0)
        return w

    first = watcher("stop-watcher-first")
    keep = {m.SESSION_EXPIRY_INTERVAL: 600}
    cars = []
    for i in range(8):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        c.connect("stop-will-%d" % i, will={"topic": "gone/%d" % i, "payload": b"offline"})
        cars.append(c)
    for name in ("delayed", "dropped"):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        c.connect("stop-will-" + name, props=keep,
                  will={"topic": "gone/" + name, "payload": b"late",
                        "props": {m.WILL_DELAY_INTERVAL: 30}})
        cars.append(c)
    cars[-1].abort()  # "dropped" waits for its will delay
    last = watcher("stop-watcher-last")
    assert brokerd.stop() == 0

    expected = {"gone/%d" % i for i in range(8)}
    if durability == "memory":  # no store, nothing outlives the process: delayed wills go out
        expected |= {"gone/delayed", "gone/dropped"}
    for w in (first, last):
        got = w.expect_closed(5)
        assert {p.topic for p in got if p.type == m.PUBLISH} == expected, got
        assert got[-1].type == m.DISCONNECT and got[-1].rc == m.RC_SERVER_SHUTTING_DOWN, got
