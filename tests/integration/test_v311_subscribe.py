"""MQTT 3.1.1 sections 3.8-3.11 and 4.7: SUBSCRIBE, UNSUBSCRIBE, topics."""

import pytest

import mqtt_raw as m

V = m.V311


def refused_or_closed(c, packet_bytes, ack_type):
    """Sends a SUBSCRIBE/UNSUBSCRIBE the server may refuse either with a
    failure code (0x80) or by closing. Returns 'closed' or the ack."""
    c.send_quietly(packet_bytes)
    try:
        ack = c.recv()
    except m.ConnectionClosed:
        return "closed"
    assert ack.type == ack_type, ack
    return ack


def test_MQTT_2_3_1_7_suback_and_unsuback_carry_the_request_pid(connected):
    c = connected("pids", V)
    c.send(m.subscribe(0x1234, [("a/b", 1)], version=V))
    assert c.expect(m.SUBACK).pid == 0x1234
    c.send(m.unsubscribe(0xABCD, ["a/b"], version=V))
    assert c.expect(m.UNSUBACK).pid == 0xABCD


def test_MQTT_3_8_4_1_subscribe_answered_with_suback(connected):
    c = connected("suback", V)
    ack = c.subscribe("a/b", 2)
    assert ack.raw == bytes([0x90, 3, 0, ack.pid, 2]) or ack.pid > 255


def test_MQTT_3_8_4_3_identical_filter_replaces_subscription(connected):
    sub = connected("sub", V)
    sub.subscribe("rep/t", 0)
    sub.subscribe("rep/t", 2)
    pub = connected("pub", V)
    pub.publish("rep/t", b"x", qos=2)
    p = sub.expect_publish(payload=b"x")
    assert p.qos == 2
    sub.ack(p)
    sub.expect_nothing(0.5)  # replaced, not added


def test_MQTT_3_8_4_3_resubscribe_resends_retained(connected):
    pub = connected("pub", V)
    pub.publish("rep/r", b"kept", qos=1, retain=True)
    sub = connected("sub", V)
    sub.subscribe("rep/r", 1)
    assert sub.receive(1)[0].retain
    sub.subscribe("rep/r", 1)
    p = sub.receive(1)[0]
    assert p.retain and p.payload == b"kept"


def test_MQTT_3_8_4_4_multiple_filters_handled_as_sequence(connected):
    sub = connected("sub", V)
    ack = sub.subscribe([("multi/a", 0), ("multi/b", 1), ("multi/c", 2)])
    assert ack.reason_codes == [0, 1, 2]
    pub = connected("pub", V)
    for t in ("multi/a", "multi/b", "multi/c"):
        pub.publish(t, t.encode(), qos=2)
        p = sub.expect_publish(topic=t)
        sub.ack(p)


def test_MQTT_3_8_4_5_return_code_per_filter_is_granted_qos(connected):
    sub = connected("sub", V)
    ack = sub.subscribe([("g/a", 2), ("g/b", 0), ("g/c", 1)],
                        expect_codes=False)
    assert len(ack.reason_codes) == 3
    for code, asked in zip(ack.reason_codes, (2, 0, 1)):
        assert code == 0x80 or code <= asked


def test_MQTT_3_9_3_1_return_codes_in_filter_order(connected):
    sub = connected("sub", V)
    ack = sub.subscribe([("o/1", 1), ("o/2", 2), ("o/3", 0), ("o/4", 2)],
                        expect_codes=False)
    assert ack.reason_codes == [1, 2, 0, 2]


def test_MQTT_3_9_3_2_only_defined_return_codes(connected):
    c = connected("codes", V)
    ack = refused_or_closed(c, m.subscribe(3, [("ok/t", 1), ("bad/#/x", 1)],
                                           version=V), m.SUBACK)
    if ack != "closed":
        assert ack.reason_codes[0] == 1
        assert ack.reason_codes[1] == 0x80
        assert set(ack.reason_codes) <= {0, 1, 2, 0x80}


def test_MQTT_3_10_4_1_unsubscribe_compares_filters_exactly(connected):
    sub = connected("sub", V)
    sub.subscribe("ex/b", 0)
    sub.unsubscribe("ex/+")   # not the same filter: nothing removed
    sub.unsubscribe("EX/b")   # case matters
    pub = connected("pub", V)
    pub.publish("ex/b", b"still")
    sub.expect_publish(payload=b"still")


def test_MQTT_3_10_4_2_no_new_messages_after_unsubscribe(connected):
    sub = connected("sub", V)
    sub.subscribe("un/t", 1)
    sub.unsubscribe("un/t")
    pub = connected("pub", V)
    pub.publish("un/t", b"x", qos=1)
    sub.expect_nothing(0.5)


def test_MQTT_3_10_4_3_inflight_qos1_completed_after_unsubscribe(connected):
    sub = connected("sub", V)
    sub.subscribe("un/f", 1)
    pub = connected("pub", V)
    pub.publish("un/f", b"x", qos=1)
    p = sub.expect_publish()
    sub.unsubscribe("un/f")
    sub.send(m.puback(p.pid, version=V))
    sub.ping()


