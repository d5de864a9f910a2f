"""MQTT 5.0 section 3.3.1.3 and 3.8.3.1: retained messages and options."""

import time

import pytest

import mqtt_raw as m

V = m.V5


def retained(connected, topic="r/t", payload=b"kept", qos=1, props=None):
    connected("retainer").publish(topic, payload, qos=qos, retain=True,
                                  props=props)


def test_MQTT_3_3_1_5_retained_replaced(connected):
    pub = connected("pub")
    pub.publish("r/t", b"old", qos=1, retain=True)
    pub.publish("r/t", b"new", qos=1, retain=True)
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    assert [p.payload for p in m.drain(sub)] == [b"new"]


def test_MQTT_3_3_1_6_empty_payload_removes_retained(connected):
    pub = connected("pub")
    pub.publish("r/t", b"old", qos=1, retain=True)
    pub.publish("r/t", b"", qos=1, retain=True)
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    sub.expect_nothing(0.5)  # MQTT-3.3.1-7: the empty message not stored


def test_MQTT_3_3_1_8_non_retained_publish_keeps_retained(connected):
    pub = connected("pub")
    pub.publish("r/t", b"kept", qos=1, retain=True)
    pub.publish("r/t", b"", qos=1)
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    assert [p.payload for p in m.drain(sub)] == [b"kept"]


def test_MQTT_3_3_1_9_retain_handling_0_sends_retained(connected):
    retained(connected)
    sub = connected("sub")
    sub.subscribe("r/t", 1, retain_handling=0)
    p = sub.receive(1)[0]
    assert p.retain and p.payload == b"kept"


def test_MQTT_3_3_1_10_retain_handling_1_only_for_new_subscription(connected):
    retained(connected)
    sub = connected("sub")
    sub.subscribe("r/t", 1, retain_handling=1)
    assert sub.receive(1)[0].payload == b"kept"
    sub.subscribe("r/t", 1, retain_handling=1)
    sub.expect_nothing(0.5)


def test_MQTT_3_3_1_11_retain_handling_2_sends_nothing(connected):
    retained(connected)
    sub = connected("sub")
    sub.subscribe("r/t", 1, retain_handling=2)
    sub.expect_nothing(0.5)
    connected("pub").publish("r/t", b"live", qos=1)
    assert sub.receive(1)[0].payload == b"live"


def test_MQTT_3_3_1_12_retain_as_published_0_clears_flag(connected):
    sub = connected("sub")
    sub.subscribe("r/t", 1, retain_as_published=False)
    connected("pub").publish("r/t", b"x", qos=1, retain=True)
    assert sub.receive(1)[0].retain is False


def test_MQTT_3_3_1_13_retain_as_published_1_keeps_flag(connected):
    sub = connected("sub")
    sub.subscribe("r/t", 1, retain_as_published=True)
    pub = connected("pub")
    pub.publish("r/t", b"x", qos=1, retain=True)
    pub.publish("r/t", b"y", qos=1, retain=False)
    a, b = sub.receive(2)
    assert (a.retain, b.retain) == (True, False)


def test_retained_on_subscribe_has_retain_flag_even_without_rap(connected):
    retained(connected)
    sub = connected("sub")
    sub.subscribe("r/+", 1, retain_as_published=False)
    assert sub.receive(1)[0].retain is True


def test_MQTT_4_7_2_1_dollar_retained_not_matched_by_wildcard(connected):
    retained(connected, topic="$r/t")
    retained(connected, topic="r/t", payload=b"plain")
    sub = connected("sub")
    sub.subscribe("+/t", 1)
    assert [p.topic for p in m.drain(sub)] == ["r/t"]


def test_retained_properties_kept(connected):
    retained(connected, props=[(m.CONTENT_TYPE, "text/x"),
                               (m.USER_PROPERTY, ("k", "v"))])
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    p = sub.receive(1)[0]
    assert p.prop(m.CONTENT_TYPE) == "text/x"
    assert p.prop(m.USER_PROPERTY) == [("k", "v")]


def test_MQTT_3_3_2_5_expired_retained_message_not_sent(connected):
    retained(connected, props={m.MESSAGE_EXPIRY_INTERVAL: 1})
    time.sleep(2.2)
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    sub.expect_nothing(0.5)


def test_MQTT_3_3_2_6_retained_sent_with_remaining_expiry(connected):
    retained(connected, props={m.MESSAGE_EXPIRY_INTERVAL: 30})
    time.sleep(1.2)
    sub = connected("sub")
    sub.subscribe("r/t", 1)
    p = sub.receive(1)[0]
    assert 1 <= p.prop(m.MESSAGE_EXPIRY_INTERVAL) <= 29


def test_subscription_identifier_on_retained_delivery(connected):
    retained(connected)
    sub = connected("sub")
    sub.subscribe("r/#", 1, props={m.SUBSCRIPTION_IDENTIFIER: 5})
    assert sub.receive(1)[0].prop(m.SUBSCRIPTION_IDENTIFIER) == [5]
