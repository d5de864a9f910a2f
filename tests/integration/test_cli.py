"""brokerd's command line: --print-config checks a config as start would, and exits 2 with
the reason when start would refuse it.

Runs against brokerd only (it starts the process itself)."""

import json
import os
import subprocess
import tempfile

import pytest

from conftest import IS_MOSQUITTO

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="starts brokerd itself")


def print_config(config):
    with tempfile.TemporaryDirectory(prefix="brokerd-cli-") as tmp:
        path = os.path.join(tmp, "brokerd.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return subprocess.run([os.environ["BROKERD"], "-c", path, "--print-config"], cwd=tmp,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10)


def test_print_config_prints_a_valid_config():
    run = print_config({"limits": {"output_low_water_bytes": 1000}})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["limits"]["output_low_water_bytes"] == 1000


@pytest.mark.parametrize("config, reason", [
    ({"limits": {"output_low_water_bytes": 300000, "output_high_water_bytes": 1000}},
     b"output_low_water_bytes must not exceed"),
    ({"listeners": []}, b"listeners"),
    ({"durability_rules": [{"filter": "a/#/b", "mode": "memory"}]}, b"a/#/b"),
])
def test_print_config_refuses_what_start_would_refuse(config, reason):
    run = print_config(config)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert reason in run.stderr and run.stdout == b""
