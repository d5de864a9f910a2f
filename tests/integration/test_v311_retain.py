"""MQTT 3.1.1 section 3.3.1.3: retained messages."""

import pytest

import mqtt_raw as m

V = m.V311


def test_MQTT_3_3_1_5_retained_message_stored_with_its_qos(connected):
    pub = connected("pub", V)
    pub.publish("ret/q1", b"one", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("ret/q1", 2)
    p = sub.receive(1)[0]
    assert p.payload == b"one" and p.qos == 1 and p.retain


def test_MQTT_3_3_1_6_retained_sent_on_new_subscription(connected):
    pub = connected("pub", V)
    pub.publish("ret/a", b"a", qos=0, retain=True)
    pub.publish("ret/b", b"b", qos=1, retain=True)
    pub.publish("other/c", b"c", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("ret/+", 1)
    got = sub.receive(2)
    assert sorted(p.payload for p in got) == [b"a", b"b"]
    sub.expect_nothing(0.3)


def test_MQTT_3_3_1_7_qos0_retained_replaces_previous(connected):
    pub = connected("pub", V)
    pub.publish("ret/r", b"old", qos=1, retain=True)
    pub.publish("ret/r", b"new", qos=0, retain=True)
    pub.ping()
    sub = connected("sub", V)
    sub.subscribe("ret/r", 1)
    got = []
    while True:
        try:
            p = sub.recv(0.5)
        except Exception:
            break
        got.append(p)
    # The QoS 0 message SHOULD be kept (MAY be discarded); the old one MUST go.
    assert [p.payload for p in got] in ([b"new"], []), got


def test_MQTT_3_3_1_8_retain_flag_set_for_new_subscription(connected):
    pub = connected("pub", V)
    pub.publish("ret/f", b"x", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("ret/f", 1)
    assert sub.receive(1)[0].retain is True


def test_MQTT_3_3_1_9_retain_flag_cleared_for_established_subscription(connected):
    sub = connected("sub", V)
    sub.subscribe("ret/live", 1)
    pub = connected("pub", V)
    pub.publish("ret/live", b"x", qos=1, retain=True)
    p = sub.receive(1)[0]
    assert p.retain is False


def test_MQTT_3_3_1_10_empty_retained_clears_and_is_delivered(connected):
    pub = connected("pub", V)
    pub.publish("ret/clr", b"x", qos=1, retain=True)
    live = connected("live", V)
    live.subscribe("ret/clr", 1)
    live.receive(1)
    pub.publish("ret/clr", b"", qos=1, retain=True)
    p = live.receive(1)[0]
    assert p.payload == b"" and p.retain is False
    late = connected("late", V)
    late.subscribe("ret/clr", 1)
    late.expect_nothing(0.5)


def test_MQTT_3_3_1_11_empty_retained_not_stored(connected):
    pub = connected("pub", V)
    pub.publish("ret/empty", b"", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("ret/empty", 1)
    sub.expect_nothing(0.5)


def test_MQTT_3_3_1_12_non_retained_publish_keeps_retained(connected):
    pub = connected("pub", V)
    pub.publish("ret/keep", b"kept", qos=1, retain=True)
    pub.publish("ret/keep", b"transient", qos=1, retain=False)
    pub.publish("ret/keep", b"", qos=1, retain=False)
    sub = connected("sub", V)
    sub.subscribe("ret/keep", 1)
    assert sub.receive(1)[0].payload == b"kept"
    sub.expect_nothing(0.3)


def test_MQTT_3_1_2_7_retained_survives_publisher_session_end(connected, mqtt):
    pub = connected("pub", V, clean=True)
    pub.publish("ret/sess", b"stays", qos=1, retain=True)
    pub.disconnect()
    sub = connected("sub", V)
    sub.subscribe("ret/sess", 1)
    assert sub.receive(1)[0].payload == b"stays"


def test_MQTT_4_7_2_1_retained_dollar_topic_not_sent_to_leading_wildcard(connected):
    pub = connected("pub", V)
    pub.publish("$ret/x", b"dollar", qos=1, retain=True)
    pub.publish("ret/x", b"plain", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("#", 1)
    got = sub.receive(1)
    assert got[0].topic == "ret/x"
    sub.expect_nothing(0.3)


def _store_retained(pub, count, payload, qos):
    """Publishes `count` retained messages fleet/<n>/cfg, pipelined with a window of 100."""
    out = 0
    for i in range(count):
        pub.send(m.publish("fleet/%06d/cfg" % i, payload, qos=qos, retain=True,
                           pid=(i % 60000) + 1 if qos else None, version=V))
        out += 1
        if qos and out >= 100:
            pub.expect(m.PUBACK, 30)
            out -= 1
    for _ in range(out if qos else 0):
        pub.expect(m.PUBACK, 30)
    pub.ping()  # everything before it was handled


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.1-6: 2.0.11 drops retained messages past max_queued_messages on subscribe")
@pytest.mark.parametrize("count,size,qos", [(20000, 10, 1), (2000, 10000, 0)],
                         ids=["20k-qos1", "20MB-qos0"])
def test_MQTT_3_3_1_6_every_matching_retained_message_arrives(connected, count, size, qos):
    # A back office taking a fleet snapshot through a wildcard gets every retained message,
    # beyond the queue bounds (1,000 messages) and the unsent-output bound (16 MiB at QoS 0),
    # as long as it reads.
    pub = connected("snap-pub", V)
    _store_retained(pub, count, b"c" * size, qos)
    sub = connected("snap-sub", V)
    sub.subscribe("fleet/+/cfg", qos)
    got = m.drain(sub, timeout=3)
    topics = {p.topic for p in got}
    assert len(topics) == count, "%d of %d retained messages" % (len(topics), count)
    assert all(p.retain for p in got)
