"""Listener addresses: an IPv4 and an IPv6 wildcard listener on one port start together (the
IPv6 one leaves IPv4 to the other), as operators add IPv6 to the default 0.0.0.0:1883.

Wildcard addresses are bound only inside a network namespace the test creates (unshare -n),
so nothing is exposed beyond it. Runs against brokerd only."""

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import IS_MOSQUITTO

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="starts brokerd itself")


def private_netns_available():
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not private_netns_available(), reason="needs unshare -n (root)")
@pytest.mark.parametrize("listeners", [["0.0.0.0:18830", "[::]:18830"],
                                       ["[::]:18830", "127.0.0.1:18830"]])
def test_ipv4_and_ipv6_wildcards_share_a_port(listeners):
    with tempfile.TemporaryDirectory(prefix="brokerd-listen-") as tmp:
        cmd = ["unshare", "-n", os.environ["BROKERD"], "--data-dir", os.path.join(tmp, "data"),
               "--workers", "2"]
        for listener in listeners:
            cmd += ["--listen", listener]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            for line in proc.stderr:  # ends when brokerd exits
                lines.append(line)
                if "running; MQTT on port(s)" in line:
                    break
            assert proc.poll() is None, "brokerd exited %s:\n%s" % (proc.returncode, "".join(lines))
            assert any("listening on [::]:18830" in line for line in lines), lines
        finally:
            proc.terminate()
            proc.wait(10)
        assert proc.returncode == 0
