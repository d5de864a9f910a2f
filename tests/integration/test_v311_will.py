"""MQTT 3.1.1 section 3.1.2.5-3.1.2.7: Will Messages."""

import pytest

import mqtt_raw as m

V = m.V311
WILL = {"topic": "will/t", "payload": b"gone", "qos": 1}


def will_watcher(connected, qos=2):
    w = connected("watcher", V)
    w.subscribe("will/#", qos)
    return w


def test_MQTT_3_1_2_8_will_published_on_network_failure(connected):
    w = will_watcher(connected)
    c = connected("dies", V, will=WILL)
    c.abort()
    p = w.expect_publish(topic="will/t", payload=b"gone")
    assert p.qos == 1
    w.ack(p)


def test_MQTT_3_1_2_8_will_published_on_keep_alive_timeout(connected):
    w = will_watcher(connected)
    connected("idle", V, keepalive=1, will=WILL)
    w.expect_publish(topic="will/t", timeout=8)


def test_MQTT_3_1_2_8_will_published_when_server_closes_for_protocol_error(connected):
    w = will_watcher(connected)
    c = connected("bad", V, will=WILL)
    c.send(m.publish("x/y", b"", qos=3, pid=1, version=V))  # malformed
    c.expect_closed()
    w.expect_publish(topic="will/t")


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-8: 2.0.11 drops the Will when it closes a connection for a "
    "second CONNECT (MQTT-3.1.0-2)")
def test_MQTT_3_1_2_8_will_published_after_second_connect(connected):
    w = will_watcher(connected)
    c = connected("bad", V, will=WILL)
    c.send(m.connect("bad", version=V))  # second CONNECT
    c.expect_closed()
    w.expect_publish(topic="will/t")


def test_MQTT_3_1_2_8_will_published_when_taken_over(connected):
    w = will_watcher(connected)
    connected("twice", V, will=WILL)
    connected("twice", V)
    w.expect_publish(topic="will/t")


def test_MQTT_3_1_2_10_will_removed_after_disconnect(connected):
    w = will_watcher(connected)
    c = connected("polite", V, will=WILL)
    c.disconnect()
    w.expect_nothing(1.0)


def test_MQTT_3_14_4_3_disconnect_discards_will(connected):
    w = will_watcher(connected)
    c = connected("polite2", V, will=WILL)
    c.send(m.disconnect(version=V))
    c.expect_closed()
    w.expect_nothing(1.0)


def test_MQTT_3_1_2_12_no_will_without_will_flag(connected):
    w = will_watcher(connected)
    c = connected("nowill", V)
    c.abort()
    w.expect_nothing(1.0)


def test_MQTT_3_1_2_11_will_qos_without_will_flag_closes(mqtt):
    c = mqtt(V)
    body = m.utf8("MQTT") + bytes([4, 0x02 | 0x08]) + m.u16(60) + m.utf8("wq")
    c.send(m.packet(m.CONNECT, 0, body))
    got = c.expect_closed()
    assert all(not (p.type == m.CONNACK and p.rc == 0) for p in got), got


def test_MQTT_3_1_2_14_will_qos_3_closes(mqtt):
    c = mqtt(V)
    c.send(m.connect("wq3", version=V,
                     will={"topic": "will/t", "payload": b"x", "qos": 3}))
    got = c.expect_closed()
    assert all(not (p.type == m.CONNACK and p.rc == 0) for p in got), got


def test_MQTT_3_1_2_15_will_retain_without_will_flag_closes(mqtt):
    c = mqtt(V)
    body = m.utf8("MQTT") + bytes([4, 0x02 | 0x20]) + m.u16(60) + m.utf8("wr")
    c.send(m.packet(m.CONNECT, 0, body))
    got = c.expect_closed()
    assert all(not (p.type == m.CONNACK and p.rc == 0) for p in got), got


def test_MQTT_3_1_2_16_will_retain_0_published_non_retained(connected):
    live = will_watcher(connected, 1)
    c = connected("nr", V, will=dict(WILL, retain=False))
    c.abort()
    live.ack(live.expect_publish(topic="will/t"))  # the will went out before "late" comes
    w = connected("late", V)
    w.subscribe("will/#", 1)
    w.expect_nothing(1.0)


def test_MQTT_3_1_2_17_will_retain_1_published_retained(connected):
    w = will_watcher(connected, 1)
    c = connected("r", V, will=dict(WILL, retain=True))
    c.abort()
    p = w.expect_publish(topic="will/t")
    assert p.retain is False  # live subscription: MQTT-3.3.1-9
    w.ack(p)
    late = connected("late", V)
    late.subscribe("will/#", 1)
    p = late.expect_publish(topic="will/t", payload=b"gone")
    assert p.retain is True
