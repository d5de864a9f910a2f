"""MQTT 5.0 sections 3.1.2.5 and 3.1.3.2: Will Message and Will Delay."""

import time

import pytest

import mqtt_raw as m

V = m.V5


def will(delay=None, retain=False, props=None, qos=1):
    # A list keeps repeated properties (user properties); a dict cannot.
    if isinstance(props, list):
        p = list(props)
        if delay is not None:
            p.append((m.WILL_DELAY_INTERVAL, delay))
    else:
        p = dict(props or {})
        if delay is not None:
            p[m.WILL_DELAY_INTERVAL] = delay
    return {"topic": "will/t", "payload": b"gone", "qos": qos,
            "retain": retain, "props": p}


def watcher(connected):
    w = connected("watcher")
    w.subscribe("will/#", 1)
    return w


def test_MQTT_3_1_2_8_will_published_on_network_failure(connected):
    w = watcher(connected)
    connected("dies", will=will()).abort()
    p = w.expect_publish(topic="will/t", payload=b"gone")
    assert p.qos == 1


def test_MQTT_3_1_2_8_will_delay_postpones_will(connected):
    w = watcher(connected)
    c = connected("late", will=will(delay=2),
                  props={m.SESSION_EXPIRY_INTERVAL: 30})
    c.abort()
    start = time.monotonic()
    w.expect_nothing(1.4)
    w.expect_publish(topic="will/t", timeout=3)
    assert time.monotonic() - start >= 1.8


def test_MQTT_3_1_3_9_reconnect_within_will_delay_suppresses_will(connected, mqtt):
    w = watcher(connected)
    c = connected("back", clean=False, will=will(delay=2),
                  props={m.SESSION_EXPIRY_INTERVAL: 30})
    c.abort()
    time.sleep(0.5)
    again = mqtt(V)
    again.connect("back", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 30})
    w.expect_nothing(2.5)


def test_MQTT_3_1_2_8_will_sent_when_session_ends_before_delay(connected):
    w = watcher(connected)
    c = connected("short", will=will(delay=30),
                  props={m.SESSION_EXPIRY_INTERVAL: 1})
    c.abort()
    w.expect_publish(topic="will/t", timeout=4)


def test_MQTT_3_1_2_10_normal_disconnect_removes_will(connected):
    w = watcher(connected)
    c = connected("polite", will=will())
    c.disconnect(0)
    w.expect_nothing(1.0)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.2-8: 2.0.11 deletes the will on a client DISCONNECT with an error reason code")
@pytest.mark.parametrize("rc", [0x80, 0x83, 0x93])
def test_MQTT_3_14_4_3_only_reason_0_deletes_the_will(connected, rc):
    # A DISCONNECT with an error code reports a failure: the will still goes out.
    w = watcher(connected)
    c = connected("failing-%02x" % rc, will=will())
    c.disconnect(rc)
    w.expect_publish(topic="will/t", payload=b"gone")


def test_MQTT_3_1_2_14_will_retain_0_not_retained(connected):
    connected("nr", will=will(retain=False)).abort()
    time.sleep(0.5)
    late = connected("late")
    late.subscribe("will/#", 1)
    late.expect_nothing(0.5)


def test_MQTT_3_1_2_15_will_retain_1_retained(connected):
    w = watcher(connected)
    connected("r", will=will(retain=True)).abort()
    w.receive(1)
    late = connected("late")
    late.subscribe("will/#", 1)
    p = late.receive(1)[0]
    assert p.retain and p.payload == b"gone"


def test_MQTT_3_1_2_12_will_qos_3_malformed(mqtt):
    c = mqtt(V)
    c.send(m.connect("wq3", will=will(qos=3)))
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.rc == m.RC_MALFORMED_PACKET
               for p in got), got


@pytest.mark.deviates_mosquitto(
    "MQTT-3.1.3-10: 2.0.11 keeps only the last of repeated Will User Properties")
def test_MQTT_3_1_3_10_will_properties_forwarded(connected):
    w = watcher(connected)
    props = [(m.CONTENT_TYPE, "text/plain"), (m.RESPONSE_TOPIC, "reply/here"),
             (m.CORRELATION_DATA, b"\x00\x01corr"),
             (m.PAYLOAD_FORMAT_INDICATOR, 1),
             (m.USER_PROPERTY, ("b", "2")), (m.USER_PROPERTY, ("a", "1")),
             (m.USER_PROPERTY, ("b", "3"))]
    connected("props", will=will(props=props)).abort()
    p = w.expect_publish(topic="will/t")
    assert p.prop(m.CONTENT_TYPE) == "text/plain"
    assert p.prop(m.RESPONSE_TOPIC) == "reply/here"
    assert p.prop(m.CORRELATION_DATA) == b"\x00\x01corr"
    assert p.prop(m.PAYLOAD_FORMAT_INDICATOR) == 1
    assert p.prop(m.USER_PROPERTY) == [("b", "2"), ("a", "1"), ("b", "3")]


def test_will_message_expiry_forwarded(connected):
    w = watcher(connected)
    connected("exp", will=will(props={m.MESSAGE_EXPIRY_INTERVAL: 60})).abort()
    p = w.expect_publish(topic="will/t")
    assert 0 < p.prop(m.MESSAGE_EXPIRY_INTERVAL) <= 60


def test_MQTT_3_1_2_8_will_on_keep_alive_timeout(connected):
    w = watcher(connected)
    connected("idle", keepalive=1, will=will())
    w.expect_publish(topic="will/t", timeout=8)
