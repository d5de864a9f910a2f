"""MQTT 5.0 section 3.3.2.3.4: Topic Alias."""

import pytest

import mqtt_raw as m

V = m.V5


def alias_max(c):
    value = c.connack.prop(m.TOPIC_ALIAS_MAXIMUM, 0)
    if not value:
        pytest.skip("server Topic Alias Maximum is 0")
    return value


def test_MQTT_3_3_2_12_server_accepts_aliases_up_to_its_maximum(connected):
    sub = connected("sub")
    sub.subscribe("ta/#", 0)
    pub = connected("pub")
    top = alias_max(pub)
    pub.publish("ta/one", b"1", props={m.TOPIC_ALIAS: 1})
    pub.publish("", b"2", props={m.TOPIC_ALIAS: 1})
    pub.publish("ta/max", b"3", props={m.TOPIC_ALIAS: top})
    pub.publish("", b"4", props={m.TOPIC_ALIAS: top})
    got = [sub.expect_publish() for _ in range(4)]
    assert [(p.topic, p.payload) for p in got] == [
        ("ta/one", b"1"), ("ta/one", b"2"), ("ta/max", b"3"), ("ta/max", b"4")]


def test_alias_remapped_to_new_topic(connected):
    sub = connected("sub")
    sub.subscribe("ta/#", 1)
    pub = connected("pub")
    alias_max(pub)
    pub.publish("ta/a", b"1", qos=1, props={m.TOPIC_ALIAS: 1})
    pub.publish("ta/b", b"2", qos=1, props={m.TOPIC_ALIAS: 1})
    pub.publish("", b"3", qos=1, props={m.TOPIC_ALIAS: 1})
    got = sub.receive(3)
    assert [p.topic for p in got] == ["ta/a", "ta/b", "ta/b"]


def test_MQTT_3_1_2_27_no_alias_sent_when_client_maximum_absent(connected):
    sub = connected("sub")
    sub.subscribe("ta/t", 0)
    pub = connected("pub")
    for i in range(5):
        pub.publish("ta/t", b"%d" % i)
    for _ in range(5):
        p = sub.expect_publish()
        assert p.topic == "ta/t" and m.TOPIC_ALIAS not in p.props


def test_MQTT_3_3_2_11_server_aliases_within_client_maximum(connected):
    sub = connected("sub", props={m.TOPIC_ALIAS_MAXIMUM: 2})
    sub.subscribe("ta/#", 0)
    pub = connected("pub")
    aliases = {}
    for i in range(12):
        topic = "ta/%d" % (i % 4)
        pub.publish(topic, b"%d" % i)
        p = sub.expect_publish()
        alias = p.prop(m.TOPIC_ALIAS)
        if alias is not None:
            assert 1 <= alias <= 2, p       # MQTT-3.1.2-26
            if p.topic:
                aliases[alias] = p.topic
            else:
                assert alias in aliases, p  # alias must have been set
        name = p.topic or aliases[alias]
        assert name == topic and p.payload == b"%d" % i


def test_outbound_aliases_bounded_by_the_servers_maximum_too(connected):
    # An outbound alias keeps its topic for the connection: a client offering 65,535 must not
    # make the broker hold 65,535 topics (of up to 64 KiB). Long topics go without an alias.
    sub = connected("alias-hog", props={m.TOPIC_ALIAS_MAXIMUM: 65535})
    limit = alias_max(sub)
    sub.subscribe("hog/#", 0)
    pub = connected("alias-pub")
    seen = set()
    for i in range(limit + 20):
        topic = "hog/%d" % i
        pub.publish(topic, b"x")
        p = sub.expect_publish()
        assert p.topic == topic, p  # every topic is new: its name always comes
        alias = p.prop(m.TOPIC_ALIAS)
        if alias is not None:
            seen.add(alias)
    assert max(seen, default=0) <= limit, sorted(seen)[-3:]
    long_topic = "hog/" + "x" * 300
    pub.publish(long_topic, b"y")
    p = sub.expect_publish(topic=long_topic)
    assert p.prop(m.TOPIC_ALIAS) is None, p


def test_alias_above_server_maximum_disconnect_0x94(connected):
    pub = connected("pub")
    top = alias_max(pub)
    pub.send(m.publish("ta/t", b"x", props={m.TOPIC_ALIAS: top + 1}))
    pub.expect_disconnect(m.RC_TOPIC_ALIAS_INVALID)


@pytest.mark.deviates_mosquitto(
    "MQTT-3.3.2-8: 2.0.11 answers Topic Alias 0 with DISCONNECT 0x81; brokerd uses 0x94 (Topic Alias invalid)")
def test_MQTT_3_3_2_8_alias_zero_disconnect_0x94(connected):
    pub = connected("pub")
    pub.send(m.publish("ta/t", b"x", props={m.TOPIC_ALIAS: 0}))
    pub.expect_disconnect(m.RC_TOPIC_ALIAS_INVALID)


def test_unknown_alias_with_empty_topic_is_protocol_error(connected):
    pub = connected("pub")
    alias_max(pub)
    pub.send(m.publish("", b"x", props={m.TOPIC_ALIAS: 1}))
    pub.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_MQTT_3_3_2_7_alias_not_carried_to_next_connection(connected, mqtt):
    pub = connected("pub", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    alias_max(pub)
    pub.publish("ta/t", b"x", props={m.TOPIC_ALIAS: 1})
    pub.disconnect()
    again = mqtt(V)
    again.connect("pub", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    again.send(m.publish("", b"y", props={m.TOPIC_ALIAS: 1}))
    again.expect_disconnect(m.RC_PROTOCOL_ERROR)


def test_MQTT_3_3_2_10_alias_with_qos1_and_qos2(connected):
    sub = connected("sub")
    sub.subscribe("ta/q", 2)
    pub = connected("pub")
    alias_max(pub)
    pub.publish("ta/q", b"1", qos=1, props={m.TOPIC_ALIAS: 3})
    pub.publish("", b"2", qos=2, props={m.TOPIC_ALIAS: 3})
    got = sub.receive(2)
    assert [(p.topic, p.qos) for p in got] == [("ta/q", 1), ("ta/q", 2)]


def test_MQTT_3_1_2_25_alias_never_pushes_a_message_past_the_clients_maximum(connected):
    # 100 bytes without an alias, 103 with one on first use: it goes out without, not dropped.
    sub = connected("alias-mps", props={m.TOPIC_ALIAS_MAXIMUM: 4, m.MAXIMUM_PACKET_SIZE: 100})
    sub.subscribe("ta/mps", 1)
    pub = connected("alias-mps-pub")
    pub.publish("ta/mps", b"a" * 89)                 # QoS 0: 2 + 8 (topic) + 1 (props) + 89
    pub.publish("ta/mps", b"b" * 87, qos=1)          # QoS 1: 2 more for the packet id
    pub.publish("ta/mps", b"c", qos=1)               # small: may set up the alias now
    pub.publish("ta/mps", b"d", qos=1)
    got = sub.receive(4)
    assert [p.payload for p in got] == [b"a" * 89, b"b" * 87, b"c", b"d"]
    assert [p.topic for p in got[:3]] == ["ta/mps"] * 3
    assert all(m.TOPIC_ALIAS not in p.props for p in got[:2])
    if not got[3].topic:                             # an alias only once the client knows it
        assert got[3].prop(m.TOPIC_ALIAS) == got[2].prop(m.TOPIC_ALIAS) is not None
