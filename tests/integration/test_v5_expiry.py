"""MQTT 5.0 section 3.3.2.3.3: Message Expiry Interval."""

import time

import mqtt_raw as m

V = m.V5


def offline_sub(connected, cid="sub"):
    c = connected(cid, clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    c.subscribe("e/t", 1)
    c.disconnect()


def back(mqtt, cid="sub"):
    c = mqtt(V)
    c.connect(cid, clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    return c


def test_MQTT_3_3_2_6_forwarded_with_remaining_interval(connected, mqtt):
    offline_sub(connected)
    connected("pub").publish("e/t", b"x", qos=1,
                             props={m.MESSAGE_EXPIRY_INTERVAL: 10})
    time.sleep(1.2)
    p = back(mqtt).receive(1)[0]
    assert 1 <= p.prop(m.MESSAGE_EXPIRY_INTERVAL) <= 9, p


def test_MQTT_3_3_2_6_live_delivery_carries_interval(connected):
    sub = connected("sub")
    sub.subscribe("e/t", 1)
    connected("pub").publish("e/t", b"x", qos=1,
                             props={m.MESSAGE_EXPIRY_INTERVAL: 100})
    assert 99 <= sub.receive(1)[0].prop(m.MESSAGE_EXPIRY_INTERVAL) <= 100


def test_MQTT_3_3_2_5_expired_message_not_delivered_to_reconnecting_session(connected, mqtt):
    offline_sub(connected)
    pub = connected("pub")
    pub.publish("e/t", b"stale", qos=1, props={m.MESSAGE_EXPIRY_INTERVAL: 1})
    pub.publish("e/t", b"fresh", qos=1, props={m.MESSAGE_EXPIRY_INTERVAL: 60})
    pub.publish("e/t", b"forever", qos=1)
    time.sleep(2.2)
    got = m.drain(back(mqtt))
    assert [p.payload for p in got] == [b"fresh", b"forever"], got
    assert m.MESSAGE_EXPIRY_INTERVAL not in got[1].props


def test_no_expiry_property_when_none_was_sent(connected):
    sub = connected("sub")
    sub.subscribe("e/t", 0)
    connected("pub").publish("e/t", b"x")
    assert m.MESSAGE_EXPIRY_INTERVAL not in sub.expect_publish().props
