"""brokerd as a daemon: signals other than SIGINT/SIGTERM do not kill it, and a stop is clean
however its standard streams were set up.

Runs against brokerd only (it starts the process itself)."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO, _free_port
from test_durability_crash import brokerd  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="starts brokerd itself")


def round_trip(port):
    sub = m.Client(port, version=m.V5, timeout=5)
    sub.connect("signals-sub")
    sub.subscribe("signals/t", 1)
    pub = m.Client(port, version=m.V5, timeout=5)
    pub.connect("signals-pub")
    pub.publish("signals/t", b"alive", qos=1)
    assert sub.expect_publish(payload=b"alive")
    for c in (sub, pub):
        c.disconnect()


@pytest.mark.parametrize("signo", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_hup_and_usr_signals_leave_the_broker_running(brokerd, signo):  # noqa: F811
    brokerd.proc.send_signal(signo)
    time.sleep(0.3)
    assert brokerd.proc.poll() is None, "brokerd died of signal %d" % signo
    round_trip(brokerd.port)
    assert brokerd.stop() == 0


@pytest.mark.parametrize("closed", [(0,), (1,), (2,), (0, 1, 2)])
def test_stop_is_clean_when_standard_streams_are_closed(closed):
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="brokerd-stdio-") as tmp:
        proc = subprocess.Popen(
            [os.environ["BROKERD"], "--listen", "127.0.0.1:%d" % port, "--data-dir",
             os.path.join(tmp, "data"), "--workers", "2"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: [os.close(fd) for fd in closed])
        try:
            deadline = time.monotonic() + 10
            while True:
                assert proc.poll() is None, "brokerd exited with %s" % proc.returncode
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "brokerd did not listen"
                    time.sleep(0.05)
            round_trip(port)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
