"""Starts the broker under test for each test and stops it afterwards.

BROKER_UNDER_TEST=brokerd (default): runs $BROKERD on an ephemeral port and
learns the port from its "listening on 127.0.0.1:<port>" log line. Stopping
sends SIGTERM and requires exit code 0 within 10 s.

BROKER_UNDER_TEST=mosquitto: runs Debian's mosquitto as a reference broker,
so the suite itself can be validated. Tests marked
@pytest.mark.deviates_mosquitto("reason") are skipped in that mode only.
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import mqtt_raw

BROKER_KIND = os.environ.get("BROKER_UNDER_TEST", "brokerd")
IS_MOSQUITTO = BROKER_KIND == "mosquitto"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deviates_mosquitto(reason): skipped when the broker under "
        "test is mosquitto, which deviates from the spec or from a choice "
        "brokerd makes; the reason names the spec id")


def pytest_collection_modifyitems(config, items):
    if not IS_MOSQUITTO:
        return
    for item in items:
        mark = item.get_closest_marker("deviates_mosquitto")
        if mark is not None:
            reason = mark.args[0] if mark.args else "mosquitto deviates"
            item.add_marker(pytest.mark.skip(reason="mosquitto: " + reason))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A running broker process: .port, .kind, .log(), .stop()."""

    def __init__(self, tmpdir):
        self.kind = BROKER_KIND
        self.is_mosquitto = IS_MOSQUITTO
        self.tmpdir = tmpdir
        self.proc = None
        self.port = None
        self.lines = []
        self.exit_code = None
        self._reader = None

    # -- start

    def start(self):
        if self.is_mosquitto:
            self._start_mosquitto()
        else:
            self._start_brokerd()

    def _start_brokerd(self):
        binary = os.environ.get("BROKERD")
        if not binary:
            pytest.fail("BROKERD is not set (path to the brokerd binary); "
                        "set BROKER_UNDER_TEST=mosquitto to run against "
                        "mosquitto instead")
        data_dir = os.path.join(self.tmpdir, "data")
        os.makedirs(data_dir, exist_ok=True)
        cmd = [binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
               "--workers", "2", "--log-level", "info"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        found = threading.Event()

        def read():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                match = LISTEN_RE.search(line)
                if match and self.port is None:
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        found.wait(START_TIMEOUT)
        if self.port is None:
            self._kill()
            pytest.fail("brokerd did not log 'listening on 127.0.0.1:<port>' "
                        "within %.0fs; log:\n%s" % (START_TIMEOUT, self.log()))

    def _start_mosquitto(self):
        self.port = _free_port()
        conf = os.path.join(self.tmpdir, "mosquitto.conf")
        logfile = os.path.join(self.tmpdir, "mosquitto.log")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            f.write("allow_anonymous true\n")
            f.write("persistence false\n")
            f.write("log_dest file %s\n" % logfile)
            f.write("log_type all\n")
        self.logfile = logfile
        self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("mosquitto exited with %s" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self._kill()
        pytest.fail("mosquitto did not listen on port %d" % self.port)

    # -- stop

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self):
        """SIGTERM; returns the exit code, or None if it had to be killed."""
        if self.exit_code is not None or self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            self.exit_code = None
        if self._reader:
            self._reader.join(2)
        return self.exit_code

    def log(self):
        if self.is_mosquitto:
            try:
                with open(self.logfile) as f:
                    return f.read()
            except OSError:
                return ""
        return "\n".join(self.lines)


@pytest.fixture
def broker():
    with tempfile.TemporaryDirectory(prefix="brokerd-it-") as tmpdir:
        b = Broker(tmpdir)
        b.start()
        try:
            yield b
        finally:
            already = b.exit_code is not None
            code = b.stop()
            if not already:
                assert code is not None, (
                    "%s did not exit within %.0fs of SIGTERM (killed)\n%s"
                    % (b.kind, STOP_TIMEOUT, b.log()[-4000:]))
                assert code == 0, "%s exited with %r after SIGTERM\n%s" % (
                    b.kind, code, b.log()[-4000:])


@pytest.fixture
def mqtt(broker):
    """Factory: mqtt(version=5) -> an unconnected raw Client; closed at the
    end of the test."""
    clients = []

    def make(version=mqtt_raw.V5, timeout=mqtt_raw.DEFAULT_TIMEOUT):
        c = mqtt_raw.Client(broker.port, version=version, timeout=timeout)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def connected(mqtt):
    """Factory: connected(client_id, version=5, **connect_kw) -> Client
    that has received a successful CONNACK."""

    def make(client_id, version=mqtt_raw.V5, **kw):
        c = mqtt(version)
        c.connect(client_id, **kw)
        return c

    return make