def test_MQTT_3_10_4_4_unsuback_same_pid(connected):
    c = connected("unsuback", V)
    c.subscribe("a/b", 0)
    c.send(m.unsubscribe(31, ["a/b"], version=V))
    ack = c.expect(m.UNSUBACK)
    assert ack.raw == bytes([0xB0, 2, 0, 31])


def test_MQTT_3_10_4_5_unsuback_even_when_nothing_deleted(connected):
    c = connected("unsuback0", V)
    c.send(m.unsubscribe(32, ["never/subscribed"], version=V))
    assert c.expect(m.UNSUBACK).pid == 32


def test_MQTT_3_10_4_6_multiple_filters_one_unsuback(connected):
    sub = connected("sub", V)
    sub.subscribe([("u/1", 0), ("u/2", 0), ("u/3", 0)])
    sub.send(m.unsubscribe(40, ["u/1", "u/3", "u/none"], version=V))
    assert sub.expect(m.UNSUBACK).pid == 40
    pub = connected("pub", V)
    for t in ("u/1", "u/2", "u/3"):
        pub.publish(t, t.encode())
    sub.expect_publish(topic="u/2")
    sub.expect_nothing(0.5)


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b#", "#/a"])
def test_MQTT_4_7_1_2_multi_level_wildcard_must_be_last(connected, bad):
    c = connected("mlw", V)
    ack = refused_or_closed(c, m.subscribe(5, [(bad, 0)], version=V), m.SUBACK)
    assert ack == "closed" or ack.reason_codes == [0x80], ack


@pytest.mark.parametrize("bad", ["a+", "a/+b", "+a/b", "a/b+/c"])
def test_MQTT_4_7_1_3_single_level_wildcard_occupies_whole_level(connected, bad):
    c = connected("slw", V)
    ack = refused_or_closed(c, m.subscribe(5, [(bad, 0)], version=V), m.SUBACK)
    assert ack == "closed" or ack.reason_codes == [0x80], ack


MATCHES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "any/thing/at/all", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/tennis/#", "sport/tennis/x", True),
    ("a/b", "a/b/", False),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
]


@pytest.mark.parametrize("flt,topic,match", MATCHES)
def test_MQTT_4_7_1_1_wildcard_matching(connected, flt, topic, match):
    sub = connected("sub", V)
    sub.subscribe(flt, 0)
    pub = connected("pub", V)
    pub.publish(topic, b"m")
    pub.ping()  # the publish has been processed
    if match:
        sub.expect_publish(topic=topic)
    else:
        sub.expect_nothing(0.3)


@pytest.mark.parametrize("flt", ["#", "+/monitor/Clients", "+/#"])
def test_MQTT_4_7_2_1_leading_wildcard_does_not_match_dollar_topics(connected, flt):
    sub = connected("sub", V)
    sub.subscribe(flt, 0)
    pub = connected("pub", V)
    pub.publish("$XYZ/monitor/Clients", b"no")
    pub.publish("plain/monitor/Clients", b"yes")
    p = sub.expect_publish()
    assert p.topic == "plain/monitor/Clients", p
    sub.expect_nothing(0.3)


def test_MQTT_4_7_2_1_explicit_dollar_filter_matches(connected):
    sub = connected("sub", V)
    sub.subscribe("$XYZ/monitor/+", 0)
    pub = connected("pub", V)
    pub.publish("$XYZ/monitor/Clients", b"yes")
    sub.expect_publish(topic="$XYZ/monitor/Clients")


def test_MQTT_4_7_3_1_zero_length_topic_filter_refused(connected):
    c = connected("zlf", V)
    ack = refused_or_closed(c, m.subscribe(5, [("", 0)], version=V), m.SUBACK)
    assert ack == "closed" or ack.reason_codes == [0x80], ack


@pytest.mark.parametrize("flt", ["", "a/#/b", "a+", "#b"])
def test_MQTT_4_8_0_1_unsubscribe_invalid_filter_closes(connected, flt):
    # 3.1.1's UNSUBACK has no code for it: a filter breaking 4.7 is a protocol violation.
    c = connected("uinv", V)
    c.send_quietly(m.unsubscribe(7, [flt], version=V))
    got = c.expect_closed()
    assert all(p.type != m.UNSUBACK for p in got), got


def test_MQTT_4_7_3_4_no_normalization_of_topics(connected):
    sub = connected("sub", V)
    sub.subscribe([("Caf\u00e9", 0), ("norm/a", 0)])
    pub = connected("pub", V)
    pub.publish("Cafe\u0301", b"decomposed")  # different code points
    pub.publish("Norm/a", b"case")
    pub.publish("norm/a/", b"slash")
    pub.publish("norm/a", b"exact")
    sub.expect_publish(payload=b"exact")
    sub.expect_nothing(0.3)


def test_MQTT_1_5_3_3_bom_not_stripped(connected):
    sub = connected("sub", V)
    sub.subscribe("\ufeffbom/t", 0)
    pub = connected("pub", V)
    pub.publish("bom/t", b"without")
    pub.publish("\ufeffbom/t", b"with")
    p = sub.expect_publish(payload=b"with")
    assert p.topic == "\ufeffbom/t"
    sub.expect_nothing(0.3)
