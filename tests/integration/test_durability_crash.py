"""Nothing acknowledged is lost: brokerd is killed with SIGKILL at random points while a
publisher sends QoS 1 messages to an offline persistent session, then restarted on the same
data dir; at the end the vehicle receives every message the broker acknowledged.

Runs against brokerd only (it restarts the broker itself)."""

import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="restarts brokerd on its data dir")

LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class Brokerd:
    """brokerd on a fixed data dir, started and killed at will."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.port = None
        self.log = []
        self.env = {}  # more settings, BROKER_* names

    def start(self):
        self.port = None
        # Queues large enough that the overflow policy never drops: every loss would be a
        # durability failure.
        env = dict(os.environ, BROKER_PERSISTED_FILTERS="vehicle/+/telemetry/#",
                   BROKER_LIMITS_MAX_QUEUED_MESSAGES="1000000",
                   BROKER_LIMITS_MAX_QUEUED_BYTES="1073741824")
        env.update(self.env)
        self.proc = subprocess.Popen(
            [os.environ["BROKERD"], "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             "--workers", "2", "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        found = threading.Event()

        def read(proc):
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                match = LISTEN_RE.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        threading.Thread(target=read, args=(self.proc,), daemon=True).start()
        assert found.wait(10) and self.port, "brokerd did not start:\n" + "\n".join(self.log[-30:])

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


@pytest.fixture
def brokerd():
    with tempfile.TemporaryDirectory(prefix="brokerd-crash-") as tmp:
        b = Brokerd(os.path.join(tmp, "data"))
        b.start()
        try:
            yield b
        finally:
            b.kill()


def publish_until_killed(broker, first_id, count, kill_after, topic, qos=1):
    """Publishes ids first_id.. while another thread kills the broker after kill_after seconds.
    Returns the ids the broker acknowledged."""
    acked = []
    killer = threading.Timer(kill_after, broker.kill)
    killer.start()
    try:
        c = m.Client(broker.port, version=m.V311, timeout=5)
        c.connect("platform-pub", version=m.V311, clean=True)
        for i in range(first_id, first_id + count):
            c.publish(topic, b"%d" % i, qos=qos)
            acked.append(i)
    except (m.MQTTTestError, OSError):
        pass  # the broker died under us: what was acknowledged is what counts
    finally:
        killer.cancel()
        killer.join()
        broker.kill()
    return acked


def connect_vehicle(broker, clean=False):
    c = m.Client(broker.port, version=m.V311, timeout=5)
    c.connect("car-crash", version=m.V311, clean=clean)
    return c


def test_acknowledged_qos1_messages_survive_sigkill(brokerd):
    rng = random.Random(20261126)
    car = connect_vehicle(brokerd, clean=True)
    car.close()
    car = connect_vehicle(brokerd)
    car.subscribe("vehicle/car-crash/cmd", 1)
    car.disconnect()

    # More ids than can be sent before the kill, so each kill lands mid-stream.
    acked = []
    next_id = 1
    for _ in range(4):
        got = publish_until_killed(brokerd, next_id, 1000000, rng.uniform(0.05, 0.6),
                                   "vehicle/car-crash/cmd")
        acked += got
        next_id += 1000000
        brokerd.start()
    assert acked, "no publish was acknowledged at all"

    car = connect_vehicle(brokerd)
    assert car.connack.session_present
    received = set()
    deadline = time.monotonic() + 30
    while not set(acked) <= received and time.monotonic() < deadline:
        try:
            pkt = car.recv(timeout=3)
        except Exception:
            break
        if pkt.type == m.PUBLISH:
            received.add(int(pkt.payload))
            car.ack(pkt)
    missing = sorted(set(acked) - received)
    assert not missing, "%d acknowledged messages lost, first %r" % (len(missing), missing[:10])
    car.disconnect()
    assert brokerd.stop() == 0


# A topic longer than a store key (511 bytes) is kept as well as a short one.
@pytest.mark.parametrize("topic", ["fleet/config", "fleet/config/" + "long" * 150])
def test_retained_message_survives_sigkill(brokerd, topic):
    acked = publish_until_killed_retained(brokerd, topic)
    brokerd.start()
    c = m.Client(brokerd.port, version=m.V311, timeout=5)
    c.connect("reader", version=m.V311)
    c.subscribe(topic, 1)
    pkt = c.expect(m.PUBLISH)
    assert pkt.retain and pkt.topic == topic
    assert int(pkt.payload) >= acked[-1]
    c.disconnect()
    assert brokerd.stop() == 0


def publish_until_killed_retained(broker, topic):
    acked = []
    killer = threading.Timer(0.3, broker.kill)
    killer.start()
    try:
        c = m.Client(broker.port, version=m.V311, timeout=5)
        c.connect("config-pub", version=m.V311)
        for i in range(1, 100000):
            c.publish(topic, b"%d" % i, qos=1, retain=True)
            acked.append(i)
    except (m.MQTTTestError, OSError):
        pass
    finally:
        killer.cancel()
        killer.join()
        broker.kill()
    assert acked
    return acked


def test_qos2_in_flight_completes_after_sigkill(brokerd):
    car = connect_vehicle(brokerd)
    car.subscribe("vehicle/car-crash/file", 2)
    pub = m.Client(brokerd.port, version=m.V311, timeout=5)
    pub.connect("file-pub", version=m.V311)
    pub.publish("vehicle/car-crash/file", b"chunk-1", qos=2)
    pkt = car.expect(m.PUBLISH)
    assert pkt.qos == 2
    car.send(m.pubrec(pkt.pid, version=m.V311))
    car.expect(m.PUBREL)
    brokerd.kill()  # before our PUBCOMP: the broker must resend PUBREL, not the message
    brokerd.start()
    car = connect_vehicle(brokerd)
    assert car.connack.session_present
    rel = car.expect(m.PUBREL)
    assert rel.pid == pkt.pid
    car.send(m.pubcomp(rel.pid, version=m.V311))
    car.expect_nothing(0.5)
    car.disconnect()
    assert brokerd.stop() == 0


# The log's promise holds whatever the topic's durability says about queues.
@pytest.mark.parametrize("settings", [{}, {"BROKER_DURABILITY": "async"},
                                      {"BROKER_DURABILITY_RULES": "vehicle/+/telemetry/#=memory"}],
                         ids=["durable", "async", "memory-rule"])
def test_acknowledged_telemetry_is_in_the_log_after_sigkill(brokerd, settings):
    """Reported data on a persisted filter is in the message log before its PUBACK."""
    brokerd.kill()
    brokerd.env = settings
    brokerd.start()
    rng = random.Random(7)
    acked = []
    next_id = 1
    for _ in range(4):
        acked += publish_until_killed(brokerd, next_id, 1000000, rng.uniform(0.05, 0.5),
                                      "vehicle/car-crash/telemetry/speed")
        next_id += 1000000
        brokerd.start()
    assert acked, "no publish was acknowledged at all"
    assert brokerd.stop() == 0
    dump = subprocess.run([os.environ["BROKER_LOG_DUMP"], brokerd.data_dir],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    logged = set()
    sequences = []
    for line in dump.stdout.splitlines():
        seq, topic, payload = line.split(" ", 2)
        assert topic == "vehicle/car-crash/telemetry/speed"
        logged.add(int(payload))
        sequences.append(int(seq))
    assert sequences == sorted(sequences)
    missing = sorted(set(acked) - logged)
    assert not missing, "%d acknowledged records missing from the log, first %r" % (
        len(missing), missing[:10])


FLEET = 600  # half MQTT 3.1.1, half 5.0


def fleet_vehicle(broker, i):
    """Vehicle i of the fleet: odd ones speak 5.0 with a session expiry, even ones 3.1.1."""
    version = m.V5 if i % 2 else m.V311
    c = m.Client(broker.port, version=version, timeout=10)
    props = {m.SESSION_EXPIRY_INTERVAL: 3600} if version == m.V5 else None
    c.connect("fleet-%04d" % i, version=version, clean=False, props=props)
    return c


def receive_pipelined(car, count):
    """Payloads of the next `count` PUBLISH packets, acknowledged as they come: the broker
    sends the next message while a QoS 2 flow is still open."""
    got, open_qos2 = [], set()
    while len(got) < count or open_qos2:
        pkt = car.recv(timeout=10)
        if pkt.type == m.PUBLISH:
            got.append(bytes(pkt.payload))
            if pkt.qos == 1:
                car.send(m.puback(pkt.pid, version=car.version))
            elif pkt.qos == 2:
                car.send(m.pubrec(pkt.pid, version=car.version))
                open_qos2.add(pkt.pid)
        elif pkt.type == m.PUBREL:
            car.send(m.pubcomp(pkt.pid, version=car.version))
            open_qos2.discard(pkt.pid)
        else:
            raise AssertionError("unexpected %r" % pkt)
    return got


def test_fleet_offline_queues_survive_sigkill_and_are_delivered_once(brokerd):
    """Platform pushes to a fleet of offline vehicles (a broadcast, one command each, two more
    broadcasts, one of them QoS 2), the broker is killed with SIGKILL, and every vehicle that
    reconnects gets exactly its four messages, in publish order; once acknowledged, none comes
    back after a restart."""
    for i in range(FLEET):
        car = fleet_vehicle(brokerd, i)  # a fresh data dir: no session yet
        car.subscribe([("fleet/all/config", 1 if car.version == m.V311 else m.sub_options(2)),
                       ("fleet/%04d/cmd" % i, 1 if car.version == m.V311 else m.sub_options(1))],
                      expect_codes=[1 if car.version == m.V311 else 2, 1])
        car.disconnect()

    platform = m.Client(brokerd.port, version=m.V5, timeout=10)
    platform.connect("fleet-platform")
    platform.publish("fleet/all/config", b"config-1", qos=1)
    # Pipelined, as a platform pushes, within the broker's Receive Maximum [MQTT-3.3.4-7]:
    # the PUBACKs come as group commits complete.
    window = min(100, platform.connack.props.get(m.RECEIVE_MAXIMUM, 65535))
    in_flight = set()
    for i in range(FLEET + window):
        if i < FLEET:
            in_flight.add(platform.publish("fleet/%04d/cmd" % i, b"cmd-%04d" % i, qos=1,
                                           wait=False))
        while in_flight and (len(in_flight) >= window or i >= FLEET):
            ack = platform.expect(m.PUBACK)
            assert ack.rc == 0, "PUBACK 0x%02x" % ack.rc
            in_flight.remove(ack.pid)
    platform.publish("fleet/all/config", b"config-2", qos=2)
    platform.publish("fleet/all/config", b"config-3", qos=1)
    brokerd.kill()  # every PUBACK/PUBCOMP above came after the commit
    brokerd.start()

    for i in range(FLEET):
        car = fleet_vehicle(brokerd, i)
        assert car.connack.session_present, "vehicle %d lost its session" % i
        got = receive_pipelined(car, 4)
        want = [b"config-1", b"cmd-%04d" % i, b"config-2", b"config-3"]
        assert got == want, "vehicle %d got %r" % (i, got)
        car.send(m.disconnect(version=car.version))
        car.expect_closed()  # the broker has taken the PUBCOMP before the stop below

    assert brokerd.stop() == 0
    brokerd.start()
    cars = [fleet_vehicle(brokerd, i) for i in range(FLEET)]
    time.sleep(0.5)  # anything redelivered on reconnect has arrived by now
    for i, car in enumerate(cars):
        assert car.connack.session_present, "vehicle %d lost its session" % i
        car.expect_nothing(timeout=0.01)
        car.disconnect()


def test_durable_rule_under_memory_overall_survives_sigkill(brokerd):
    # Telemetry in memory, commands durable: the rule must open the store and keep the session.
    brokerd.env = {"BROKER_DURABILITY": "memory", "BROKER_DURABILITY_RULES": "vehicle/+/cmd=durable"}
    brokerd.kill()
    brokerd.start()
    car = m.Client(brokerd.port, version=m.V311, timeout=5)
    car.connect("car-rule", version=m.V311, clean=False)
    car.subscribe("vehicle/car-rule/#", qos=1)
    car.close()
    platform = m.Client(brokerd.port, version=m.V311, timeout=5)
    platform.connect("platform-rule", version=m.V311, clean=True)
    for i in range(3):
        platform.publish("vehicle/car-rule/cmd", b"cmd%d" % i, qos=1)
    platform.publish("vehicle/car-rule/speed", b"in memory", qos=1)
    platform.close()
    brokerd.kill()
    brokerd.start()
    car = m.Client(brokerd.port, version=m.V311, timeout=5)
    assert car.connect("car-rule", version=m.V311, clean=False).session_present
    got = []
    for _ in range(3):
        p = car.expect(m.PUBLISH)
        got.append(p.payload)
        car.send(m.puback(p.pid, version=m.V311))
    assert got == [b"cmd0", b"cmd1", b"cmd2"]
    car.expect_nothing(timeout=1)


def test_subscriptions_acknowledged_just_before_sigkill_survive_it(brokerd):
    """A SUBACK to a persistent session comes after its record is on disk: a 5.0 vehicle told
    session_present does not subscribe again, so a lost subscription would silence it."""
    cars = []
    for i in range(40):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        c.connect("sub-kill-%02d" % i, clean=True, props={m.SESSION_EXPIRY_INTERVAL: 3600})
        c.subscribe("vehicle/sub-kill-%02d/cmd" % i, 1)
        cars.append(c)
    brokerd.kill()  # at once after the last SUBACK
    for c in cars:
        c.close()
    brokerd.start()
    pub = m.Client(brokerd.port, version=m.V5, timeout=5)
    pub.connect("sub-kill-pub")
    for i in range(40):
        c = m.Client(brokerd.port, version=m.V5, timeout=5)
        c.connect("sub-kill-%02d" % i, clean=False, props={m.SESSION_EXPIRY_INTERVAL: 3600})
        assert c.connack.session_present, "session %d lost" % i
        pub.publish("vehicle/sub-kill-%02d/cmd" % i, b"go", qos=1)
        assert c.expect_publish(payload=b"go"), "subscription %d lost" % i
        c.close()
    assert brokerd.stop() == 0


def test_second_broker_on_the_same_data_dir_refuses_to_start(brokerd):
    # Two brokers on one store would deliver the same queued messages twice.
    second = subprocess.run(
        [os.environ["BROKERD"], "--listen", "127.0.0.1:0", "--data-dir", brokerd.data_dir,
         "--workers", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=10)
    assert second.returncode == 1
    assert b"in use by another process (pid %d)" % brokerd.proc.pid in second.stderr
    c = m.Client(brokerd.port, version=m.V311, timeout=5)
    c.connect("still-served", version=m.V311)
    c.ping()
