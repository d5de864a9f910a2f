"""MQTT 5.0 sections 3.1.2.11.2, 4.1 and 4.4: session state and expiry."""

import time

import pytest

import mqtt_raw as m

V = m.V5


def persistent(connected, cid="sess", expiry=60, qos=1, topic="s/t"):
    c = connected(cid, clean=False, props={m.SESSION_EXPIRY_INTERVAL: expiry})
    c.subscribe(topic, qos)
    return c


def reconnect(mqtt, cid="sess", expiry=60, clean=False):
    c = mqtt(V)
    c.connect(cid, clean=clean, props={m.SESSION_EXPIRY_INTERVAL: expiry})
    return c


def test_MQTT_3_1_2_23_session_kept_while_expiry_not_passed(connected, mqtt):
    persistent(connected, expiry=30).disconnect()
    connected("pub").publish("s/t", b"queued", qos=1)
    c = reconnect(mqtt)
    assert c.connack.session_present
    assert c.receive(1)[0].payload == b"queued"


def test_MQTT_4_1_0_2_session_discarded_after_expiry(connected, mqtt):
    persistent(connected, expiry=1).disconnect()
    time.sleep(2.2)
    c = reconnect(mqtt)
    assert c.connack.session_present is False
    connected("pub").publish("s/t", b"x", qos=1)
    c.expect_nothing(0.5)


def test_MQTT_4_1_0_2_session_kept_before_expiry(connected, mqtt):
    persistent(connected, expiry=3).disconnect()
    time.sleep(1.0)
    assert reconnect(mqtt).connack.session_present is True


def test_session_expiry_counted_from_network_close(connected, mqtt):
    c = persistent(connected, expiry=1)
    time.sleep(1.5)     # connected longer than the interval: no effect
    c.abort()
    assert reconnect(mqtt).connack.session_present is True


def test_disconnect_can_shorten_session_expiry(connected, mqtt):
    c = persistent(connected, expiry=60)
    c.disconnect(0, props={m.SESSION_EXPIRY_INTERVAL: 0})
    time.sleep(0.3)
    assert reconnect(mqtt).connack.session_present is False


def test_session_expiry_max_never_expires(connected, mqtt):
    persistent(connected, expiry=0xFFFFFFFF).disconnect()
    time.sleep(1.2)
    assert reconnect(mqtt, expiry=0).connack.session_present is True


def test_MQTT_3_3_1_1_unacked_publish_redelivered_with_dup(connected, mqtt):
    sub = persistent(connected)
    connected("pub").publish("s/t", b"redo", qos=1)
    first = sub.expect_publish()
    sub.abort()
    c = reconnect(mqtt)
    again = c.expect_publish(payload=b"redo")
    assert again.dup and again.pid == first.pid  # MQTT-4.4.0-1
    c.ack(again)
    c.expect_nothing(0.4)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.4-9: 2.0.11 resends more unacknowledged PUBLISH than the new Receive Maximum")
def test_MQTT_3_3_4_9_resent_publish_within_new_receive_maximum(connected, mqtt):
    # Four unacknowledged, then back with Receive Maximum 2: the quota starts again at 2.
    sub = persistent(connected)
    pub = connected("pub")
    for i in range(4):
        pub.publish("s/t", b"%d" % i, qos=1)
    sub.receive(4, ack=False)
    sub.abort()
    c = mqtt(V)
    c.connect("sess", clean=False,
              props={m.SESSION_EXPIRY_INTERVAL: 60, m.RECEIVE_MAXIMUM: 2})
    first = c.receive(2, ack=False)
    assert all(p.dup for p in first)
    c.expect_nothing(0.5)
    c.send(m.puback(first[0].pid))
    third = c.receive(1, ack=False)[0]
    assert third.dup
    c.expect_nothing(0.3)
    c.send(m.puback(first[1].pid) + m.puback(third.pid))
    last = c.receive(1)
    assert [p.payload for p in first + [third] + last] == [b"0", b"1", b"2", b"3"]
    c.expect_nothing(0.3)


def test_MQTT_4_4_0_1_unacked_pubrel_resent(connected, mqtt):
    sub = persistent(connected, qos=2)
    connected("pub").publish("s/t", b"q2", qos=2)
    first = sub.expect_publish()
    sub.send(m.pubrec(first.pid))
    sub.expect(m.PUBREL)
    sub.abort()
    c = reconnect(mqtt)
    rel = c.expect(m.PUBREL)
    assert rel.pid == first.pid
    c.send(m.pubcomp(rel.pid))
    c.expect_nothing(0.4)   # MQTT-4.3.3-6: PUBLISH not re-sent


def test_MQTT_4_4_0_2_puback_failure_not_retransmitted(connected, mqtt):
    sub = persistent(connected)
    connected("pub").publish("s/t", b"refused", qos=1)
    p = sub.expect_publish()
    sub.send(m.puback(p.pid, rc=m.RC_UNSPECIFIED_ERROR))
    sub.ping()
    sub.abort()
    reconnect(mqtt).expect_nothing(0.5)


def test_MQTT_4_6_0_6_offline_queue_keeps_order(connected, mqtt):
    persistent(connected, qos=2).disconnect()
    pub = connected("pub")
    for i in range(10):
        pub.publish("s/t", b"%d" % i, qos=1 + i % 2)
    got = reconnect(mqtt).receive(10)
    assert [p.payload for p in got] == [b"%d" % i for i in range(10)]
    assert [p.qos for p in got] == [1 + i % 2 for i in range(10)]


@pytest.mark.deviates_mosquitto(
    "a choice: 2.0.11 keeps no QoS 0 messages for an offline session (queue_qos0_messages)")
def test_offline_queue_keeps_order_across_qos_levels(connected, mqtt):
    # More than MQTT-4.6.0-6 asks (same topic and QoS): a QoS 0 message does not overtake
    # an older QoS 1 or 2 one, even while that one waits for the store.
    persistent(connected, qos=2).disconnect()
    pub = connected("pub")
    pattern = [1, 2, 0, 1, 2, 0, 0, 2]
    for i, q in enumerate(pattern):
        pub.publish("s/t", b"%d" % i, qos=q)
    pub.ping()
    got = reconnect(mqtt).receive(len(pattern))
    assert [p.payload for p in got] == [b"%d" % i for i in range(len(pattern))]
    assert [p.qos for p in got] == pattern


def test_MQTT_3_1_4_3_takeover_moves_session_and_inflight(connected, mqtt):
    sub = persistent(connected)
    connected("pub").publish("s/t", b"inflight", qos=1)
    first = sub.expect_publish()
    c = reconnect(mqtt)
    assert c.connack.session_present
    again = c.expect_publish(payload=b"inflight")
    assert again.dup and again.pid == first.pid
    c.ack(again)
    sub.expect_closed()


def test_MQTT_4_1_0_1_state_kept_while_connected(connected):
    sub = persistent(connected, expiry=0)
    pub = connected("pub")
    for i in range(3):
        pub.publish("s/t", b"%d" % i, qos=1)
    assert len(sub.receive(3)) == 3
