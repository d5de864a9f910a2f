"""Session expiry and will delay count across a restart of brokerd on its data dir: a stop is
not the end of a persistent session, and the time the broker was down counts.

Runs against brokerd only (it restarts the broker itself)."""

import time

import pytest

import mqtt_raw as m
from conftest import IS_MOSQUITTO
from test_durability_crash import brokerd  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="restarts brokerd on its data dir")

KEEP = {m.SESSION_EXPIRY_INTERVAL: 300}


def client(broker, client_id, clean=False, **kw):
    c = m.Client(broker.port, version=m.V5, timeout=5)
    ack = c.connect(client_id, clean=clean, **kw)
    return c, ack


def watcher(broker):
    c, _ = client(broker, "will-watcher", props=KEEP)
    c.subscribe("will/#", qos=1)
    return c


def car_with_will(broker, delay):
    will = {"topic": "will/car", "payload": b"offline", "qos": 1,
            "props": [(m.WILL_DELAY_INTERVAL, delay)]}
    c, _ = client(broker, "will-car", props=KEEP, will=will)
    return c


def restart(broker):
    assert broker.stop() == 0
    broker.start()


def test_MQTT_3_1_3_9_will_delay_spans_a_graceful_restart(brokerd):  # noqa: F811
    w = watcher(brokerd)
    car = car_with_will(brokerd, delay=3)
    restart(brokerd)  # both connections end with DISCONNECT 0x8B
    w.close()
    car.close()
    # The car is back well within its will delay: the will must never go out.
    car, ack = client(brokerd, "will-car", props=KEEP)
    assert ack.session_present
    w, ack = client(brokerd, "will-watcher", props=KEEP)
    assert ack.session_present
    w.expect_nothing(timeout=4.5)
    car.disconnect()  # 0x00: the will is discarded

    # A car that does not come back: its will goes out once the delay has passed.
    car = car_with_will(brokerd, delay=2)
    restart(brokerd)
    w.close()
    car.close()
    w, _ = client(brokerd, "will-watcher", props=KEEP)
    w.expect_publish(topic="will/car", payload="offline", timeout=8)
    w.expect_nothing(timeout=1)


def test_will_published_after_its_delay_is_not_published_again_after_restart(brokerd):  # noqa: F811
    w = watcher(brokerd)
    car = car_with_will(brokerd, delay=1)
    car.abort()  # lost connection: the will is due in 1 s, the session lives on
    pkt = w.expect_publish(topic="will/car", payload="offline", timeout=6)
    w.ack(pkt)
    restart(brokerd)
    w.close()
    w, ack = client(brokerd, "will-watcher", props=KEEP)
    assert ack.session_present
    w.expect_nothing(timeout=2.5)


def test_MQTT_3_1_2_23_session_that_expired_while_the_broker_was_down_is_not_resumed(brokerd):  # noqa: F811
    c, _ = client(brokerd, "short-lived", props={m.SESSION_EXPIRY_INTERVAL: 2})
    c.subscribe("short/#", qos=1)
    c.disconnect()
    assert brokerd.stop() == 0
    time.sleep(2.5)  # the session expires while nothing runs
    brokerd.start()
    c, ack = client(brokerd, "short-lived", props={m.SESSION_EXPIRY_INTERVAL: 2})
    assert not ack.session_present
    # Its subscription went with it.
    pub, _ = client(brokerd, "short-pub", clean=True)
    pub.publish("short/x", b"late", qos=1)
    c.expect_nothing(timeout=1)


def test_MQTT_3_1_2_23_after_a_crash_a_connected_session_expires_from_the_crash(brokerd):  # noqa: F811
    """The broker writes that it is alive about once a second: a vehicle connected when it was
    killed counts as gone since then, not since the restart."""
    w = watcher(brokerd)
    car, _ = client(brokerd, "crash-car", props={m.SESSION_EXPIRY_INTERVAL: 3},
                    will={"topic": "will/crash-car", "payload": b"gone", "qos": 1,
                          "props": [(m.WILL_DELAY_INTERVAL, 2)]})
    car.subscribe("crash/#", qos=1)
    w.close()
    time.sleep(2.5)  # at least one alive mark after the CONNECT
    brokerd.kill()
    car.close()
    time.sleep(5)  # longer than the session expiry and the will delay, plus a mark's interval
    brokerd.start()
    w, ack = client(brokerd, "will-watcher", props=KEEP)
    assert ack.session_present
    w.expect_publish(topic="will/crash-car", payload="gone", timeout=2)
    car, ack = client(brokerd, "crash-car", props={m.SESSION_EXPIRY_INTERVAL: 3})
    assert not ack.session_present


def recovered_line(broker):
    lines = [line for line in broker.log if "recovered" in line]
    return lines[-1] if lines else ""


def test_MQTT_3_3_2_5_messages_that_expired_while_stored_leave_the_store(brokerd):  # noqa: F811
    # A queued message and a retained one expire: they are never delivered, and their records
    # go too (a vehicle may never come back to collect them).
    car, _ = client(brokerd, "exp-car", props=KEEP)
    car.subscribe("exp/cmd", qos=1)
    car.disconnect()
    pub, _ = client(brokerd, "exp-pub", clean=True)
    pub.publish("exp/cmd", b"stale", qos=1, props={m.MESSAGE_EXPIRY_INTERVAL: 1})
    pub.publish("exp/cfg", b"stale", qos=1, retain=True, props={m.MESSAGE_EXPIRY_INTERVAL: 1})
    pub.disconnect()
    time.sleep(1.5)
    restart(brokerd)
    restart(brokerd)  # what the first start left in the store
    assert "recovered 1 sessions, 0 queued messages, 0 retained messages" in recovered_line(brokerd)
    car, ack = client(brokerd, "exp-car", props=KEEP)
    assert ack.session_present
    car.subscribe("exp/#", qos=1)
    car.expect_nothing(timeout=0.5)
