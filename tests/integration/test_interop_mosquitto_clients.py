"""Interop with mosquitto_pub / mosquitto_sub (2.0.x), MQTT 3.1.1 and 5.0."""

import shutil
import subprocess
import threading

import pytest

import mqtt_raw as m

PUB = shutil.which("mosquitto_pub")
SUB = shutil.which("mosquitto_sub")
pytestmark = pytest.mark.skipif(not (PUB and SUB),
                                reason="mosquitto clients not installed")
VERSIONS = pytest.mark.parametrize("ver", ["mqttv311", "mqttv5"])
TIMEOUT = 10
# Line-buffered stdout, so the SUBACK debug line is seen as it happens.
STDBUF = [shutil.which("stdbuf"), "-oL"] if shutil.which("stdbuf") else []


def run_pub(broker, ver, topic, msg, qos=0, retain=False, extra=()):
    cmd = [PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-V", ver,
           "-t", topic, "-q", str(qos)] + list(extra)
    cmd += ["-m", msg] if msg else ["-n"]
    if retain:
        cmd.append("-r")
    subprocess.run(cmd, check=True, timeout=TIMEOUT,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class Sub:
    """mosquitto_sub with -d: its debug lines tell when SUBACK arrived."""

    def __init__(self, broker, ver, topic, count, qos, extra):
        cmd = STDBUF + [SUB, "-h", "127.0.0.1", "-p", str(broker.port), "-V", ver,
               "-t", topic, "-q", str(qos), "-C", str(count), "-W", "8",
               "-d"] + list(extra)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.subscribed = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if "received SUBACK" in line:
                self.subscribed.set()

    def wait_subscribed(self):
        assert self.subscribed.wait(TIMEOUT), "mosquitto_sub got no SUBACK"

    def finish(self):
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("mosquitto_sub did not finish: %r" % self.lines)
        self.reader.join(2)
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, (self.lines, err)
        return [l for l in self.lines if not l.startswith("Client ")
                and not l.startswith("Subscribed (")]


def start_sub(broker, ver, topic, count, qos=0, extra=()):
    return Sub(broker, ver, topic, count, qos, extra)


def wait_subscribed(sub):
    sub.wait_subscribed()


def finish(sub):
    return sub.finish()


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_sub_each_qos(broker, ver, qos):
    sub = start_sub(broker, ver, "cli/t", 3, qos)
    wait_subscribed(sub)
    for i in range(3):
        run_pub(broker, ver, "cli/t", "m%d" % i, qos)
    assert finish(sub) == ["m0", "m1", "m2"]


@VERSIONS
def test_retained(broker, ver):
    run_pub(broker, ver, "cli/r", "kept", 1, retain=True)
    sub = start_sub(broker, ver, "cli/#", 1, 1, extra=["-v"])
    assert finish(sub) == ["cli/r kept"]


@VERSIONS
def test_clear_retained(broker, ver):
    run_pub(broker, ver, "cli/r", "kept", 1, retain=True)
    run_pub(broker, ver, "cli/r", "", 1, retain=True)
    run_pub(broker, ver, "cli/other", "x", 1, retain=True)
    sub = start_sub(broker, ver, "cli/#", 1, 1, extra=["-v"])
    assert finish(sub) == ["cli/other x"]


def test_v5_user_property_from_cli_to_raw_client(broker):
    c = m.Client(broker.port, m.V5)
    try:
        c.connect("raw")
        c.subscribe("cli/p", 1)
        run_pub(broker, "mqttv5", "cli/p", "x", 1,
                extra=["-D", "publish", "user-property", "k", "v",
                       "-D", "publish", "content-type", "text/plain"])
        p = c.receive(1)[0]
        assert p.prop(m.USER_PROPERTY) == [("k", "v")]
        assert p.prop(m.CONTENT_TYPE) == "text/plain"
    finally:
        c.close()


def test_v311_publisher_v5_subscriber(broker):
    sub = start_sub(broker, "mqttv5", "cli/mix", 1, 2)
    wait_subscribed(sub)
    run_pub(broker, "mqttv311", "cli/mix", "hello", 2)
    assert finish(sub) == ["hello"]


def test_persistent_session_with_mosquitto_sub(broker):
    args = ["-i", "cli-persist", "-c"]
    first = start_sub(broker, "mqttv311", "cli/q", 1, 1, extra=args)
    wait_subscribed(first)
    run_pub(broker, "mqttv311", "cli/q", "live", 1)
    assert finish(first) == ["live"]
    run_pub(broker, "mqttv311", "cli/q", "queued", 1)
    again = start_sub(broker, "mqttv311", "cli/q", 1, 1, extra=args)
    assert finish(again) == ["queued"]
