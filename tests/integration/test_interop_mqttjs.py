"""Interop with MQTT.js, the Node.js client (version pinned in mqttjs/package.json), MQTT 3.1.1
and 5.0: every scenario of mqttjs/interop.mjs, each against a fresh broker.

MQTT.js is installed by scripts/install-deps.sh (npm ci in mqttjs/)."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mqttjs", "interop.mjs")
NODE = shutil.which("node")
INSTALLED = os.path.isfile(
    os.path.join(HERE, "mqttjs", "node_modules", "mqtt", "package.json"))
MISSING = "MQTT.js is not installed: run scripts/install-deps.sh"

# Where Debian's mosquitto 2.0.11 (the reference run) differs from what brokerd does.
MOSQUITTO_DEVIATES = {
    (5, "takeover"): "closes a taken-over 5.0 connection without DISCONNECT 0x8E "
                     "[MQTT-3.1.4-3]",
    (5, "topic_alias_both_ways"): "sends no topic aliases to clients (optional in 5.0; "
                                  "brokerd uses them)",
}


def _scenarios():
    if not NODE or not INSTALLED:
        return [pytest.param(None, None, id="mqttjs-missing")]
    params = []
    for version in (4, 5):
        names = subprocess.run([NODE, SCRIPT, "--list", str(version)],
                               check=True, capture_output=True, text=True,
                               timeout=30).stdout.split()
        for name in names:
            marks = []
            reason = MOSQUITTO_DEVIATES.get((version, name))
            if reason:
                marks.append(pytest.mark.deviates_mosquitto(reason))
            vid = "v5" if version == 5 else "v311"
            params.append(pytest.param(version, name, marks=marks,
                                       id="%s-%s" % (vid, name)))
    return params


@pytest.mark.parametrize("version,scenario", _scenarios())
def test_mqttjs(broker, version, scenario):
    if version is None:
        pytest.fail(MISSING)
    run = subprocess.run([NODE, SCRIPT, str(broker.port), str(version), scenario],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr or run.stdout
